"""AlphaNetClassifier: the paper's invariants, the training protocol, errors and one real-data effect."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier

from sklearn_lt.datasets import make_long_tailed_classification
from sklearn_lt.linear_model import AlphaNetClassifier, LinearClassifier, linear_weights
from sklearn_lt.linear_model._alphanet import (
    AlphaNetModule,
    FewPlusBaseSampler,
    _balanced_cross_entropy,
    matched_logit_scale,
    with_base_scores,
)
from sklearn_lt.metrics import few_shot_accuracy, harmonic_mean_recall

FAST = dict(max_epochs=3, min_epochs=1)


@pytest.fixture(scope="module")
def lt10():
    """10 classes of 300 ... 3 training samples: 4 few classes (13, 8, 5, 3), 6 base classes."""
    return make_long_tailed_classification(random_state=0)


def _fast_base(seed=0):
    return LinearClassifier(sampling="class_balanced", max_epochs=5, random_state=seed)


# --------------------------------------------------------------------------- the bound (eq. 3)


@settings(max_examples=60, deadline=None)
@given(
    n_base=st.integers(2, 8),
    n_few=st.integers(1, 5),
    n_features=st.integers(1, 12),
    k=st.integers(1, 7),
    output_scale=st.sampled_from([0.0, 1e-30, 1e-6, 1.0, 1e4]),
    use_own_weights=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_module_change_is_bounded_by_largest_neighbour(n_base, n_few, n_features, k, output_scale, use_own_weights, seed):
    k = min(k, n_base - 1) or 1
    rng = np.random.RandomState(seed)
    n_classes = n_base + n_few
    W = rng.normal(scale=rng.choice([1e-3, 1.0, 100.0]), size=(n_classes, n_features))
    b = rng.normal(size=n_classes)
    few = np.sort(rng.choice(n_classes, n_few, replace=False))
    base = np.setdiff1d(np.arange(n_classes), few)
    neighbors = np.stack([rng.choice(base, k, replace=False) for _ in few])
    torch.manual_seed(seed)
    module = AlphaNetModule(W, b, few, neighbors, hidden_layer_sizes=(4, 3), use_own_weights=use_own_weights)
    with torch.no_grad():
        module.mlp[-1].weight.mul_(output_scale)
        module.mlp[-1].bias.mul_(output_scale)
        W32 = module.weight.double()
        change = (module.few_weights().double() - W32[few]).norm(dim=1)
        bound = W32[torch.as_tensor(neighbors)].norm(dim=2).max(dim=1).values
        assert torch.all(change <= bound * (1 + 1e-5) + 1e-30)
        assert torch.all(module.alphas().abs().sum(dim=1) <= 1 + 1e-6)
        if output_scale == 0.0:  # all-zero coefficients: guarded, the class is unchanged
            assert torch.equal(module.few_weights(), module.weight[few])
        X = torch.as_tensor(rng.normal(size=(5, n_features)), dtype=torch.float32)
        logits = module(X)
        W_hat = module.weight.index_copy(0, module.few_indices, module.few_weights())
        tol = dict(rtol=1e-5, atol=1e-5 * max(1.0, float(logits.abs().max())))  # float32 sums of large terms
        torch.testing.assert_close(logits, X @ W_hat.T + module.bias, **tol)
        # the same scores from precomputed base scores (the validation path)
        torch.testing.assert_close(module(torch.as_tensor(with_base_scores(X.numpy(), W, b))), logits, **tol)
        # base rows and biases are the base classifier's, bit for bit
        assert torch.equal(W_hat[base], torch.as_tensor(W[base], dtype=torch.float32))
        assert torch.equal(module.bias, torch.as_tensor(b, dtype=torch.float32))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 1000),
    n_neighbors=st.integers(1, 3),
    metric=st.sampled_from(["euclidean", "cosine"]),
    learn_few_bias=st.booleans(),
)
def test_fitted_coef_bound_and_base_rows_exact(seed, n_neighbors, metric, learn_few_bias):
    X, _, y, _ = make_long_tailed_classification(n_classes=8, n_features=6, n_max=150, random_state=seed)
    clf = AlphaNetClassifier(
        _fast_base(seed),
        n_neighbors=n_neighbors,
        metric=metric,
        learn_few_bias=learn_few_bias,
        random_state=seed,
        **FAST,
    ).fit(X, y)
    W, b = linear_weights(clf.estimator_)
    few = np.isin(clf.classes_, clf.few_classes_)
    assert few.any()
    np.testing.assert_array_equal(clf.coef_[~few], W[~few])
    np.testing.assert_array_equal(clf.intercept_[~few], b[~few])
    if not learn_few_bias:
        np.testing.assert_array_equal(clf.intercept_, b)
    rows = {c: i for i, c in enumerate(clf.classes_)}
    for j, c in enumerate(clf.few_classes_):
        v = W[[rows[n] for n in clf.neighbors_[j]]]
        change = np.linalg.norm(clf.coef_[rows[c]] - W[rows[c]])
        assert change <= np.linalg.norm(v, axis=1).max() * (1 + 1e-12)
        np.testing.assert_allclose(clf.coef_[rows[c]], W[rows[c]] + clf.alphas_[j] @ v)
    np.testing.assert_allclose(np.abs(clf.alphas_).sum(axis=1), 1.0)


# --------------------------------------------------------------------------- neighbours


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_neighbours_are_nearest_base_class_means(lt10, metric):
    X, _, y, _ = lt10
    clf = AlphaNetClassifier(_fast_base(), n_neighbors=3, metric=metric, random_state=0, **FAST).fit(X, y)
    # the means are taken on the part AlphaNet trains on; recompute them on the same split
    from sklearn_lt.utils import tail_safe_validation_split

    seeds = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=5)
    train, _ = tail_safe_validation_split(np.searchsorted(clf.classes_, y), 0.1, random_state=seeds[0])
    X64 = X.astype(np.float64)
    means = np.stack([X64[train][y[train] == c].mean(axis=0) for c in clf.classes_])
    few = np.isin(clf.classes_, clf.few_classes_)
    base_labels = clf.classes_[~few]
    dist = cdist(means[few], means[~few], metric="euclidean" if metric == "euclidean" else "cosine")
    expected = base_labels[np.argsort(dist, axis=1, kind="stable")[:, :3]]
    np.testing.assert_array_equal(clf.neighbors_, expected)
    np.testing.assert_allclose(clf.neighbor_distances_, np.sort(dist, axis=1)[:, :3], rtol=1e-10, atol=1e-12)
    assert not np.isin(clf.neighbors_, clf.few_classes_).any(), "few classes are never neighbours"


def test_random_neighbours_are_distinct_base_classes(lt10):
    X, _, y, _ = lt10
    near = AlphaNetClassifier(_fast_base(), n_neighbors=3, random_state=0, **FAST).fit(X, y)
    rand = AlphaNetClassifier(_fast_base(), n_neighbors=3, neighbor_selection="random", random_state=0, **FAST).fit(X, y)
    assert not np.isin(rand.neighbors_, rand.few_classes_).any()
    assert all(len(set(row)) == 3 for row in rand.neighbors_)
    assert not np.array_equal(near.neighbors_, rand.neighbors_)
    assert rand.neighbor_distances_.mean() > near.neighbor_distances_.mean()


def test_random_neighbours_keep_their_draw_order():
    """The paper's control draws neighbours at random: they are not re-sorted by distance."""
    X, _, y, _ = make_long_tailed_classification(n_classes=40, n_features=6, n_max=200, imbalance_ratio=50, random_state=0)
    clf = AlphaNetClassifier(
        _fast_base(), n_neighbors=5, neighbor_selection="random", validation_fraction=0, random_state=0, **FAST
    ).fit(X, y)
    few = np.isin(clf.classes_, clf.few_classes_)
    base = np.flatnonzero(~few)
    neighbor_seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=5)[2]
    draw = np.random.RandomState(neighbor_seed)
    expected = np.stack([clf.classes_[base[draw.choice(len(base), 5, replace=False)]] for _ in range(few.sum())])
    np.testing.assert_array_equal(clf.neighbors_, expected)
    X64 = X.astype(np.float64)
    means = {c: X64[y == c].mean(axis=0) for c in clf.classes_}
    for c, row, dist in zip(clf.few_classes_, clf.neighbors_, clf.neighbor_distances_):
        np.testing.assert_allclose(dist, [np.linalg.norm(means[c] - means[n]) for n in row], rtol=1e-6)
    assert len(clf.few_classes_) >= 10
    assert (np.diff(clf.neighbor_distances_, axis=1) < 0).any(axis=1).mean() > 0.5, "rows are not sorted by distance"


