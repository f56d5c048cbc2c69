import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import balanced_accuracy_score, make_scorer, matthews_corrcoef
from sklearn.model_selection import GridSearchCV

from sklearn_lt.linear_model import LinearClassifier
from sklearn_lt.metrics import (
    few_shot_accuracy,
    geometric_mean_recall,
    get_scorer,
    harmonic_mean_recall,
    long_tail_report,
    lowest_recall,
    many_shot_accuracy,
    medium_shot_accuracy,
    per_class_recall,
)


def two_class_prediction(r0, r1, n=10):
    """10 samples a class with recalls r0 and r1."""
    y_true = np.repeat([0, 1], n)
    y_pred = np.concatenate([np.r_[np.zeros(round(r0 * n)), np.ones(n - round(r0 * n))],
                             np.r_[np.ones(round(r1 * n)), np.zeros(n - round(r1 * n))]])
    return y_true, y_pred


def test_known_values():
    y_true, y_pred = two_class_prediction(0.1, 0.9)
    assert harmonic_mean_recall(y_true, y_pred) == pytest.approx(0.18)
    assert geometric_mean_recall(y_true, y_pred) == pytest.approx(0.3)
    assert lowest_recall(y_true, y_pred) == pytest.approx(0.1)


def test_zero_recall_is_replaced_and_configurable():
    y_true, y_pred = two_class_prediction(0.0, 1.0)
    assert harmonic_mean_recall(y_true, y_pred) == pytest.approx(2 / (1 / 1e-3 + 1))
    assert geometric_mean_recall(y_true, y_pred) == pytest.approx(np.sqrt(1e-3))
    assert harmonic_mean_recall(y_true, y_pred, zero_recall=None) == 0.0
    assert geometric_mean_recall(y_true, y_pred, zero_recall=0.01) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="zero_recall"):
        harmonic_mean_recall(y_true, y_pred, zero_recall=2.0)


def test_class_missing_from_y_true_is_left_out():
    # a tail class absent from a CV fold's y_true has no recall: it must not count as 0
    assert harmonic_mean_recall([0, 0, 1], [0, 0, 1]) == 1.0
    assert harmonic_mean_recall([0, 0, 1], [0, 2, 1]) == pytest.approx(2 / 3)
    labels, recall = per_class_recall([0, 1], [0, 1], labels=[0, 1, 2])
    assert np.isnan(recall[2])


@st.composite
def predictions(draw):
    n_classes = draw(st.integers(2, 6))
    n = draw(st.integers(n_classes, 60))
    y_true = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)))
    y_pred = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)))
    return y_true, y_pred


@settings(max_examples=150, deadline=None)
@given(predictions())
def test_mean_inequalities(pred):
    y_true, y_pred = pred
    low = lowest_recall(y_true, y_pred)
    harmonic = harmonic_mean_recall(y_true, y_pred, zero_recall=None)
    geometric = geometric_mean_recall(y_true, y_pred, zero_recall=None)
    arithmetic = balanced_accuracy_score(y_true, y_pred)
    assert low - 1e-12 <= harmonic <= geometric + 1e-12 <= arithmetic + 2e-12


@settings(max_examples=100, deadline=None)
@given(predictions(), st.randoms(use_true_random=False))
def test_invariant_to_class_order_and_label_type(pred, rnd):
    y_true, y_pred = pred
    permutation = list(range(7))
    rnd.shuffle(permutation)
    names = np.array([f"class-{p}" for p in permutation], dtype=object)
    for metric in (harmonic_mean_recall, geometric_mean_recall, lowest_recall):
        assert metric(names[y_true], names[y_pred]) == pytest.approx(metric(y_true, y_pred))


def test_shot_accuracies_and_report():
    y_train = np.array(["a"] * 150 + ["b"] * 50 + ["c"] * 5)
    y_true = np.array(["a", "a", "b", "b", "c", "c"])
    y_pred = np.array(["a", "a", "b", "a", "a", "c"])
    assert many_shot_accuracy(y_true, y_pred, y_train=y_train) == 1.0
    assert medium_shot_accuracy(y_true, y_pred, y_train=y_train) == 0.5
    assert few_shot_accuracy(y_true, y_pred, class_counts={"a": 150, "b": 50, "c": 5}) == 0.5
    report = long_tail_report(y_true, y_pred, y_train=y_train, output_dict=True)
    assert report["n_many"] == report["n_medium"] == report["n_few"] == 1
    assert report["mcc"] == pytest.approx(matthews_corrcoef(y_true, y_pred))
    assert report["accuracy"] == pytest.approx(4 / 6)
    text = long_tail_report(y_true, y_pred, y_train=y_train)
    assert "harmonic_mean_recall" in text and "(1 classes)" in text


def test_shot_accuracy_needs_exactly_one_count_source():
    with pytest.raises(ValueError, match="y_train"):
        few_shot_accuracy([0], [0])
    with pytest.raises(ValueError, match="exactly one"):
        few_shot_accuracy([0], [0], y_train=[0], class_counts={0: 1})


def test_empty_input_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        harmonic_mean_recall([], [])


