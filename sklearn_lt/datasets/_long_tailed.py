"""Drawing long-tailed training sets from balanced data, and a synthetic generator."""

import numbers

import numpy as np
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_array, check_consistent_length

from ..utils import _param_constraints as pc
from ..utils._class_stats import class_indices
from ..utils._validation import label_repr

PROFILES = ("exponential", "pareto")

_PROFILE = [StrOptions(set(PROFILES))]
_IMBALANCE_RATIO = [Interval(numbers.Real, 1, None, closed="left")]
_N_TEST = [Interval(numbers.Integral, 0, None, closed="left")]


@validate_params(
    {
        "n_classes": pc.POSITIVE_INT,
        "n_max": pc.POSITIVE_INT,
        "imbalance_ratio": _IMBALANCE_RATIO,
        "profile": _PROFILE,
    },
    prefer_skip_nested_validation=True,
)
def long_tailed_counts(n_classes, n_max, *, imbalance_ratio=100.0, profile="exponential"):
    """Training samples per class, head first, for a long-tailed profile.

    ``"exponential"``: ``n_i = floor(n_max * r^(-i / (C - 1)))`` (Cao et al.'s
    CIFAR-LT). ``"pareto"``: a power law ``n_i = floor(n_max * (i + 1)^(-a))``
    with ``a = log(r) / log(C)``, so that ``n_0 / n_{C-1} = r`` too (Zipf-like,
    the shape of ImageNet-LT). Every class keeps at least one sample.

    Parameters
    ----------
    n_classes : int
    n_max : int
        Samples of the head class.
    imbalance_ratio : float, default=100
        Head size over tail size, ``>= 1``.
    profile : {"exponential", "pareto"}, default="exponential"

    Returns
    -------
    counts : ndarray of int of shape (n_classes,)

    Examples
    --------
    >>> from sklearn_lt.datasets import long_tailed_counts
    >>> long_tailed_counts(5, 100, imbalance_ratio=100).tolist()
    [100, 31, 10, 3, 1]
    """
    i = np.arange(n_classes, dtype=np.float64)
    if n_classes == 1:
        fractions = np.ones(1)
    elif profile == "exponential":
        fractions = imbalance_ratio ** (-i / (n_classes - 1))
    else:
        fractions = (i + 1) ** (-np.log(imbalance_ratio) / np.log(n_classes))
    # the small epsilon keeps exact powers (e.g. 100 * 100**-0.5 = 10) from flooring to 9
    return np.maximum(1, np.floor(n_max * fractions + 1e-9)).astype(int)