# --------------------------------------------------------------------------- sampling


def test_sampler_takes_every_few_sample_once_plus_balanced_base_draws():
    y = np.array([0] * 500 + [1] * 50 + [2] * 5 + [3] * 10 + [4] * 2)
    few_mask = y >= 2  # F = 17 few-split samples
    gen = torch.Generator().manual_seed(0)
    sampler = FewPlusBaseSampler(y, few_mask, rho=1.5, batch_size=4, generator=gen)
    epochs = [torch.cat(list(sampler)).numpy() for _ in range(400)]
    assert len(sampler) == -(-(17 + 25) // 4) and all(len(e) == 17 + 25 for e in epochs)
    assert [len(b) for b in sampler][:-1] == [4] * (len(sampler) - 1)
    for e in epochs[:20]:
        np.testing.assert_array_equal(np.sort(e[few_mask[e]]), np.flatnonzero(few_mask))
    base_draws = np.concatenate([e[~few_mask[e]] for e in epochs])
    share = np.bincount(y[base_draws], minlength=2)[:2] / len(base_draws)
    np.testing.assert_allclose(share, [0.5, 0.5], atol=0.03)  # class-balanced, not 10:1
    assert len(np.unique(base_draws[y[base_draws] == 1])) == 50
    assert not np.array_equal(epochs[0], epochs[1]), "redrawn and reshuffled every epoch"


def test_sampler_rho_zero_uses_only_few_samples():
    y = np.array([0] * 30 + [1] * 3)
    sampler = FewPlusBaseSampler(y, y == 1, rho=0.0, batch_size=64)
    assert sorted(torch.cat(list(sampler)).tolist()) == [30, 31, 32]


# --------------------------------------------------------------------------- training protocol


def test_epoch_kept_is_best_validation_epoch_from_min_epochs(lt10):
    X, X_test, y, y_test = lt10
    X_before = X_test.copy()
    clf = AlphaNetClassifier(_fast_base(), n_neighbors=3, max_epochs=12, min_epochs=4, random_state=1).fit(
        X, y, X_val=X_test, y_val=y_test
    )
    scores = np.array(clf.history_[:, "valid_score"])
    kept = np.array(clf.history_[:, "kept"])
    assert clf.best_epoch_ >= 4 and kept[clf.best_epoch_ - 1]
    assert scores[clf.best_epoch_ - 1] == scores[3:].max()
    assert np.flatnonzero(scores[3:] == scores[3:].max())[0] + 4 == clf.best_epoch_
    # the exported linear model is the kept epoch's model
    labels, y_idx = np.unique(y_test, return_inverse=True)
    hits = clf.predict(X_test) == y_test
    assert np.isclose(np.mean(np.bincount(y_idx, hits) / np.bincount(y_idx)), scores[clf.best_epoch_ - 1])
    np.testing.assert_array_equal(X_test, X_before)
    # the schedule: AdamW 1e-3, x0.1 every 10 epochs
    np.testing.assert_allclose(clf.history_[:, "event_lr"], [1e-3] * 10 + [1e-4] * 2)
    opt = clf.net_.optimizer_
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["weight_decay"] == 0.01 and opt.defaults["eps"] == 1e-8


def test_without_validation_keeps_last_epoch(lt10):
    X, _, y, _ = lt10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = AlphaNetClassifier(_fast_base(), n_neighbors=2, validation_fraction=0, random_state=0, **FAST).fit(X, y)
    assert clf.best_epoch_ == 3 and clf.logit_scale_ == 1.0
    assert "valid_score" not in clf.history_[-1]
    with pytest.warns(UserWarning, match="logit_scale='auto' needs validation data"):
        clf = AlphaNetClassifier(
            _fast_base(), n_neighbors=2, logit_scale="auto", validation_fraction=0, random_state=0, **FAST
        ).fit(X, y)
    assert clf.logit_scale_ == 1.0


def test_default_logit_scale_is_the_papers_and_auto_is_an_option(lt10):
    X, _, y, _ = lt10
    assert AlphaNetClassifier().logit_scale == 1.0
    paper = AlphaNetClassifier(_fast_base(), n_neighbors=2, random_state=0, **FAST).fit(X, y)
    assert paper.logit_scale_ == 1.0 and paper.net_.module_.logit_scale == 1.0
    auto = AlphaNetClassifier(_fast_base(), n_neighbors=2, logit_scale="auto", random_state=0, **FAST).fit(X, y)
    assert 0 < auto.logit_scale_ <= 1.0 and auto.net_.module_.logit_scale == auto.logit_scale_


def test_fitted_base_is_the_training_part_model_and_predicts_on_its_own(lt10):
    """``estimator_`` is AlphaNet's own starting point: same split, same seed, usable for paired comparisons."""
    from sklearn_lt.utils import tail_safe_validation_split

    X, X_test, y, y_test = lt10
    clf = AlphaNetClassifier(n_neighbors=3, max_epochs=3, min_epochs=1, random_state=0).fit(X, y)
    split_seed, base_seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=5)[:2]
    train, _ = tail_safe_validation_split(np.searchsorted(clf.classes_, y), 0.1, random_state=split_seed)
    assert len(train) < len(y)
    alone = LinearClassifier(sampling="class_balanced", random_state=int(base_seed)).fit(X[train], y[train])
    np.testing.assert_array_equal(clf.estimator_.coef_, alone.coef_)
    np.testing.assert_array_equal(clf.estimator_.predict(X_test), alone.predict(X_test))
    few = np.isin(clf.classes_, clf.few_classes_)
    np.testing.assert_array_equal(clf.coef_[~few], clf.estimator_.coef_[~few])
    assert (clf.predict(X_test) != clf.estimator_.predict(X_test)).any()


