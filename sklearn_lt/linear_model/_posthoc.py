"""Post-hoc corrections of a fitted linear classifier: tau-normalisation and LWS (Kang et al.)."""

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import StrOptions

from ..base import ClassifierOutputMixin, fit_base_estimator, validate_classification_data
from ..torch._base import BaseTorchClassifier
from ..torch._callbacks import warn_if_degenerate
from ..torch._lbfgs import LBFGS_DTYPES, train_full_batch
from ..torch._losses import LogitAdjustedLoss
from ..torch._net import as_numpy, make_train_sampler, train_module
from ..utils import _param_constraints as pc
from ..utils._tags import inherit_tags
from ._linear import SOLVERS, balanced_sample_weight, exact_sample_weight
from ._utils import linear_weights


def fit_base_linear(meta, X, y, sample_weight=None, *, default=None, random_state="meta"):
    """Clone and fit ``meta.estimator`` (default: a :class:`LinearClassifier`) and read its weights.

    Wrap an already fitted model in :class:`sklearn.frozen.FrozenEstimator` to
    correct it without refitting. ``default`` is the (unfitted) estimator used
    when ``meta.estimator`` is None; None means ``LinearClassifier`` seeded with
    ``random_state``. A user's estimator whose ``random_state`` is None gets
    ``random_state`` too (as in scikit-learn's meta-estimators), so that the
    meta-estimator's ``random_state`` makes the whole fit reproducible;
    ``"meta"`` means ``meta.random_state``.
    """
    from ._linear import LinearClassifier

    if isinstance(random_state, str) and random_state == "meta":
        random_state = getattr(meta, "random_state", None)
    if default is None:
        default = LinearClassifier(random_state=random_state)
    base = fit_base_estimator(meta, X, y, sample_weight, default=default, random_state=random_state)
    W, b = linear_weights(base)
    if W.shape[1] != X.shape[1]:
        # a frozen base fitted on other features would otherwise fail only at predict
        raise ValueError(
            f"the base estimator {type(base).__name__} has {W.shape[1]} features per weight row but X has "
            f"{X.shape[1]} features; a frozen estimator must have been fitted on the same features."
        )
    return base, W, b


def base_linear_tags(meta, tags):
    """``tags`` combined with those of ``meta.estimator`` (default: :class:`LinearClassifier`)."""
    from ._linear import LinearClassifier

    return inherit_tags(tags, LinearClassifier() if meta.estimator is None else meta.estimator)


