"""Template shared by every torch classifier: validation, label encoding, seeding, prediction."""

import warnings

import numpy as np
import torch
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, _num_samples, check_is_fitted, validate_data

from ..utils._validation import check_float32_range, label_repr
from ._callbacks import warn_if_degenerate
from ._device import draw_seed, resolve_device, seeded

# reason shared by every estimator trained by stochastic mini-batches
STOCHASTIC_SAMPLE_WEIGHT_REASON = (
    "trained by stochastic mini-batches: repeating a sample changes which batches are drawn, so "
    "integer weights equal repetition only in expectation, not to the 1e-7 the check demands"
)


def validate_classification_data(estimator, X, y, sample_weight=None, *, min_classes=2):
    """Validate ``(X, y)`` at the top of ``fit`` and set the attributes every classifier has.

    Sets ``n_features_in_`` (and ``feature_names_in_``), ``classes_`` and
    ``class_counts_``; returns ``X`` as float32, ``y`` encoded as 0..C-1 and the
    sample weights as float32 (ones when none are given, so that weighted and
    unweighted fits run the same arithmetic).
    """
    X, y = validate_data(estimator, X, y, dtype=[np.float32, np.float64], ensure_min_samples=1)
    check_float32_range(X, estimator=estimator)
    check_classification_targets(y)
    classes, y_encoded, counts = np.unique(y, return_inverse=True, return_counts=True)
    if len(classes) < min_classes:
        raise ValueError(
            f"{type(estimator).__name__} needs samples of at least {min_classes} classes to learn, but "
            f"y has {len(classes)} class ({label_repr(classes[0])}). Check that y is the label vector and was not "
            f"filtered down to one class."
        )
    estimator.classes_ = classes
    estimator.class_counts_ = counts
    sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float32)
    if not np.all(np.isfinite(sample_weight)) or np.any(sample_weight < 0) or sample_weight.sum() <= 0:
        raise ValueError("sample_weight must be finite, non-negative and not all zero.")
    return np.asarray(X, dtype=np.float32), y_encoded.astype(np.int64), sample_weight


# rows per prediction chunk when the estimator has no net to take ``predict_batch_size`` from
PREDICT_CHUNK_ROWS = 4096


