"""Learned Nearest-Class-Mean and Multi-NCM (Sharma et al., "Learned Nearest-Class-Mean for biased
representations in long-tailed recognition")."""

import numpy as np
import torch
from sklearn.utils._param_validation import StrOptions
from skorch.callbacks import EpochScoring

from ..base import fit_base_estimator
from ..torch._base import BaseTorchClassifier
from ..torch._callbacks import GradientValueClipping, KeepBestEpoch, validation_balanced_accuracy
from ..torch._losses import LogitAdjustedLoss
from ..torch._net import as_numpy, make_train_sampler, train_module
from ..utils import _param_constraints as pc
from ..utils._class_stats import class_means
from ..utils._split import split_off_validation
from ..utils._tags import inherit_tags
from ._distances import MultiNCMModule, NCMModule, _min_half_distances

_LR_SCHEDULES = ("cosine", "constant")
_CLIPS = ("value", "norm")

# the training parameters LearnedNCM and MultiNCM share
_TRAINING_CONSTRAINTS = {
    "tau": pc.NONNEGATIVE_REAL,
    "max_epochs": pc.EPOCHS,
    "batch_size": pc.POSITIVE_INT,
    "lr": pc.NONNEGATIVE_REAL,
    "momentum": pc.MOMENTUM,
    "grad_clip": pc.POSITIVE_REAL + [None],
    "clip": [StrOptions(set(_CLIPS))],
    "lr_schedule": [StrOptions(set(_LR_SCHEDULES))],
    "validation_fraction": pc.FRACTION,
    "sampling": pc.SAMPLINGS,
    "callbacks": pc.CALLBACKS,
    **pc.TORCH_COMMON,
}

#: ``feature_scale="auto"`` rescales the features so that the median distance of
#: a training sample to its class mean becomes this many units (see LearnedNCM).
AUTO_MEDIAN_DISTANCE = 20.0
# squared distances below (this * median distance)**2 count as zero: no gradient
_RELATIVE_DISTANCE_FLOOR = 1e-6


# --------------------------------------------------------------------------------------
# numpy side: statistics of the data and float64 prediction
# --------------------------------------------------------------------------------------


def _median_distance(X, y, centroids, sample_weight, chunk=8192):
    """Median distance of a training sample to its class mean (zero distances ignored)."""
    keep = np.ones(len(y), dtype=bool) if sample_weight is None else np.asarray(sample_weight) > 0
    dist = np.concatenate(
        [
            np.linalg.norm(np.asarray(X[s : s + chunk], dtype=np.float64)[keep[s : s + chunk]]
                           - centroids[y[s : s + chunk][keep[s : s + chunk]]], axis=1)
            for s in range(0, len(y), chunk)
        ]
    )
    dist = dist[dist > 0]
    if dist.size:
        return float(np.median(dist))
    # every class collapsed to its mean: fall back on the spread of the means themselves
    spread = np.linalg.norm(centroids - centroids.mean(0), axis=1)
    spread = spread[spread > 0]
    return float(np.median(spread)) if spread.size else 1.0


# --------------------------------------------------------------------------------------
# the unit of distance shared by both estimators
# --------------------------------------------------------------------------------------


def _resolve_scale(feature_scale, median_distance):
    # "auto" or a positive number: _parameter_constraints checked it
    if isinstance(feature_scale, str):
        return median_distance / AUTO_MEDIAN_DISTANCE
    return float(feature_scale)


def _eps(median_distance, scale):
    """Floor of the squared scaled distance: far below any real distance, far above 0."""
    return max((_RELATIVE_DISTANCE_FLOOR * median_distance / scale) ** 2, 1e-30)