def test_scorers_in_grid_search(small_lt):
    X, _, y, _ = small_lt
    params = {"loss": ["cross_entropy", "balanced_softmax"]}
    for scoring in (make_scorer(harmonic_mean_recall), get_scorer("geometric_mean_recall"), "harmonic_mean_recall"):
        scoring = get_scorer(scoring) if isinstance(scoring, str) else scoring
        grid = GridSearchCV(LinearClassifier(max_epochs=5, random_state=0), params, scoring=scoring, cv=2, n_jobs=2)
        grid.fit(X, y)
        assert 0 < grid.best_score_ <= 1
    assert get_scorer("accuracy") is not None  # falls back to scikit-learn's names


@pytest.mark.parametrize(
    "metric, args, kwargs, match",
    [
        # reproducers of issue 15, item 4: each returned a number on the old code (1.0, -1.0, ...)
        (harmonic_mean_recall, ([0, 1, 1], [0, 0, 0]), {"sample_weight": [1, np.nan, 1]}, "sample_weight contains NaN"),
        (lowest_recall, ([0, 1, 1], [0, 0, 1]), {"sample_weight": [1, 2, -1]}, "Negative values"),
        (geometric_mean_recall, ([0, 1], [0, 1]), {"sample_weight": [1, np.inf]}, "infinity"),
        (harmonic_mean_recall, ([0, np.nan, 1], [0, 0, 1]), {}, "y_true contains NaN"),
        (lowest_recall, ([0, 1, 1], [0, 1, np.nan]), {}, "y_pred contains NaN"),
        (harmonic_mean_recall, ([0, 1, 1], ["0", "1", "1"]), {}, "Mix of label input types"),
        (harmonic_mean_recall, ([0, 1, 1], [0.5, 1, 1]), {}, "continuous"),
        (per_class_recall, ([0, 1, 1], [0, 1]), {}, "inconsistent numbers of samples"),
        (few_shot_accuracy, ([0, 1], [0, 1]), {"class_counts": {"0": 3, "1": 5}}, "no training count: \\[0, 1\\]"),
        (many_shot_accuracy, (["a", "z"], ["a", "a"]), {"y_train": ["a", "b"]}, "no training count: \\['z'\\]"),
        (long_tail_report, ([0, 2], [0, 2]), {"y_train": [0, 1]}, "no training count: \\[2\\]"),
    ],
)
def test_invalid_metric_input_is_rejected(metric, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        metric(*args, **kwargs)


@st.composite
def weighted_predictions(draw):
    """Random labels (ints or strings) and, half of the time, random non-negative weights."""
    y_true, y_pred = draw(predictions())
    if draw(st.booleans()):
        names = np.array([f"c{i}" for i in range(7)], dtype=object)
        y_true, y_pred = names[y_true], names[y_pred]
    weights = None
    if draw(st.booleans()):
        weights = np.array(draw(st.lists(st.floats(0.01, 10), min_size=len(y_true), max_size=len(y_true))))
    return y_true, y_pred, weights


@settings(max_examples=150, deadline=None)
@given(weighted_predictions(), st.sampled_from([None, 1e-3, 0.05]))
def test_metrics_agree_with_sklearn_and_imblearn(pred, zero_recall):
    from imblearn.metrics import geometric_mean_score
    from scipy.stats import hmean
    from sklearn.metrics import recall_score

    y_true, y_pred, weights = pred
    present = np.unique(y_true)
    reference = recall_score(y_true, y_pred, labels=present, average=None, sample_weight=weights, zero_division=0)
    labels, recall = per_class_recall(y_true, y_pred, sample_weight=weights)
    np.testing.assert_array_equal(labels, present)
    np.testing.assert_allclose(recall, reference, rtol=1e-12)
    assert lowest_recall(y_true, y_pred, sample_weight=weights) == pytest.approx(reference.min(), rel=1e-12)
    floored = reference if zero_recall is None else np.where(reference == 0, zero_recall, reference)
    harmonic = 0.0 if np.any(floored == 0) else hmean(floored)
    assert harmonic_mean_recall(y_true, y_pred, sample_weight=weights, zero_recall=zero_recall) == pytest.approx(
        harmonic, rel=1e-9, abs=1e-15
    )
    imblearn_gmean = geometric_mean_score(
        y_true, y_pred, labels=present, average="multiclass", sample_weight=weights, correction=zero_recall or 0.0
    )
    assert geometric_mean_recall(y_true, y_pred, sample_weight=weights, zero_recall=zero_recall) == pytest.approx(
        imblearn_gmean, rel=1e-9, abs=1e-15
    )


@settings(max_examples=60, deadline=None)
@given(predictions(), st.integers(0, 59), st.sampled_from([np.nan, np.inf, -1.0]))
def test_one_bad_weight_is_always_rejected(pred, position, bad):
    y_true, y_pred = pred
    weights = np.ones(len(y_true))
    weights[position % len(y_true)] = bad
    for metric in (harmonic_mean_recall, geometric_mean_recall, lowest_recall, per_class_recall):
        with pytest.raises(ValueError):
            metric(y_true, y_pred, sample_weight=weights)