def test_frozen_base_is_corrected_not_refitted(lt10):
    X, X_test, y, y_test = lt10
    base = LogisticRegression(max_iter=500).fit(X, y)
    coef_before = base.coef_.copy()
    clf = AlphaNetClassifier(FrozenEstimator(base), n_neighbors=2, random_state=0, **FAST).fit(X, y)
    np.testing.assert_array_equal(base.coef_, coef_before)
    few = np.isin(clf.classes_, clf.few_classes_)
    np.testing.assert_array_equal(clf.coef_[~few], base.coef_[~few])
    assert not np.array_equal(clf.coef_[few], base.coef_[few])
    np.testing.assert_array_equal(clf.predict(X_test), clf.classes_[np.argmax(X_test @ clf.coef_.T + clf.intercept_, 1)])


def test_learn_few_bias_changes_only_few_biases(lt10):
    X, _, y, _ = lt10
    clf = AlphaNetClassifier(_fast_base(), n_neighbors=2, learn_few_bias=True, random_state=0, **FAST).fit(X, y)
    _, b = linear_weights(clf.estimator_)
    few = np.isin(clf.classes_, clf.few_classes_)
    np.testing.assert_array_equal(clf.intercept_[~few], b[~few])
    assert not np.allclose(clf.intercept_[few], b[few])


