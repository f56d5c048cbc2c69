"""Per-class statistics written once: the index table of each class's samples and the class means."""

from typing import NamedTuple

import numpy as np
from scipy import sparse


class ClassIndexTable(NamedTuple):
    """The samples of each class, stored as one CSR-like table (see :func:`class_index_table`)."""

    #: the classes, in ``np.unique(y)`` order
    classes: np.ndarray
    #: ``y`` encoded as indices into ``classes``
    y_encoded: np.ndarray
    #: samples per class
    counts: np.ndarray
    #: sample indices grouped by class, ascending within a class
    order: np.ndarray
    #: where each class's run starts in ``order``
    starts: np.ndarray


def class_index_table(y):
    """Group the sample indices of ``y`` by class in one array (a CSR-like table).

    The indices of class ``classes[c]`` are
    ``order[starts[c] : starts[c] + counts[c]]``, in ascending order: the
    same array as ``np.flatnonzero(y == classes[c])``, for all classes in one
    sort instead of one pass over ``y`` per class.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels of any sortable type.

    Returns
    -------
    table : ClassIndexTable
        Named tuple ``(classes, y_encoded, counts, order, starts)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.utils._class_stats import class_index_table
    >>> t = class_index_table(np.array(["b", "a", "b", "c"]))
    >>> t.classes.tolist(), t.order.tolist(), t.starts.tolist(), t.counts.tolist()
    (['a', 'b', 'c'], [1, 0, 2, 3], [0, 1, 3], [1, 2, 1])
    """
    classes, y_encoded, counts = np.unique(np.asarray(y), return_inverse=True, return_counts=True)
    y_encoded = y_encoded.reshape(-1)
    order = np.argsort(y_encoded, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    return ClassIndexTable(classes, y_encoded, counts, order, starts)


def class_indices(y):
    """The indices of each class's samples, one ascending array per class in ``np.unique(y)`` order.

    ``class_indices(y)[c]`` equals ``np.flatnonzero(y == np.unique(y)[c])``,
    so code that permutes each class's indices draws the same permutations
    as before.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels, as :func:`class_index_table` takes them.

    Returns
    -------
    members : list of ndarray of int
        One array of sample indices per class.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.utils._class_stats import class_indices
    >>> [m.tolist() for m in class_indices(np.array([2, 0, 2, 1, 0]))]
    [[1, 4], [3], [0, 2]]
    """
    table = class_index_table(y)
    return np.split(table.order, table.starts[1:])


def class_means(X, y, n_classes, sample_weight=None, *, chunk=8192):
    """Weighted mean of each class's rows of ``X``, in float64.

    The sums are accumulated over row chunks converted to float64 one at a
    time, so a float32 ``X`` is never copied whole. A class whose weights are
    all zero gets its plain (unweighted) mean; a class without samples gets
    NaN.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Features (any float dtype).
    y : ndarray of int of shape (n_samples,)
        Encoded labels in ``0..n_classes-1``.
    n_classes : int
        Number of classes (rows of the result).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights; None means equal weights.
    chunk : int, default=8192
        Rows converted to float64 at a time.

    Returns
    -------
    means : ndarray of shape (n_classes, n_features)
        Float64 class means.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.utils._class_stats import class_means
    >>> X = np.array([[0.0], [2.0], [10.0]], dtype=np.float32)
    >>> class_means(X, np.array([0, 0, 1]), 2).tolist()
    [[1.0], [10.0]]
    >>> class_means(X, np.array([0, 0, 1]), 2, sample_weight=[3, 1, 1]).tolist()
    [[0.5], [10.0]]
    """
    y = np.asarray(y)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    totals = np.bincount(y, weights=w, minlength=n_classes)
    zero = totals <= 0
    if np.any(zero):
        w = np.where(zero[y], 1.0, w)
        totals = np.bincount(y, weights=w, minlength=n_classes)
    sums = np.zeros((n_classes, X.shape[1]))
    for start in range(0, len(y), chunk):
        rows = slice(start, start + chunk)
        n_rows = len(y[rows])
        onehot = sparse.csr_matrix((w[rows], (y[rows], np.arange(n_rows))), shape=(n_classes, n_rows))
        sums += onehot @ np.asarray(X[rows], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / totals[:, None]