class _TrainingMixin:
    # the parameters of the paper's model (the centroids, the displacements): what clip="value" clips
    _clipped_parameters = ()

    def _train(self, module, X, y, sample_weight, generator, optimizer_kwargs, valid_data=None):
        callbacks = []
        grad_clip = None
        if self.grad_clip is not None and self.clip == "norm":
            grad_clip = self.grad_clip
        elif self.grad_clip is not None:
            callbacks.append(("grad_clip", GradientValueClipping(float(self.grad_clip), self._clipped_parameters)))
        if valid_data is not None:
            # the authors keep the epoch with the best validation accuracy
            callbacks += [
                ("valid_score", EpochScoring(validation_balanced_accuracy, lower_is_better=False, name="valid_score")),
                ("keep_best", KeepBestEpoch("valid_score", min_epochs=1)),
            ]
        net = train_module(
            module,
            LogitAdjustedLoss(self.class_counts_, tau=float(self.tau)),
            X,
            y,
            sample_weight=sample_weight,
            sampler=make_train_sampler(y, sampling=self.sampling, batch_size=self.batch_size, generator=generator),
            max_epochs=self.max_epochs,
            optimizer="sgd",
            lr=float(self.lr),
            optimizer_kwargs={"momentum": float(self.momentum), **optimizer_kwargs},
            lr_schedule=self.lr_schedule,
            grad_clip=grad_clip,
            callbacks=callbacks + list(self.callbacks or []),
            valid_data=valid_data,
            device=self.device_,
            verbose=self.verbose,
        )
        self.best_epoch_ = self.max_epochs or None
        if valid_data is not None:
            self.best_epoch_ = dict(net.callbacks_)["keep_best"].best_epoch_
        return net


# --------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------


