"""Reading a fitted linear classifier's weights in one (n_classes, n_features) form."""

import numpy as np
from sklearn.utils.validation import check_is_fitted


def linear_weights(estimator):
    """Return ``(W, b)`` of shape ``(n_classes, n_features)`` and ``(n_classes,)``.

    Accepts any fitted classifier with ``coef_``, ``intercept_`` and ``classes_``
    (sklearn's linear models, this library's linear classifiers, a
    ``FrozenEstimator`` around either). A binary sklearn model stores one row
    ``w`` for ``classes_[1]``; it is returned as the equivalent pair
    ``(-w/2, w/2)``, which gives the same decision.

    Parameters
    ----------
    estimator : fitted classifier
        Exposes ``coef_``, ``intercept_`` and ``classes_``.

    Returns
    -------
    W : ndarray of shape (n_classes, n_features)
    b : ndarray of shape (n_classes,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_lt.linear_model import linear_weights
    >>> X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    >>> W, b = linear_weights(LogisticRegression().fit(X, y))
    >>> W.shape, bool(np.allclose(W[0], -W[1]))
    ((2, 1), True)
    """
    check_is_fitted(estimator)
    missing = [a for a in ("coef_", "intercept_", "classes_") if not hasattr(estimator, a)]
    if missing:
        raise TypeError(
            f"{type(estimator).__name__} has no {', '.join(missing)}: a linear classifier exposing coef_ and "
            "intercept_ is needed (e.g. sklearn_lt.linear_model.LinearClassifier or "
            "sklearn.linear_model.LogisticRegression)."
        )
    W = np.asarray(estimator.coef_, dtype=np.float64)
    b = np.broadcast_to(np.asarray(estimator.intercept_, dtype=np.float64), (W.shape[0],)).copy()
    if W.ndim != 2:
        raise TypeError(f"coef_ must be 2-dimensional, got shape {W.shape}.")
    n_classes = len(estimator.classes_)
    if W.shape[0] == 1 and n_classes == 2:
        return np.vstack([-W / 2, W / 2]), np.array([-b[0] / 2, b[0] / 2])
    if W.shape[0] != n_classes:
        raise TypeError(f"coef_ has {W.shape[0]} rows for {n_classes} classes; expected one row per class.")
    return W, b
