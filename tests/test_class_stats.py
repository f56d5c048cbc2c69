"""The per-class index table and the class means written once (sklearn_lt/utils/_class_stats.py).

The callers used to write the per-class loops by hand; the reference versions
below are those loops, kept here to show that every random draw is unchanged.
"""

import numpy as np
import pytest
import torch
from sklearn.utils import check_random_state

from sklearn_lt.datasets import make_long_tailed
from sklearn_lt.ensemble import draw_balanced_subsets
from sklearn_lt.linear_model._alphanet import _per_class_subsample
from sklearn_lt.torch import ClassBalancedSampler
from sklearn_lt.utils import tail_safe_validation_split
from sklearn_lt.utils._class_stats import class_index_table, class_indices, class_means

LABELS = [
    np.array([3, 1, 3, 3, 0, 1, 3, 0, 0, 3]),
    np.array(["b", "a", "b", "c", "c", "c"], dtype=object),
    np.repeat(np.arange(12), np.arange(1, 13))[np.random.RandomState(0).permutation(78)],
]


@pytest.mark.parametrize("y", LABELS)
def test_class_indices_are_flatnonzero_per_class(y):
    members = class_indices(y)
    assert len(members) == len(np.unique(y))
    for label, m in zip(np.unique(y), members):
        np.testing.assert_array_equal(m, np.flatnonzero(y == label))
        assert m.dtype == np.intp


@pytest.mark.parametrize("y", LABELS)
def test_class_index_table_is_one_csr_like_array(y):
    t = class_index_table(y)
    np.testing.assert_array_equal(t.classes, np.unique(y))
    np.testing.assert_array_equal(t.classes[t.y_encoded], y)
    np.testing.assert_array_equal(t.counts, [np.sum(y == c) for c in t.classes])
    for c, label in enumerate(t.classes):
        np.testing.assert_array_equal(t.order[t.starts[c] : t.starts[c] + t.counts[c]], np.flatnonzero(y == label))


# ---------------------------------------------------------------- same draws as the hand-written loops


def _reference_subsets(y, n_subsets, n_per_class, random_state):
    rng = check_random_state(random_state)
    members = [np.flatnonzero(y == label) for label in np.unique(y)]
    return [
        np.sort(np.concatenate([idx[rng.permutation(len(idx))[:n_per_class]] for idx in members]))
        for _ in range(n_subsets)
    ]


def _reference_validation_split(y, fraction, random_state):
    rng = check_random_state(random_state)
    valid = []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        expected = fraction * len(idx)
        n_valid = int(np.floor(expected) + (rng.random_sample() < expected - np.floor(expected)))
        valid.append(idx[: min(n_valid, len(idx) - 1)])
    return np.sort(np.concatenate(valid))


def _reference_per_class_subsample(y, max_per_class, rng):
    order = rng.permutation(len(y))
    order = order[np.argsort(y[order], kind="stable")]
    _, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
    rank = np.arange(len(y)) - np.repeat(starts, counts)
    return np.sort(order[rank < max_per_class])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("y", LABELS)
def test_random_draws_are_those_of_the_hand_written_loops(y, seed):
    for got, want in zip(draw_balanced_subsets(y, 3, 2, random_state=seed), _reference_subsets(y, 3, 2, seed)):
        np.testing.assert_array_equal(got, want)
    _, valid = tail_safe_validation_split(y, 0.3, random_state=seed)
    np.testing.assert_array_equal(valid, _reference_validation_split(y, 0.3, seed))
    np.testing.assert_array_equal(
        _per_class_subsample(y, 2, np.random.RandomState(seed)),
        _reference_per_class_subsample(y, 2, np.random.RandomState(seed)),
    )


@pytest.mark.parametrize("class_order", ["size", "random"])
def test_make_long_tailed_draws_the_same_samples(class_order):
    y = np.repeat(np.arange(6), [40, 35, 35, 30, 50, 45])[np.random.RandomState(1).permutation(235)]
    X = np.arange(len(y), dtype=np.float64)[:, None]
    X_tr, X_te, y_tr, y_te = make_long_tailed(X, y, imbalance_ratio=5, class_order=class_order, random_state=3)
    # the hand-written loop: ranks the classes, then permutes each one's np.flatnonzero(y == c)
    rng = check_random_state(3)
    classes, sizes = np.unique(y, return_counts=True)
    tiebreak = rng.permutation(len(classes))
    order = np.lexsort((tiebreak, -sizes)) if class_order == "size" else tiebreak
    n_test = int(sizes.min()) // 2
    train, test = [], []
    for c, k in zip(classes[order], np.bincount(y_tr, minlength=6)[classes[order]]):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:n_test])
        train.append(idx[n_test : n_test + k])
    np.testing.assert_array_equal(X_tr[:, 0], np.concatenate(train))
    np.testing.assert_array_equal(X_te[:, 0], np.concatenate(test))


def test_class_balanced_sampler_draws_the_same_indices():
    y = LABELS[2]
    s = ClassBalancedSampler(y, batch_size=50, n_draws=500, generator=torch.Generator().manual_seed(0))
    drawn = torch.cat(list(s)).numpy()
    # the table the sampler used to build by hand
    _, y_enc, counts = np.unique(y, return_inverse=True, return_counts=True)
    order = np.argsort(y_enc, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    g = torch.Generator().manual_seed(0)
    classes = torch.multinomial(torch.full((len(counts),), 1 / len(counts), dtype=torch.float64), 500, True, generator=g)
    offset = (torch.rand(500, generator=g, dtype=torch.float64) * torch.as_tensor(counts)[classes]).long()
    np.testing.assert_array_equal(drawn, order[starts[classes.numpy()] + offset.numpy()])


# ---------------------------------------------------------------- class means


def test_class_means_are_the_per_class_means_in_float64():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4)).astype(np.float32)
    y = rng.integers(0, 5, 300)
    means = class_means(X, y, 5, chunk=64)
    assert means.dtype == np.float64
    for c in range(5):
        np.testing.assert_allclose(means[c], X[y == c].astype(np.float64).mean(0), rtol=1e-12)


def test_weighted_class_means_equal_repeated_rows():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 3))
    y = rng.integers(0, 4, 60)
    w = rng.integers(1, 4, 60)
    repeated = np.repeat(np.arange(60), w)
    np.testing.assert_allclose(class_means(X, y, 4, w), class_means(X[repeated], y[repeated], 4), rtol=1e-12)


def test_a_class_with_zero_weights_gets_its_plain_mean():
    X = np.array([[0.0], [2.0], [4.0], [10.0], [20.0]])
    y = np.array([0, 0, 0, 1, 1])
    w = np.array([1.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(class_means(X, y, 2, w), [[2.0], [15.0]])


def test_class_means_never_copy_x_whole_to_float64(monkeypatch):
    X = np.ones((100, 2), dtype=np.float32)
    y = np.zeros(100, dtype=np.int64)
    converted = []
    real = np.asarray

    def spy(a, dtype=None, **kwargs):
        if dtype is np.float64 and getattr(a, "dtype", None) == np.float32:
            converted.append(len(a))
        return real(a, dtype=dtype, **kwargs)

    monkeypatch.setattr("sklearn_lt.utils._class_stats.np.asarray", spy)
    class_means(X, y, 1, chunk=16)
    assert converted and max(converted) <= 16
