import numpy as np
import pytest

from sklearn_lt.datasets import (
    bundled_datasets,
    load_dataset,
    load_long_tailed,
    long_tailed_counts,
    make_long_tailed,
    make_long_tailed_classification,
)
from sklearn_lt.utils import shot_groups, tail_safe_validation_split


@pytest.mark.parametrize("profile", ["exponential", "pareto"])
def test_counts_profile(profile):
    counts = long_tailed_counts(20, 500, imbalance_ratio=50, profile=profile)
    assert counts[0] == 500 and counts[-1] == 10
    assert np.all(np.diff(counts) <= 0)


def test_make_long_tailed_split_is_disjoint_balanced_and_reproducible():
    X = np.arange(2000, dtype=float).reshape(-1, 1)
    y = np.repeat(np.arange(10), 200)
    a = make_long_tailed(X, y, imbalance_ratio=20, n_max=150, n_test_per_class=40, random_state=0)
    b = make_long_tailed(X, y, imbalance_ratio=20, n_max=150, n_test_per_class=40, random_state=0)
    X_train, X_test, y_train, y_test = a
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not set(X_train.ravel()) & set(X_test.ravel())
    assert np.all(np.bincount(y_test) == 40)
    assert sorted(np.bincount(y_train), reverse=True) == long_tailed_counts(10, 150, imbalance_ratio=20).tolist()


def test_make_long_tailed_names_the_short_class():
    X, y = np.zeros((30, 1)), np.repeat([0, 1, 2], 10)
    with pytest.raises(ValueError, match="lower n_max"):
        make_long_tailed(X, y, n_max=20, n_test_per_class=5)


def test_synthetic_generator_separation():
    easy = make_long_tailed_classification(class_sep=8.0, random_state=0)
    hard = make_long_tailed_classification(class_sep=0.5, random_state=0)
    from sklearn.neighbors import NearestCentroid

    def acc(data):
        X, X_test, y, y_test = data
        return NearestCentroid().fit(X, y).score(X_test, y_test)

    assert acc(easy) > 0.9 > 0.5 > acc(hard)


def test_bundled_real_data():
    assert {"letter", "icd10cm", "wordnet"} <= set(bundled_datasets())
    X, y = load_dataset("letter", return_X_y=True)
    assert X.shape == (20000, 16) and len(np.unique(y)) == 26
    data = load_long_tailed("icd10cm", random_state=0)
    assert data.X_train.dtype == np.float32 and data.X_train.shape[1] == 384
    groups = shot_groups(np.unique(data.y_train, return_counts=True)[1])
    assert set(groups) == {"many", "medium", "few"}
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("cifar10")


def test_tail_safe_validation_split_keeps_every_class():
    y = np.array([0] * 100 + [1] * 5 + [2])
    train, valid = tail_safe_validation_split(y, 0.5, random_state=0)
    assert set(y[train]) == {0, 1, 2}
    assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == len(y)
    assert np.sum(y[valid] == 0) == 50
