"""SMARTAugmenter: the transfer formula, its limits and hazards, both routes, and the API contracts."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from imblearn.utils.estimator_checks import estimator_checks_generator
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_lt.augmentation import SMARTAugmenter
from sklearn_lt.augmentation._statistics import _ClassStatistics, _times_head_covariance, _transfer
from sklearn_lt.linear_model import LinearClassifier
from sklearn_lt.metrics import few_shot_accuracy, many_shot_accuracy
from sklearn_lt.torch._data import ShuffledBatchSampler

# ---------------------------------------------------------------- a reference written from the paper


def reference(F, X, y, t, h, tau):
    """Eq. 4-6 and 11 with dense numpy covariances (biased, i.e. 1/n, as a running average gives)."""
    d = X.shape[1]
    mu_t = X[y == t].mean(0)
    def cov(k):
        return np.atleast_2d(np.cov(X[y == k].T, bias=True)) if (y == k).sum() > 1 else np.zeros((d, d))
    S = cov(t).T @ cov(h)
    if np.isinf(tau):
        G = (S == S.max(1, keepdims=True)).astype(float)
    else:
        A = tau * S
        G = np.exp(A - A.max(1, keepdims=True))
    G /= G.sum(1, keepdims=True)
    sigma_th = G * S
    F_tilde = (F - mu_t) / np.sqrt(np.diag(cov(t)) + 1e-8) @ sigma_th + mu_t
    return F_tilde, sigma_th.sum() / d


def make_classes(rng, sizes, d, spread=1.0):
    X = np.concatenate([rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * spread + 3 * rng.normal(size=d) for n in sizes])
    return X, np.repeat(np.arange(len(sizes)), sizes)


def transfer(X, y, idx, heads, tau, *, scale=1.0, chunk_bytes=2**28, running=False):
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    stats = _ClassStatistics(Xt, yt, int(y.max()) + 1, scale, running=running)
    if running:
        stats.update(torch.arange(len(y)))
    out, omega, degenerate = _transfer(stats, Xt[idx], yt[idx], torch.as_tensor(heads), tau, chunk_bytes=chunk_bytes)
    return out.numpy(), omega.numpy(), degenerate.numpy()


# ---------------------------------------------------------------- the formula


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    d=st.integers(1, 6),
    tau=st.sampled_from([0.0, 0.05, 1.0, 7.0]),
    chunk_bytes=st.sampled_from([1, 2**28]),  # 1: factor products, one pair per chunk; 2**28: dense
)
def test_transfer_is_the_papers_formula(seed, d, tau, chunk_bytes):
    rng = np.random.default_rng(seed)
    X, y = make_classes(rng, [40, 9, 3, 2], d)
    idx = rng.choice(len(y), 12)
    heads = rng.integers(0, 4, size=12)
    out, omega, degenerate = transfer(X, y, idx, heads, tau, chunk_bytes=chunk_bytes)
    for i, (row, h) in enumerate(zip(idx, heads)):
        expected, expected_omega = reference(X[row], X, y, y[row], h, tau)
        if degenerate[i]:
            # a (numerically) zero covariance transfers nothing: the documented guard keeps the feature
            np.testing.assert_array_equal(out[i], X[row])
        else:
            np.testing.assert_allclose(out[i], expected, rtol=1e-7, atol=1e-7)
        np.testing.assert_allclose(omega[i], expected_omega, rtol=1e-7, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), running=st.booleans(), budget=st.sampled_from([1, 2**12, 2**28]))
def test_batched_head_route_is_the_loop_route(seed, running, budget):
    # the GPU route (head classes padded into batched products) computes A @ Sigma_h like the CPU loop
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 70, size=9)
    X, y = make_classes(rng, sizes, 5)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    stats = _ClassStatistics(Xt, yt, len(sizes), 1.7, running=running)
    if running:
        stats.update(torch.as_tensor(rng.integers(0, len(y), 3 * len(y))))
    heads = torch.as_tensor(rng.integers(0, len(sizes), size=11))
    A = torch.as_tensor(rng.normal(size=(11, 3, 5)))
    loop = _times_head_covariance(stats, A, heads, batched=False)
    batched = _times_head_covariance(stats, A, heads, batched=True, budget=budget)
    np.testing.assert_allclose(batched.numpy(), loop.numpy(), rtol=1e-10, atol=1e-12)
    cov = stats.covariances(torch.arange(len(sizes)))
    np.testing.assert_allclose(loop.numpy(), (A @ cov[heads]).numpy(), rtol=1e-9, atol=1e-12)


def test_running_statistics_after_one_pass_are_the_exact_ones():
    rng = np.random.default_rng(0)
    X, y = make_classes(rng, [30, 7, 4], 5)
    args = (X, y, np.arange(30, 41), np.zeros(11, dtype=int), 0.5)
    exact = transfer(*args)
    running = transfer(*args, running=True)
    for a, b in zip(exact, running):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_running_statistics_are_count_weighted():
    # Eq. 2 with alpha_k = M_k / N_k: the running mean is the mean of every row seen, repeats included
    rng = np.random.default_rng(1)
    X, y = make_classes(rng, [6, 5], 3)
    stats = _ClassStatistics(torch.as_tensor(X), torch.as_tensor(y), 2, 1.0, running=True)
    batches = [np.array([0, 1, 6]), np.array([1, 1, 7, 8]), np.array([2, 9])]
    for b in batches:
        stats.update(torch.as_tensor(b))
    seen = np.concatenate(batches)
    for k in (0, 1):
        rows = X[seen[y[seen] == k]]
        np.testing.assert_allclose(stats.means[k].numpy(), rows.mean(0), rtol=1e-12)
        np.testing.assert_allclose(stats.variances[k].numpy(), rows.var(0), rtol=1e-9, atol=1e-12)


def test_augmented_class_keeps_its_mean():
    rng = np.random.default_rng(2)
    X, y = make_classes(rng, [50, 8], 4)
    tail = np.flatnonzero(y == 1)
    # exactly: every tail sample once, one head class (the transform is affine in F - mu_t)
    out, _, _ = transfer(X, y, tail, np.zeros(len(tail), dtype=int), 3.0)
    np.testing.assert_allclose(out.mean(0), X[tail].mean(0), atol=1e-10)
    # in expectation: random draws of fit_resample
    smart = SMARTAugmenter(sampling_strategy={1: 4000}, head_threshold=20, tau=3.0, random_state=0)
    X_res, y_res = smart.fit_resample(X, y)
    new = X_res[len(y) :]
    sem = new.std(0) / np.sqrt(len(new))
    assert np.all(np.abs(new.mean(0) - X[tail].mean(0)) < 5 * sem)
    np.testing.assert_allclose(smart.class_means_[1], X[tail].mean(0))


def test_tau_limits():
    rng = np.random.default_rng(3)
    X, y = make_classes(rng, [40, 10], 6)
    idx, heads = np.arange(40, 50), np.zeros(10, dtype=int)
    zero, omega_zero, _ = transfer(X, y, idx, heads, 0.0)
    # tau -> 0: Gamma is uniform, Sigma_th = S / d
    d = X.shape[1]
    mu_t, cov_t, cov_h = X[y == 1].mean(0), np.cov(X[y == 1].T, bias=True), np.cov(X[y == 0].T, bias=True)
    z = (X[idx] - mu_t) / np.sqrt(np.diag(cov_t) + 1e-8)
    np.testing.assert_allclose(zero, z @ (cov_t @ cov_h) / d + mu_t, rtol=1e-8)
    np.testing.assert_allclose(omega_zero, (cov_t @ cov_h).sum() / d**2, rtol=1e-8)
    np.testing.assert_allclose(transfer(X, y, idx, heads, 1e-9)[0], zero, rtol=1e-6, atol=1e-5)
    # tau -> inf: each row keeps its largest entry of S only
    inf, omega_inf, _ = transfer(X, y, idx, heads, np.inf)
    S = cov_t @ cov_h
    keep = np.where(S == S.max(1, keepdims=True), S, 0.0)
    np.testing.assert_allclose(inf, z @ keep + mu_t, rtol=1e-8)
    np.testing.assert_allclose(omega_inf, keep.sum() / d, rtol=1e-8)
    large = transfer(X, y, idx, heads, 1e6 / np.abs(S).max())[0]
    np.testing.assert_allclose(large, inf, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("target", ["head", "tail"])
@pytest.mark.parametrize("tau", [0.0, 2.0])
def test_augmented_variance_matches_the_target_class(target, tau):
    rng = np.random.default_rng(14)
    X, y = make_classes(rng, [80, 12], 5)
    tail = np.flatnonzero(y == 1)
    heads = np.zeros(len(tail), dtype=int)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    stats = _ClassStatistics(Xt, yt, 2, 1.0, running=False)
    for chunk_bytes in (1, 2**28):  # factor and dense routes
        out, _, _ = _transfer(stats, Xt[tail], yt[tail], torch.as_tensor(heads), tau, variance=target, chunk_bytes=chunk_bytes)
        spread = ((out.numpy() - X[tail].mean(0)) ** 2).sum(1).mean()  # every tail sample once: exact
        expected = np.trace(np.cov(X[y == (0 if target == "head" else 1)].T, bias=True))
        np.testing.assert_allclose(spread, expected, rtol=1e-8)
        np.testing.assert_allclose(out.numpy().mean(0), X[tail].mean(0), atol=1e-9)


def test_feature_scale_makes_smart_unit_free():
    rng = np.random.default_rng(4)
    X, y = make_classes(rng, [60, 10, 4], 5)
    kw = dict(head_threshold=20, tau=2.0, random_state=0, omega="paper", omega_bounds=(None, None))
    a = SMARTAugmenter(**kw)
    Xa, _ = a.fit_resample(X, y)
    b = SMARTAugmenter(**kw)
    Xb, _ = b.fit_resample(X * 1000.0, y)
    np.testing.assert_allclose(Xb, Xa * 1000.0, rtol=1e-7)
    np.testing.assert_allclose(b.sample_weight_, a.sample_weight_, rtol=1e-7)
    # the paper's formula on raw units: omega grows like ||x||^4 (tau = 0, where Gamma does not move)
    raw = dict(kw, feature_scale=None, tau=0.0)
    sa, sb = SMARTAugmenter(**raw), SMARTAugmenter(**raw)
    sa.fit_resample(X, y)
    sb.fit_resample(X * 10.0, y)
    np.testing.assert_allclose(sb.omega_, sa.omega_ * 1e4, rtol=1e-6)


def test_omega_can_be_negative_and_is_bounded_by_default():
    # PSD covariances whose S = Sigma_t Sigma_h has a negative sum: [[5,-2],[-2,1]] @ [[1,-2],[-2,5]]
    rng = np.random.default_rng(5)
    cov_t, cov_h = np.array([[5.0, -2.0], [-2.0, 1.0]]), np.array([[1.0, -2.0], [-2.0, 5.0]])
    def draw(cov, n):
        return rng.normal(size=(n, 2)) @ np.linalg.cholesky(cov).T
    X, y = np.vstack([draw(cov_h, 3000), draw(cov_t, 600)]), np.repeat([0, 1], [3000, 600])
    kw = dict(sampling_strategy={1: 700}, head_threshold=1000, tau=0.0, feature_scale=None, random_state=0)
    paper = SMARTAugmenter(omega="paper", omega_bounds=(None, None), **kw)
    paper.fit_resample(X, y)
    assert np.all(paper.omega_ < 0)
    np.testing.assert_allclose(paper.omega_, -6 / 4, rtol=0.2)
    np.testing.assert_allclose(paper.sample_weight_[len(y) :], paper.omega_)
    default = SMARTAugmenter(**kw)
    default.fit_resample(X, y)
    added = default.sample_weight_[len(y) :]
    assert np.all(added >= 0) and np.all(added <= 5)


def test_relative_omega_averages_one():
    rng = np.random.default_rng(6)
    X, y = make_classes(rng, [120, 80, 10, 5], 4)
    smart = SMARTAugmenter(head_threshold=50, tau=1.0, omega_bounds=(None, None), random_state=0)
    X_res, _ = smart.fit_resample(X, y)
    added = smart.sample_weight_[len(y) :]
    assert added.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(added, smart.omega_ / smart.omega_.mean())
    assert np.all(smart.sample_weight_[: len(y)] == 1)


@pytest.mark.parametrize("zero_covariance_weight, expected", [(1.0, 1.0), (0.3, 0.3), (None, 0.0)])
def test_one_sample_class_gives_no_nan_and_a_chosen_weight(zero_covariance_weight, expected):
    rng = np.random.default_rng(7)
    X, y = make_classes(rng, [60, 30, 1], 4)
    smart = SMARTAugmenter(
        sampling_strategy={2: 5}, head_threshold=20, zero_covariance_weight=zero_covariance_weight, random_state=0
    )
    X_res, y_res = smart.fit_resample(X, y)
    assert np.all(np.isfinite(X_res)) and np.all(np.isfinite(smart.sample_weight_))
    # the one sample is its class mean: the transform leaves it as it is
    assert len(X_res) == len(y) + 4  # imblearn: the dict gives the class size after resampling
    np.testing.assert_allclose(X_res[len(y) :], np.repeat(X[y == 2], 4, axis=0))
    np.testing.assert_allclose(smart.sample_weight_[len(y) :], expected)
    assert np.all(smart.omega_ == 0)


def test_one_sample_classes_online_no_nan():
    rng = np.random.default_rng(8)
    X, y = make_classes(rng, [150, 120, 1, 1, 2, 3], 6, spread=0.3)
    for statistics in ("running", "exact"):
        clf = LinearClassifier(
            loss="balanced_softmax", augmenter=SMARTAugmenter(head_threshold=100, statistics=statistics),
            max_epochs=2, batch_size=64, random_state=0, device="cpu",
        ).fit(X, y)
        assert np.all(np.isfinite(clf.coef_)) and np.all(np.isfinite(clf.history_[:, "train_loss"]))


# ---------------------------------------------------------------- the online hook


def test_batch_hook_shapes_weights_and_streams():
    rng = np.random.default_rng(9)
    X, y = make_classes(rng, [300, 150, 20, 6, 2], 8)
    X = X.astype(np.float32)
    sampler = ShuffledBatchSampler(len(y), 64, generator=torch.Generator().manual_seed(0))
    aug = SMARTAugmenter(head_threshold=100, tail_sampling="reversed", tail_classes="tail")
    hook, train_sampler = aug.make_train_batch_hook(X, y, sampler=sampler)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    tail_labels = []
    for idx in train_sampler:
        Xb, (yb, wb) = hook((Xt[idx], yt[idx]))
        n = len(idx)
        assert Xb.shape == (2 * n, 8) and Xb.dtype == torch.float32
        assert yb.dtype == torch.int64 and wb.dtype == torch.float32 and wb.shape == (2 * n,)
        assert torch.equal(Xb[:n], Xt[idx]) and torch.equal(yb[:n], yt[idx])  # the head batch is untouched
        assert torch.all(torch.isfinite(Xb)) and torch.all(wb >= 0)
        tail_labels.append(yb[n:])
    tail_labels = torch.cat(tail_labels).numpy()
    assert set(tail_labels) <= {2, 3, 4}  # only tail classes, drawn in proportion to 1 / n_c (the default)
    freq = np.bincount(tail_labels, minlength=5)[2:] / len(tail_labels)
    expected = np.array([1 / 20, 1 / 6, 1 / 2]) / (1 / 20 + 1 / 6 + 1 / 2)
    np.testing.assert_allclose(freq, expected, atol=0.06)


def test_reweight_prior_correction_restores_the_head_stream_class_mix():
    rng = np.random.default_rng(10)
    X, y = make_classes(rng, [400, 200, 20, 5], 4)
    X = X.astype(np.float32)
    total = {"reweight": np.zeros(4), None: np.zeros(4)}
    for correction in total:
        sampler = ShuffledBatchSampler(len(y), 125, generator=torch.Generator().manual_seed(0))
        aug = SMARTAugmenter(head_threshold=100, omega="none", prior_correction=correction, tail_sampling="reversed",
                             tail_classes="tail")
        hook, s = aug.make_train_batch_hook(X, y, sampler=sampler)
        for _ in range(20):
            for idx in s:
                _, (yb, wb) = hook((torch.as_tensor(X)[idx], torch.as_tensor(y)[idx]))
                total[correction] += np.bincount(yb.numpy(), weights=wb.numpy(), minlength=4)
    prior = np.bincount(y) / len(y)
    np.testing.assert_allclose(total["reweight"] / total["reweight"].sum(), prior, atol=0.01)
    assert total[None][3] / total[None].sum() > 10 * prior[3]


def test_logit_adjust_prior_correction_keeps_weights_and_moves_the_prior_to_the_mixed_stream():
    # the default adds the augmented samples (real ones keep weight 1, as in the paper) and lets balanced
    # softmax adjust for the class frequencies of the two streams together
    from sklearn_lt.torch import LogitAdjustedLoss

    rng = np.random.default_rng(16)
    sizes = [400, 200, 20, 5]
    X, y = make_classes(rng, sizes, 4)
    X = X.astype(np.float32)
    sampler = ShuffledBatchSampler(len(y), 125, generator=torch.Generator().manual_seed(0))
    aug = SMARTAugmenter(head_threshold=100, omega="none", tail_sampling="reversed", tail_classes="tail")
    hook, s = aug.make_train_batch_hook(X, y, sampler=sampler)
    for idx in s:
        _, (_, wb) = hook((torch.as_tensor(X)[idx], torch.as_tensor(y)[idx]))
        assert torch.all(wb == 1)
    counts = np.array(sizes, dtype=float)
    tail = np.array([0, 0, 1 / 20, 1 / 5])
    mixed = (counts / counts.sum() + tail / tail.sum()) / 2
    adapted = hook.adapt_criterion(LogitAdjustedLoss(counts, tau=1.0))
    expected = LogitAdjustedLoss(mixed * len(y), tau=1.0)  # as counts: a constant factor cancels in softmax
    logits, labels = torch.randn(50, 4), torch.as_tensor(rng.integers(0, 4, 50))
    np.testing.assert_allclose(float(adapted(logits, labels)), float(expected(logits, labels)), rtol=1e-5)
    ce = LogitAdjustedLoss(tau=0.0)
    assert hook.adapt_criterion(ce) is ce  # plain cross-entropy corrects for no prior: nothing to move
    clf = LinearClassifier(loss="balanced_softmax", augmenter=aug, max_epochs=1, random_state=0, device="cpu").fit(X, y)
    np.testing.assert_allclose(float(clf.net_.criterion_(logits, labels)), float(expected(logits, labels)), rtol=1e-5)


@pytest.mark.parametrize("tail_sampling, tail_classes", [("balanced", "all"), ("balanced", "tail"), ("reversed", "all")])
# ("reversed", "tail") is test_batch_hook_shapes_weights_and_streams
def test_tail_stream_options(tail_sampling, tail_classes):
    rng = np.random.default_rng(17)
    sizes = [300, 150, 20, 6, 2]
    X, y = make_classes(rng, sizes, 3)
    X = X.astype(np.float32)
    sampler = ShuffledBatchSampler(len(y), 100, generator=torch.Generator().manual_seed(0))
    aug = SMARTAugmenter(head_threshold=100, tail_sampling=tail_sampling, tail_classes=tail_classes)
    hook, s = aug.make_train_batch_hook(X, y, sampler=sampler)
    labels = []
    for _ in range(15):
        for idx in s:
            _, (yb, _) = hook((torch.as_tensor(X)[idx], torch.as_tensor(y)[idx]))
            labels.append(yb[len(idx):].numpy())
    labels = np.concatenate(labels)
    drawn = np.arange(5) if tail_classes == "all" else np.array([2, 3, 4])
    per_class = np.ones(len(drawn)) if tail_sampling == "balanced" else 1 / np.array(sizes)[drawn]
    freq = np.bincount(labels, minlength=5)[drawn] / len(labels)
    np.testing.assert_allclose(freq, per_class / per_class.sum(), atol=0.03)
    assert np.isin(labels, drawn).all()


@pytest.mark.parametrize("head_threshold, tail_classes", [(None, "tail"), (100, "all")])
def test_a_tail_sample_borrows_from_a_head_class_other_than_its_own(head_threshold, tail_classes):
    # the paper pairs a tail sample with "a head class"; the former head_threshold=None paired ~1 in C
    # samples with their own class (the paired head-stream sample was of the same class)
    rng = np.random.default_rng(18)
    sizes = [300, 200, 150, 20, 6]
    X, y = make_classes(rng, sizes, 3)
    X = X.astype(np.float32)
    sampler = ShuffledBatchSampler(len(y), 64, generator=torch.Generator().manual_seed(0))
    aug = SMARTAugmenter(head_threshold=head_threshold, tail_classes=tail_classes, tail_sampling="balanced")
    hook, s = aug.make_train_batch_hook(X, y, sampler=sampler)
    pairs = []

    transfer = hook.transfer

    def spy(F, tail, head):
        pairs.append(torch.stack([tail, head], 1).numpy())
        return transfer(F, tail, head)

    hook.transfer = spy
    for idx in s:
        hook((torch.as_tensor(X)[idx], torch.as_tensor(y)[idx]))
    pairs = np.concatenate(pairs)
    assert not np.any(pairs[:, 0] == pairs[:, 1])
    heads = np.arange(5) if head_threshold is None else np.array([0, 1, 2])
    assert np.isin(pairs[:, 1], heads).all()
    if tail_classes == "all":
        assert np.isin(pairs[:, 0], [0, 1, 2]).any()  # head classes are augmented too, by another head class


# ---------------------------------------------------------------- dense statistics vs the factor route


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), running=st.booleans(), d=st.integers(1, 7), tau=st.sampled_from([0.0, 1.0, 5.0]))
def test_dense_statistics_give_the_factor_routes_transfer(seed, running, d, tau):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, size=6)
    X, y = make_classes(rng, sizes, d)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    rows = torch.as_tensor(rng.integers(0, len(y), 3 * len(y)))
    idx = torch.as_tensor(rng.integers(0, len(y), 10))
    heads = torch.as_tensor(rng.integers(0, len(sizes), 10))
    results = []
    for budget in (None, 2**30):
        stats = _ClassStatistics(Xt, yt, len(sizes), 1.3, running=running, dense_budget=budget)
        assert (stats.dense is not None) == (budget is not None)
        if running:  # several batches, so that the dense scatter is built from queued rank-one updates
            for part in torch.tensor_split(rows, 5):
                stats.update(part)
        Z = stats.factors(torch.arange(len(sizes)))
        np.testing.assert_allclose(stats.covariances(torch.arange(len(sizes))).numpy(), (Z.mT @ Z).numpy(),
                                   rtol=1e-9, atol=1e-12)
        results.append(_transfer(stats, Xt[idx], yt[idx], heads, tau, variance="head"))
    for a, b in zip(*results):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("memory_budget", [2**30, 0])
def test_online_batches_are_the_papers_formula_on_the_running_statistics(memory_budget):
    # every augmented row of every batch against Eq. 2-6 and 11 written out: count-weighted class statistics
    # of the rows both streams delivered so far (the head batch and the tail batch included), in float64.
    # Enough batches for the queue of rank-one terms to overflow and be folded in mid-update (the former code
    # then divided the covariances of that batch's classes by their count before the batch, for one batch)
    rng = np.random.default_rng(21)
    sizes = [300, 200, 150, 30, 12, 5]
    X, y = make_classes(rng, sizes, 40)  # wide enough for the factor route: tail classes' scatter stays queued
    X = (X / X.std()).astype(np.float32)
    # batch 48: the queue overflows while the head batch is counted (batch 75), the case the former code got wrong
    sampler = ShuffledBatchSampler(len(y), 48, generator=torch.Generator().manual_seed(4))
    aug = SMARTAugmenter(augmented_variance=None, feature_scale=None, omega="paper", omega_bounds=(None, None),
                         zero_covariance_weight=None, prior_correction=None, memory_budget=memory_budget)
    hook, train_sampler = aug.make_train_batch_hook(X, y, sampler=sampler)
    assert (hook.stats.dense is not None) == (memory_budget > 0)
    drawn, seen = [], []
    draw, transfer = hook.tail_sampler.draw, hook.transfer
    hook.tail_sampler.draw = lambda n: drawn.append(draw(n)) or drawn[-1]
    hook.transfer = lambda F, tail, head: seen.append((tail, head, *transfer(F, tail, head))) or seen[-1][2:]
    counts = np.zeros(len(y))
    X64 = X.astype(np.float64)
    checked = 0
    for epoch in range(8):
        for idx in train_sampler:
            hook((torch.as_tensor(X)[idx], torch.as_tensor(y)[idx]))
            tail_idx = drawn[-1].numpy()
            np.add.at(counts, idx.numpy(), 1)
            np.add.at(counts, tail_idx, 1)
            tail, head, out, omega, degenerate = (v.numpy() for v in seen[-1])
            for i in np.flatnonzero(~degenerate):
                stats = []
                for k in (tail[i], head[i]):
                    w = counts * (y == k)
                    mu = w @ X64 / w.sum()
                    stats.append((mu, ((X64 - mu) * w[:, None]).T @ (X64 - mu) / w.sum()))
                (mu_t, cov_t), (_, cov_h) = stats
                S = cov_t.T @ cov_h
                G = np.exp(S - S.max(1, keepdims=True))
                sigma_th = G / G.sum(1, keepdims=True) * S
                expected = (X64[tail_idx[i]] - mu_t) / np.sqrt(np.diag(cov_t) + 1e-8) @ sigma_th + mu_t
                np.testing.assert_allclose(out[i], expected, rtol=2e-4, atol=2e-4)
                np.testing.assert_allclose(omega[i], sigma_th.sum() / X.shape[1], rtol=2e-4, atol=1e-5)
                checked += 1
    assert checked > 500


def test_dense_and_factor_routes_give_the_same_fit_and_the_same_seed_the_same_result():
    rng = np.random.default_rng(19)
    X, y = make_classes(rng, [300, 150, 40, 12, 5, 3], 6)
    X = X.astype(np.float32)
    def fit(budget, seed=0):
        return LinearClassifier(
            loss="balanced_softmax", augmenter=SMARTAugmenter(memory_budget=budget), max_epochs=3,
            random_state=seed, device="cpu").fit(X, y)
    dense, factor = fit(2**30), fit(0)
    np.testing.assert_allclose(dense.coef_, factor.coef_, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(dense.predict(X), factor.predict(X))
    np.testing.assert_array_equal(fit(2**30).coef_, dense.coef_)  # same seed, same result
    np.testing.assert_array_equal(fit(0).coef_, factor.coef_)
    hooks = []
    for budget in (2**30, 0):
        sampler = ShuffledBatchSampler(len(y), 64, generator=torch.Generator().manual_seed(3))
        hook, s = SMARTAugmenter(memory_budget=budget).make_train_batch_hook(X, y, sampler=sampler)
        assert (hook.stats.dense is not None) == (budget > 0)
        hooks.append([hook((torch.as_tensor(X)[idx], torch.as_tensor(y)[idx])) for idx in s])
    for (Xa, (ya, wa)), (Xb, (yb, wb)) in zip(*hooks):
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
        np.testing.assert_allclose(Xa.numpy(), Xb.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("augmented_variance, tau", [("head", 1.0), (None, 1.0), (None, 0.0), ("tail", 5.0)])
def test_exact_statistics_pair_cache_gives_the_uncached_rows(augmented_variance, tau):
    # with statistics="exact" the per-pair transfer is computed once and reused: every batch's rows and weights
    # must be those of the uncached path (dense statistics without room for the cache, and the factor route),
    # including a cache too small for every pair (the rest computed per batch)
    rng = np.random.default_rng(23)
    X, y = make_classes(rng, [300, 200, 150, 30, 12, 5, 3, 1], 12)
    X = (X / X.std()).astype(np.float32)
    d, C = X.shape[1], int(y.max()) + 1
    dense = C * d * d * 4
    pair = d * d * 4
    runs = {}
    for name, budget in {"cached": 2**30, "three pairs": dense + 3 * pair, "dense": dense, "factor": 0}.items():
        sampler = ShuffledBatchSampler(len(y), 40, generator=torch.Generator().manual_seed(5))
        aug = SMARTAugmenter(statistics="exact", tau=tau, augmented_variance=augmented_variance, memory_budget=budget)
        hook, s = aug.make_train_batch_hook(X, y, sampler=sampler)
        runs[name] = [hook((torch.as_tensor(X)[idx], torch.as_tensor(y)[idx])) for _ in range(3) for idx in s]
        expected_room = {"cached": hook.cache.capacity, "three pairs": 3, "dense": 0, "factor": 0}[name]
        assert hook.cache.capacity == expected_room and hook.cache.size <= hook.cache.capacity
        if name == "cached":
            assert 0 < hook.cache.size < C * C and hook.cache.nbytes <= budget - dense
    for name in ("three pairs", "dense", "factor"):
        for (Xa, (ya, wa)), (Xb, (yb, wb)) in zip(runs["cached"], runs[name]):
            np.testing.assert_array_equal(ya.numpy(), yb.numpy())
            np.testing.assert_allclose(Xa.numpy(), Xb.numpy(), rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=1e-4, atol=1e-6)


def test_exact_statistics_pair_cache_same_seed_same_fit():
    rng = np.random.default_rng(24)
    X, y = make_classes(rng, [300, 150, 40, 12, 5, 3], 6)
    X = X.astype(np.float32)
    def fit(budget):
        return LinearClassifier(
            loss="balanced_softmax", augmenter=SMARTAugmenter(statistics="exact", memory_budget=budget), max_epochs=3,
            random_state=0, device="cpu").fit(X, y)
    cached = fit(2**30)
    np.testing.assert_array_equal(fit(2**30).coef_, cached.coef_)
    np.testing.assert_allclose(fit(0).coef_, cached.coef_, rtol=1e-4, atol=1e-5)


def test_dense_statistics_stay_within_the_memory_budget():
    from sklearn_lt.augmentation._statistics import _dense_bytes

    rng = np.random.default_rng(20)
    X, y = make_classes(rng, [30, 20, 10], 8)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    need = _dense_bytes(3, 8, element_size=8)  # float64 features: float64 covariances
    assert _ClassStatistics(Xt, yt, 3, 1.0, running=True, dense_budget=need).dense is not None
    assert _ClassStatistics(Xt, yt, 3, 1.0, running=True, dense_budget=need - 1).dense is None
    # d = 2048 with 1,000 classes is far beyond the default budget: the factor route
    assert _dense_bytes(1000, 2048) > SMARTAugmenter().memory_budget


def test_estimator_with_augmenter_pickles_without_its_training_data():
    rng = np.random.default_rng(11)
    X, y = make_classes(rng, [200, 150, 10, 3], 5)
    clf = LinearClassifier(augmenter=SMARTAugmenter(), max_epochs=2, random_state=0, device="cpu").fit(X, y)
    assert clf.net_.train_batch_hook is None
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    # the augmenter parameter is left as given, and the fit is reproducible
    assert clf.augmenter.get_params() == SMARTAugmenter().get_params()
    again = clone(clf).fit(X, y)
    np.testing.assert_array_equal(again.coef_, clf.coef_)


def test_online_route_with_string_labels_and_a_dataframe():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(15)
    X, y = make_classes(rng, [200, 120, 15, 4], 4)
    labels = np.array(["cat", "dog", "emu", "yak"], dtype=object)[y]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    clf = LinearClassifier(augmenter=SMARTAugmenter(), max_epochs=2, random_state=0, device="cpu").fit(frame, labels)
    assert set(clf.predict(frame)) <= set(labels)
    assert list(clf.feature_names_in_) == list(frame.columns)


def test_augmenter_errors_and_warnings():
    rng = np.random.default_rng(12)
    X, y = make_classes(rng, [40, 20, 5], 3)
    with pytest.raises(TypeError, match="'augmenter' parameter of LinearClassifier must be an object implementing"):
        LinearClassifier(augmenter="smart", max_epochs=1, device="cpu").fit(X, y)
    with pytest.warns(UserWarning, match="no head class"):
        LinearClassifier(augmenter=SMARTAugmenter(), max_epochs=1, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="no head class to transfer to class"):
        SMARTAugmenter().fit_resample(X, y)
    with pytest.raises(ValueError, match="omega_bounds"):
        SMARTAugmenter(head_threshold=10, omega_bounds=(2.0, 1.0)).fit_resample(X, y)
    with pytest.raises(ValueError, match="tau"):
        SMARTAugmenter(tau=-1.0).fit_resample(X, y)
    with pytest.raises(ValueError, match="NaN"):
        SMARTAugmenter(head_threshold=10).fit_resample(np.where(X > 2, np.nan, X), y)


def test_inputs_not_modified():
    rng = np.random.default_rng(13)
    X, y = make_classes(rng, [60, 20, 4], 3)
    X32 = X.astype(np.float32)
    before = X32.copy(), y.copy()
    SMARTAugmenter(head_threshold=30, random_state=0).fit_resample(X32, y)
    LinearClassifier(augmenter=SMARTAugmenter(head_threshold=30), max_epochs=1, device="cpu").fit(X32, y)
    np.testing.assert_array_equal(X32, before[0])
    np.testing.assert_array_equal(y, before[1])


# ---------------------------------------------------------------- API contracts


@pytest.mark.parametrize(
    "estimator, check",
    list(estimator_checks_generator(SMARTAugmenter(head_threshold=5, random_state=0), mark="xfail")),
    ids=lambda obj: getattr(obj, "__name__", None) or getattr(getattr(obj, "func", None), "__name__", None),
)
def test_imblearn_sampler_checks(estimator, check):
    check(estimator)


@parametrize_with_checks(
    [LinearClassifier(augmenter=SMARTAugmenter(head_threshold=10), max_epochs=5, random_state=0, device="cpu")],
    expected_failed_checks=lambda est: dict(LinearClassifier._expected_failed_checks),
)
def test_sklearn_checks_with_online_augmenter(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="SMARTAugmenter", category=UserWarning)
        check(estimator)


def test_grid_search_over_tau_in_imblearn_pipeline(letter_lt):
    X, _, y, _ = letter_lt
    classes, counts = np.unique(y, return_counts=True)
    pipe = make_imb_pipeline(
        SMARTAugmenter(sampling_strategy={c: 60 for c in classes[counts < 40]}, random_state=0),
        LinearClassifier(loss="balanced_softmax", max_epochs=3, random_state=0, device="cpu"),
    )
    grid = GridSearchCV(pipe, {"smartaugmenter__tau": [0.0, 1.0]}, cv=2, scoring="balanced_accuracy", n_jobs=1)
    grid.fit(X, y)
    assert np.isfinite(grid.best_score_) and grid.best_params_["smartaugmenter__tau"] in (0.0, 1.0)
    # a sampler does nothing at predict time
    assert grid.predict(X[:5]).shape == (5,)
    online = GridSearchCV(
        make_pipeline(
            StandardScaler(), LinearClassifier(augmenter=SMARTAugmenter(), max_epochs=2, random_state=0, device="cpu")
        ),
        {"linearclassifier__augmenter__tau": [0.0, 1.0]},
        cv=2,
    ).fit(X, y)
    assert np.isfinite(online.best_score_)


# ---------------------------------------------------------------- the effect on real data


@pytest.mark.slow
def test_online_smart_on_letter_lifts_few_shot_and_needs_a_prior_correction(letter_lt):
    X, X_test, y, y_test = letter_lt
    kw = dict(loss="balanced_softmax", max_epochs=15, random_state=0, device="cpu")
    def fit(augmenter=None):
        return LinearClassifier(augmenter=augmenter, **kw).fit(X, y).predict(X_test)
    base, smart = fit(), fit(SMARTAugmenter())
    reweight = fit(SMARTAugmenter(prior_correction="reweight"))
    def few(pred):
        return few_shot_accuracy(y_test, pred, y_train=y)
    def many(pred):
        return many_shot_accuracy(y_test, pred, y_train=y)
    assert few(smart) > few(base) and few(reweight) > few(base) + 0.05
    assert (smart == y_test).mean() > (base == y_test).mean() - 0.01
    # balanced softmax already corrects for the class frequencies: adding the class-reversed tail stream
    # with no correction corrects twice and the many-shot classes collapse; both corrections prevent it
    twice = fit(SMARTAugmenter(prior_correction=None))
    assert many(twice) < many(base) - 0.2
    assert min(many(smart), many(reweight)) > many(twice) + 0.2
