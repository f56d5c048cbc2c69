"""LearnedNCM, MultiNCM and the intra-class variance diagnostic (Sharma et al.)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import NearestCentroid

from sklearn_lt.datasets import make_long_tailed_classification
from sklearn_lt.metrics import few_shot_accuracy, harmonic_mean_recall
from sklearn_lt.prototypes import LearnedNCM, MultiNCM, intra_class_variance
from sklearn_lt.prototypes._distances import _MinHalfDistanceLogits, half_distance_logits
from sklearn_lt.prototypes._ncm import AUTO_MEDIAN_DISTANCE

FAST = {"max_epochs": 3, "batch_size": 64, "device": "cpu"}


def _blobs(seed, n_classes=5, n_features=4, n_max=60):
    return make_long_tailed_classification(
        n_classes=n_classes, n_features=n_features, n_max=n_max, imbalance_ratio=20, random_state=seed
    )


# ---------------------------------------------------------------- the distance logits


def test_half_distance_logits_match_autograd_of_the_definition():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, dtype=torch.float64, generator=g, requires_grad=True)
    m = torch.randn(4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: half_distance_logits(a, b, 1e-12), (x, m))
    reference = -0.5 * torch.cdist(x, m)
    torch.testing.assert_close(half_distance_logits(x, m), reference)


def test_multi_ncm_logits_match_autograd_of_the_definition():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 4, dtype=torch.float64, generator=g)
    m = torch.randn(5, 4, dtype=torch.float64, generator=g)
    e = torch.randn(3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda e: _MinHalfDistanceLogits.apply(x, m, e, 1e-12), (e,))
    reference = -0.5 * torch.stack([torch.cdist(x, m + ei) for ei in e]).min(0).values
    torch.testing.assert_close(_MinHalfDistanceLogits.apply(x, m, e, 1e-12), reference)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.sampled_from([1e-3, 1.0, 1e3]))
def test_centroid_gradient_of_one_sample_has_norm_at_most_half(seed, scale):
    # Eq. 6 of the paper: the step on a centroid is a unit vector times a probability (times 0.5)
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(1, 6, generator=g) * scale).double()
    m = (torch.randn(3, 6, generator=g) * scale).double().requires_grad_()
    y = torch.randint(0, 3, (1,), generator=g)
    torch.nn.functional.cross_entropy(half_distance_logits(x, m), y).backward()
    assert torch.all(m.grad.norm(dim=1) <= 0.5 + 1e-9)


def test_zero_distance_gives_zero_gradient_not_nan():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    m = torch.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
    logits = half_distance_logits(x, m, eps=1e-12)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert torch.isfinite(m.grad).all()
    assert logits[0, 0].item() == pytest.approx(-0.5e-6, abs=1e-9)


# ---------------------------------------------------------------- LearnedNCM


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_classes=st.integers(2, 6), n_features=st.integers(1, 6))
def test_zero_epochs_equals_nearest_centroid(seed, n_classes, n_features):
    X, X_test, y, _ = _blobs(seed, n_classes, n_features)
    expected = NearestCentroid().fit(X, y).predict(X_test)
    ncm = LearnedNCM(max_epochs=0, device="cpu").fit(X, y)
    np.testing.assert_array_equal(ncm.predict(X_test), expected)
    np.testing.assert_allclose(ncm.centroids_, NearestCentroid().fit(X, y).centroids_, rtol=1e-6, atol=1e-6)


def test_zero_epochs_or_zero_lr_equals_nearest_centroid_on_real_data(letter_lt):
    X, X_test, y, _ = letter_lt
    expected = NearestCentroid().fit(X, y).predict(X_test)
    for params in ({"max_epochs": 0}, {"max_epochs": 2, "lr": 0.0}):
        ncm = LearnedNCM(device="cpu", random_state=0, **params).fit(X, y)
        np.testing.assert_array_equal(ncm.predict(X_test), expected)
        np.testing.assert_array_equal(ncm.centroids_, ncm.empirical_centroids_)


def test_decision_function_is_half_distance_in_units_of_the_scale():
    X, X_test, y, _ = _blobs(0)
    ncm = LearnedNCM(random_state=0, **FAST).fit(X, y)
    expected = -0.5 * cdist(X_test.astype(np.float64), ncm.centroids_) / ncm.feature_scale_
    np.testing.assert_allclose(ncm.decision_function(X_test), expected, rtol=1e-6, atol=1e-9)
    # "auto": the median distance of a training sample to its class mean is 20 units
    within = np.linalg.norm(X - ncm.empirical_centroids_[y], axis=1)
    assert np.median(within) / ncm.feature_scale_ == pytest.approx(AUTO_MEDIAN_DISTANCE)
    raw = LearnedNCM(feature_scale=1.0, max_epochs=0).fit(X, y)
    np.testing.assert_allclose(raw.decision_function(X_test), -0.5 * cdist(X_test, raw.centroids_), rtol=1e-6)


@settings(max_examples=10, deadline=None)
@given(power=st.integers(-12, 12), seed=st.integers(0, 1000))
def test_default_training_is_the_same_at_every_feature_scale(power, seed):
    # a power of two scales exactly in floating point, so the fits must agree bit for bit
    X, X_test, y, _ = _blobs(seed)
    c = 2.0**power
    a = LearnedNCM(random_state=seed, **FAST).fit(X, y)
    b = LearnedNCM(random_state=seed, **FAST).fit(X * c, y)
    np.testing.assert_allclose(b.centroids_, a.centroids_ * c, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(b.predict(X_test * c), a.predict(X_test))
    np.testing.assert_allclose(b.predict_proba(X_test * c), a.predict_proba(X_test), rtol=1e-9)


@pytest.mark.parametrize(
    "params",
    # a raw-unit step of 50 only settles back onto the lone samples when it is annealed
    [{}, {"grad_clip": None}, {"learn_temperature": True}, {"feature_scale": 1.0, "lr": 50.0, "lr_schedule": "cosine"}],
)
def test_single_sample_class_and_duplicates_train_without_nan(params):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(30, 3)), rng.normal(3, size=(10, 3))])
    X = np.vstack([X, X[:5], [[5.0, 5.0, 5.0]], [[-4.0, -4.0, -4.0]], [[-4.0, -4.0, -4.0]]])
    # class 0 has duplicated rows, class 2 a single sample, class 3 two identical samples
    y = np.r_[np.zeros(30), np.ones(10), np.zeros(5), 2, 3, 3].astype(int)
    ncm = LearnedNCM(random_state=0, max_epochs=5, batch_size=8, device="cpu", **params).fit(X, y)
    assert np.isfinite(ncm.centroids_).all()
    assert np.isfinite(ncm.history_[:, "train_loss"]).all()
    assert np.isfinite(ncm.predict_proba(X)).all()
    np.testing.assert_array_equal(ncm.predict(X[-3:]), [2, 3, 3])


def _balanced_objective(clf, X, y, centroids):
    """The training objective on all the data: logit-adjusted CE, each class weighted equally."""
    scaled = torch.tensor(X / clf.feature_scale_, dtype=torch.float64)
    logits = half_distance_logits(scaled, torch.tensor(centroids / clf.feature_scale_))
    logits = logits + clf.tau * torch.log(torch.tensor(clf.class_counts_, dtype=torch.float64))
    per_sample = torch.nn.functional.cross_entropy(logits, torch.tensor(y), reduction="none").numpy()
    return np.mean([per_sample[y == k].mean() for k in range(len(clf.classes_))])


def test_training_lowers_the_objective_and_moves_the_centroids():
    X, _, y, _ = _blobs(1, n_classes=8, n_features=6, n_max=100)
    ncm = LearnedNCM(random_state=0, max_epochs=10, batch_size=32, device="cpu").fit(X, y)
    before = _balanced_objective(ncm, X, y, ncm.empirical_centroids_)
    after = _balanced_objective(ncm, X, y, ncm.centroids_)
    assert after < before - 0.01
    assert np.linalg.norm(ncm.centroids_ - ncm.empirical_centroids_, axis=1).min() > 0


def test_logit_adjustment_moves_predictions_to_the_tail():
    X, X_test, y, _ = _blobs(2, n_classes=8, n_features=4, n_max=200)
    tail = np.flatnonzero(np.bincount(y) < 20)
    shares = []
    for tau in (0.0, 1.0):
        pred = LearnedNCM(tau=tau, random_state=0, max_epochs=10, batch_size=64, device="cpu").fit(X, y).predict(X_test)
        shares.append(np.isin(pred, tail).mean())
    assert shares[1] > shares[0]


def test_sample_weight_gives_weighted_means_and_zero_weight_classes_their_plain_mean():
    X, _, y, _ = _blobs(3)
    w = np.where(y == 0, 2.0, 1.0)
    w[np.flatnonzero(y == 1)[: 3]] = 0.0
    w[y == 4] = 0.0
    ncm = LearnedNCM(max_epochs=0).fit(X, y, sample_weight=w)
    for k in (0, 1, 2):
        np.testing.assert_allclose(ncm.empirical_centroids_[k], np.average(X[y == k], axis=0, weights=w[y == k]), rtol=1e-6)
    np.testing.assert_allclose(ncm.empirical_centroids_[4], X[y == 4].mean(0), rtol=1e-6)


def test_learned_temperature():
    X, X_test, y, _ = _blobs(4)
    ncm = LearnedNCM(learn_temperature=True, temperature_lr=0.05, random_state=0, **FAST).fit(X, y)
    assert ncm.temperature_.shape == (X.shape[1],)
    assert not np.allclose(ncm.temperature_, 1.0)
    diff = (X_test[:, None, :] - ncm.centroids_[None]) / ncm.temperature_
    expected = -0.5 * np.linalg.norm(diff, axis=2) / ncm.feature_scale_
    np.testing.assert_allclose(ncm.decision_function(X_test), expected, rtol=1e-6)
    assert LearnedNCM(max_epochs=0).fit(X, y).temperature_ is None


# ---------------------------------------------------------------- clipping and epoch selection


def _plain_sgd(**params):
    # one unit of lr is one feature unit per step: plain SGD makes each step exactly -lr * (clipped) gradient
    base = {"feature_scale": 1.0, "lr": 1.0, "momentum": 0.0, "lr_schedule": "constant", "max_epochs": 2}
    return LearnedNCM(**{**base, **params, "batch_size": 32, "random_state": 0, "device": "cpu"})


def test_value_clipping_changes_the_fit_and_bounds_every_entry_of_every_step():
    X, _, y, _ = _blobs(5, n_classes=6, n_features=5, n_max=80)
    clip = 1e-3
    free = _plain_sgd(grad_clip=None).fit(X, y)
    value = _plain_sgd(grad_clip=clip, clip="value").fit(X, y)
    norm = _plain_sgd(grad_clip=clip, clip="norm").fit(X, y)
    n_steps = 2 * -(-len(y) // 32)
    free_shift = free.centroids_ - free.empirical_centroids_
    value_shift = value.centroids_ - value.empirical_centroids_
    norm_shift = norm.centroids_ - norm.empirical_centroids_
    assert np.abs(free_shift).max() > 2 * n_steps * clip, "the threshold must bind for this test to mean anything"
    assert np.abs(value_shift).max() <= n_steps * clip * (1 + 1e-5)
    assert np.linalg.norm(norm_shift) <= n_steps * clip * (1 + 1e-5)
    assert not np.allclose(value_shift, free_shift) and not np.allclose(value_shift, norm_shift)
    # a threshold above every gradient entry changes nothing, bit for bit
    loose = _plain_sgd(grad_clip=10.0, clip="value").fit(X, y)
    np.testing.assert_array_equal(loose.centroids_, free.centroids_)


def test_value_clipping_leaves_the_temperature_gradient_alone():
    X, _, y, _ = _blobs(6)
    params = {"learn_temperature": True, "temperature_lr": 0.05}
    free = _plain_sgd(grad_clip=None, **params).fit(X, y)
    value = _plain_sgd(grad_clip=1e-12, clip="value", **params).fit(X, y)
    np.testing.assert_allclose(value.centroids_, value.empirical_centroids_, atol=1e-9)
    assert not np.allclose(value.temperature_, 1.0)
    assert not np.allclose(free.centroids_, value.centroids_)


def test_multi_ncm_value_clipping_bounds_the_displacement_steps():
    X, _, y, _ = _blobs(7)
    base = FrozenEstimator(LearnedNCM(max_epochs=0).fit(X, y))
    start = MultiNCM(base, n_displacements=3, max_epochs=0, random_state=0).fit(X, y).displacements_
    plain_sgd = {"momentum": 0.0, "lr_schedule": "constant", "lr": 1.0, "max_epochs": 1, "batch_size": 32}
    clipped = MultiNCM(base, n_displacements=3, grad_clip=1e-4, random_state=0, **plain_sgd).fit(X, y)
    n_steps = -(-len(y) // 32)
    moved = (clipped.displacements_ - start) / clipped.feature_scale_
    assert 0 < np.abs(moved).max() <= n_steps * 1e-4 * (1 + 1e-4)


def test_validation_fraction_keeps_the_best_held_out_epoch():
    from sklearn_lt.utils import tail_safe_validation_split

    X, X_test, y, _ = _blobs(8, n_classes=6, n_features=4, n_max=150)
    clf = LearnedNCM(validation_fraction=0.3, random_state=0, max_epochs=6, batch_size=32, device="cpu").fit(X, y)
    scores = np.array(clf.history_[:, "valid_score"])
    assert clf.best_epoch_ == np.argmax(scores) + 1 and clf.history_[clf.best_epoch_ - 1, "kept"]
    # the held-out part: reproduce the split from the fit's random stream, then its balanced accuracy
    generator = torch.Generator().manual_seed(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    seed = int(torch.randint(np.iinfo(np.int32).max, (1,), generator=generator))
    train, valid = tail_safe_validation_split(y, 0.3, random_state=seed)
    np.testing.assert_allclose(clf.empirical_centroids_, NearestCentroid().fit(X[train], y[train]).centroids_, atol=1e-5)
    hits = clf.predict(X[valid]) == y[valid]
    recall = np.bincount(y[valid], weights=hits) / np.bincount(y[valid])
    assert np.isclose(recall[np.bincount(y[valid]) > 0].mean(), scores[clf.best_epoch_ - 1])
    # off by default: all the data, last epoch
    default = LearnedNCM(random_state=0, max_epochs=6, batch_size=32, device="cpu").fit(X, y)
    assert default.best_epoch_ == 6 and "valid_score" not in default.history_[-1]
    assert LearnedNCM(max_epochs=0).fit(X, y).best_epoch_ is None
    np.testing.assert_allclose(default.empirical_centroids_, NearestCentroid().fit(X, y).centroids_, atol=1e-5)
    multi = MultiNCM(n_displacements=3, validation_fraction=0.3, random_state=0, max_epochs=3, batch_size=32).fit(X, y)
    assert 1 <= multi.best_epoch_ <= 3 and len(multi.estimator_.class_counts_) == 6
    assert multi.estimator_.class_counts_.sum() == len(train)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"tau": -1}, "'tau' parameter of LearnedNCM"),
        ({"feature_scale": "median"}, "'feature_scale' parameter"),
        ({"feature_scale": -2.0}, "'feature_scale' parameter"),
        ({"momentum": 1.0}, "'momentum' parameter"),
        ({"lr_schedule": "step"}, "'lr_schedule' parameter"),
        ({"grad_clip": 0}, "'grad_clip' parameter"),
        ({"clip": "l2"}, "'clip' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"sampling": "reversed"}, "'sampling' parameter"),
        ({"learn_temperature": "yes"}, "'learn_temperature' parameter"),
        ({"max_epochs": -1}, "'max_epochs' parameter"),
    ],
)
def test_bad_parameters_are_named(params, message):
    X, _, y, _ = _blobs(0)
    with pytest.raises(ValueError, match=message):
        LearnedNCM(**params).fit(X, y)


def test_grid_search_over_tau_with_harmonic_mean_recall():
    # n_jobs=1 here: tests/test_common.py runs every estimator through GridSearchCV with n_jobs=2
    X, _, y, _ = _blobs(5, n_classes=4, n_max=80)
    grid = GridSearchCV(
        LearnedNCM(max_epochs=2, batch_size=64, device="cpu", random_state=0),
        {"tau": [0, 0.125, 0.25]},
        scoring=make_scorer(harmonic_mean_recall),
        cv=2,
        n_jobs=1,
    ).fit(X, y)
    assert grid.best_params_["tau"] in (0, 0.125, 0.25)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()


# ---------------------------------------------------------------- MultiNCM


def test_multi_ncm_with_zero_displacements_reproduces_learned_ncm():
    X, X_test, y, _ = _blobs(6)
    base = LearnedNCM(random_state=0, **FAST).fit(X, y)
    multi = MultiNCM(FrozenEstimator(base), displacement_init=0.0, max_epochs=0).fit(X, y)
    np.testing.assert_array_equal(multi.displacements_, 0.0)
    np.testing.assert_array_equal(multi.predict(X_test), base.predict(X_test))
    np.testing.assert_array_equal(multi.predict_proba(X_test), base.predict_proba(X_test))
    # and a trained one, its displacements set back to zero
    trained = MultiNCM(FrozenEstimator(base), random_state=0, **FAST).fit(X, y)
    trained.displacements_ = np.zeros_like(trained.displacements_)
    np.testing.assert_array_equal(trained.predict(X_test), base.predict(X_test))


def test_multi_ncm_learns_distinct_displacements_and_keeps_the_null_one():
    X, X_test, y, _ = _blobs(7, n_classes=6, n_features=5, n_max=100)
    base = LearnedNCM(random_state=0, **FAST).fit(X, y)
    multi = MultiNCM(FrozenEstimator(base), n_displacements=6, random_state=0, max_epochs=5, batch_size=32).fit(X, y)
    assert multi.displacements_.shape == (6, 5)
    np.testing.assert_array_equal(multi.centroids_, base.centroids_)
    assert multi.feature_scale_ == base.feature_scale_
    init_norm = 0.01 * np.median(np.linalg.norm(X - base.empirical_centroids_[y], axis=1))
    norms = np.linalg.norm(multi.displacements_, axis=1)
    assert norms.max() > 5 * init_norm  # they moved well beyond their random start
    assert len(np.unique(multi.displacements_.round(8), axis=0)) == 6
    # the null displacement is always a candidate: every class is at least as close as in LearnedNCM
    assert np.all(multi.decision_function(X_test) >= base.decision_function(X_test) - 1e-12)
    expected = np.stack(
        [-0.5 * cdist(X_test, base.centroids_ + delta) for delta in np.vstack([np.zeros(5), multi.displacements_])]
    ).max(0) / multi.feature_scale_
    np.testing.assert_allclose(multi.decision_function(X_test), expected, rtol=1e-6, atol=1e-9)


def test_multi_ncm_default_and_other_centroid_models():
    X, X_test, y, _ = _blobs(8)
    multi = MultiNCM(n_displacements=2, tau=0.5, random_state=0, **FAST).fit(X, y)
    assert isinstance(multi.estimator_, LearnedNCM) and multi.estimator_.tau == 0.5
    assert multi.estimator_.random_state == 0
    nc = MultiNCM(NearestCentroid(), n_displacements=2, random_state=0, **FAST).fit(X, y)
    np.testing.assert_allclose(nc.centroids_, NearestCentroid().fit(X, y).centroids_)
    assert nc.temperature_ is None
    with pytest.raises(TypeError, match="has no centroids_"):
        MultiNCM(LogisticRegression(), **FAST).fit(X, y)
    other = FrozenEstimator(LearnedNCM(max_epochs=0).fit(X, (y + 1) % 5 + 10))
    with pytest.raises(ValueError, match="differ from the classes in y"):
        MultiNCM(other, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="displacement_init=0 with max_epochs > 0"):
        MultiNCM(displacement_init=0.0, **FAST).fit(X, y)


def test_multi_ncm_uses_learned_temperatures():
    X, X_test, y, _ = _blobs(9)
    base = LearnedNCM(learn_temperature=True, temperature_lr=0.05, random_state=0, **FAST).fit(X, y)
    multi = MultiNCM(FrozenEstimator(base), displacement_init=0.0, max_epochs=0).fit(X, y)
    np.testing.assert_array_equal(multi.temperature_, base.temperature_)
    np.testing.assert_allclose(multi.decision_function(X_test), base.decision_function(X_test), rtol=1e-12)


# ---------------------------------------------------------------- intra-class variance


def test_intra_class_variance_is_the_top_eigenvalue_of_the_mle_covariance():
    X, _, y, _ = _blobs(10, n_classes=5, n_features=6)
    r = intra_class_variance(X, y, random_state=0)
    for k, label in enumerate(r.classes):
        Xk = X[y == label].astype(np.float64)
        expected = np.linalg.eigvalsh(np.cov(Xk, rowvar=False, bias=True)).max()
        assert r.variance[k] == pytest.approx(expected, rel=1e-9)
    np.testing.assert_array_equal(r.class_counts, np.bincount(y))


@settings(max_examples=10, deadline=None)
@given(c=st.floats(1e-3, 1e3), seed=st.integers(0, 1000))
def test_intra_class_variance_scales_with_the_square_and_ignores_rotations(c, seed):
    X, _, y, _ = _blobs(seed, n_features=4)
    X = X.astype(np.float64)
    q, _ = np.linalg.qr(np.random.RandomState(seed).normal(size=(4, 4)))
    r = intra_class_variance(X, y, random_state=0)
    np.testing.assert_allclose(intra_class_variance(c * X, y, random_state=0).variance, c**2 * r.variance, rtol=1e-8)
    np.testing.assert_allclose(intra_class_variance(X @ q, y, random_state=0).variance, r.variance, rtol=1e-6)


def test_intra_class_variance_shrinkage_null_baseline_and_single_samples():
    rng = np.random.RandomState(0)
    sizes = [400, 200, 100, 50, 25, 12, 6, 3]
    X = np.vstack([rng.normal(size=(n, 10)) for n in sizes] + [rng.normal(size=(1, 10))])
    y = np.repeat(np.arange(9), sizes + [1])
    r = intra_class_variance(X, y, random_state=0)
    assert r.variance[-1] == 0 and r.null_variance[-1] == 0
    # identical spread everywhere: the raw statistic still falls with class size (small-sample bias) ...
    assert r.spearman_r < -0.9
    # ... which the null baseline of the same sizes reproduces
    assert abs(r.spearman_r_excess) < 0.9
    np.testing.assert_allclose(r.variance[:-1] / r.null_variance[:-1], 1.0, atol=0.6)
    lw = intra_class_variance(X, y, estimator="ledoit_wolf", random_state=0)
    assert np.all(lw.variance[:-1] <= r.variance[:-1] + 1e-12)
    with pytest.raises(ValueError, match="'estimator' parameter of intra_class_variance"):
        intra_class_variance(X, y, estimator="pca")


# ---------------------------------------------------------------- the paper's effect on real data


@pytest.mark.slow
def test_learned_ncm_beats_ncm_and_logit_adjustment_helps_few_shot_on_letter(letter_lt):
    X, X_test, y, y_test = letter_lt
    ncm = NearestCentroid().fit(X, y).score(X_test, y_test)
    few = {}
    for tau in (0.0, 0.125):
        clf = LearnedNCM(tau=tau, max_epochs=15, random_state=0, device="cpu").fit(X, y)
        if tau:
            assert clf.score(X_test, y_test) > ncm + 0.05
        few[tau] = few_shot_accuracy(y_test, clf.predict(X_test), y_train=y)
    assert few[0.125] > few[0.0]
