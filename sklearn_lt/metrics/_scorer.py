"""Ready scorers for GridSearchCV: ``scoring=get_scorer("harmonic_mean_recall")``."""

from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics import make_scorer

from ._classification import geometric_mean_recall, harmonic_mean_recall, lowest_recall

harmonic_mean_recall_scorer = make_scorer(harmonic_mean_recall)
geometric_mean_recall_scorer = make_scorer(geometric_mean_recall)
lowest_recall_scorer = make_scorer(lowest_recall)

SCORERS = {
    "harmonic_mean_recall": harmonic_mean_recall_scorer,
    "geometric_mean_recall": geometric_mean_recall_scorer,
    "lowest_recall": lowest_recall_scorer,
}


def get_scorer(scoring):
    """A scorer by name: this library's long-tail scorers, then scikit-learn's.

    Parameters
    ----------
    scoring : str or callable
        ``"harmonic_mean_recall"``, ``"geometric_mean_recall"``,
        ``"lowest_recall"``, or any name :func:`sklearn.metrics.get_scorer` knows.

    Returns
    -------
    scorer : callable

    Examples
    --------
    >>> from sklearn_lt.metrics import get_scorer
    >>> get_scorer("harmonic_mean_recall")
    make_scorer(harmonic_mean_recall, response_method='predict')
    """
    if isinstance(scoring, str) and scoring in SCORERS:
        return SCORERS[scoring]
    return _sklearn_get_scorer(scoring)
