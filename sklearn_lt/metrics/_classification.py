"""Long-tail classification metrics: means of per-class recall and many/medium/few-shot accuracy."""

import numpy as np
from sklearn.metrics import accuracy_score, matthews_corrcoef
from sklearn.utils import column_or_1d
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_consistent_length

from ..utils._long_tail import FEW_SHOT_THRESHOLD, MANY_SHOT_THRESHOLD, SHOT_GROUPS, shot_groups


def per_class_recall(y_true, y_pred, *, labels=None, sample_weight=None):
    """Recall of each class, in ``labels`` order.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    labels : array-like, default=None
        Classes to score. ``None`` means the classes present in ``y_true``: a
        class absent from ``y_true`` (e.g. a tail class missing from a CV fold)
        has no recall, so it is left out.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    labels : ndarray of shape (n_labels,)
    recall : ndarray of shape (n_labels,)
        ``nan`` for a requested label with no true sample.

    Examples
    --------
    >>> from sklearn_lt.metrics import per_class_recall
    >>> per_class_recall([0, 0, 1, 1], [0, 1, 1, 1])
    (array([0, 1]), array([0.5, 1. ]))
    """
    y_true, y_pred, w = _check_recall_input(y_true, y_pred, sample_weight)
    labels = np.unique(y_true) if labels is None else np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-d list of class labels, got an array of shape {labels.shape}.")
    correct = y_true == y_pred
    recall = np.full(len(labels), np.nan)
    for i, label in enumerate(labels):
        mask = y_true == label
        total = w[mask].sum()
        if total > 0:
            recall[i] = w[mask & correct].sum() / total
    return labels, recall


def _check_recall_input(y_true, y_pred, sample_weight):
    """scikit-learn's checks of a classification metric's input; returns the labels and float64 weights.

    Same lengths, no NaN label, one kind of target (not continuous, not a mix
    of strings and numbers: ``"1" != 1`` would silently count as an error),
    and weights that are finite and non-negative (a negative weight could
    give a recall below 0 or above 1).
    """
    y_true = column_or_1d(y_true)
    y_pred = column_or_1d(y_pred)
    check_consistent_length(y_true, y_pred, sample_weight)
    if len(y_true) == 0:
        raise ValueError("y_true is empty: recall needs at least one sample.")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise ValueError(f"Input {name} contains NaN or infinity: every sample needs a class label.")
        kind = type_of_target(y, input_name=name)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"{name} must hold class labels (binary or multiclass), got {kind} values.")
    unique_labels(y_true, y_pred)  # raises on a mix of strings and numbers
    weights = _check_sample_weight(sample_weight, y_true, dtype=np.float64, ensure_non_negative=True)
    return y_true, y_pred, weights


def _recalls(y_true, y_pred, labels, sample_weight, zero_recall):
    _, recall = per_class_recall(y_true, y_pred, labels=labels, sample_weight=sample_weight)
    recall = recall[~np.isnan(recall)]
    if recall.size == 0:
        raise ValueError("none of the requested labels occurs in y_true.")
    if zero_recall is not None:
        if not 0 < zero_recall <= 1:
            raise ValueError(f"zero_recall must be in (0, 1] or None, got {zero_recall!r}.")
        recall = np.where(recall == 0, zero_recall, recall)
    return recall


def harmonic_mean_recall(y_true, y_pred, *, labels=None, sample_weight=None, zero_recall=1e-3):
    """Harmonic mean of the per-class recalls.

    Dominated by the worst classes, so it is the score to watch when rare
    classes matter: one class at recall 0.1 pulls it far below the average.
    As in the BTM paper (Yu, Du and Wu), a zero recall is replaced by
    ``zero_recall`` so the mean stays defined and still ranks models.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    labels : array-like, default=None
        Classes to average over; ``None`` means those present in ``y_true``; a
        requested class with no sample in ``y_true`` has no recall and is left out.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    zero_recall : float or None, default=1e-3
        Value that replaces a recall of 0; ``None`` keeps 0 (the mean is then 0).

    Returns
    -------
    score : float

    Examples
    --------
    >>> from sklearn_lt.metrics import harmonic_mean_recall
    >>> y_true = [0] * 10 + [1] * 10
    >>> y_pred = [0] * 1 + [1] * 9 + [1] * 9 + [0]
    >>> round(harmonic_mean_recall(y_true, y_pred), 2)
    0.18
    """
    recall = _recalls(y_true, y_pred, labels, sample_weight, zero_recall)
    if np.any(recall == 0):
        return 0.0
    return float(len(recall) / np.sum(1.0 / recall))


