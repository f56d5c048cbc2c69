"""AlphaNet: post-hoc correction of a linear classifier's rare-class weights from their nearest frequent classes."""

import numbers
import warnings

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.spatial.distance import cdist
from sklearn.base import _fit_context
from sklearn.utils._param_validation import StrOptions, validate_params
from sklearn.utils.validation import validate_data
from skorch.callbacks import EpochScoring
from torch import nn
from torch.utils.data import Sampler

from ..torch._base import BaseTorchClassifier
from ..torch._callbacks import KeepBestEpoch, validation_accuracy, validation_balanced_accuracy
from ..torch._data import ClassBalancedSampler
from ..torch._losses import LogitAdjustedLoss
from ..torch._net import as_numpy, train_module
from ..utils import _param_constraints as pc
from ..utils._class_stats import class_indices, class_means
from ..utils._long_tail import MANY_SHOT_THRESHOLD, shot_groups
from ..utils._split import tail_safe_validation_split
from ..utils._validation import check_float32_range
from ._linear import LinearClassifier
from ._posthoc import base_linear_tags, fit_base_linear

# guard of the L1 normalisation: all-zero raw coefficients leave the class unchanged
_L1_EPS = 1e-12
# training samples per class that estimate the base's (per-class mean) training loss for logit_scale="auto"
_AUTO_SCALE_MAX_PER_CLASS = 50


def _per_class_subsample(y, max_per_class, rng):
    """Sorted indices keeping at most ``max_per_class`` random samples of each class."""
    shuffled = rng.permutation(len(y))
    # each class's positions in the shuffled order, ascending: its first ones are a random sample of it
    members = class_indices(y[shuffled])
    return np.sort(np.concatenate([shuffled[m[:max_per_class]] for m in members]))


def _balanced_cross_entropy(logits, y, scale):
    """Mean over the classes present of the per-class mean cross-entropy of ``scale * logits``."""
    logits = torch.as_tensor(logits)
    y = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    losses = torch.nn.functional.cross_entropy(scale * logits, y, reduction="none").double()
    _, y_idx, counts = torch.unique(y, return_inverse=True, return_counts=True)
    return float((torch.zeros(len(counts), dtype=torch.float64).index_add_(0, y_idx, losses) / counts).mean())


def matched_logit_scale(train_logits, y_train, valid_logits, y_valid):
    """The scale ``s <= 1`` at which the base's training loss equals its validation loss at scale 1.

    A base classifier that memorised its training samples has a training
    cross-entropy near 0, which leaves AlphaNet (trained on those samples)
    no gradient. Shrinking the logits by ``s`` until the class-balanced
    training loss matches the class-balanced loss on held-out data gives the
    training signal the base would have on unseen samples. The loss is convex
    in ``s`` and equals ``log(n_classes)`` at 0, so the root in ``(0, 1]`` is
    unique; 1 when the base does not over-fit (or is no better than chance).
    """
    target = _balanced_cross_entropy(valid_logits, y_valid, 1.0)
    gap = lambda scale: _balanced_cross_entropy(train_logits, y_train, scale) - target  # noqa: E731
    if gap(1.0) >= 0 or target >= np.log(np.shape(train_logits)[1]):
        return 1.0
    return float(brentq(gap, 0.0, 1.0, xtol=1e-4))


def l1_normalize(alphas, eps=_L1_EPS):
    """Scale each row to unit L1 norm; an all-zero row stays zero (works on numpy and torch)."""
    if isinstance(alphas, torch.Tensor):
        return alphas / alphas.abs().sum(dim=-1, keepdim=True).clamp_min(eps)
    alphas = np.asarray(alphas, dtype=np.float64)
    return alphas / np.maximum(np.abs(alphas).sum(axis=-1, keepdims=True), eps)