def test_unit_sample_weights_equal_no_weights(lt10):
    X, _, y, _ = lt10
    a = AlphaNetClassifier(_fast_base(), n_neighbors=2, random_state=0, **FAST).fit(X, y)
    b = AlphaNetClassifier(_fast_base(), n_neighbors=2, random_state=0, **FAST).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_matched_logit_scale_equalises_training_and_validation_loss():
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(4), 30)
    confident = 12.0 * np.eye(4)[y] + rng.normal(size=(120, 4))  # memorised training samples
    held_out = 2.0 * np.eye(4)[y] + rng.normal(size=(120, 4))
    s = matched_logit_scale(confident, y, held_out, y)
    assert 0 < s < 1
    assert np.isclose(_balanced_cross_entropy(confident, y, s), _balanced_cross_entropy(held_out, y, 1.0), atol=1e-3)
    assert matched_logit_scale(held_out, y, confident, y) == 1.0  # no over-fitting: no change
    assert matched_logit_scale(confident, y, -held_out, y) == 1.0  # base worse than chance: no change


def test_grid_search_over_rho_and_neighbours_with_long_tail_scorer(lt10):
    X, _, y, _ = lt10
    grid = GridSearchCV(
        AlphaNetClassifier(_fast_base(), random_state=0, **FAST),
        {"rho": [0.5, 1.0], "n_neighbors": [1, 2]},
        scoring=make_scorer(harmonic_mean_recall),
        cv=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        grid.fit(X, y)
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert set(grid.best_params_) == {"rho", "n_neighbors"}


def test_pipeline_transforms_the_validation_data(lt10):
    """X_val follows scikit-learn's naming, so a Pipeline can scale it like X (metadata routing)."""
    from sklearn import config_context
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, X_test, y, y_test = lt10
    X, X_test = 100 * X + 5, 100 * X_test + 5
    with config_context(enable_metadata_routing=True):
        an = AlphaNetClassifier(_fast_base(), n_neighbors=2, random_state=0, **FAST).set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("alphanet", an)], transform_input=["X_val"])
        pipe.fit(X, y, X_val=X_test, y_val=y_test)
    kept = pipe[-1].best_epoch_ - 1
    assert np.isclose(pipe[-1].history_[kept, "valid_score"], pipe.score(X_test, y_test))  # balanced test set


# --------------------------------------------------------------------------- errors


