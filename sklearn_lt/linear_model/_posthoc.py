"""Post-hoc corrections of a fitted linear classifier: tau-normalisation and LWS (Kang et al.)."""

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from ..torch._base import BaseTorchClassifier, ClassifierOutputMixin, validate_classification_data
from ..torch._lbfgs import train_full_batch
from ..torch._losses import LogitAdjustedLoss
from ..torch._net import as_numpy, make_train_sampler, train_module
from ..utils._validation import check_nonnegative_float, check_option, check_positive_int
from ._linear import balanced_sample_weight, check_solver, exact_sample_weight
from ._utils import linear_weights


def fit_base_linear(meta, X, y, sample_weight=None, *, default=None):
    """Clone and fit ``meta.estimator`` (default: a :class:`LinearClassifier`) and read its weights.

    Wrap an already fitted model in :class:`sklearn.frozen.FrozenEstimator` to
    correct it without refitting. ``default`` is the (unfitted) estimator used
    when ``meta.estimator`` is None; None means ``LinearClassifier`` seeded with
    ``meta.random_state``.
    """
    from ._linear import LinearClassifier

    if meta.estimator is not None:
        base = clone(meta.estimator)
    elif default is not None:
        base = default
    else:
        base = LinearClassifier(random_state=getattr(meta, "random_state", None))
    # weights of all ones are no weights: do not require the base model to accept them
    weighted = sample_weight is not None and not np.all(np.asarray(sample_weight) == 1)
    kwargs = {"sample_weight": sample_weight} if weighted else {}
    base.fit(X, y, **kwargs)
    if not np.array_equal(np.asarray(base.classes_), meta.classes_):
        raise ValueError(
            f"the base estimator's classes_ {base.classes_!r} differ from the classes in y {meta.classes_!r}; "
            "a frozen estimator must have been fitted on the same classes."
        )
    W, b = linear_weights(base)
    return base, W, b


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

    @property
    def _exact_sample_weight(self):
        return getattr(self.estimator, "_exact_sample_weight", False)

    def __init__(self, estimator=None, *, tau=1.0, keep_intercept=False, random_state=None):
        self.estimator = estimator
        self.tau = tau
        self.keep_intercept = keep_intercept
        self.random_state = random_state

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
        X, _, _ = validate_classification_data(self, X, y, sample_weight)
        tau = check_nonnegative_float("tau", self.tau)
        self.estimator_, W, b = fit_base_linear(self, X, y, sample_weight)
        norms = np.linalg.norm(W, axis=1, keepdims=True)
        self.coef_ = W / np.maximum(norms, np.finfo(np.float64).tiny) ** tau
        self.intercept_ = b if self.keep_intercept else np.zeros_like(b)
        return self

    def _logits(self, X):
        return X @ self.coef_.T + self.intercept_


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

    def _check_params(self):
        check_positive_int("max_epochs", self.max_epochs, minimum=0)
        check_positive_int("batch_size", self.batch_size)
        check_nonnegative_float("lr", self.lr)
        check_solver(self)

    @property
    def _exact_sample_weight(self):
        # the scales are exact; the default base (mini-batch LinearClassifier) is not
        base = self.estimator
        return exact_sample_weight(self) and base is not None and getattr(base, "_exact_sample_weight", False)

    def _fit_net(self, X, y, sample_weight, generator):
        self.estimator_, W, b = fit_base_linear(self, X, self.classes_[y], sample_weight)
        if self.solver == "lbfgs":
            check_option("sampling", self.sampling, ("instance", "class_balanced"))
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

    @property
    def scales_(self):
        return as_numpy(self.net_.module_.scale).astype(np.float64)

    @property
    def coef_(self):
        return self.scales_[:, None] * as_numpy(self.net_.module_.weight)

    @property
    def intercept_(self):
        return as_numpy(self.net_.module_.bias)