class AlphaNetModule(nn.Module):
    """Linear scores of a frozen classifier whose few-class rows are ``w_c + sum_i alpha_ci v_ci``.

    One MLP, shared by all few classes, maps the flattened source rows of a few
    class (its own row, if ``use_own_weights``, then its ``k`` neighbours'
    rows) to ``k`` raw coefficients, scaled to unit L1 norm. Base rows and,
    unless ``learn_few_bias``, all biases are buffers: only the MLP (and the
    few biases) learn.

    Parameters
    ----------
    weight : array-like of shape (n_classes, n_features)
    bias : array-like of shape (n_classes,)
    few_indices : array-like of shape (n_few,)
        Rows of the few classes.
    neighbor_indices : array-like of shape (n_few, n_neighbors)
        Rows of each few class's neighbours (base classes).
    hidden_layer_sizes : tuple of int, default=(32, 32, 32)
    negative_slope : float, default=0.01
        Slope of the LeakyReLU hidden activations.
    use_own_weights : bool, default=True
        Feed the few class's own row in front of its neighbours' rows.
    learn_few_bias : bool, default=False
        Make the few classes' biases parameters (initialised at ``bias``).
    logit_scale : float, default=1.0
        Multiplies the scores (a temperature for the training loss).

    The input is a feature matrix ``(n, n_features)``, or the features followed
    by the frozen base scores ``X @ weight.T + bias`` (``(n, n_features +
    n_classes)``, see :func:`with_base_scores`): the base scores never change,
    so a data set scored every epoch (validation) pays for them once.
    """

    def __init__(
        self,
        weight,
        bias,
        few_indices,
        neighbor_indices,
        *,
        hidden_layer_sizes=(32, 32, 32),
        negative_slope=0.01,
        use_own_weights=True,
        learn_few_bias=False,
        logit_scale=1.0,
    ):
        super().__init__()
        self.logit_scale = float(logit_scale)
        weight = torch.as_tensor(np.asarray(weight), dtype=torch.float32)
        bias = torch.as_tensor(np.asarray(bias), dtype=torch.float32)
        few = torch.as_tensor(np.asarray(few_indices), dtype=torch.int64)
        neighbors = torch.as_tensor(np.asarray(neighbor_indices), dtype=torch.int64)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.register_buffer("few_indices", few)
        self.register_buffer("neighbor_weights", weight[neighbors])  # (n_few, k, d)
        sources = torch.cat([weight[few][:, None, :], weight[neighbors]], dim=1) if use_own_weights else weight[neighbors]
        self.register_buffer("sources", sources.flatten(1))  # (n_few, (k [+1]) * d)
        if learn_few_bias:
            self.few_bias = nn.Parameter(bias[few].clone())
        else:
            self.register_buffer("few_bias", bias[few].clone())
        sizes = [self.sources.shape[1], *hidden_layer_sizes]
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(negative_slope)]
        layers.append(nn.Linear(sizes[-1], neighbors.shape[1]))
        self.mlp = nn.Sequential(*layers)

    def raw_alphas(self):
        """MLP outputs, one row of ``k`` coefficients per few class."""
        return self.mlp(self.sources)

    def alphas(self):
        """Coefficients scaled to unit L1 norm (``(n_few, k)``)."""
        return l1_normalize(self.raw_alphas())

    def few_weights(self):
        """Corrected few-class rows ``w_c + sum_i alpha_ci v_ci``."""
        return self.weight[self.few_indices] + torch.einsum("fk,fkd->fd", self.alphas(), self.neighbor_weights)

    def forward(self, X):
        # the base scores need no gradient; only the few columns are recomputed with the corrected rows
        n_features = self.weight.shape[1]
        if X.shape[1] == n_features:
            logits = X @ self.weight.T + self.bias
        else:
            X, logits = X[:, :n_features], X[:, n_features:]
        few_logits = X @ self.few_weights().T + self.few_bias
        return logits.index_copy(1, self.few_indices, few_logits) * self.logit_scale


def with_base_scores(X, weight, bias):
    """``[X, X @ weight.T + bias]`` in float32: an :class:`AlphaNetModule` input with precomputed base scores."""
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    W = torch.as_tensor(np.asarray(weight), dtype=torch.float32)
    b = torch.as_tensor(np.asarray(bias), dtype=torch.float32)
    return torch.cat([X, X @ W.T + b], dim=1).numpy()


