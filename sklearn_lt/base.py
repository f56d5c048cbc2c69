"""Base pieces every classifier of the library shares (like :mod:`sklearn.base`).

- :func:`validate_classification_data`: the data checks at the top of ``fit``
  and the attributes they set (``classes_``, ``class_counts_``, ...);
- :class:`ClassifierOutputMixin`: ``predict``, ``predict_proba``,
  ``predict_log_proba`` and ``decision_function`` from one ``_logits``;
- :func:`fit_base_estimator`: clone and fit a meta-estimator's ``estimator``
  (as scikit-learn's ``BaseEnsemble._validate_estimator``), shared by the
  post-hoc corrections, Multi-NCM and BTM.
"""

import numpy as np
from scipy.special import log_softmax, softmax
from sklearn.base import clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, _num_samples, check_is_fitted, validate_data

from .utils._validation import check_float32_range, label_repr

__all__ = ["ClassifierOutputMixin", "fit_base_estimator", "validate_classification_data"]


def validate_classification_data(estimator, X, y, sample_weight=None, *, min_classes=2):
    """Validate ``(X, y)`` at the top of ``fit`` and set the attributes every classifier has.

    Sets ``n_features_in_`` (and ``feature_names_in_``), ``classes_`` and
    ``class_counts_``; returns ``X`` as float32, ``y`` encoded as 0..C-1 and the
    sample weights as float32 (ones when none are given, so that weighted and
    unweighted fits run the same arithmetic).

    Parameters
    ----------
    estimator : estimator
        The estimator being fitted; receives the attributes.
    X : array-like of shape (n_samples, n_features)
        Training features.
    y : array-like of shape (n_samples,)
        Class labels of any hashable type.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights, not all zero.
    min_classes : int, default=2
        Fewest classes ``y`` may have.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
    y_encoded : ndarray of shape (n_samples,), int64
    sample_weight : ndarray of shape (n_samples,), float32

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_lt.base import validate_classification_data
    >>> clf = LogisticRegression()
    >>> X, y_encoded, w = validate_classification_data(clf, np.zeros((3, 2)), ["b", "a", "b"])
    >>> clf.classes_.tolist(), clf.class_counts_.tolist(), y_encoded.tolist(), w.tolist()
    (['a', 'b'], [1, 2], [1, 0, 1], [1.0, 1.0, 1.0])
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


def _check_finite_scores(estimator, logits, X):
    """Raise a ValueError when a row's class scores overflowed (NaN or +inf, or all -inf).

    Inputs inside the float32 range can still overflow inside a float32 model
    (a hidden layer of an MLP on features near 1e38): the softmax of such a row
    is NaN and its argmax is class 0, a silent wrong answer. A score of -inf
    next to finite ones is a valid "impossible class" and passes.
    """
    if logits.ndim != 2 or logits.shape[1] == 0:
        return
    bad = ~np.isfinite(np.max(logits, axis=1))
    if np.any(bad):
        largest = float(np.max(np.abs(np.asarray(X, dtype=np.float64)[bad])))
        raise ValueError(
            f"{type(estimator).__name__} computed non-finite class scores (NaN or infinity) for {int(bad.sum())} of "
            f"{len(bad)} rows (largest feature magnitude in them: {largest:.3g}): the model's arithmetic overflowed. "
            "If these features are far beyond the scale of the training data, scale them as the training data were "
            "(e.g. a sklearn.preprocessing.StandardScaler fitted on the training data, in a pipeline); otherwise the "
            "fitted model itself is broken: refit it."
        )


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

    Examples
    --------
    A classifier that predicts the training prior needs only ``fit`` and ``_logits``:

    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator, ClassifierMixin
    >>> from sklearn_lt.base import ClassifierOutputMixin, validate_classification_data
    >>> class Prior(ClassifierOutputMixin, ClassifierMixin, BaseEstimator):
    ...     def fit(self, X, y):
    ...         validate_classification_data(self, X, y)
    ...         self.log_prior_ = np.log(self.class_counts_ / self.class_counts_.sum())
    ...         return self
    ...
    ...     def _logits(self, X):
    ...         return np.tile(self.log_prior_, (len(X), 1))
    >>> clf = Prior().fit(np.zeros((4, 1)), ["a", "a", "a", "b"])
    >>> clf.predict(np.zeros((2, 1))).tolist()
    ['a', 'a']
    >>> clf.predict_proba(np.zeros((1, 1))).round(2).tolist()
    [[0.75, 0.25]]
    """

    def _logit_chunks(self, X):
        """Validate ``X`` and yield ``(rows, logits)`` for consecutive row chunks."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        check_float32_range(X, estimator=self)
        yield from self._validated_logit_chunks(X)

    def _validated_logit_chunks(self, X):
        """``(rows, logits)`` for consecutive row chunks of an ``X`` this estimator has already validated."""
        net = getattr(self, "net_", None)
        chunk = int(getattr(net, "predict_batch_size", None) or PREDICT_CHUNK_ROWS)
        for start in range(0, X.shape[0], chunk):
            rows = slice(start, min(start + chunk, X.shape[0]))
            # converting a chunk, not X, keeps a float64 input from costing a float32 copy of X
            logits = np.asarray(self._logits(np.ascontiguousarray(X[rows], dtype=np.float32)))
            _check_finite_scores(self, logits, X[rows])
            yield rows, logits

    def _predict_validated(self, X):
        """:meth:`predict` on features already validated (the training features, within ``fit``)."""
        return self.classes_[np.concatenate([np.argmax(z, axis=1) for _, z in self._validated_logit_chunks(X)])]

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


def fit_base_estimator(
    meta, X, y, sample_weight=None, *, default, random_state=None, role="base estimator", needs=None, encoded_ok=False
):
    """Clone and fit ``meta.estimator`` (``default`` when it is None) and check it fits ``meta``.

    The one place where a meta-estimator fits its base estimator:

    - ``meta.estimator=None`` fits ``default`` (an unfitted estimator, used as
      given: the caller seeds it);
    - otherwise a clone is fitted, so the user's estimator is never changed;
      a clone whose ``random_state`` is None gets ``random_state`` (as in
      scikit-learn's meta-estimators), so that the meta-estimator's
      ``random_state`` makes the whole fit reproducible;
    - a fitted model wrapped in :class:`sklearn.frozen.FrozenEstimator` is
      its own clone and its ``fit`` does nothing: it is used as it is;
    - ``sample_weight`` is forwarded, unless it is all ones (no weights: a
      base estimator without ``sample_weight`` support still works).

    Parameters
    ----------
    meta : estimator
        The meta-estimator: its ``estimator`` parameter is fitted, its
        ``classes_`` (set by :func:`validate_classification_data`) are the
        classes the fitted base must have.
    X : ndarray of shape (n_samples, n_features)
        Training features.
    y : ndarray of shape (n_samples,)
        Targets given to the base estimator's ``fit``.
    sample_weight : ndarray of shape (n_samples,), default=None
        Forwarded to the base estimator's ``fit`` unless None or all ones.
    default : estimator
        The unfitted estimator fitted when ``meta.estimator`` is None.
    random_state : int, RandomState instance or None, default=None
        Given to a clone of ``meta.estimator`` whose ``random_state`` is None.
    role : str, default="base estimator"
        How the messages name the base estimator.
    needs : tuple (attribute, description), default=None
        An attribute the fitted base must have, and what kind of model has it
        (a ``TypeError`` names both).
    encoded_ok : bool, default=False
        Also accept a base whose ``classes_`` are ``0..n_classes-1`` (fitted
        on encoded targets).

    Returns
    -------
    base : estimator
        The fitted base estimator (the ``FrozenEstimator`` itself when one was given).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_lt.base import fit_base_estimator, validate_classification_data
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> from sklearn_lt.linear_model import TauNormalizedClassifier
    >>> X, _, y, _ = make_long_tailed_classification(random_state=0)
    >>> meta = TauNormalizedClassifier(LogisticRegression(), random_state=0)
    >>> X, _, weights = validate_classification_data(meta, X, y)
    >>> base = fit_base_estimator(meta, X, y, weights, default=None, random_state=0)
    >>> type(base).__name__, base is meta.estimator, base.random_state
    ('LogisticRegression', False, 0)
    """
    if meta.estimator is None:
        base = default
    else:
        base = clone(meta.estimator)
        if base.get_params(deep=False).get("random_state", 0) is None:
            base.set_params(random_state=random_state)
    # weights of all ones are no weights: do not require the base model to accept them
    weighted = sample_weight is not None and not np.all(np.asarray(sample_weight) == 1)
    base.fit(X, y, **({"sample_weight": sample_weight} if weighted else {}))
    check_is_fitted(base)
    if needs is not None and not hasattr(base, needs[0]):
        raise TypeError(f"{type(base).__name__} has no {needs[0]}: {type(meta).__name__} needs {needs[1]}.")
    classes = np.asarray(base.classes_)
    same = np.array_equal(classes, meta.classes_)
    if not same and not (encoded_ok and np.array_equal(classes, np.arange(len(meta.classes_)))):
        raise ValueError(
            f"the {role}'s classes_ {classes!r} differ from the classes in y {meta.classes_!r}; "
            "a frozen estimator must have been fitted on the same classes."
        )
    return base
