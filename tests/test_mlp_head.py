"""MLPHeadClassifier: architecture, batch handling, errors, and a real-data effect of its losses."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sklearn_lt.metrics import few_shot_accuracy
from sklearn_lt.neural_network import MLPHead, MLPHeadClassifier
from sklearn_lt.torch._net import make_train_sampler


def test_module_layout():
    head = MLPHead(8, 3, (16, 4), batch_norm=True, activation="gelu", dropout=0.2)
    kinds = [type(m) for m in head.body]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.GELU, nn.Dropout] * 2
    assert head.body[0].bias is None  # redundant before batch-norm
    assert (head.classifier.in_features, head.classifier.out_features) == (4, 3)
    plain = MLPHead(8, 3, (16,), batch_norm=False)
    assert [type(m) for m in plain.body] == [nn.Linear, nn.ReLU]
    assert len(MLPHead(8, 3, ()).body) == 0


def test_fit_exposes_module_and_history(small_lt):
    X, X_test, y, _ = small_lt
    clf = MLPHeadClassifier(hidden_layer_sizes=(32,), max_epochs=3, random_state=0).fit(X, y)
    assert isinstance(clf.net_.module_, MLPHead)
    assert len(clf.history_) == 3
    assert clf.predict_proba(X_test).shape == (len(X_test), 6)
    np.testing.assert_allclose(clf.predict_proba(X_test).sum(axis=1), 1, rtol=1e-6)


def test_linear_head_when_no_hidden_layer(small_lt):
    X, _, y, _ = small_lt
    clf = MLPHeadClassifier(hidden_layer_sizes=(), max_epochs=2, random_state=0).fit(X, y)
    assert isinstance(clf.net_.module_.classifier, nn.Linear)
    assert not list(clf.net_.module_.body.parameters())


@pytest.mark.parametrize("n", [129, 130, 257])
def test_batch_norm_never_gets_a_tiny_last_batch(n):
    # 129 = 128 + 1 would hand batch-norm a single sample, which it rejects in training mode
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.arange(n) % 3
    clf = MLPHeadClassifier(hidden_layer_sizes=(8,), batch_size=128, max_epochs=2, random_state=0).fit(X, y)
    assert clf.predict(X).shape == (n,)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 600), batch_size=st.integers(2, 300))
def test_even_batches_property(n, batch_size):
    sampler = make_train_sampler(
        np.zeros(n), sampling="instance", batch_size=batch_size, generator=torch.Generator(), even_batches=True
    )
    sizes = [len(b) for b in sampler]
    seen = torch.cat(list(sampler)).tolist()
    assert len(sizes) == len(sampler)
    assert min(sizes) >= 2 and max(sizes) <= batch_size
    assert max(sizes) - min(sizes) <= max(1, len(sizes) - 1)
    assert len(set(seen)) == len(seen) >= n - 1


def test_class_balanced_even_batches_are_full():
    y = np.array([0] * 95 + [1] * 5)
    sampler = make_train_sampler(y, sampling="class_balanced", batch_size=32, generator=torch.Generator(), even_batches=True)
    assert [len(b) for b in sampler] == [32] * 4


def test_rowwise_predictions_match_batch_to_float32_precision(small_lt):
    # the estimator check `check_methods_subset_invariance` asks for 1e-7 absolute, below float32
    # resolution: check the same invariance at float32 precision here
    X, X_test, y, _ = small_lt
    clf = MLPHeadClassifier(hidden_layer_sizes=(64,), max_epochs=2, random_state=0).fit(X, y)
    full = clf.decision_function(X_test[:20])
    rows = np.vstack([clf.decision_function(x[None]) for x in X_test[:20]])
    np.testing.assert_allclose(rows, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes must be a tuple of positive integers"),
        ({"hidden_layer_sizes": "wide"}, "'hidden_layer_sizes' parameter of MLPHeadClassifier"),
        ({"dropout": 1.0}, "'dropout' parameter"),
        ({"batch_size": 1}, "batch_size must be an integer >= 2"),
        ({"activation": "softplus"}, "'activation' parameter"),
        ({"loss": "focal"}, "'loss' parameter"),
        ({"sampling": "reversed"}, "'sampling' parameter"),
    ],
)
def test_bad_parameters(small_lt, params, match):
    X, _, y, _ = small_lt
    with pytest.raises(ValueError, match=match):
        MLPHeadClassifier(max_epochs=1, **params).fit(X, y)


def test_int_hidden_layer_size_and_batch_size_one_without_batch_norm(small_lt):
    X, _, y, _ = small_lt
    clf = MLPHeadClassifier(hidden_layer_sizes=8, batch_norm=False, batch_size=1, max_epochs=1, random_state=0)
    assert clf.fit(X[::4], y[::4]).net_.module_.classifier.in_features == 8


def test_cross_parameter_rules_are_checked_before_the_data():
    # like the constraints, at the top of fit: a bad combination is reported even with unusable data
    with pytest.raises(ValueError, match="batch_size must be an integer >= 2"):
        MLPHeadClassifier(batch_size=1).fit([[np.nan]], [0])
    with pytest.raises(ValueError, match="hidden_layer_sizes must be a tuple of positive integers"):
        MLPHeadClassifier(hidden_layer_sizes=(4, 0)).fit([[np.nan]], [0])


def test_adjusted_loss_prior_counts_weighted_samples(small_lt):
    """The logit adjustment uses the weighted class totals, as LinearClassifier's does (a weight is a repetition)."""
    X, _, y, _ = small_lt
    w = np.random.RandomState(0).randint(1, 4, len(y)).astype(float)
    clf = MLPHeadClassifier(hidden_layer_sizes=(4,), loss="balanced_softmax", max_epochs=1, random_state=0)
    clf.fit(X, y, sample_weight=w)
    totals = np.bincount(np.searchsorted(clf.classes_, y), weights=w)
    np.testing.assert_allclose(clf.net_.criterion_.adjustment.cpu().numpy(), np.log(totals), rtol=1e-6)


def test_balanced_softmax_raises_few_shot_accuracy_on_letter(letter_lt):
    X, X_test, y, y_test = letter_lt
    kwargs = {"hidden_layer_sizes": (128,), "max_epochs": 15, "random_state": 0}
    ce = MLPHeadClassifier(**kwargs).fit(X, y)
    bs = MLPHeadClassifier(loss="balanced_softmax", **kwargs).fit(X, y)
    few_ce = few_shot_accuracy(y_test, ce.predict(X_test), y_train=y)
    few_bs = few_shot_accuracy(y_test, bs.predict(X_test), y_train=y)
    assert few_bs > few_ce + 0.1, (few_ce, few_bs)
