"""Balanced Training and Merging (BTM): few-shot balanced fine-tuning, weight averaging, classifier post-training."""

import numbers
import time
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ..base import ClassifierOutputMixin, fit_base_estimator, validate_classification_data
from ..metrics import geometric_mean_recall, get_scorer, harmonic_mean_recall
from ..neural_network._mlp import FLOAT32_SUBSET_REASON, MLPHeadClassifier
from ..torch._callbacks import warn_if_degenerate
from ..torch._device import draw_seed
from ..torch._heads import loss_tau
from ..utils import _param_constraints as pc
from ..utils._class_stats import class_indices
from ..utils._split import tail_safe_validation_split
from ..utils._tags import inherit_tags
from ._model_kinds import _FittedLogits, _kind_of

_MERGES = ("average", "greedy_soup")


class _HeldOut(NamedTuple):
    """The validation part every stage is scored on, and the greedy soup's scorer (None without a soup)."""

    X: np.ndarray
    y: np.ndarray
    soup_scorer: object


@validate_params(
    {
        "y": ["array-like"],
        "n_subsets": pc.EPOCHS,
        "n_per_class": pc.POSITIVE_INT,
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def draw_balanced_subsets(y, n_subsets, n_per_class, random_state=None):
    """Draw few-shot class-balanced subsets: ``min(n_c, n_per_class)`` samples of every class.

    Each subset is an independent draw without replacement inside each class
    (subsets overlap; a class with at most ``n_per_class`` samples appears
    whole in every subset), as in the BTM authors' code.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels.
    n_subsets : int
        Number of subsets.
    n_per_class : int
        Largest number of samples kept of each class.
    random_state : int, RandomState instance or None, default=None
        Makes the draws reproducible; successive subsets differ.

    Returns
    -------
    subsets : list of ndarray of int
        Sorted indices into ``y``, one array per subset.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.ensemble import draw_balanced_subsets
    >>> y = np.array([0] * 50 + [1] * 3)
    >>> subsets = draw_balanced_subsets(y, n_subsets=2, n_per_class=5, random_state=0)
    >>> [np.bincount(y[s]).tolist() for s in subsets]
    [[5, 3], [5, 3]]
    """
    y = np.asarray(y)
    rng = check_random_state(random_state)
    members = class_indices(y)
    subsets = []
    for _ in range(n_subsets):
        picked = [idx[rng.permutation(len(idx))[:n_per_class]] for idx in members]
        subsets.append(np.sort(np.concatenate(picked)).astype(np.intp))
    return subsets


class BalancedUndersampleMerger(ClassifierOutputMixin, ClassifierMixin, BaseEstimator):
    """Balanced Training and Merging (BTM): fine-tune on few-shot balanced subsets, average, post-train.

    Yu, Du and Wu's remedy for the worst-performing classes of a long-tailed
    classifier, as a meta-estimator:

    1. **pre-train** ``estimator`` on all data (or take a fitted one wrapped in
       :class:`sklearn.frozen.FrozenEstimator`); with ``fc_epochs > 0``, then
       the paper's **"FC" stage**: re-train only the final linear layer with
       cross-entropy on all data, for models whose pre-training already
       handled the imbalance;
    2. draw ``n_subsets`` few-shot **balanced subsets** keeping
       ``min(n_c, n_per_class)`` samples of each class;
    3. **fine-tune** a copy of the whole model on each subset (SGD with
       momentum 0.9, cosine schedule, small learning rate, cross-entropy);
    4. **merge** the fine-tuned copies by averaging every parameter and buffer
       (or by a greedy soup on a validation score), optionally re-estimating
       batch-norm statistics afterwards;
    5. **post-train** only the final linear layer on all data with a balanced
       strategy (by default class-balanced sampling with cross-entropy, the
       classifier re-training of the paper's decoupled stage 2), starting from
       the merged weights.

    The defaults are the paper's settings; the settings that measured better on
    the bundled data are options (``finetune_lr=0.02,
    finetune_batch_size="auto", post_train_loss="balanced_softmax",
    post_train_sampling="instance"``; see the user guide's departures table).
    The result is one model of the original size: no inference overhead.
    Merging differs from ensembling only through non-linear layers; for a
    linear model the merged logits are the average of the sub-models' logits.
    Every training stage is a bounded number of SGD epochs from the previous
    stage's weights, for scikit-learn linear models too (their ``coef_`` and
    ``intercept_`` are trained by the library's torch core, not refitted).

    Parameters
    ----------
    estimator : estimator, default=None
        The model to pre-train (cloned) or a pre-trained model in a
        ``FrozenEstimator``. Accepted: the library's torch estimators whose
        module ends in a linear layer, a skorch ``NeuralNetClassifier`` whose
        module returns the logits of a final ``nn.Linear``, or a
        scikit-learn linear classifier (``LinearClassifierMixin``: ``coef_``
        and ``intercept_``, e.g. ``LogisticRegression``; trained by SGD steps
        from its fitted weights). ``None`` means
        :class:`~sklearn_lt.neural_network.MLPHeadClassifier` (cross-entropy,
        instance sampling: a pre-training that does not handle imbalance, as
        the paper asks).
    n_subsets : int, default=10
        Number of balanced subsets and fine-tuned copies (paper: 10). ``0``
        skips fine-tuning and merging: the pre-trained model with
        post-training alone (the paper's baseline).
    n_per_class : int, default=10
        Samples kept of each class in a subset (paper: 10).
    finetune_epochs : int, default=30
        Epochs of fine-tuning on each subset (paper: 30).
    finetune_lr : float, default=5e-3
        Initial SGD learning rate of fine-tuning (paper: 5e-3 on CIFAR100-LT
        and Places-LT, 1e-3 on ImageNet-LT, 5e-4 on iNaturalist, for ResNets
        pre-trained by SGD at 0.1; the authors' configs say 0.1). ``0.02``
        with ``finetune_batch_size="auto"`` did better on validation splits
        of the bundled data for the MLP head.
    finetune_batch_size : int or "auto", default=256
        Batch size of fine-tuning (paper: 256). On a subset of a few hundred
        samples 256 is one or two steps per epoch. ``"auto"`` keeps the
        paper's number of steps on ImageNet-LT instead (10,000-sample subsets
        / 256 = 40 steps per epoch): ``clip(ceil(subset size / 40), 8, 256)``.
    finetune_mixup : float, default=0.0
        Mixup (Zhang et al.) of each fine-tuning batch with a shuffled copy of
        itself, mixing weights drawn from ``Beta(finetune_mixup,
        finetune_mixup)``; the authors' released code uses 0.2. ``0`` means no
        mixup (the paper's text does not mention it).
    weight_decay : float, default=5e-4
        SGD weight decay of fine-tuning and post-training (paper: 5e-4).
    merge : {"average", "greedy_soup"}, default="average"
        Uniform average of all fine-tuned models (paper), or Wortsman et al.'s
        greedy soup: add models in decreasing order of validation score,
        keeping one only if the soup's score does not drop (needs
        ``validation_fraction``).
    soup_scoring : str or callable, default="geometric_mean_recall"
        Scorer of the greedy soup (a name known to
        :func:`sklearn_lt.metrics.get_scorer` or a scorer callable).
    recalibrate_bn : bool, default=False
        Re-estimate batch-norm running statistics of the merged model on the
        training data (averaged statistics are not the statistics of the
        averaged weights). The authors' code does not; no effect on models
        without batch normalisation.
    post_train : bool, default=True
        Post-train the final linear layer of the merged model.
    post_train_epochs : int, default=10
        Epochs of post-training (paper: 10).
    post_train_lr : float, default=0.01
        Initial SGD learning rate of post-training.
    post_train_batch_size : int, default=128
        Batch size of post-training.
    post_train_loss : {"cross_entropy", "balanced_softmax", "logit_adjusted"}, default="cross_entropy"
        Loss of post-training (``logit_adjusted`` with ``tau=1``).
    post_train_sampling : {"class_balanced", "instance"}, default="class_balanced"
        Sampling of post-training. The default, cross-entropy with
        class-balanced sampling, is the classifier re-training of the paper's
        decoupled second stage (MiSLAS's label-aware smoothing and learned
        weight scaling are not implemented). ``post_train_loss="balanced_softmax",
        post_train_sampling="instance"`` is balanced in expectation; it is an
        option, measured in the user guide.
    fc_epochs : int, default=0
        Epochs of the paper's "FC" stage, run after pre-training: only the
        final linear layer is re-trained with cross-entropy and instance
        sampling on all (imbalanced) data, starting from its pre-trained
        weights (post-training's learning rate, batch size and weight decay).
        The paper runs it, for 10 epochs, only for models whose pre-training
        already handled the imbalance (PaCo, GPaCo, ...), so that balanced
        fine-tuning starts from a classifier that does not; ``0`` skips it
        (the paper's setting for imbalance-blind pre-training, such as the
        default model).
    validation_fraction : float, default=0.0
        Share of every class, in [0, 1) (see
        :func:`sklearn_lt.utils.tail_safe_validation_split`), held out from all
        training stages to score the pre-trained, fine-tuned, merged and final
        models and to build a greedy soup. ``0`` trains on all data and
        computes no scores (``0`` means "no validation split" in every
        estimator of the library).
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the subsets, fine-tuning and
        post-training, and the estimator's ``random_state`` when that is
        ``None``.
    verbose : int, default=0
        1 prints one line per stage; 2 also the skorch tables.

    Attributes
    ----------
    estimator_ : estimator
        The final model (merged, then post-trained), of the same type as the
        pre-trained one; ``predict`` uses it.
    pretrained_estimator_ : estimator
        The pre-trained model.
    fc_estimator_ : estimator or None
        The pre-trained model after the "FC" stage, the start of fine-tuning
        (``None`` when ``fc_epochs=0``).
    finetuned_estimators_ : list of estimators
        The ``n_subsets`` fine-tuned models.
    merged_estimator_ : estimator
        The merged model before post-training.
    subset_indices_ : list of ndarray of int
        Indices (into the ``X`` given to ``fit``) of each balanced subset.
    validation_indices_ : ndarray of int or None
        Indices of the held-out validation samples (``None`` without
        ``validation_fraction``).
    soup_ingredients_ : ndarray of int
        Which fine-tuned models the merged model averages.
    validation_scores_ : dict of lists or None
        ``{"model": [...], "harmonic_mean_recall": [...],
        "geometric_mean_recall": [...], "accuracy": [...],
        "balanced_accuracy": [...]}`` for the pre-trained model, the "FC"
        stage's model (``"fc"``, if run), each fine-tuned model, the merged and
        the final model (and ``soup_score``
        with a greedy soup), measured on the held-out split; ``None`` without
        ``validation_fraction``. ``pandas.DataFrame(validation_scores_)``
        gives the paper's Tables 12-15.
    finetune_histories_ : list of skorch.History
        Training history of each fine-tuning.
    fc_history_ : skorch.History or None
        Training history of the "FC" stage (``None`` when ``fc_epochs=0``).
    post_train_history_ : skorch.History or None
        Training history of post-training (``None`` when ``post_train=False``).
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Samples per class in ``y``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.

    See Also
    --------
    draw_balanced_subsets : the subset draw on its own.
    sklearn_lt.neural_network.MLPHeadClassifier : the default model.
    sklearn_lt.linear_model.LinearClassifier : cRT, i.e. ``n_subsets=0`` on a linear model.

    References
    ----------
    .. [1] H. Yu, Y. Du, J. Wu, "Reviving Undersampling for Long-tailed
       Learning", Pattern Recognition, 2025 (arXiv:2401.16811).
    .. [2] M. Wortsman et al., "Model soups: averaging weights of multiple
       fine-tuned models improves accuracy without increasing inference
       time", ICML 2022.

    Examples
    --------
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> from sklearn_lt.ensemble import BalancedUndersampleMerger
    >>> from sklearn_lt.neural_network import MLPHeadClassifier
    >>> X, X_test, y, y_test = make_long_tailed_classification(random_state=0)
    >>> btm = BalancedUndersampleMerger(
    ...     MLPHeadClassifier(hidden_layer_sizes=(64,)), n_subsets=3, validation_fraction=0.2, random_state=0
    ... ).fit(X, y)
    >>> len(btm.finetuned_estimators_), btm.validation_scores_["model"][-1]
    (3, 'final')
    >>> # on the balanced test set, better than the long-tailed pre-training it started from
    >>> bool(btm.score(X_test, y_test) > btm.pretrained_estimator_.score(X_test, y_test))
    True
    """

    _expected_failed_checks = {"check_methods_subset_invariance": FLOAT32_SUBSET_REASON}

    _test_params = {
        "estimator": MLPHeadClassifier(hidden_layer_sizes=(16,), max_epochs=10, batch_size=32, lr=0.01),
        "n_subsets": 2,
        "finetune_epochs": 2,
        "post_train_epochs": 2,
    }

    _parameter_constraints: dict = {
        "estimator": pc.BASE_ESTIMATOR,
        "n_subsets": pc.EPOCHS,
        "n_per_class": pc.POSITIVE_INT,
        "finetune_epochs": pc.EPOCHS,
        "finetune_lr": pc.NONNEGATIVE_REAL,
        "finetune_batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 2, None, closed="left")],
        "finetune_mixup": pc.NONNEGATIVE_REAL,
        "weight_decay": pc.NONNEGATIVE_REAL,
        "merge": [StrOptions(set(_MERGES))],
        "soup_scoring": [str, callable],
        "recalibrate_bn": ["boolean"],
        "post_train": ["boolean"],
        "post_train_epochs": pc.EPOCHS,
        "post_train_lr": pc.NONNEGATIVE_REAL,
        "post_train_batch_size": pc.POSITIVE_INT,
        "post_train_loss": pc.LOSSES,
        "post_train_sampling": pc.SAMPLINGS,
        "fc_epochs": pc.EPOCHS,
        "validation_fraction": pc.FRACTION,
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        n_subsets=10,
        n_per_class=10,
        finetune_epochs=30,
        finetune_lr=5e-3,
        finetune_batch_size=256,
        finetune_mixup=0.0,
        weight_decay=5e-4,
        merge="average",
        soup_scoring="geometric_mean_recall",
        recalibrate_bn=False,
        post_train=True,
        post_train_epochs=10,
        post_train_lr=0.01,
        post_train_batch_size=128,
        post_train_loss="cross_entropy",
        post_train_sampling="class_balanced",
        fc_epochs=0,
        validation_fraction=0.0,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.n_subsets = n_subsets
        self.n_per_class = n_per_class
        self.finetune_epochs = finetune_epochs
        self.finetune_lr = finetune_lr
        self.finetune_batch_size = finetune_batch_size
        self.finetune_mixup = finetune_mixup
        self.weight_decay = weight_decay
        self.merge = merge
        self.soup_scoring = soup_scoring
        self.recalibrate_bn = recalibrate_bn
        self.post_train = post_train
        self.post_train_epochs = post_train_epochs
        self.post_train_lr = post_train_lr
        self.post_train_batch_size = post_train_batch_size
        self.post_train_loss = post_train_loss
        self.post_train_sampling = post_train_sampling
        self.fc_epochs = fc_epochs
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    def _finetune_batch_size(self, n):
        if self.finetune_batch_size == "auto":
            # the paper's number of steps: 40 per epoch (ImageNet-LT: 1,000 classes x 10 samples / 256)
            return int(np.clip(-(-n // 40), 8, 256))
        return self.finetune_batch_size

    def _log(self, message):
        if self.verbose:
            print(f"[BalancedUndersampleMerger] {message}", flush=True)

    def _pretrain(self, X, y_labels, y, rng):
        # a frozen model draws no seed; any other draws one, used or not, so the random stream stays the same
        seed = None if isinstance(self.estimator, FrozenEstimator) else draw_seed(rng)
        model = fit_base_estimator(
            self,
            X,
            y if self._kind.encoded_targets else y_labels,
            default=MLPHeadClassifier(random_state=seed),
            random_state=seed,
            role="pre-trained estimator",
            encoded_ok=self._kind.encoded_targets,
        )
        return model.estimator if isinstance(model, FrozenEstimator) else model

    def _scores(self, name, model, validation):
        X_val, y_val = validation.X, validation.y
        y_pred = self.classes_[np.argmax(self._kind.logits(model, X_val), axis=1)]
        scores = self.validation_scores_
        scores["model"].append(name)
        scores["harmonic_mean_recall"].append(harmonic_mean_recall(y_val, y_pred))
        scores["geometric_mean_recall"].append(geometric_mean_recall(y_val, y_pred))
        scores["accuracy"].append(accuracy_score(y_val, y_pred))
        with warnings.catch_warnings():
            # a tail class may have no validation sample, yet be predicted
            warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
            scores["balanced_accuracy"].append(balanced_accuracy_score(y_val, y_pred))
        if "soup_score" in scores:
            scores["soup_score"].append(self._soup_score(model, validation))

    def _soup_score(self, model, validation):
        snapshot = _FittedLogits(self._kind, model, self.classes_, self.n_features_in_)._prepare()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
            return float(validation.soup_scorer(snapshot, validation.X, validation.y))

    def _merge(self, models, X_train, validation):
        def merged(indices):
            model = self._kind.merge([models[i] for i in indices])
            return self._kind.recalibrate(model, X_train) if self.recalibrate_bn else model

        if self.merge == "average":
            return merged(range(len(models))), np.arange(len(models))
        individual = np.asarray(self.validation_scores_["soup_score"][1 : 1 + len(models)])
        order = np.argsort(-individual, kind="stable")
        ingredients, best = [order[0]], individual[order[0]]
        for i in order[1:]:
            score = self._soup_score(merged(ingredients + [i]), validation)
            if score >= best:
                ingredients.append(i)
                best = score
        self._log(f"greedy soup of {len(ingredients)}/{len(models)} models, {self.soup_scoring} {best:.4f}")
        return merged(ingredients), np.sort(np.asarray(ingredients, dtype=np.intp))

    def _split_validation(self, X, y_all, y_labels_all, soup_scorer, rng):
        """Hold out ``validation_fraction`` (unless 0) and start the per-stage score table."""
        if not self.validation_fraction:
            self.validation_scores_ = self.validation_indices_ = None
            return np.arange(len(y_all)), None
        train_idx, val_idx = tail_safe_validation_split(y_all, self.validation_fraction, random_state=draw_seed(rng))
        self.validation_indices_ = val_idx
        keys = ("model", "harmonic_mean_recall", "geometric_mean_recall", "accuracy", "balanced_accuracy")
        self.validation_scores_ = {key: [] for key in keys}
        if self.merge == "greedy_soup":
            self.validation_scores_["soup_score"] = []
        return train_idx, _HeldOut(X[val_idx], y_labels_all[val_idx], soup_scorer)

    def _post_train_params(self, train_counts):
        """The settings shared by the "FC" stage and the post-training stage."""
        return {
            "class_counts": train_counts,
            "lr": self.post_train_lr,
            "batch_size": self.post_train_batch_size,
            "weight_decay": self.weight_decay,
            "verbose": max(0, self.verbose - 1),
        }

    def _fc_stage(self, X_train, y_train, train_counts, validation, rng):
        """The paper's "FC" stage: a classifier that does not handle the imbalance, for BTM to balance."""
        self.fc_estimator_ = self.fc_history_ = None
        if not self.fc_epochs:
            return self.pretrained_estimator_
        tic = time.perf_counter()
        self.fc_estimator_, self.fc_history_ = self._kind.post_train(
            self.pretrained_estimator_, X_train, y_train, loss_tau=0.0, sampling="instance", epochs=self.fc_epochs,
            seed=draw_seed(rng), **self._post_train_params(train_counts),
        )
        self._log(f"FC stage: re-trained the final linear layer with cross-entropy in "
                  f"{time.perf_counter() - tic:.1f} s")
        if validation is not None:
            self._scores("fc", self.fc_estimator_, validation)
        return self.fc_estimator_

    def _finetune_subsets(self, start, X_train, y_train, y_labels, train_idx, validation, rng):
        """Draw the balanced subsets and fine-tune a copy of ``start`` on each."""
        subsets = draw_balanced_subsets(y_train, self.n_subsets, self.n_per_class, random_state=rng)
        self.subset_indices_ = [train_idx[s] for s in subsets]
        self.finetuned_estimators_, self.finetune_histories_ = [], []
        for i, subset in enumerate(subsets):
            tic = time.perf_counter()
            model, history = self._kind.finetune(
                start,
                X_train[subset],
                y_train[subset],
                y_labels[subset],
                epochs=self.finetune_epochs,
                lr=self.finetune_lr,
                batch_size=self._finetune_batch_size(len(subset)),
                weight_decay=self.weight_decay,
                mixup=self.finetune_mixup,
                seed=draw_seed(rng),
                verbose=max(0, self.verbose - 1),
            )
            self.finetuned_estimators_.append(model)
            self.finetune_histories_.append(history)
            self._log(f"fine-tuned on subset {i + 1}/{len(subsets)} ({len(subset)} samples) "
                      f"in {time.perf_counter() - tic:.1f} s")
            if validation is not None:
                self._scores(f"finetuned_{i}", model, validation)

    def _merge_stage(self, start, X_train, validation):
        """Merge the fine-tuned models (``start`` itself when there are none)."""
        if self.finetuned_estimators_:
            self.merged_estimator_, self.soup_ingredients_ = self._merge(
                self.finetuned_estimators_, X_train, validation
            )
        else:
            self.merged_estimator_, self.soup_ingredients_ = start, np.array([], dtype=np.intp)
        if validation is not None:
            self._scores("merged", self.merged_estimator_, validation)

    def _post_train_stage(self, X_train, y_train, train_counts, post_tau, validation, rng):
        """Re-train the merged model's final linear layer with the balancing loss and sampling."""
        self.post_train_history_ = None
        if not self.post_train:
            self.estimator_ = self.merged_estimator_
            return
        tic = time.perf_counter()
        self.estimator_, self.post_train_history_ = self._kind.post_train(
            self.merged_estimator_,
            X_train,
            y_train,
            loss_tau=post_tau,
            sampling=self.post_train_sampling,
            epochs=self.post_train_epochs,
            seed=draw_seed(rng),
            **self._post_train_params(train_counts),
        )
        self._log(f"post-trained the final linear layer in {time.perf_counter() - tic:.1f} s")
        if validation is not None:
            self._scores("final", self.estimator_, validation)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Pre-train, fine-tune on balanced subsets, merge and post-train.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Class labels of any hashable type.

        Returns
        -------
        self : object
            The fitted meta-estimator.
        """
        X, y_all, _ = validate_classification_data(self, X, y)
        post_tau = loss_tau(self.post_train_loss, 1.0)
        soup_scorer = None
        if self.merge == "greedy_soup":
            if not self.validation_fraction:
                raise ValueError(
                    "merge='greedy_soup' scores candidate soups on held-out data: set validation_fraction "
                    "(e.g. 0.1), or use merge='average'."
                )
            soup_scorer = get_scorer(self.soup_scoring)
        self._kind = _kind_of(MLPHeadClassifier() if self.estimator is None else self.estimator)
        rng = check_random_state(self.random_state)
        y_labels_all = self.classes_[y_all]

        train_idx, validation = self._split_validation(X, y_all, y_labels_all, soup_scorer, rng)
        X_train, y_train, y_labels = X[train_idx], y_all[train_idx], y_labels_all[train_idx]
        train_counts = np.bincount(y_train, minlength=len(self.classes_))

        tic = time.perf_counter()
        self.pretrained_estimator_ = self._pretrain(X_train, y_labels, y_train, rng)
        self._kind.check(self.pretrained_estimator_, X_train, len(self.classes_))
        self._log(f"pre-trained {type(self.pretrained_estimator_).__name__} in {time.perf_counter() - tic:.1f} s")
        if validation is not None:
            self._scores("pretrained", self.pretrained_estimator_, validation)

        start = self._fc_stage(X_train, y_train, train_counts, validation, rng)
        self._finetune_subsets(start, X_train, y_train, y_labels, train_idx, validation, rng)
        self._merge_stage(start, X_train, validation)
        self._post_train_stage(X_train, y_train, train_counts, post_tau, validation, rng)
        warn_if_degenerate(self, X, y_all, stacklevel=4)
        return self

    def _logits(self, X):
        return self._kind.logits(self.estimator_, X)

    def __sklearn_tags__(self):
        estimator = MLPHeadClassifier() if self.estimator is None else self.estimator
        return inherit_tags(super().__sklearn_tags__(), estimator)