def geometric_mean_recall(y_true, y_pred, *, labels=None, sample_weight=None, zero_recall=1e-3):
    """Geometric mean of the per-class recalls (zero recall replaced by ``zero_recall``).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    labels : array-like, default=None
        Classes to average over; ``None`` means those present in ``y_true``; a
        requested class with no sample in ``y_true`` has no recall and is left out.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    zero_recall : float or None, default=1e-3
        Value that replaces a recall of 0; ``None`` keeps 0.

    Returns
    -------
    score : float

    Examples
    --------
    >>> from sklearn_lt.metrics import geometric_mean_recall
    >>> y_true = [0] * 10 + [1] * 10
    >>> y_pred = [0] * 1 + [1] * 9 + [1] * 9 + [0]
    >>> round(geometric_mean_recall(y_true, y_pred), 2)
    0.3
    """
    recall = _recalls(y_true, y_pred, labels, sample_weight, zero_recall)
    if np.any(recall == 0):
        return 0.0
    return float(np.exp(np.mean(np.log(recall))))


def lowest_recall(y_true, y_pred, *, labels=None, sample_weight=None):
    """Recall of the worst class.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    labels : array-like, default=None
        Classes to consider; ``None`` means those present in ``y_true``; a
        requested class with no sample in ``y_true`` has no recall and is left out.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.

    Returns
    -------
    score : float

    Examples
    --------
    >>> from sklearn_lt.metrics import lowest_recall
    >>> lowest_recall([0, 0, 1, 1], [0, 1, 1, 1])
    0.5
    """
    return float(np.min(_recalls(y_true, y_pred, labels, sample_weight, None)))


def _training_counts(y_train, class_counts):
    if (y_train is None) == (class_counts is None):
        raise ValueError(
            "give the training class sizes either as y_train (the training labels) or as class_counts "
            "(a mapping label -> number of training samples), exactly one of them."
        )
    if class_counts is not None:
        if not hasattr(class_counts, "items"):
            raise TypeError(f"class_counts must be a mapping label -> count, got {type(class_counts).__name__}.")
        return dict(class_counts)
    labels, counts = np.unique(column_or_1d(y_train), return_counts=True)
    return dict(zip(labels.tolist(), counts.tolist()))


def _train_counts_of(labels, counts):
    """Training count of each test label; a test class unknown to training is an error, not "few-shot".

    A label that is absent from the training counts is most often a key of the
    wrong type (``"0"`` against ``0``) or the wrong ``y_train``; counting it as
    a 0-sample few-shot class would silently change the few-shot accuracy.
    """
    keys = [label.item() if hasattr(label, "item") else label for label in labels]
    unknown = [key for key in keys if key not in counts]
    if unknown:
        known = list(counts)[:5]
        raise ValueError(
            f"{len(unknown)} test class(es) have no training count: {unknown[:10]!r}; the training classes are "
            f"e.g. {known!r}. Check that y_train / class_counts use the same labels (and label types) as y_true."
        )
    return np.array([counts[key] for key in keys])


def shot_accuracy(
    y_true,
    y_pred,
    *,
    shot,
    y_train=None,
    class_counts=None,
    sample_weight=None,
    many_threshold=MANY_SHOT_THRESHOLD,
    few_threshold=FEW_SHOT_THRESHOLD,
):
    """Accuracy on the many-, medium- or few-shot classes, defined by the training class sizes.

    The mean recall over the test classes of the group; on the balanced test
    sets of the long-tail literature this is the group's top-1 accuracy.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted test labels.
    shot : {"many", "medium", "few"}
        The group.
    y_train : array-like, default=None
        Training labels (their counts define the groups).
    class_counts : mapping, default=None
        Alternatively, label -> number of training samples.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    many_threshold, few_threshold : int, default=100, 20
        Group boundaries: many > 100, few < 20.

    Returns
    -------
    score : float
        ``nan`` when no test class falls in the group.

    Examples
    --------
    >>> from sklearn_lt.metrics import shot_accuracy
    >>> y_train = ["a"] * 150 + ["b"] * 5
    >>> shot_accuracy(["a", "b"], ["a", "a"], shot="few", y_train=y_train)
    0.0
    """
    if shot not in SHOT_GROUPS:
        raise ValueError(f"shot={shot!r} is not one of {SHOT_GROUPS}.")
    counts = _training_counts(y_train, class_counts)
    labels, recall = per_class_recall(y_true, y_pred, sample_weight=sample_weight)
    train_counts = _train_counts_of(labels, counts)
    groups = shot_groups(train_counts, many_threshold=many_threshold, few_threshold=few_threshold)
    selected = recall[groups == shot]
    return float(np.mean(selected)) if selected.size else float("nan")