class TauNormalizedClassifier(ClassifierOutputMixin, ClassifierMixin, BaseEstimator):
    """tau-normalisation: rescale each class's weight row to ``w_c / ||w_c||^tau``.

    A linear classifier trained on long-tailed data gives head classes larger
    weight norms; dividing by the norm to the power ``tau`` evens the decision
    boundaries out (Kang et al., "Decoupling representation and classifier",
    ICLR 2020). As in their code the bias is dropped unless ``keep_intercept``.
    ``tau=0`` leaves the weights as they are; ``tau=1`` gives unit-norm rows.

    Parameters
    ----------
    estimator : classifier with ``coef_`` and ``intercept_``, default=None
        Cloned and fitted in ``fit``; ``None`` means :class:`LinearClassifier`
        (instance sampling, cross-entropy). Wrap a fitted model in
        :class:`sklearn.frozen.FrozenEstimator` to normalise it without refitting.
    tau : float, default=1.0
        Exponent of the norm; choose it on validation data (e.g. ``GridSearchCV``).
    keep_intercept : bool, default=False
        Keep the base classifier's biases.
    random_state : int, RandomState instance or None, default=None
        Passed to the default estimator.

    Attributes
    ----------
    estimator_ : classifier
        The fitted base classifier.
    coef_ : ndarray of shape (n_classes, n_features)
        Normalised weights.
    intercept_ : ndarray of shape (n_classes,)
        Biases (zeros unless ``keep_intercept``).
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Training samples per class.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> from sklearn_lt.linear_model import TauNormalizedClassifier
    >>> X, X_test, y, y_test = make_long_tailed_classification(random_state=0)
    >>> clf = TauNormalizedClassifier(tau=1.0, random_state=0).fit(X, y)
    >>> np.allclose(np.linalg.norm(clf.coef_, axis=1), 1.0)
    True
    """

    _expected_failed_checks = {
        "check_sample_weight_equivalence_on_dense_data": "the default base estimator, LinearClassifier, "
        "is trained by stochastic mini-batches; weights equal repetition only in expectation",
    }

    _parameter_constraints: dict = {
        "estimator": pc.BASE_ESTIMATOR,
        "tau": pc.NONNEGATIVE_REAL,
        "keep_intercept": ["boolean"],
        "random_state": ["random_state"],
    }

    @property
    def _exact_sample_weight(self):
        return getattr(self.estimator, "_exact_sample_weight", False)

    def __init__(self, estimator=None, *, tau=1.0, keep_intercept=False, random_state=None):
        self.estimator = estimator
        self.tau = tau
        self.keep_intercept = keep_intercept
        self.random_state = random_state

    # the base estimator validates its own parameters when fitted
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit the base classifier and normalise its weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to the base estimator's ``fit``.

        Returns
        -------
        self : object
        """
        X, y_encoded, weights = validate_classification_data(self, X, y, sample_weight)
        self.estimator_, W, b = fit_base_linear(self, X, y, sample_weight)
        norms = np.linalg.norm(W, axis=1, keepdims=True)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            self.coef_ = W / np.maximum(norms, np.finfo(np.float64).tiny) ** float(self.tau)
        self.coef_[norms[:, 0] == 0] = 0.0  # a zero weight row stays zero (0 / tiny ** tau is 0 / 0 for tau > 1)
        if not np.all(np.isfinite(self.coef_)):
            raise ValueError(
                f"tau={self.tau} overflows the normalised weights: the base classifier's weight norms range from "
                f"{norms.min():.3g} to {norms.max():.3g}, and norm ** tau leaves the float64 range; "
                "use a smaller tau (usual values lie between 0 and 2)."
            )
        self.intercept_ = b if self.keep_intercept else np.zeros_like(b)
        warn_if_degenerate(self, X, y_encoded, weights, stacklevel=4)
        return self

    def _logits(self, X):
        return X @ self.coef_.T + self.intercept_

    def __sklearn_tags__(self):
        return base_linear_tags(self, super().__sklearn_tags__())


class _ScaledLinear(torch.nn.Module):
    """``s_c * (w_c . x) + b_c`` with ``W`` and ``b`` frozen and one learnable scale per class."""

    def __init__(self, weight, bias):
        super().__init__()
        self.register_buffer("weight", torch.as_tensor(weight, dtype=torch.float32))
        self.register_buffer("bias", torch.as_tensor(bias, dtype=torch.float32))
        self.scale = torch.nn.Parameter(torch.ones(len(bias)))

    def forward(self, X):
        return (X @ self.weight.T) * self.scale + self.bias


class LWSClassifier(BaseTorchClassifier):
    """Learnable weight scaling (LWS): learn one scale per class of a fitted linear classifier.

    Keeps the base classifier's weight directions and biases and learns
    ``f_c`` in ``f_c * (w_c . x) + b_c`` with class-balanced sampling (Kang et
    al., ICLR 2020) — a learned, per-class version of tau-normalisation.

    Parameters
    ----------
    estimator : classifier with ``coef_`` and ``intercept_``, default=None
        Cloned and fitted in ``fit``; ``None`` means :class:`LinearClassifier`.
        Wrap a fitted model in :class:`sklearn.frozen.FrozenEstimator` to keep it.
    sampling : {"class_balanced", "instance"}, default="class_balanced"
        Sampling while learning the scales.
    max_epochs : int, default=10
        Epochs of scale learning.
    batch_size : int, default=256
        Samples per batch.
    lr : float, default=0.05
        SGD learning rate (momentum 0.9, cosine schedule).
    solver : {"minibatch", "lbfgs"}, default="minibatch"
        ``"lbfgs"`` learns the scales by full-batch L-BFGS on the whole
        training set (``max_epochs`` caps the passes over the data;
        ``sampling="class_balanced"`` becomes the class weights it gives in
        expectation; sample weights are exact; ``batch_size`` and ``lr`` are
        unused). It does not change the base estimator's solver.
    solver_dtype : {"float32", "float64"}, default="float32"
        Arithmetic of ``solver="lbfgs"``.
    device : str, default="auto"
        ``"auto"`` or a torch device string.
    random_state : int, RandomState instance or None, default=None
        Seeds the default estimator and the sampling.
    verbose : int, default=0
        1 prints skorch's per-epoch table.

    Attributes
    ----------
    estimator_ : classifier
        The fitted base classifier.
    scales_ : ndarray of shape (n_classes,)
        Learned per-class scales.
    coef_ : ndarray of shape (n_classes, n_features)
        ``scales_[:, None] * W`` of the base classifier.
    intercept_ : ndarray of shape (n_classes,)
        Base classifier's biases.
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

    Examples
    --------
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> from sklearn_lt.linear_model import LWSClassifier
    >>> X, X_test, y, y_test = make_long_tailed_classification(random_state=0)
    >>> clf = LWSClassifier(random_state=0).fit(X, y)
    >>> clf.scales_.shape
    (10,)
    """

    _parameter_constraints: dict = {
        "estimator": pc.BASE_ESTIMATOR,
        "sampling": pc.SAMPLINGS,
        "max_epochs": pc.EPOCHS,
        "batch_size": pc.POSITIVE_INT,
        "lr": pc.NONNEGATIVE_REAL,
        "solver": [StrOptions(set(SOLVERS))],
        "solver_dtype": [StrOptions(set(LBFGS_DTYPES))],
        **pc.TORCH_COMMON,
    }

    def __init__(
        self,
        estimator=None,
        *,
        sampling="class_balanced",
        max_epochs=10,
        batch_size=256,
        lr=0.05,
        solver="minibatch",
        solver_dtype="float32",
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.sampling = sampling
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.solver = solver
        self.solver_dtype = solver_dtype
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @property
    def _exact_sample_weight(self):
        # the scales are exact; the default base (mini-batch LinearClassifier) is not
        base = self.estimator
        return exact_sample_weight(self) and base is not None and getattr(base, "_exact_sample_weight", False)

    def _fit_net(self, X, y, sample_weight, generator):
        self.estimator_, W, b = fit_base_linear(self, X, self.classes_[y], sample_weight)
        if self.solver == "lbfgs":
            if self.sampling == "class_balanced":
                sample_weight = balanced_sample_weight(y, sample_weight, len(self.classes_))
            return train_full_batch(
                _ScaledLinear(W, b),
                LogitAdjustedLoss(tau=0.0),
                X,
                y,
                sample_weight=sample_weight,
                max_evals=self.max_epochs,
                dtype=self.solver_dtype,
                device=self.device_,
                verbose=self.verbose,
            )
        return train_module(
            _ScaledLinear(W, b),
            LogitAdjustedLoss(tau=0.0),
            X,
            y,
            sample_weight=sample_weight,
            sampler=make_train_sampler(y, sampling=self.sampling, batch_size=self.batch_size, generator=generator),
            max_epochs=self.max_epochs,
            optimizer="sgd",
            lr=self.lr,
            optimizer_kwargs={"momentum": 0.9},
            device=self.device_,
            verbose=self.verbose,
        )

    def __sklearn_tags__(self):
        return base_linear_tags(self, super().__sklearn_tags__())

    @property
    def scales_(self):
        return as_numpy(self.net_.module_.scale).astype(np.float64)

    @property
    def coef_(self):
        return self.scales_[:, None] * as_numpy(self.net_.module_.weight)

    @property
    def intercept_(self):
        return as_numpy(self.net_.module_.bias)