@validate_params(
    {
        "imbalance_ratio": _IMBALANCE_RATIO,
        "profile": _PROFILE,
        "n_max": pc.POSITIVE_INT + [None],
        "n_test_per_class": _N_TEST + [None],
        "class_order": [StrOptions({"size", "random"})],
        "random_state": ["random_state"],
    },
    # long_tailed_counts checks the n_max it derives when n_max is None
    prefer_skip_nested_validation=False,
)
def make_long_tailed(
    X,
    y,
    *,
    imbalance_ratio=100.0,
    profile="exponential",
    n_max=None,
    n_test_per_class=None,
    class_order="size",
    random_state=None,
):
    """Split balanced labelled data into a long-tailed training set and a balanced test set.

    Classes are ranked head to tail (by their size in ``y``, ties broken at
    random, or in a random order), each gives ``n_test_per_class`` samples to
    the test set and then its profile count to the training set.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    imbalance_ratio : float, default=100
        Size of the head class over the tail class in the training set.
    profile : {"exponential", "pareto"}, default="exponential"
        See :func:`long_tailed_counts`.
    n_max : int, default=None
        Training samples of the head class; ``None``: the largest value every
        class can supply once its test samples are set aside.
    n_test_per_class : int, default=None
        Test samples per class; ``None``: half of the smallest class.
    class_order : {"size", "random"}, default="size"
        Which classes become the head: the largest ones, or a random order.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarrays

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.datasets import make_long_tailed
    >>> X, y = np.zeros((1000, 2)), np.repeat(np.arange(10), 100)
    >>> X_tr, X_te, y_tr, y_te = make_long_tailed(X, y, imbalance_ratio=10, random_state=0)
    >>> sorted(np.bincount(y_tr).tolist(), reverse=True)[:4], np.bincount(y_te).tolist()[:3]
    ([50, 38, 29, 23], [50, 50, 50])
    """
    X = check_array(X, accept_sparse=False, ensure_all_finite=False, dtype=None)
    y = column_or_1d(y)
    check_consistent_length(X, y)
    rng = check_random_state(random_state)
    classes, sizes = np.unique(y, return_counts=True)
    members = class_indices(y)
    if len(classes) < 2:
        raise ValueError("make_long_tailed needs at least 2 classes.")
    tiebreak = rng.permutation(len(classes))
    order = np.lexsort((tiebreak, -sizes)) if class_order == "size" else tiebreak
    classes, sizes, members = classes[order], sizes[order], [members[i] for i in order]
    if n_test_per_class is None:
        n_test_per_class = int(sizes.min()) // 2
    if n_max is None:
        n_max = int(sizes[0]) - n_test_per_class
    counts = long_tailed_counts(len(classes), n_max, imbalance_ratio=imbalance_ratio, profile=profile)
    short = [(c, s, k) for c, s, k in zip(classes, sizes, counts) if s < k + n_test_per_class]
    if short:
        c, s, k = short[0]
        raise ValueError(
            f"class {label_repr(c)} has {s} samples but needs {k} for training plus {n_test_per_class} for testing; "
            f"lower n_max or n_test_per_class."
        )
    train, test = [], []
    for class_members, k in zip(members, counts):
        idx = rng.permutation(class_members)
        test.append(idx[:n_test_per_class])
        train.append(idx[n_test_per_class : n_test_per_class + k])
    train, test = np.concatenate(train), np.concatenate(test)
    return X[train], X[test], y[train], y[test]


@validate_params(
    {
        "n_classes": pc.POSITIVE_INT,
        "n_features": pc.POSITIVE_INT,
        "n_max": pc.POSITIVE_INT,
        "imbalance_ratio": _IMBALANCE_RATIO,
        "profile": _PROFILE,
        "n_test_per_class": _N_TEST,
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_long_tailed_classification(
    n_classes=10,
    n_features=16,
    *,
    n_max=300,
    imbalance_ratio=100.0,
    profile="exponential",
    n_test_per_class=50,
    class_sep=2.0,
    random_state=None,
):
    """Gaussian classes with long-tailed training counts and a balanced test set.

    Class means are drawn from ``N(0, class_sep^2 / n_features * I)`` so the
    expected distance between two means is about ``class_sep * sqrt(2)``
    whatever ``n_features``; samples are ``mean + N(0, I)``. Larger
    ``class_sep`` gives an easier problem.

    Parameters
    ----------
    n_classes : int, default=10
    n_features : int, default=16
    n_max : int, default=300
        Training samples of the head class.
    imbalance_ratio : float, default=100
    profile : {"exponential", "pareto"}, default="exponential"
    n_test_per_class : int, default=50
    class_sep : float, default=2.0
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarrays
        Float32 features; integer labels, class 0 the head.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> X, X_test, y, y_test = make_long_tailed_classification(random_state=0)
    >>> X.shape, int(np.bincount(y).min())
    ((740, 16), 3)
    """
    rng = check_random_state(random_state)
    counts = long_tailed_counts(n_classes, n_max, imbalance_ratio=imbalance_ratio, profile=profile)
    means = rng.normal(scale=class_sep / np.sqrt(n_features), size=(n_classes, n_features))

    def draw(per_class):
        y = np.repeat(np.arange(n_classes), per_class)
        return (means[y] + rng.normal(size=(len(y), n_features))).astype(np.float32), y

    X_train, y_train = draw(counts)
    X_test, y_test = draw(np.full(n_classes, n_test_per_class))
    return X_train, X_test, y_train, y_test