def many_shot_accuracy(y_true, y_pred, *, y_train=None, class_counts=None, sample_weight=None):
    """Accuracy on classes with more than 100 training samples (see :func:`shot_accuracy`).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    y_train : array-like, default=None
    class_counts : mapping, default=None
    sample_weight : array-like, default=None

    Returns
    -------
    score : float

    Examples
    --------
    >>> from sklearn_lt.metrics import many_shot_accuracy
    >>> many_shot_accuracy(["a", "b"], ["a", "a"], y_train=["a"] * 150 + ["b"] * 5)
    1.0
    """
    return shot_accuracy(y_true, y_pred, shot="many", y_train=y_train, class_counts=class_counts, sample_weight=sample_weight)


def medium_shot_accuracy(y_true, y_pred, *, y_train=None, class_counts=None, sample_weight=None):
    """Accuracy on classes with 20 to 100 training samples (see :func:`shot_accuracy`).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    y_train : array-like, default=None
    class_counts : mapping, default=None
    sample_weight : array-like, default=None

    Returns
    -------
    score : float

    Examples
    --------
    >>> from sklearn_lt.metrics import medium_shot_accuracy
    >>> medium_shot_accuracy(["a", "b"], ["a", "b"], y_train=["a"] * 150 + ["b"] * 50)
    1.0
    """
    return shot_accuracy(y_true, y_pred, shot="medium", y_train=y_train, class_counts=class_counts, sample_weight=sample_weight)


def few_shot_accuracy(y_true, y_pred, *, y_train=None, class_counts=None, sample_weight=None):
    """Accuracy on classes with fewer than 20 training samples (see :func:`shot_accuracy`).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    y_train : array-like, default=None
    class_counts : mapping, default=None
    sample_weight : array-like, default=None

    Returns
    -------
    score : float

    Examples
    --------
    >>> from sklearn_lt.metrics import few_shot_accuracy
    >>> few_shot_accuracy(["a", "b"], ["a", "b"], y_train=["a"] * 150 + ["b"] * 5)
    1.0
    """
    return shot_accuracy(y_true, y_pred, shot="few", y_train=y_train, class_counts=class_counts, sample_weight=sample_weight)


def long_tail_report(y_true, y_pred, *, y_train=None, class_counts=None, output_dict=False, digits=3):
    """All long-tail scores of a prediction: overall, many/medium/few, means of recall, MCC.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted test labels.
    y_train : array-like, default=None
        Training labels; with ``class_counts`` (a mapping label -> count) one
        of them is needed for the many/medium/few split.
    class_counts : mapping, default=None
        Training samples per class.
    output_dict : bool, default=False
        Return a dict instead of a printable text.
    digits : int, default=3
        Digits in the text.

    Returns
    -------
    report : str or dict
        Keys: ``accuracy``, ``balanced_accuracy``, ``many``, ``medium``, ``few``
        (group accuracies), ``n_many``/``n_medium``/``n_few`` (test classes per
        group), ``harmonic_mean_recall``, ``geometric_mean_recall``,
        ``lowest_recall``, ``mcc``.

    Examples
    --------
    >>> from sklearn_lt.metrics import long_tail_report
    >>> r = long_tail_report([0, 1, 1], [0, 1, 0], y_train=[0] * 200 + [1] * 3, output_dict=True)
    >>> r["many"], r["few"]
    (1.0, 0.5)
    """
    counts = _training_counts(y_train, class_counts)
    labels, recall = per_class_recall(y_true, y_pred)
    train_counts = _train_counts_of(labels, counts)
    groups = shot_groups(train_counts)
    report = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(np.mean(recall)),
    }
    for group in SHOT_GROUPS:
        selected = recall[groups == group]
        report[group] = float(np.mean(selected)) if selected.size else float("nan")
        report[f"n_{group}"] = int(selected.size)
    report["harmonic_mean_recall"] = harmonic_mean_recall(y_true, y_pred)
    report["geometric_mean_recall"] = geometric_mean_recall(y_true, y_pred)
    report["lowest_recall"] = lowest_recall(y_true, y_pred)
    report["mcc"] = float(matthews_corrcoef(y_true, y_pred))
    if output_dict:
        return report
    width = max(len(k) for k in report)
    lines = []
    for key, value in report.items():
        if key.startswith("n_"):
            continue
        extra = f"  ({report['n_' + key]} classes)" if key in SHOT_GROUPS else ""
        lines.append(f"{key:>{width}}  {value:.{digits}f}{extra}")
    return "\n".join(lines)
