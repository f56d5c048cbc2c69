"""A validation split that never empties a tail class (shared by every method that selects epochs)."""

import numpy as np
from sklearn.utils import check_random_state, column_or_1d

from ._class_stats import class_indices


def tail_safe_validation_split(y, validation_fraction=0.1, *, random_state=None):
    """Split indices into training and validation parts, stratified, keeping every class in training.

    Each class gives ``floor(validation_fraction * n_c)`` of its samples to
    validation (rounded at random so the expected share is exact), but always
    keeps at least one sample for training: a one-sample class gives none.
    Stratified splitters in scikit-learn can instead move a whole rare class
    into the validation part.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels.
    validation_fraction : float, default=0.1
        Share of each class held out, in [0, 1).
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    train_idx, valid_idx : ndarrays of int
        Sorted indices.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.utils import tail_safe_validation_split
    >>> y = np.array([0] * 50 + [1] * 2 + [2])
    >>> train, valid = tail_safe_validation_split(y, 0.2, random_state=0)
    >>> np.bincount(y[train]).tolist(), np.bincount(y[valid], minlength=3).tolist()
    ([40, 2, 1], [10, 0, 0])
    """
    y = column_or_1d(y)
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}.")
    rng = check_random_state(random_state)
    valid = []
    for members in class_indices(y):
        idx = rng.permutation(members)
        expected = validation_fraction * len(idx)
        n_valid = int(np.floor(expected) + (rng.random_sample() < expected - np.floor(expected)))
        valid.append(idx[: min(n_valid, len(idx) - 1)])
    valid = np.sort(np.concatenate(valid)).astype(np.intp)
    train = np.setdiff1d(np.arange(len(y)), valid).astype(np.intp)
    return train, valid


def split_off_validation(X, y, sample_weight, validation_fraction, generator):
    """Hold out a tail-safe validation part for a torch estimator's ``validation_fraction`` parameter.

    The one place where ``LinearClassifier``, ``MLPHeadClassifier`` and
    ``LearnedNCM`` turn ``validation_fraction`` into skorch's ``valid_loss``
    (which ``EarlyStopping`` and ``Checkpoint`` monitor). ``0`` switches it
    off, as in ``AlphaNetClassifier`` and ``DLSAClassifier``, and then draws
    nothing from ``generator``, so results without validation are unchanged.

    Parameters
    ----------
    X, y, sample_weight : ndarrays
        Training data (``y`` encoded).
    validation_fraction : float
        Share of each class held out, in [0, 1).
    generator : torch.Generator
        The fit's seeded generator; the split seed is drawn from it.

    Returns
    -------
    (X, y, sample_weight) : tuple of ndarrays
        The training part.
    valid_data : tuple (X_valid, y_valid) or None
        None when switched off, or when no class can spare a sample.
    """
    if not validation_fraction:
        return (X, y, sample_weight), None
    import torch

    seed = int(torch.randint(np.iinfo(np.int32).max, (1,), generator=generator))
    train, valid = tail_safe_validation_split(y, validation_fraction, random_state=seed)
    if len(valid) == 0:
        return (X, y, sample_weight), None
    return (X[train], y[train], sample_weight[train]), (X[valid], y[valid])