def test_too_many_neighbours_uses_every_base_class_with_a_warning(lt10):
    """Issue 15, item 10: fewer base classes than n_neighbors was an error, so AlphaNetClassifier() failed on
    small data (scikit-learn's checks, CV folds); it now combines all the base classes there are."""
    X, _, y, _ = lt10
    with pytest.warns(UserWarning, match="n_neighbors=8 but there are only 6 base classes"):
        clf = AlphaNetClassifier(_fast_base(), n_neighbors=8, max_epochs=2, random_state=0).fit(X, y)
    assert clf.n_neighbors_ == 6 and clf.neighbors_.shape == (len(clf.few_classes_), 6)
    assert np.all(np.isfinite(clf.coef_))


def test_fit_warnings_point_at_the_callers_line(lt10):
    X, _, y, _ = lt10
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AlphaNetClassifier(_fast_base(), n_neighbors=8, logit_scale="auto", validation_fraction=0, max_epochs=1).fit(X, y)
        AlphaNetClassifier(_fast_base(), few_threshold=3, random_state=0).fit(X, y)
    messages = [w for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 3
    assert all(w.filename == __file__ for w in messages), [(w.filename, str(w.message)[:40]) for w in messages]


def test_no_base_class_warns_and_equals_base(lt10):
    X, X_test, y, _ = lt10
    with pytest.warns(UserWarning, match="no base class to borrow weights from"):
        clf = AlphaNetClassifier(_fast_base(), few_threshold=10_000, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.predict(X_test), clf.estimator_.predict(X_test))


def test_no_few_class_warns_and_equals_base(lt10):
    X, X_test, y, _ = lt10
    with pytest.warns(UserWarning, match="no class has fewer than few_threshold=3"):
        clf = AlphaNetClassifier(_fast_base(), few_threshold=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.predict(X_test), clf.estimator_.predict(X_test))
    assert clf.alphas_.shape == (0, 5) and clf.net_ is None


@pytest.mark.parametrize(
    "params, match",
    [
        ({"rho": -1}, "'rho' parameter of AlphaNetClassifier"),
        ({"metric": "manhattan"}, "'metric' parameter of AlphaNetClassifier"),
        ({"neighbor_selection": "far"}, "'neighbor_selection' parameter"),
        ({"hidden_layer_sizes": ()}, "hidden_layer_sizes must be a non-empty tuple"),
        ({"hidden_layer_sizes": (32, 0)}, "hidden_layer_sizes must be a non-empty tuple"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"logit_scale": 0}, "'logit_scale' parameter"),
        ({"logit_scale": "big"}, "'logit_scale' parameter"),
        ({"scoring": "f1"}, "'scoring' parameter"),
        ({"n_neighbors": 0}, "'n_neighbors' parameter"),
    ],
)
def test_bad_parameters(lt10, params, match):
    X, _, y, _ = lt10
    with pytest.raises(ValueError, match=match):
        AlphaNetClassifier(**params).fit(X, y)


def test_bad_validation_data(lt10):
    X, X_test, y, y_test = lt10
    clf = AlphaNetClassifier(n_neighbors=2)
    with pytest.raises(ValueError, match="pass both X_val and y_val"):
        clf.fit(X, y, X_val=X_test)
    with pytest.raises(ValueError, match="y_val has labels not seen in y: \\[99\\]"):
        clf.fit(X, y, X_val=X_test[:2], y_val=[0, 99])
    with pytest.raises(ValueError, match="X has 3 features, but AlphaNetClassifier is expecting 16"):
        clf.fit(X, y, X_val=X_test[:, :3], y_val=y_test)


def test_base_without_weights_is_a_type_error(lt10):
    X, _, y, _ = lt10
    with pytest.raises(TypeError, match="KNeighborsClassifier has no coef_, intercept_"):
        AlphaNetClassifier(KNeighborsClassifier(), n_neighbors=2).fit(X, y)


# --------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_letter_few_shot_gain_over_crt_base_and_rho_direction(letter_lt):
    """On real long-tailed data AlphaNet raises few-shot accuracy over its cRT base; smaller rho more."""
    X, X_test, y, y_test = letter_lt
    few = {}
    for rho in (0.5, 2.0):
        clf = AlphaNetClassifier(rho=rho, random_state=0).fit(X, y)
        few[rho] = few_shot_accuracy(y_test, clf.predict(X_test), y_train=y)
    base = few_shot_accuracy(y_test, clf.estimator_.predict(X_test), y_train=y)  # same base for both rho
    assert few[0.5] >= base + 0.05, (base, few)
    assert few[0.5] > few[2.0], few