class LearnedNCM(_TrainingMixin, BaseTorchClassifier):
    """Nearest-class-mean classifier whose class centroids are learned with a logit-adjusted loss.

    Starts from the empirical class means (so ``max_epochs=0`` is exactly
    :class:`sklearn.neighbors.NearestCentroid`) and moves them to minimise the
    cross-entropy of the logits ``-0.5 * ||x - mu_y||_2`` (Euclidean distance,
    not squared: its gradient with respect to a centroid has norm at most
    0.5 per sample, which keeps large steps stable) with the logit adjustment
    ``+ tau * log N_y`` during training, under class-balanced sampling
    (Sharma et al.). Prediction is the plain nearest learned centroid,
    without adjustment. Learning the centroids corrects the estimation error
    of the tail means, and the adjustment gives the tail classes a larger
    margin.

    The distance is measured in units of ``feature_scale_``: the model is
    ``-0.5 * ||(x - mu_y) / T|| / feature_scale_``. With the default
    ``feature_scale="auto"`` the features are, in effect, rescaled so that
    the median distance of a training sample to its class mean is
    ``20`` units, which makes training (step sizes, softmax sharpness, the
    weight of the logit adjustment) identical for ``X`` and ``c * X``; the
    learning rate 5 and ``tau=1/8`` are then in those units, and are the
    paper's values only in raw units. ``feature_scale=1.0`` is the paper's
    model on raw features.

    Read more in the :ref:`User Guide <learned_ncm>`.

    Parameters
    ----------
    tau : float, default=0.125
        Logit-adjustment strength in training (``logit_y + tau * log N_y``);
        ``0`` is plain cross-entropy. Larger values favour the few-shot
        classes at the expense of the many-shot ones. The paper's ``1/8``
        is a value for logits in raw feature units: the adjustment competes
        with ``-0.5 * ||x - mu_y||``, so with ``feature_scale="auto"`` the
        same ``tau`` weighs as much as the paper's only where its features
        happen to have a median within-class distance of about 20.
    max_epochs : int, default=30
        Passes of ``n_samples`` draws each; ``0`` keeps the empirical means.
    batch_size : int, default=256
        Draws per SGD step.
    lr : float, default=5.0
        SGD learning rate, in units of ``feature_scale_``. The paper's 5 is
        a step in raw feature units (the gradient of the distance is a unit
        vector): it is the paper's value only with ``feature_scale=1.0``.
    momentum : float, default=0.9
        SGD momentum (paper: 0.9).
    grad_clip : float or None, default=0.1
        Clipping threshold (paper: "gradient clipping above 0.1"); None turns
        clipping off. The gradient of the batch-mean loss is bounded (each
        sample moves a centroid by at most a half unit vector) and at the
        defaults stays far below 0.1: on the bundled data (letter, icd10cm)
        no step is clipped, so the default fit equals ``grad_clip=None``.
        It acts with a smaller threshold, or with ``clip="norm"`` and
        ``learn_temperature=True``, whose temperature gradient exceeds 0.1
        (on letter, at every step).
    clip : {"value", "norm"}, default="value"
        ``"value"`` clamps each entry of the centroid gradient to
        ``[-grad_clip, grad_clip]`` (``torch.nn.utils.clip_grad_value_``, the
        authors' later code, where the line is present but commented out;
        the paper's wording fits it); ``"norm"`` rescales the whole gradient
        (centroids and temperatures) to norm at most ``grad_clip`` (skorch's
        ``GradientNormClipping``).
    lr_schedule : {"constant", "cosine"}, default="constant"
        A constant rate (the authors' code, which creates a cosine scheduler
        but does not step it; the paper names no schedule) or cosine
        annealing to 0 over ``max_epochs``. On validation splits of the
        training data of three data sets (``benchmarks/select_ncm_defaults.py``)
        the constant rate is about one point better overall (8 of 9 draws).
    feature_scale : "auto" or float, default="auto"
        Unit of distance: ``"auto"`` is the median distance of a training
        sample to its class mean divided by 20 (chosen on wordnet draws and
        re-checked on validation splits of the training data of three data
        sets by ``benchmarks/select_ncm_defaults.py``: 20 to 40 are best);
        a number fixes it (``1.0``: raw feature units, where ``lr=5`` and
        ``tau=1/8`` are the paper's values).
    sampling : {"class_balanced", "instance"}, default="class_balanced"
        How training batches are drawn: each class equally likely per draw
        (paper), or shuffled passes over the data.
    learn_temperature : bool, default=False
        Learn a per-feature temperature ``T`` (initialised to 1), as in the
        authors' later code: ``-0.5 * ||(x - mu_y) / T||``.
    temperature_lr : float, default=0.005
        Learning rate of the temperatures (authors' code: 0.005).
    callbacks : list of skorch callbacks, default=None
        Extra callbacks for the skorch net.
    validation_fraction : float, default=0.0
        Share of each class held out (tail-safe: a class keeps at least one
        training sample; :func:`~sklearn_lt.utils.tail_safe_validation_split`).
        The centroids are learned on the rest, and the epoch with the best
        balanced accuracy on the held-out part is kept, as the authors' code
        keeps the best validation epoch; the held-out part is also scored
        every epoch as skorch's ``valid_loss``, which callbacks such as
        ``EarlyStopping`` monitor. The paper does not mention model
        selection, so ``0`` (train on everything, keep the last epoch) is the
        default; a ``valid_*``-monitoring callback then raises a clear error
        asking for a fraction.
    device : str, default="auto"
        ``"auto"`` (CUDA if available, else CPU) or a torch device string.
    random_state : int, RandomState instance or None, default=None
        Seeds the sampling; an int makes CPU fits bit-reproducible.
    verbose : int, default=0
        1 prints skorch's per-epoch table.

    Attributes
    ----------
    centroids_ : ndarray of shape (n_classes, n_features)
        Learned centroids, in feature units.
    empirical_centroids_ : ndarray of shape (n_classes, n_features)
        Class means of the training data (weighted by ``sample_weight``), the
        starting point.
    feature_scale_ : float
        Unit of distance of the logits.
    temperature_ : ndarray of shape (n_features,) or None
        Learned per-feature temperatures (``None`` unless ``learn_temperature``).
    best_epoch_ : int or None
        Epoch (1-based) whose centroids were kept: ``max_epochs`` without
        ``validation_fraction``; None when no epoch ran.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Training samples per class (the ``N_y`` of the adjustment).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.
    device_ : str
        Device the model was trained on.
    net_ : skorch.NeuralNet
        The fitted net; ``net_.module_`` computes the training logits.
    history_ : skorch.History
        Per-epoch training history.

    See Also
    --------
    MultiNCM : several shared displacements around the learned centroids.
    sklearn.neighbors.NearestCentroid : the unlearned classifier (``max_epochs=0``).
    intra_class_variance : the representation-bias diagnostic of the paper.

    References
    ----------
    .. [1] S. Sharma, Y. Xian, N. Yu, A. Singh, "Learned Nearest-Class-Mean for
       Biased Representations in Long-Tailed Recognition", ICLR 2022 submission
       (later "Learning Prototype Classifiers for Long-Tailed Recognition",
       IJCAI 2023).

    Examples
    --------
    >>> from sklearn.neighbors import NearestCentroid
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> from sklearn_lt.prototypes import LearnedNCM
    >>> X, X_test, y, y_test = make_long_tailed_classification(random_state=0)
    >>> ncm = LearnedNCM(max_epochs=0).fit(X, y)
    >>> bool((ncm.predict(X_test) == NearestCentroid().fit(X, y).predict(X_test)).all())
    True
    >>> clf = LearnedNCM(random_state=0).fit(X, y)
    >>> clf.centroids_.shape
    (10, 16)
    >>> clf.score(X_test, y_test) > 0.5
    True
    """

    _test_params = {"max_epochs": 2, "batch_size": 32}

    _parameter_constraints: dict = {
        **_TRAINING_CONSTRAINTS,
        "feature_scale": [StrOptions({"auto"}), *pc.POSITIVE_REAL],
        "learn_temperature": ["boolean"],
        "temperature_lr": pc.NONNEGATIVE_REAL,
        "validation_fraction": pc.FRACTION,
    }

    def __init__(
        self,
        *,
        tau=0.125,
        max_epochs=30,
        batch_size=256,
        lr=5.0,
        momentum=0.9,
        grad_clip=0.1,
        clip="value",
        lr_schedule="constant",
        feature_scale="auto",
        sampling="class_balanced",
        learn_temperature=False,
        temperature_lr=0.005,
        callbacks=None,
        validation_fraction=0.0,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.tau = tau
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.grad_clip = grad_clip
        self.clip = clip
        self.lr_schedule = lr_schedule
        self.feature_scale = feature_scale
        self.sampling = sampling
        self.learn_temperature = learn_temperature
        self.temperature_lr = temperature_lr
        self.callbacks = callbacks
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    _clipped_parameters = ("shift",)

    def _fit_net(self, X, y, sample_weight, generator):
        # held out before the centroids start at the class means: validation data stays unseen
        (X, y, sample_weight), valid_data = split_off_validation(
            X, y, sample_weight, self.validation_fraction, generator
        )
        self.empirical_centroids_ = class_means(X, y, len(self.classes_), sample_weight)
        median = _median_distance(X, y, self.empirical_centroids_, sample_weight)
        self.feature_scale_ = _resolve_scale(self.feature_scale, median)
        module = NCMModule(
            self.empirical_centroids_,
            self.feature_scale_,
            _eps(median, self.feature_scale_),
            learn_temperature=bool(self.learn_temperature),
        )
        extra = {}
        if self.learn_temperature:
            extra["param_groups"] = [("temperature", {"lr": float(self.temperature_lr)})]
        return self._train(module, X, y, sample_weight, generator, extra, valid_data)

    def _after_fit(self):
        module = self.net_.module_
        shift = as_numpy(module.shift).astype(np.float64)
        self.centroids_ = self.empirical_centroids_ + shift * self.feature_scale_
        self.temperature_ = None
        if module.temperature is not None:
            self.temperature_ = as_numpy(module.temperature.clamp_min(1e-3)).astype(np.float64)

    def _logits(self, X):
        return _min_half_distances(X, self.centroids_, self.feature_scale_, self.temperature_)


class MultiNCM(_TrainingMixin, BaseTorchClassifier):
    """Multi-NCM: frozen learned centroids plus shared learned displacements (several centroids per class).

    Each class ``y`` gets the centroids ``mu_y + delta_i`` for ``i = 0..K``,
    where ``mu_y`` are the (frozen) centroids of a :class:`LearnedNCM`,
    ``delta_0 = 0`` is fixed (so the learned-NCM centroid is always one of
    them) and ``delta_1..delta_K`` are shared by all classes and learned with
    the same logit-adjusted loss, on ``d_y(x) = min_i ||x - (mu_y + delta_i)||``
    (Sharma et al., Sec. 4.4). Sharing the displacements keeps the model
    small and imposes a common geometry around every class.

    The paper does not say how the displacements start. All at zero they tie
    with the null displacement, the minimum sends the gradient to one of them
    and none ever moves, so they start small and random:
    ``||delta_i|| ~ displacement_init x`` the median distance of a sample to
    its class mean.

    Read more in the :ref:`User Guide <learned_ncm>`.

    Parameters
    ----------
    estimator : estimator with ``centroids_``, default=None
        Gives the frozen centroids (and its ``feature_scale_`` and
        ``temperature_`` when it has them). Cloned and fitted in ``fit``;
        ``None`` means ``LearnedNCM(tau=tau)``; an unset ``random_state`` of
        the estimator is set to this one's. Wrap a fitted model in
        :class:`sklearn.frozen.FrozenEstimator` to reuse it without refitting.
        :class:`sklearn.neighbors.NearestCentroid` works too (empirical means).
    n_displacements : int, default=20
        Learned displacements ``K``, besides the fixed null one (paper: 20).
    displacement_init : float, default=0.01
        Initial length of the displacements relative to the median
        within-class distance; must be > 0 when ``max_epochs > 0``.
    tau : float, default=0.125
        Logit-adjustment strength in training (also given to the default
        ``estimator``).
    max_epochs : int, default=30
        Epochs of displacement learning.
    batch_size : int, default=256
        Draws per SGD step.
    lr : float, default=5.0
        SGD learning rate, in units of ``feature_scale_`` (the paper's 5 is
        in raw feature units, see :class:`LearnedNCM`).
    momentum : float, default=0.9
        SGD momentum.
    grad_clip : float or None, default=0.1
        Clipping threshold (paper: 0.1); inactive at the defaults on the
        bundled data, see :class:`LearnedNCM`.
    clip : {"value", "norm"}, default="value"
        Clamp each entry of the displacement gradient, or rescale the whole
        gradient's norm.
    lr_schedule : {"constant", "cosine"}, default="constant"
        Learning-rate schedule (the paper uses Learned NCM's optimiser, see
        :class:`LearnedNCM`).
    sampling : {"class_balanced", "instance"}, default="class_balanced"
        How training batches are drawn.
    callbacks : list of skorch callbacks, default=None
        Extra callbacks for the skorch net.
    validation_fraction : float, default=0.0
        Hold out this share of each class, fit ``estimator`` and the
        displacements on the rest, and keep the displacement epoch with the
        best balanced accuracy on the held-out part (see
        :class:`LearnedNCM`; off by default, the paper is silent).
    device : str, default="auto"
        ``"auto"`` or a torch device string.
    random_state : int, RandomState instance or None, default=None
        Seeds the default estimator, the initial displacements and the sampling.
    verbose : int, default=0
        1 prints skorch's per-epoch table.

    Attributes
    ----------
    estimator_ : estimator
        The fitted estimator that gave the centroids.
    centroids_ : ndarray of shape (n_classes, n_features)
        Frozen centroids ``mu_y``, in feature units.
    displacements_ : ndarray of shape (n_displacements, n_features)
        Learned displacements ``delta_1..delta_K`` (the null one is implicit).
    feature_scale_ : float
        Unit of distance (the estimator's, or chosen as in ``LearnedNCM``).
    temperature_ : ndarray of shape (n_features,) or None
        Per-feature temperatures taken from the estimator, if any.
    best_epoch_ : int or None
        Displacement epoch kept (``max_epochs`` without
        ``validation_fraction``).
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Training samples per class.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.
    device_ : str
        Training device.
    net_ : skorch.NeuralNet
        The fitted net.
    history_ : skorch.History
        Per-epoch training history.

    See Also
    --------
    LearnedNCM : one learned centroid per class (gives the centroids here).

    References
    ----------
    .. [1] S. Sharma, Y. Xian, N. Yu, A. Singh, "Learned Nearest-Class-Mean for
       Biased Representations in Long-Tailed Recognition", ICLR 2022 submission.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> from sklearn_lt.prototypes import MultiNCM
    >>> X, X_test, y, y_test = make_long_tailed_classification(random_state=0)
    >>> clf = MultiNCM(n_displacements=5, random_state=0).fit(X, y)
    >>> clf.displacements_.shape
    (5, 16)
    >>> clf.score(X_test, y_test) > 0.5
    True
    """

    _test_params = {"max_epochs": 2, "batch_size": 32, "n_displacements": 3, "estimator": LearnedNCM(max_epochs=2)}

    _parameter_constraints: dict = {
        **_TRAINING_CONSTRAINTS,
        "estimator": pc.BASE_ESTIMATOR,
        "n_displacements": pc.EPOCHS,
        "displacement_init": pc.NONNEGATIVE_REAL,
    }

    def __init__(
        self,
        estimator=None,
        *,
        n_displacements=20,
        displacement_init=0.01,
        tau=0.125,
        max_epochs=30,
        batch_size=256,
        lr=5.0,
        momentum=0.9,
        grad_clip=0.1,
        clip="value",
        lr_schedule="constant",
        sampling="class_balanced",
        callbacks=None,
        validation_fraction=0.0,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.n_displacements = n_displacements
        self.displacement_init = displacement_init
        self.tau = tau
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.grad_clip = grad_clip
        self.clip = clip
        self.lr_schedule = lr_schedule
        self.sampling = sampling
        self.callbacks = callbacks
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit_base(self, X, y, sample_weight):
        base = fit_base_estimator(
            self,
            X,
            self.classes_[y],
            sample_weight,
            default=LearnedNCM(tau=self.tau, random_state=self.random_state, device=self.device),
            random_state=self.random_state,
            role="estimator",
            needs=("centroids_", "a nearest-centroid model such as LearnedNCM or sklearn.neighbors.NearestCentroid"),
        )
        n_features = np.asarray(base.centroids_).shape[1]
        if n_features != X.shape[1]:
            raise ValueError(
                f"the estimator {type(base).__name__} has centroids of {n_features} features but X has "
                f"{X.shape[1]} features; a frozen estimator must have been fitted on the same features."
            )
        return base

    _clipped_parameters = ("displacements",)

    def _fit_net(self, X, y, sample_weight, generator):
        if self.displacement_init == 0 and self.max_epochs > 0 and self.n_displacements > 0:
            raise ValueError(
                "displacement_init=0 with max_epochs > 0: displacements that all start at zero tie with the "
                "null displacement, get no gradient and never move. Use a small positive value (default 0.01)."
            )
        (X, y, sample_weight), valid_data = split_off_validation(
            X, y, sample_weight, self.validation_fraction, generator
        )
        self.estimator_ = self._fit_base(X, y, sample_weight)
        self.centroids_ = np.asarray(self.estimator_.centroids_, dtype=np.float64)
        temperature = getattr(self.estimator_, "temperature_", None)
        self.temperature_ = None if temperature is None else np.asarray(temperature, dtype=np.float64)
        empirical = class_means(X, y, len(self.classes_), sample_weight)
        median = _median_distance(X, y, empirical, sample_weight)
        scale = getattr(self.estimator_, "feature_scale_", None)
        self.feature_scale_ = float(scale) if scale is not None else median / AUTO_MEDIAN_DISTANCE
        n_features = X.shape[1]
        init = torch.randn(self.n_displacements, n_features, generator=generator, dtype=torch.float64)
        init *= float(self.displacement_init) * median / np.sqrt(n_features)
        module = MultiNCMModule(
            self.centroids_, init.numpy(), self.feature_scale_, _eps(median, self.feature_scale_), self.temperature_
        )
        return self._train(module, X, y, sample_weight, generator, {}, valid_data)

    def _after_fit(self):
        module = self.net_.module_
        t = 1.0 if self.temperature_ is None else self.temperature_
        self.displacements_ = as_numpy(module.displacements).astype(np.float64) * (self.feature_scale_ * t)

    def _logits(self, X):
        return _min_half_distances(
            X, self.centroids_, self.feature_scale_, self.temperature_, displacements=self.displacements_
        )

    def __sklearn_tags__(self):
        return inherit_tags(super().__sklearn_tags__(), LearnedNCM() if self.estimator is None else self.estimator)