class ClassifierOutputMixin:
    """``predict``, ``predict_proba``, ``predict_log_proba`` and ``decision_function`` from ``_logits``.

    Subclasses implement ``_logits(X) -> ndarray (n_samples, n_classes)`` on
    validated float32 input. Every output is computed chunk by chunk over the
    rows (``net_.predict_batch_size`` rows, else 4096), so predicting holds one
    chunk's logits at a time: ``predict`` never builds the ``n x C`` matrix,
    and the other methods build only the array they return. Probabilities are
    a softmax of the logits in float64, so they rank exactly like
    ``decision_function``; ``decision_function`` returns the logits in the
    dtype the model computes them in (float32 for the torch heads).
    """

    def _logit_chunks(self, X):
        """Validate ``X`` and yield ``(rows, logits)`` for consecutive row chunks."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        check_float32_range(X, estimator=self)
        net = getattr(self, "net_", None)
        chunk = int(getattr(net, "predict_batch_size", None) or PREDICT_CHUNK_ROWS)
        for start in range(0, X.shape[0], chunk):
            rows = slice(start, min(start + chunk, X.shape[0]))
            # converting a chunk, not X, keeps a float64 input from costing a float32 copy of X
            yield rows, np.asarray(self._logits(np.ascontiguousarray(X[rows], dtype=np.float32)))

    def _fill(self, X, transform, n_columns, dtype=None):
        out = None
        for rows, logits in self._logit_chunks(X):
            values = transform(logits)
            if out is None:
                n = _num_samples(X)
                out = np.empty((n, n_columns) if n_columns else (n,), dtype=dtype or values.dtype)
            out[rows] = values
        return out

    def decision_function(self, X):
        """Class scores (logits); for two classes, the score of ``classes_[1]`` minus ``classes_[0]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
        """
        check_is_fitted(self)
        if len(self.classes_) == 2:
            # in float64, so that the binary score ranks exactly like predict_proba
            return self._fill(X, lambda z: z[:, 1].astype(np.float64) - z[:, 0].astype(np.float64), 0)
        return self._fill(X, lambda z: z, len(self.classes_))

    def predict_proba(self, X):
        """Class probabilities, softmax of the logits, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self._fill(X, lambda z: softmax(z.astype(np.float64), axis=1), len(self.classes_), np.float64)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self._fill(X, lambda z: log_softmax(z.astype(np.float64), axis=1), len(self.classes_), np.float64)

    def predict(self, X):
        """Predicted class labels (from ``classes_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.classes_[self._fill(X, lambda z: np.argmax(z, axis=1), 0, np.intp)]


class BaseTorchClassifier(ClassifierOutputMixin, ClassifierMixin, BaseEstimator):
    """Base of the library's torch classifiers (not used directly).

    ``fit`` is a template in stages:

    1. validate the data (``_validate_fit_params(**fit_params)`` then checks
       the extra arguments of a subclass's ``fit``, e.g. validation data) and
       resolve ``device`` into ``device_``;
    2. ``_prepare_training(X, y_encoded, sample_weight, rng, **fit_params)``:
       whatever comes before the torch training (none by default; e.g.
       fitting a base model), drawing its seeds from ``rng``, the
       ``RandomState`` of ``random_state``. It returns the arguments of the
       training, or None when there is nothing to train (``net_`` and
       ``history_`` are then None);
    3. seed torch from one more draw of ``rng``, without touching the caller's
       torch RNG, and train: ``_fit_net(X, y, sample_weight, generator,
       **net_kwargs)`` returns the fitted skorch net stored as ``net_`` (its
       history as ``history_``);
    4. ``_after_fit()`` may read learned pieces off the net; then a warning if
       the trained model predicts a single class.

    Subclasses define ``__init__`` with their parameters, among them ``device``,
    ``random_state`` and ``verbose``, and declare every one of them in
    ``_parameter_constraints`` (scikit-learn's ``InvalidParameterError`` at
    ``fit``); rules across parameters that the constraints cannot state go in
    an override of ``_validate_params``, which ``fit`` runs first.
    """

    _expected_failed_checks = {
        "check_sample_weight_equivalence_on_dense_data": STOCHASTIC_SAMPLE_WEIGHT_REASON,
    }

    def _check_params(self):
        """Checks ``_parameter_constraints`` cannot express, and derived values (called in ``fit``, after the data)."""

    def _validate_fit_params(self):
        """Validate the extra arguments of a subclass's ``fit`` (the data is validated); return them as a dict."""
        return {}

    def _prepare_training(self, X, y, sample_weight, rng, **fit_params):
        """Stages before the torch training: ``(X, y, sample_weight, net_kwargs)`` to train on, or None."""
        return X, y, sample_weight, {}

    def _fit_net(self, X, y, sample_weight, generator, **net_kwargs):
        raise NotImplementedError

    def _after_fit(self):
        """Read learned pieces off ``net_`` (optional)."""

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Class labels of any hashable type.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the training loss.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight=None, **fit_params):
        """The template ``fit`` (see the class docstring); a subclass's ``fit`` passes its extra arguments."""
        X, y_encoded, sample_weight = validate_classification_data(self, X, y, sample_weight)
        self._check_params()
        fit_params = self._validate_fit_params(**fit_params)
        self.device_ = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        training = self._prepare_training(X, y_encoded, sample_weight, rng, **fit_params)
        self.net_ = self.history_ = None
        if training is None:
            return self
        X_train, y_train, w_train, net_kwargs = training
        with seeded(draw_seed(rng), self.device_) as generator:
            self.net_ = self._fit_net(X_train, y_train, w_train, generator, **net_kwargs)
        self.history_ = self.net_.history
        self._after_fit()
        if len(self.history_):  # after 0 epochs an untrained model is what was asked for
            warn_if_degenerate(self, X, y_encoded, sample_weight, stacklevel=5)
        return self

    def _logits(self, X):
        return self.net_.predict_logits(X).numpy()

    def __setstate__(self, state):
        super().__setstate__(state)
        # skorch maps a CUDA net to the CPU when loaded on a machine without CUDA; follow it
        net = state.get("net_")
        if net is not None and str(state.get("device_", "cpu")).startswith("cuda") and not torch.cuda.is_available():
            warnings.warn(
                f"{type(self).__name__} was trained on {state['device_']!r}; no CUDA device here, "
                "so it predicts on the CPU (same parameters, float32).",
                RuntimeWarning,
                stacklevel=2,
            )
            self.device_ = str(net.device)
