"""BalancedUndersampleMerger (BTM): subsets, merging, post-training, model kinds, errors, real-data effect."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC
from skorch import NeuralNetClassifier
from torch import nn

from sklearn_lt.ensemble import BalancedUndersampleMerger, draw_balanced_subsets
from sklearn_lt.ensemble._model_kinds import _forward
from sklearn_lt.linear_model import LinearClassifier, LWSClassifier
from sklearn_lt.metrics import geometric_mean_recall, harmonic_mean_recall
from sklearn_lt.neural_network import MLPHeadClassifier
from sklearn_lt.prototypes import LearnedNCM

FAST = {"n_subsets": 3, "finetune_epochs": 3, "post_train_epochs": 2}


def small_mlp(**kwargs):
    return MLPHeadClassifier(hidden_layer_sizes=(16,), max_epochs=5, **kwargs)


def logits(btm, model, X):
    return btm._kind.logits(model, X)


# ---------------------------------------------------------------- subsets


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=2, max_size=8),
    n_per_class=st.integers(1, 15),
    n_subsets=st.integers(0, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_subset_sizes_are_exact_and_reproducible(counts, n_per_class, n_subsets, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    np.random.RandomState(seed).shuffle(y)
    subsets = draw_balanced_subsets(y, n_subsets, n_per_class, random_state=seed)
    assert len(subsets) == n_subsets
    expected = np.minimum(counts, n_per_class)
    for s in subsets:
        assert len(np.unique(s)) == len(s)  # no sample twice
        np.testing.assert_array_equal(np.bincount(y[s], minlength=len(counts)), expected)
    again = draw_balanced_subsets(y, n_subsets, n_per_class, random_state=seed)
    assert all(np.array_equal(a, b) for a, b in zip(subsets, again))


def test_subsets_differ_across_subsets_and_seeds():
    y = np.repeat([0, 1, 2], [200, 50, 4])
    a = draw_balanced_subsets(y, 5, 10, random_state=0)
    b = draw_balanced_subsets(y, 5, 10, random_state=1)
    assert len({tuple(s) for s in a}) == 5
    assert not any(np.array_equal(s, t) for s, t in zip(a, b))
    # a class with at most n_per_class samples is whole in every subset
    assert all(set(np.flatnonzero(y == 2)) <= set(s) for s in a)


def test_estimator_subsets_come_from_the_training_part(small_lt):
    X, _, y, _ = small_lt
    btm = BalancedUndersampleMerger(small_mlp(), n_per_class=7, validation_fraction=0.25, random_state=0, **FAST)
    btm.fit(X, y)
    train = np.setdiff1d(np.arange(len(y)), btm.validation_indices_)
    train_counts = np.bincount(y[train])
    for s in btm.subset_indices_:
        assert not set(s) & set(btm.validation_indices_)
        np.testing.assert_array_equal(np.bincount(y[s], minlength=6), np.minimum(train_counts, 7))
    again = clone(btm).fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(btm.subset_indices_, again.subset_indices_))
    other = clone(btm).set_params(random_state=1).fit(X, y)
    assert not np.array_equal(btm.subset_indices_[0], other.subset_indices_[0])


# ---------------------------------------------------------------- merging


@pytest.mark.parametrize(
    "estimator",
    [
        LinearClassifier(max_epochs=5),
        LogisticRegression(max_iter=200),
        SGDClassifier(loss="log_loss", max_iter=20, tol=None),
        RidgeClassifier(),
    ],
    ids=["LinearClassifier", "LogisticRegression", "SGDClassifier", "RidgeClassifier"],
)
def test_linear_model_merged_logits_are_the_average_of_the_submodels_logits(small_lt, estimator):
    X, X_test, y, _ = small_lt
    btm = BalancedUndersampleMerger(estimator, random_state=0, **FAST).fit(X, y)
    subs = np.mean([logits(btm, m, X_test) for m in btm.finetuned_estimators_], axis=0)
    np.testing.assert_allclose(logits(btm, btm.merged_estimator_, X_test), subs, rtol=1e-5, atol=1e-5)
    # and the sub-models really differ (otherwise the identity is trivial)
    assert not np.allclose(logits(btm, btm.finetuned_estimators_[0], X_test), subs, atol=1e-3)


def test_mlp_merge_averages_every_parameter_and_buffer_and_is_not_an_ensemble(small_lt):
    X, X_test, y, _ = small_lt
    btm = BalancedUndersampleMerger(small_mlp(), random_state=0, **FAST).fit(X, y)
    states = [m.net_.module_.state_dict() for m in btm.finetuned_estimators_]
    merged = btm.merged_estimator_.net_.module_.state_dict()
    assert any("running_var" in k for k in merged)
    for key, value in merged.items():
        mean = torch.stack([s[key].double() for s in states]).mean(0)
        if value.is_floating_point():
            torch.testing.assert_close(value.double(), mean, rtol=1e-6, atol=1e-6)
        else:  # num_batches_tracked
            assert value.item() == round(mean.item())
    ensemble = np.mean([logits(btm, m, X_test) for m in btm.finetuned_estimators_], axis=0)
    assert not np.allclose(logits(btm, btm.merged_estimator_, X_test), ensemble, atol=1e-3)


def test_post_training_changes_only_the_final_linear_layer(small_lt):
    X, _, y, _ = small_lt
    btm = BalancedUndersampleMerger(small_mlp(), random_state=0, **FAST).fit(X, y)
    merged = btm.merged_estimator_.net_.module_.state_dict()
    final = btm.estimator_.net_.module_.state_dict()
    for key in merged:
        if key.startswith("body."):
            torch.testing.assert_close(final[key], merged[key], rtol=0, atol=0)
    assert not torch.equal(final["classifier.weight"], merged["classifier.weight"])
    assert len(btm.post_train_history_) == FAST["post_train_epochs"]


def test_no_subsets_is_post_training_alone_and_no_post_training_is_the_merge(small_lt):
    X, X_test, y, _ = small_lt
    base = BalancedUndersampleMerger(small_mlp(), n_subsets=0, random_state=0).fit(X, y)
    assert base.merged_estimator_ is base.pretrained_estimator_
    assert base.finetuned_estimators_ == [] and len(base.soup_ingredients_) == 0
    raw = BalancedUndersampleMerger(small_mlp(), post_train=False, random_state=0, **FAST).fit(X, y)
    np.testing.assert_array_equal(raw.decision_function(X_test), logits(raw, raw.merged_estimator_, X_test))


def test_recalibrated_batch_norm_holds_the_training_statistics(small_lt):
    X, _, y, _ = small_lt
    btm = BalancedUndersampleMerger(small_mlp(), recalibrate_bn=True, post_train=False, random_state=0, **FAST)
    btm.fit(X, y)
    module = btm.merged_estimator_.net_.module_
    device = next(module.parameters()).device
    _, pre_bn = _forward(module, X, device, capture=module.body[1])
    bn = module.body[1]
    np.testing.assert_allclose(bn.running_mean.cpu().numpy(), pre_bn.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_var.cpu().numpy(), pre_bn.var(0, ddof=1), rtol=1e-3, atol=1e-5)
    assert bn.momentum == 0.1  # restored


def test_greedy_soup_keeps_a_soup_at_least_as_good_as_its_best_ingredient(small_lt):
    X, _, y, _ = small_lt
    btm = BalancedUndersampleMerger(
        small_mlp(), merge="greedy_soup", n_subsets=4, finetune_epochs=3, post_train_epochs=2,
        validation_fraction=0.3, soup_scoring="balanced_accuracy", random_state=0,
    ).fit(X, y)
    scores = btm.validation_scores_
    assert scores["model"] == ["pretrained", "finetuned_0", "finetuned_1", "finetuned_2", "finetuned_3", "merged", "final"]
    individual = scores["soup_score"][1:5]
    assert 1 <= len(btm.soup_ingredients_) <= 4
    assert np.argmax(individual) in btm.soup_ingredients_
    assert scores["soup_score"][5] >= max(individual)
    for key in ("harmonic_mean_recall", "geometric_mean_recall", "accuracy", "balanced_accuracy"):
        assert len(scores[key]) == 7 and all(0 <= v <= 1 for v in scores[key])


@pytest.mark.parametrize("params", [{}, {"validation_fraction": 0}])
def test_no_validation_no_scores(small_lt, params):
    X, _, y, _ = small_lt
    btm = BalancedUndersampleMerger(small_mlp(), random_state=0, **FAST, **params).fit(X, y)
    assert btm.validation_scores_ is None and btm.validation_indices_ is None


def test_no_validation_split_is_zero_as_in_the_other_estimators():
    assert BalancedUndersampleMerger().validation_fraction == 0
    assert BalancedUndersampleMerger().validation_fraction == LearnedNCM().validation_fraction


# ---------------------------------------------------------------- kinds of model


def test_frozen_estimator_is_used_not_refitted_nor_modified(small_lt):
    X, X_test, y, _ = small_lt
    pre = small_mlp(random_state=0).fit(X, y)
    before = {k: v.clone() for k, v in pre.net_.module_.state_dict().items()}
    btm = BalancedUndersampleMerger(FrozenEstimator(pre), random_state=0, **FAST).fit(X, y)
    np.testing.assert_array_equal(logits(btm, btm.pretrained_estimator_, X_test), pre.decision_function(X_test))
    for k, v in pre.net_.module_.state_dict().items():
        assert torch.equal(v, before[k])


def test_frozen_estimator_with_other_classes_is_rejected(small_lt):
    X, _, y, _ = small_lt
    pre = small_mlp(random_state=0).fit(X, y + 10)
    with pytest.raises(ValueError, match="classes_ .* differ from the classes in y"):
        BalancedUndersampleMerger(FrozenEstimator(pre), **FAST).fit(X, y)


class _MLP(nn.Module):
    def __init__(self, softmax=False):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.out = nn.Linear(16, 6)
        self.softmax = softmax

    def forward(self, X):
        z = self.out(self.hidden(X))
        return torch.softmax(z, dim=1) if self.softmax else z


def _skorch(softmax=False):
    return NeuralNetClassifier(
        _MLP, module__softmax=softmax, criterion=nn.CrossEntropyLoss, max_epochs=5, lr=0.1, train_split=None,
        verbose=0,
    )


def test_skorch_net_with_string_labels(small_lt):
    X, X_test, y, _ = small_lt
    labels = np.array(list("abcdef"), dtype=object)[y]
    btm = BalancedUndersampleMerger(_skorch(), random_state=0, **FAST).fit(X, labels)
    assert set(btm.predict(X_test)) <= set(labels)
    assert isinstance(btm.estimator_, NeuralNetClassifier)
    subs = [m.module_.out.weight for m in btm.finetuned_estimators_]
    torch.testing.assert_close(btm.merged_estimator_.module_.out.weight, torch.stack(subs).mean(0))


def test_skorch_net_ending_in_softmax_is_rejected(small_lt):
    X, _, y, _ = small_lt
    with pytest.raises(TypeError, match="does not end in a torch.nn.Linear layer"):
        BalancedUndersampleMerger(_skorch(softmax=True), **FAST).fit(X, y)


@pytest.mark.parametrize(
    "estimator, match",
    [
        (RandomForestClassifier(n_estimators=3), "cannot fine-tune and merge a RandomForestClassifier"),
        (SVC(), "cannot fine-tune and merge a SVC"),
        (LWSClassifier(max_epochs=1), "does not end in a torch.nn.Linear layer"),
    ],
)
def test_unsupported_models_get_a_clear_error(small_lt, estimator, match):
    X, _, y, _ = small_lt
    with pytest.raises(TypeError, match=match):
        BalancedUndersampleMerger(estimator, **FAST).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"merge": "greedy_soup"}, "merge='greedy_soup' scores candidate soups on held-out data"),
        ({"merge": "greedy_soup", "validation_fraction": 0.0}, "merge='greedy_soup' scores candidate soups"),
        ({"validation_fraction": None}, "'validation_fraction' parameter"),
        ({"merge": "median"}, "'merge' parameter of BalancedUndersampleMerger"),
        ({"n_per_class": 0}, "'n_per_class' parameter"),
        ({"n_subsets": -1}, "'n_subsets' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"post_train_sampling": "reversed"}, "'post_train_sampling' parameter"),
        ({"finetune_batch_size": 1}, "'finetune_batch_size' parameter"),
        ({"fc_epochs": -1}, "'fc_epochs' parameter"),
        ({"soup_scoring": "no_such_metric", "merge": "greedy_soup", "validation_fraction": 0.2}, "no_such_metric"),
    ],
)
def test_bad_parameters(small_lt, params, match):
    X, _, y, _ = small_lt
    with pytest.raises(ValueError, match=match):
        BalancedUndersampleMerger(small_mlp(), **params).fit(X, y)


def test_grid_search_over_subsets(small_lt):
    X, _, y, _ = small_lt
    grid = GridSearchCV(
        BalancedUndersampleMerger(small_mlp(), finetune_epochs=2, post_train_epochs=1, random_state=0),
        {"n_subsets": [1, 2], "n_per_class": [3, 10]},
        cv=2,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 4 and np.isfinite(grid.best_score_)


# ---------------------------------------------------------------- the paper's observations on real data


def test_balanced_finetuning_and_merging_lift_the_worst_classes_on_letter(letter_lt):
    """Observations 1 and 4 of the paper on real data: fine-tuning on balanced few-shot subsets raises the
    geometric and harmonic mean recall of a pre-trained (imbalance-blind) model, and the merged model beats
    the average sub-model."""
    X, X_test, y, y_test = letter_lt
    pre = MLPHeadClassifier(hidden_layer_sizes=(128,), max_epochs=20, random_state=0).fit(X, y)
    btm = BalancedUndersampleMerger(
        FrozenEstimator(pre), n_subsets=5, finetune_lr=0.02, finetune_batch_size="auto", post_train=False,
        random_state=0,
    ).fit(X, y)

    def g_and_h(model):
        pred = btm.classes_[np.argmax(logits(btm, model, X_test), axis=1)]
        return geometric_mean_recall(y_test, pred), harmonic_mean_recall(y_test, pred)

    g_pre, h_pre = g_and_h(pre)
    subs = np.array([g_and_h(m) for m in btm.finetuned_estimators_])
    g_merged, h_merged = g_and_h(btm.merged_estimator_)
    assert subs[:, 0].min() > g_pre + 0.05, (g_pre, subs)
    assert g_merged > subs[:, 0].mean() + 0.01 and h_merged > h_pre, (g_merged, subs, h_merged, h_pre)


def test_mixup_loss_and_finetuning(small_lt):
    from sklearn_lt.ensemble._model_kinds import _MixupCrossEntropy

    logits_ = torch.randn(5, 3)
    y_a, y_b = torch.tensor([0, 1, 2, 0, 1]), torch.tensor([2, 2, 0, 1, 1])
    ce = nn.functional.cross_entropy
    pair = torch.stack([y_a, y_b], dim=1)
    torch.testing.assert_close(_MixupCrossEntropy()(logits_, pair, torch.tensor(1.0)), ce(logits_, y_a))
    torch.testing.assert_close(
        _MixupCrossEntropy()(logits_, pair, torch.tensor(0.3)), 0.3 * ce(logits_, y_a) + 0.7 * ce(logits_, y_b)
    )
    X, X_test, y, _ = small_lt
    plain = BalancedUndersampleMerger(small_mlp(), random_state=0, **FAST).fit(X, y)
    mixed = BalancedUndersampleMerger(small_mlp(), finetune_mixup=0.2, random_state=0, **FAST).fit(X, y)
    assert not np.allclose(plain.decision_function(X_test), mixed.decision_function(X_test))


def test_sklearn_linear_model_btm_is_not_its_baseline(small_lt):
    """Regression: a warm-started refit converged to the subset's, then the full data's optimum whatever the
    start, so BTM on LogisticRegression returned its baseline (logits within 0.014, same predictions)."""
    X, X_test, y, _ = small_lt
    params = {"finetune_lr": 0.02, "finetune_batch_size": "auto", "random_state": 0}
    btm = BalancedUndersampleMerger(LogisticRegression(), **params).fit(X, y)
    base = BalancedUndersampleMerger(LogisticRegression(), n_subsets=0, **params).fit(X, y)
    assert np.abs(btm.decision_function(X_test) - base.decision_function(X_test)).max() > 1.0
    assert np.mean(btm.predict(X_test) != base.predict(X_test)) > 0.05


@pytest.mark.parametrize("n_classes", [2, 6])
def test_sklearn_linear_model_stages_start_from_the_previous_weights(small_lt, n_classes):
    """Fine-tuning and post-training are SGD steps from the previous stage's coef_ and intercept_: with a zero
    learning rate they change nothing (a refit would land on the optimum instead)."""
    X, X_test, y, _ = small_lt
    keep = y < n_classes
    X, y = X[keep], y[keep]
    pre = LogisticRegression().fit(X, y)
    still = BalancedUndersampleMerger(FrozenEstimator(pre), finetune_lr=0.0, post_train_lr=0.0, **FAST).fit(X, y)
    for model in [*still.finetuned_estimators_, still.merged_estimator_, still.estimator_]:
        assert model.coef_.shape == pre.coef_.shape and model.coef_.dtype == pre.coef_.dtype
        np.testing.assert_allclose(model.decision_function(X_test), pre.decision_function(X_test), rtol=1e-5, atol=1e-5)
    moved = BalancedUndersampleMerger(
        FrozenEstimator(pre), finetune_lr=0.05, finetune_batch_size=8, post_train_lr=0.0, random_state=0, **FAST
    ).fit(X, y)
    np.testing.assert_allclose(moved.decision_function(X_test), moved.merged_estimator_.decision_function(X_test),
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(moved.merged_estimator_.decision_function(X_test), pre.decision_function(X_test), atol=0.05)
    assert len(moved.post_train_history_) == FAST["post_train_epochs"]
    assert all(len(h) == FAST["finetune_epochs"] for h in moved.finetune_histories_)


# ---------------------------------------------------------------- the paper's "FC" stage


def test_fc_stage_retrains_only_the_final_layer_with_cross_entropy_before_finetuning(small_lt):
    X, _, y, _ = small_lt
    pre = small_mlp(loss="balanced_softmax", random_state=0).fit(X, y)
    btm = BalancedUndersampleMerger(
        FrozenEstimator(pre), fc_epochs=3, validation_fraction=0.2, random_state=0, **FAST
    ).fit(X, y)
    assert len(btm.fc_history_) == 3
    assert btm.validation_scores_["model"][:2] == ["pretrained", "fc"]
    fc = btm.fc_estimator_.net_.module_.state_dict()
    for key, value in pre.net_.module_.state_dict().items():
        if key.startswith("body."):
            torch.testing.assert_close(fc[key], value, rtol=0, atol=0)
    assert not torch.equal(fc["classifier.weight"], pre.net_.module_.state_dict()["classifier.weight"])
    # a balanced-softmax model predicts rare classes more often than after cross-entropy re-training
    X_train = X[np.setdiff1d(np.arange(len(y)), btm.validation_indices_)]
    rare = np.bincount(y).argmin()
    assert np.mean(pre.predict(X_train) == rare) >= np.mean(btm.fc_estimator_.predict(X_train) == rare)
    # fine-tuning starts from the FC stage's model, not the pre-trained one
    no_fc = BalancedUndersampleMerger(FrozenEstimator(pre), validation_fraction=0.2, random_state=0, **FAST).fit(X, y)
    assert no_fc.fc_estimator_ is None and no_fc.fc_history_ is None
    first, first_no_fc = btm.finetuned_estimators_[0], no_fc.finetuned_estimators_[0]
    assert not np.allclose(logits(btm, first, X), logits(no_fc, first_no_fc, X))
