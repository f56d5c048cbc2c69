"""The representation-bias diagnostic of the Learned-NCM paper: intra-class variance against class size."""

import warnings

import numpy as np
from scipy import linalg, stats
from sklearn.covariance import ledoit_wolf_shrinkage, oas
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import StrOptions, validate_params
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from ..utils._class_stats import class_index_table

_ESTIMATORS = ("mle", "ledoit_wolf", "oas")


def _largest_eigenvalue(centered):
    """Largest eigenvalue of ``centered.T @ centered / n``, via the smaller of the two Gram matrices."""
    n, d = centered.shape
    gram = centered @ centered.T if n <= d else centered.T @ centered
    k = gram.shape[0]
    value = linalg.eigh(gram, eigvals_only=True, subset_by_index=[k - 1, k - 1], check_finite=False)[0]
    return max(float(value), 0.0) / n


def _per_class(X, order, bounds, estimator):
    n_features = X.shape[1]
    variance = np.zeros(len(bounds) - 1)
    for k in range(len(variance)):
        Xk = X[order[bounds[k] : bounds[k + 1]]]
        if len(Xk) < 2:
            continue
        centered = Xk - Xk.mean(axis=0)
        top = _largest_eigenvalue(centered)
        if estimator == "mle":
            variance[k] = top
            continue
        if estimator == "ledoit_wolf":
            shrinkage = ledoit_wolf_shrinkage(centered, assume_centered=True)
        else:
            shrinkage = oas(centered, assume_centered=True)[1]
        mean_eigenvalue = np.einsum("ij,ij->", centered, centered) / (len(Xk) * n_features)
        variance[k] = (1.0 - shrinkage) * top + shrinkage * mean_eigenvalue
    return variance


def _spearman(counts, values):
    usable = (counts >= 2) & np.isfinite(values)
    if usable.sum() < 3 or np.ptp(counts[usable]) == 0 or np.ptp(values[usable]) == 0:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.spearmanr(counts[usable], values[usable])
    return float(result.statistic), float(result.pvalue)


def _null_variance(X, y_enc, counts, order, bounds, estimator, rng):
    """The statistic for each class size on pooled within-class residuals dealt out at random.

    Residuals of a class of ``N`` samples are scaled by ``sqrt(N / (N - 1))``
    so that every class contributes its unbiased spread; classes of one
    sample have no residual and are left out of the pool (and get 0).
    """
    means = np.add.reduceat(X[order], bounds[:-1], axis=0) / counts[:, None]
    factor = np.sqrt(counts / np.maximum(counts - 1, 1))
    pooled = (X - means[y_enc]) * factor[y_enc, None]
    in_pool = counts[y_enc] >= 2
    pool = rng.permutation(np.flatnonzero(in_pool))
    sizes = np.where(counts >= 2, counts, 0)
    return _per_class(pooled, pool, np.concatenate([[0], np.cumsum(sizes)]), estimator)


@validate_params(
    {"estimator": [StrOptions(set(_ESTIMATORS))], "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def intra_class_variance(X, y, *, estimator="mle", random_state=None):
    """Largest eigenvalue of each class's feature covariance, with the class sizes.

    Sharma et al. measure how compact each class is in feature space by
    ``sigma_y = max_i |lambda_i(Sigma_y)|``, the largest eigenvalue of the
    class's covariance, and find it *negatively* correlated with the class
    size on long-tailed data: tail classes are more diffuse (representation
    bias), which a softmax classifier re-balanced on the same features does
    not undo and which motivates :class:`LearnedNCM`. Run it on your training
    features: a clearly negative ``spearman_r`` says the features show that
    bias.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features (e.g. a backbone's penultimate layer).
    y : array-like of shape (n_samples,)
        Class labels.
    estimator : {"mle", "ledoit_wolf", "oas"}, default="mle"
        Covariance estimator: the maximum-likelihood ``(X_y - mu_y)^T (X_y -
        mu_y) / N_y`` of the paper (Eq. 1), or the Ledoit-Wolf / OAS shrinkage
        estimators its appendix also tried (``(1 - a) Sigma + a tr(Sigma)/d I``,
        whose top eigenvalue follows from the MLE one and the shrinkage ``a``).
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffle of the null baseline.

    Returns
    -------
    result : Bunch
        - ``classes``: sorted labels; ``class_counts``: samples per class.
        - ``variance``: the largest covariance eigenvalue of each class (0 for
          a class with a single sample, whose covariance is zero).
        - ``null_variance``: the same statistic for a class of the same size
          drawn from the pooled within-class residuals (all classes' centred
          samples, shuffled and dealt out by class size): what ``variance``
          would be if every class had the same spread. The top eigenvalue of
          a sample covariance is biased upwards when ``N_y`` is small next to
          the dimension (Marchenko-Pastur), so small classes look diffuse even
          without any representation bias; compare with this baseline.
        - ``spearman_r``, ``spearman_pvalue``: rank correlation of
          ``variance`` with class size over the classes with at least two
          samples (``nan`` with fewer than three such classes or constant
          values); negative in the paper's figures.
        - ``spearman_r_excess``: the same for ``variance / null_variance``;
          negative only when small classes are more diffuse than their size
          alone explains.

    See Also
    --------
    LearnedNCM : the classifier the paper proposes for such features.

    References
    ----------
    .. [1] S. Sharma, Y. Xian, N. Yu, A. Singh, "Learned Nearest-Class-Mean for
       Biased Representations in Long-Tailed Recognition", Sec. 3 and App. A.2.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.prototypes import intra_class_variance
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(scale=1.0, size=(200, 5)), rng.normal(scale=3.0, size=(10, 5))])
    >>> y = np.array([0] * 200 + [1] * 10)
    >>> r = intra_class_variance(X, y, random_state=0)
    >>> r.class_counts.tolist(), bool(r.variance[1] > r.variance[0])
    ([200, 10], True)
    >>> bool(r.variance[1] > 2 * r.null_variance[1])
    True
    """
    X = check_array(X, dtype=np.float64, ensure_min_samples=1)
    y = column_or_1d(y)
    check_consistent_length(X, y)
    check_classification_targets(y)
    classes, y_enc, counts, order, starts = class_index_table(y)
    bounds = np.append(starts, len(y))
    variance = _per_class(X, order, bounds, estimator)
    null_variance = _null_variance(X, y_enc, counts, order, bounds, estimator, check_random_state(random_state))
    r, p = _spearman(counts, variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_excess, _ = _spearman(counts, variance / null_variance)
    return Bunch(
        classes=classes,
        class_counts=counts,
        variance=variance,
        null_variance=null_variance,
        spearman_r=r,
        spearman_pvalue=p,
        spearman_r_excess=r_excess,
    )
