"""The many/medium/few split by training class size, written once for the library."""

import numpy as np

#: A class with more training samples than this is a *many-shot* class.
MANY_SHOT_THRESHOLD = 100
#: A class with fewer training samples than this is a *few-shot* class.
FEW_SHOT_THRESHOLD = 20

SHOT_GROUPS = ("many", "medium", "few")


def shot_groups(class_counts, *, many_threshold=MANY_SHOT_THRESHOLD, few_threshold=FEW_SHOT_THRESHOLD):
    """Assign each class to the many-, medium- or few-shot group.

    The convention of Kang et al. and of every paper implemented here: *many*
    has more than ``many_threshold`` training samples, *few* fewer than
    ``few_threshold``, *medium* the rest (20 to 100 inclusive by default).

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Number of training samples of each class.
    many_threshold : int, default=100
        A class with strictly more samples is many-shot.
    few_threshold : int, default=20
        A class with strictly fewer samples is few-shot.

    Returns
    -------
    groups : ndarray of shape (n_classes,), dtype=object
        ``"many"``, ``"medium"`` or ``"few"`` for each class.

    Examples
    --------
    >>> from sklearn_lt.utils import shot_groups
    >>> shot_groups([500, 100, 20, 19]).tolist()
    ['many', 'medium', 'medium', 'few']
    """
    counts = np.asarray(class_counts)
    if counts.ndim != 1:
        raise ValueError(f"class_counts must be 1-dimensional, got shape {counts.shape}.")
    if few_threshold > many_threshold + 1:
        raise ValueError(
            f"few_threshold={few_threshold} must not exceed many_threshold + 1={many_threshold + 1}."
        )
    groups = np.full(counts.shape, "medium", dtype=object)
    groups[counts > many_threshold] = "many"
    groups[counts < few_threshold] = "few"
    return groups