class FewPlusBaseSampler(Sampler):
    """AlphaNet's epoch: every few-split sample once plus ``int(rho * F)`` class-balanced base draws.

    The base draws come from :class:`~sklearn_lt.torch.ClassBalancedSampler`
    over the base-split samples (each base class equally likely per draw, with
    replacement: sample weights ``1 / n_class``); both parts are shuffled
    together and cut into index-tensor batches. Everything is redrawn each
    epoch.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels of the training set the indices refer to.
    few_mask : array-like of bool, shape (n_samples,)
        True for the samples of few classes.
    rho : float
        Base draws per few-split sample.
    batch_size : int
    generator : torch.Generator, default=None
    """

    @validate_params({"batch_size": pc.POSITIVE_INT}, prefer_skip_nested_validation=True)
    def __init__(self, y, few_mask, rho, batch_size, *, generator=None):
        y = np.asarray(y)
        few_mask = np.asarray(few_mask, dtype=bool)
        self.batch_size = int(batch_size)
        self.generator = generator
        self.few_indices = torch.as_tensor(np.flatnonzero(few_mask), dtype=torch.int64)
        base = np.flatnonzero(~few_mask)
        self.n_base_draws = int(rho * len(self.few_indices))
        self.base_indices = torch.as_tensor(base, dtype=torch.int64)
        self.base_sampler = None
        if self.n_base_draws > 0:
            self.base_sampler = ClassBalancedSampler(
                y[base], batch_size, n_draws=self.n_base_draws, generator=generator
            )

    def __len__(self):
        return -(-(len(self.few_indices) + self.n_base_draws) // self.batch_size)

    def __iter__(self):
        parts = [self.few_indices]
        if self.base_sampler is not None:
            parts.append(self.base_indices[self.base_sampler.draw(self.n_base_draws)])
        epoch = torch.cat(parts)
        epoch = epoch[torch.randperm(len(epoch), generator=self.generator)]
        for start in range(0, len(epoch), self.batch_size):
            yield epoch[start : start + self.batch_size]


_SCORINGS = {"balanced_accuracy": validation_balanced_accuracy, "accuracy": validation_accuracy}


class AlphaNetClassifier(BaseTorchClassifier):
    """AlphaNet: correct a linear classifier's rare-class weights with its frequent neighbours' weights.

    A long-tailed linear classifier often labels a rare ("few") class's samples
    as a similar frequent class. AlphaNet (Chang et al.) moves each few class's
    weight row by a learned combination of the rows of its ``k`` nearest base
    classes (by distance between class means):
    ``w_c <- w_c + sum_i alpha_ci v_i`` with ``||alpha_c||_1 = 1``, so the
    change is at most ``max_i ||v_i||``. One small MLP, shared by all few
    classes, maps the few class's own row and its neighbours' rows to the
    coefficients. Base classes and biases are left as the base classifier had
    them; the result is again a linear classifier (``coef_``, ``intercept_``).

    Each epoch trains on every few-split sample plus ``int(rho * F)`` base
    samples drawn class-balanced with replacement (``F`` = number of few-split
    samples): a smaller ``rho`` favours the few classes more, trading
    many/medium-shot accuracy for few-shot accuracy. AdamW, learning rate x0.1
    every 10 epochs; the epoch kept is the one with the best validation score
    from ``min_epochs`` on.

    Parameters
    ----------
    estimator : classifier with ``coef_`` and ``intercept_``, default=None
        The base linear classifier, cloned and fitted on the training part in
        ``fit``. None means ``LinearClassifier(sampling="class_balanced")``
        (cRT on the features, the paper's main base). Wrap a fitted model in
        :class:`sklearn.frozen.FrozenEstimator` to correct it without refitting.
    few_threshold : int, default=20
        Classes with fewer training samples (counted on all of ``y``) form the
        few split; the others are the base split and are never changed.
    n_neighbors : int, default=5
        Base classes combined into each few class; when there are fewer base
        classes, all of them (with a warning).
    metric : {"euclidean", "cosine"}, default="euclidean"
        Distance between class means (cosine: ``1 - cos``).
    neighbor_selection : {"nearest", "random"}, default="nearest"
        ``"random"`` draws the ``n_neighbors`` base classes at random (the
        paper's control experiment, Fig. 3) and keeps them in draw order, not
        sorted by distance, as the authors' code does.
    rho : float, default=1.0
        Class-balanced base draws per few-split sample in each epoch.
    hidden_layer_sizes : tuple of int, default=(32, 32, 32)
        Hidden layers of the coefficient MLP (LeakyReLU, slope 0.01).
    use_own_weights : bool, default=True
        Feed the few class's own row to the MLP in front of its neighbours'
        rows (the authors' code and final paper); False gives the earlier
        version whose MLP sees only the neighbours.
    learn_few_bias : bool, default=False
        Also learn the few classes' biases (initialised at the base's), as
        the earlier paper version describes.
    logit_scale : float or "auto", default=1.0
        Multiplies the scores inside AlphaNet's training loss (the authors'
        ``pred_scale``; it does not change predictions). ``1.0`` is the
        paper's setting. AlphaNet learns from the same samples the base was
        fitted on; a base that memorised them (training cross-entropy near 0,
        common on embeddings with more features than rare-class samples)
        leaves the loss almost no gradient, and AlphaNet then returns little
        more than its random start. ``"auto"`` (an option of this library,
        not in the paper) picks the ``s <= 1`` at which the base's
        class-balanced training loss equals its loss on the validation data
        (1 when it does not over-fit); see the user guide for where it helps
        and where it hurts.
    max_epochs : int, default=25
        Training epochs.
    min_epochs : int, default=5
        First epoch (1-based) that may be kept by validation.
    batch_size : int, default=64
        Samples per batch.
    lr : float, default=1e-3
        Initial AdamW learning rate (multiplied by 0.1 every 10 epochs).
    weight_decay : float, default=0.01
        AdamW weight decay.
    validation_fraction : float, default=0.1
        Share of each class's training samples held out (with
        :func:`~sklearn_lt.utils.tail_safe_validation_split`, which keeps
        every class in training) to select the epoch, when ``fit`` gets no
        ``X_val``. The base estimator is then fitted on the rest only. 0 keeps
        the last epoch.
    scoring : {"balanced_accuracy", "accuracy"}, default="balanced_accuracy"
        Validation score that selects the epoch. The paper uses accuracy on a
        class-balanced validation set; on a held-out part of long-tailed
        training data, balanced accuracy (mean per-class recall) measures the
        same thing.
    device : str, default="auto"
        ``"auto"`` (CUDA if available, else CPU) or a torch device string.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the default base estimator, random
        neighbours, MLP initialisation and sampling.
    verbose : int, default=0
        1 prints skorch's per-epoch table.

    Attributes
    ----------
    estimator_ : classifier
        The fitted base classifier: the model AlphaNet started from, fitted
        on the same training part (all of ``X`` but the held-out
        ``validation_fraction``) and usable on its own (``predict``,
        ``decision_function``). Compare ``estimator_.predict(X_test)`` with
        ``predict(X_test)`` for AlphaNet's effect on its own base.
    coef_ : ndarray of shape (n_classes, n_features)
        Corrected weights: base rows are the base classifier's, few rows
        ``w_c + alphas_[j] @ W[neighbors]``.
    intercept_ : ndarray of shape (n_classes,)
        Biases (the base classifier's unless ``learn_few_bias``).
    few_classes_ : ndarray of shape (n_few,)
        Labels of the corrected (few) classes.
    n_neighbors_ : int
        Neighbours per few class actually used: ``min(n_neighbors, number of base classes)``.
    neighbors_ : ndarray of shape (n_few, n_neighbors)
        Labels of each few class's base neighbours, nearest first (in draw
        order with ``neighbor_selection="random"``).
    neighbor_distances_ : ndarray of shape (n_few, n_neighbors)
        Their distances between class means.
    alphas_ : ndarray of shape (n_few, n_neighbors)
        Learned coefficients, unit L1 norm per row.
    best_epoch_ : int or None
        Epoch (1-based) whose model was kept; None when there was nothing to
        train.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Training samples per class (all of ``y``).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.
    device_ : str
        Training device.
    net_ : skorch.NeuralNet or None
        The fitted net (``net_.module_`` is an :class:`AlphaNetModule`);
        None when there were no few classes.
    logit_scale_ : float or None
        Scale of the logits in AlphaNet's training loss (None when there was
        nothing to train).
    history_ : skorch.History or None
        Per-epoch history: ``train_loss``, ``valid_loss``, ``valid_score``
        (the ``scoring`` on validation data), ``kept`` (True where the epoch
        became the best one since ``min_epochs``; the last such epoch is
        ``best_epoch_``), ``event_lr``.

    See Also
    --------
    LinearClassifier : the default base (``sampling="class_balanced"`` is cRT).
    LWSClassifier : learned per-class weight scales, another post-hoc correction.
    TauNormalizedClassifier : weight-norm correction.

    Notes
    -----
    With no few class in ``y`` there is nothing to correct: ``fit`` warns and
    the model equals the base classifier (so searches over data without rare
    classes still run); the same with no base class (every class is few).
    With fewer base classes than ``n_neighbors``, ``fit`` warns and each few
    class combines all the base classes there are (``n_neighbors_``), so that
    small data (a CV fold, scikit-learn's checks) still fits.

    ``rho`` sets how much the few classes are favoured *per class*: each few
    class gets ``F / n_few`` samples an epoch, each base class ``rho F /
    n_base``. ImageNet-LT has 136 few and 864 base classes, so the paper's
    ``rho=1`` over-weights a few class about 6 times; with as many few as base
    classes, ``rho=1`` is nearly balanced and a smaller ``rho`` matches the
    paper's operating points better.

    References
    ----------
    N. Chang, J. Koushik, A. Singh, M. Hebert, Y.-X. Wang, M. J. Tarr.
    "AlphaNet: Improving Long-Tail Classification By Combining Classifiers",
    https://jkoushik.me/alphanet (code: github.com/jayanthkoushik/alphanet).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> from sklearn_lt.linear_model import AlphaNetClassifier
    >>> X, X_test, y, y_test = make_long_tailed_classification(random_state=0)
    >>> clf = AlphaNetClassifier(n_neighbors=3, rho=0.5, random_state=0).fit(X, y)
    >>> clf.few_classes_.tolist(), clf.neighbors_.shape
    ([6, 7, 8, 9], (4, 3))
    >>> bool(np.allclose(np.abs(clf.alphas_).sum(axis=1), 1.0))
    True
    >>> base_rows = ~np.isin(clf.classes_, clf.few_classes_)
    >>> bool(np.array_equal(clf.coef_[base_rows], clf.estimator_.coef_[base_rows]))
    True
    """

    # scikit-learn's check data sets are balanced (no class is few: the documented no-op path) or tiny;
    # few_threshold=3 keeps the 1-sample class of the long-tailed common-test data few, n_neighbors=1 fits
    # data with two base classes. The trained path is covered by tests/test_common.py's long-tailed tests
    # (pickle, seeds, string labels, grid search) and tests/test_alphanet.py.
    _test_params = {"n_neighbors": 1, "few_threshold": 3, "max_epochs": 6, "min_epochs": 2}
    _expected_failed_checks = {
        "check_sample_weight_equivalence_on_dense_data": "trained by stochastic mini-batches (base classifier "
        "and AlphaNet): integer weights equal repetition only in expectation",
    }

    _parameter_constraints: dict = {
        "estimator": pc.BASE_ESTIMATOR,
        "few_threshold": pc.POSITIVE_INT,
        "n_neighbors": pc.POSITIVE_INT,
        "metric": [StrOptions({"euclidean", "cosine"})],
        "neighbor_selection": [StrOptions({"nearest", "random"})],
        "rho": pc.NONNEGATIVE_REAL,
        "hidden_layer_sizes": [tuple, list],
        "use_own_weights": ["boolean"],
        "learn_few_bias": ["boolean"],
        "logit_scale": [StrOptions({"auto"}), *pc.POSITIVE_REAL],
        "max_epochs": pc.EPOCHS,
        "min_epochs": pc.POSITIVE_INT,
        "batch_size": pc.POSITIVE_INT,
        "lr": pc.NONNEGATIVE_REAL,
        "weight_decay": pc.NONNEGATIVE_REAL,
        "validation_fraction": pc.FRACTION,
        "scoring": [StrOptions(set(_SCORINGS))],
        **pc.TORCH_COMMON,
    }

    def __init__(
        self,
        estimator=None,
        *,
        few_threshold=20,
        n_neighbors=5,
        metric="euclidean",
        neighbor_selection="nearest",
        rho=1.0,
        hidden_layer_sizes=(32, 32, 32),
        use_own_weights=True,
        learn_few_bias=False,
        logit_scale=1.0,
        max_epochs=25,
        min_epochs=5,
        batch_size=64,
        lr=1e-3,
        weight_decay=0.01,
        validation_fraction=0.1,
        scoring="balanced_accuracy",
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.few_threshold = few_threshold
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.neighbor_selection = neighbor_selection
        self.rho = rho
        self.hidden_layer_sizes = hidden_layer_sizes
        self.use_own_weights = use_own_weights
        self.learn_few_bias = learn_few_bias
        self.logit_scale = logit_scale
        self.max_epochs = max_epochs
        self.min_epochs = min_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _validate_params(self):
        super()._validate_params()
        # the elements of a tuple are beyond what the constraints can state
        sizes = self.hidden_layer_sizes
        if len(sizes) == 0 or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes
        ):
            raise ValueError(f"hidden_layer_sizes must be a non-empty tuple of positive ints, got {sizes!r}.")

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None):
        """Fit the base classifier (unless frozen), then learn the few-class corrections.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Class labels of any hashable type.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the base fit and of AlphaNet's loss.
        X_val, y_val : array-like, default=None
            Validation data that selects the epoch. When None, a
            ``validation_fraction`` part of ``(X, y)`` is held out instead.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, X_val=X_val, y_val=y_val)

    def _validate_fit_params(self, X_val=None, y_val=None):
        """``validation``: ``(X_val, y_val)`` as float32 and encoded labels, or None."""
        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val, or neither.")
        if X_val is None:
            return {"validation": None}
        X_val = validate_data(self, X_val, reset=False, dtype=[np.float32, np.float64])
        check_float32_range(X_val, estimator=self, input_name="X_val")
        y_val = np.asarray(y_val)
        if y_val.ndim != 1 or len(y_val) != len(X_val):
            raise ValueError(f"y_val must be 1-d with one label per row of X_val ({len(X_val)}), got shape {y_val.shape}.")
        unseen = np.setdiff1d(y_val, self.classes_)
        if len(unseen):
            raise ValueError(
                f"y_val has labels not seen in y: {unseen[:10].tolist()}; validation data must use the training "
                "classes."
            )
        y_val = np.searchsorted(self.classes_, y_val).astype(np.int64)
        return {"validation": (np.asarray(X_val, dtype=np.float32), y_val)}

    def _prepare_training(self, X, y, sample_weight, rng, *, validation):
        """AlphaNet's stages before training: classes split, validation, base fit, neighbours, logit scale."""
        # the torch seed of the training is the fifth draw, taken by the template
        split_seed, base_seed, neighbor_seed, scale_seed = rng.randint(np.iinfo(np.int32).max, size=4)
        is_few, few, base = self._split_classes()
        self.few_classes_ = self.classes_[few]
        self.best_epoch_ = self.logit_scale_ = None  # set below when there is something to train
        train, validation = self._hold_out(X, y, validation, split_seed)
        X_fit, y_fit, w_fit = X[train], y[train], sample_weight[train]
        W, b = self._fit_base(X_fit, y_fit, w_fit, base_seed)
        if len(few) == 0 or len(base) == 0:
            self._keep_base_classifier(few)
            return None
        neighbor_idx, self.neighbor_distances_ = self._find_neighbors(X_fit, y_fit, few, base, neighbor_seed)
        self.neighbors_ = self.classes_[neighbor_idx]
        if validation is not None:  # the base scores of the validation data never change: compute them once
            validation = (with_base_scores(validation[0], W, b), validation[1])
        self.logit_scale_ = self._resolve_logit_scale(
            W, b, X_fit, y_fit, validation, np.random.RandomState(scale_seed)
        )
        net_kwargs = {"weight": W, "bias": b, "is_few": is_few, "neighbor_idx": neighbor_idx, "validation": validation}
        return X_fit, y_fit, w_fit, net_kwargs

    def _split_classes(self):
        """Few and base classes (indices into ``classes_``), and the number of neighbors each few class gets."""
        groups = shot_groups(
            self.class_counts_,
            few_threshold=self.few_threshold,
            many_threshold=max(MANY_SHOT_THRESHOLD, self.few_threshold - 1),
        )
        is_few = groups == "few"
        few, base = np.flatnonzero(is_few), np.flatnonzero(~is_few)
        self.n_neighbors_ = min(self.n_neighbors, len(base))
        if len(few) and len(base) and self.n_neighbors > len(base):
            # small data (e.g. a CV fold) should still fit: borrow from every base class there is
            warnings.warn(
                f"n_neighbors={self.n_neighbors} but there are only {len(base)} base classes (classes with at "
                f"least few_threshold={self.few_threshold} training samples; {len(few)} classes are few): each few "
                f"class uses all {len(base)} of them. Lower n_neighbors or few_threshold to silence this.",
                UserWarning,
                stacklevel=6,
            )
        return is_few, few, base

    def _hold_out(self, X, y_enc, validation, split_seed):
        """The training rows, and the validation data: ``(X_val, y_val)`` if given, else a held-out part."""
        train = np.arange(len(y_enc))
        if validation is None and self.validation_fraction > 0:
            train, valid = tail_safe_validation_split(y_enc, self.validation_fraction, random_state=split_seed)
            if len(valid):
                validation = (X[valid], y_enc[valid])
        return train, validation

    def _fit_base(self, X_fit, y_fit, w_fit, seed):
        """Fit the base classifier on the training rows; its weights start ``coef_`` and ``intercept_``."""
        default = LinearClassifier(sampling="class_balanced", device=self.device, random_state=int(seed))
        self.estimator_, W, b = fit_base_linear(
            self, X_fit, self.classes_[y_fit], w_fit, default=default, random_state=int(seed)
        )
        self.coef_, self.intercept_ = W.copy(), b.copy()
        return W, b

    def _keep_base_classifier(self, few):
        """No few class or no base class: nothing to correct, the model is the base classifier (and say why)."""
        if len(few) == 0:
            reason = (
                f"no class has fewer than few_threshold={self.few_threshold} training samples, so AlphaNet has "
                "nothing to correct"
            )
            fix = "raise few_threshold to correct the rarest classes"
        else:
            reason = (
                f"every class has fewer than few_threshold={self.few_threshold} training samples, so there is "
                "no base class to borrow weights from"
            )
            fix = "lower few_threshold so that the largest classes are base classes"
        warnings.warn(
            f"{reason} and the model equals the base classifier; {fix}.",
            UserWarning,
            stacklevel=6,
        )
        k = self.n_neighbors_
        self.neighbors_ = np.empty((0, k), dtype=self.classes_.dtype)
        self.neighbor_distances_ = np.empty((0, k))
        self.alphas_ = np.empty((0, k))

    def _fit_net(self, X, y, sample_weight, generator, *, weight, bias, is_few, neighbor_idx, validation):
        """Train the AlphaNet module on the base scores; keep the best validation epoch when there is validation."""
        module = AlphaNetModule(
            weight,
            bias,
            np.flatnonzero(is_few),
            neighbor_idx,
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            use_own_weights=self.use_own_weights,
            learn_few_bias=self.learn_few_bias,
            logit_scale=self.logit_scale_,
        )
        sampler = FewPlusBaseSampler(y, is_few[y], self.rho, self.batch_size, generator=generator)
        callbacks = []
        if validation is not None:
            callbacks = [
                ("valid_score", EpochScoring(_SCORINGS[self.scoring], lower_is_better=False, name="valid_score")),
                ("keep_best", KeepBestEpoch("valid_score", min_epochs=self.min_epochs)),
            ]
        return train_module(
            module,
            LogitAdjustedLoss(tau=0.0),
            X,
            y,
            sample_weight=sample_weight,
            sampler=sampler,
            max_epochs=self.max_epochs,
            optimizer="adamw",
            lr=self.lr,
            optimizer_kwargs={"weight_decay": self.weight_decay},
            lr_schedule=(torch.optim.lr_scheduler.StepLR, {"step_size": 10, "gamma": 0.1}),
            callbacks=callbacks,
            valid_data=validation,
            device=self.device_,
            verbose=self.verbose,
        )

    def _resolve_logit_scale(self, W, b, X_fit, y_fit, validation, rng):
        if self.logit_scale != "auto":
            return float(self.logit_scale)
        if validation is None:
            warnings.warn(
                "logit_scale='auto' needs validation data (validation_fraction > 0 or X_val/y_val); using 1.0.",
                UserWarning,
                stacklevel=6,
            )
            return 1.0
        valid_scores, y_val = validation
        # the loss is a per-class mean: a few dozen samples per class estimate it well enough
        rows = _per_class_subsample(y_fit, _AUTO_SCALE_MAX_PER_CLASS, rng)
        train_logits = with_base_scores(X_fit[rows], W, b)[:, X_fit.shape[1] :]
        return matched_logit_scale(train_logits, y_fit[rows], valid_scores[:, X_fit.shape[1] :], y_val)

    def _find_neighbors(self, X, y, few, base, seed):
        """Base-class neighbours of each few class (nearest first, or in random draw order) and their distances."""
        means = class_means(X, y, len(self.classes_))
        if self.metric == "cosine":
            norms = np.linalg.norm(means, axis=1, keepdims=True)
            unit = means / np.maximum(norms, np.finfo(np.float64).tiny)
            dist = 1.0 - unit[few] @ unit[base].T
        else:
            dist = cdist(means[few], means[base])
        k = self.n_neighbors_
        if self.neighbor_selection == "random":
            # the paper's control (and the authors' code, which ranks the base classes by random keys) keeps
            # the random neighbours in draw order: sorting them by distance would tell the MLP which one is
            # nearest, information the control must not have
            rng = np.random.RandomState(seed)
            order = np.stack([rng.choice(len(base), k, replace=False) for _ in few])
        else:
            order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        return base[order], np.take_along_axis(dist, order, axis=1)

    def _after_fit(self):
        """The kept epoch, and the learned correction exported as float64 linear weights."""
        keep_best = dict(self.net_.callbacks_).get("keep_best")
        self.best_epoch_ = keep_best.best_epoch_ if keep_best is not None else (self.max_epochs or None)
        module = self.net_.module_
        with torch.no_grad():
            raw = as_numpy(module.raw_alphas()).astype(np.float64)
            few_bias = as_numpy(module.few_bias).astype(np.float64)
        self.alphas_ = l1_normalize(raw)
        # coef_ still holds the base weights; the neighbours are base classes, whose rows never change
        W = self.coef_
        few = np.flatnonzero(np.isin(self.classes_, self.few_classes_))
        neighbors = np.searchsorted(self.classes_, self.neighbors_)
        self.coef_[few] = W[few] + np.einsum("fk,fkd->fd", self.alphas_, W[neighbors])
        if self.learn_few_bias:
            self.intercept_[few] = few_bias

    def _logits(self, X):
        return X @ self.coef_.T + self.intercept_

    def __sklearn_tags__(self):
        return base_linear_tags(self, super().__sklearn_tags__())
