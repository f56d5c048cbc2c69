"""The fast paths of issues 16 and 17: no copies of X, no all-ones weights, fused steps, chunked
prediction, full-batch L-BFGS with exact sample weights, and a host read once per pass."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data

from sklearn_lt.linear_model import LinearClassifier, LWSClassifier, TauNormalizedClassifier
from sklearn_lt.prototypes import LearnedNCM
from sklearn_lt.prototypes._ncm import _median_distance
from sklearn_lt.torch import ArrayDataset, _lbfgs, _net
from sklearn_lt.utils._class_stats import class_means
from sklearn_lt.utils._testing import expected_failed_checks

LBFGS64 = dict(solver="lbfgs", solver_dtype="float64", device="cpu", random_state=0)


def test_float32_c_contiguous_X_is_not_copied():
    X = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    ds = ArrayDataset(X, np.zeros(50, dtype=np.int64))
    assert ds.X.data_ptr() == X.ctypes.data
    X.flags.writeable = False  # a read-only array is shared too, without torch's warning
    with_read_only = ArrayDataset(X)
    assert with_read_only.X.data_ptr() == X.ctypes.data
    # other dtypes and orders are converted once into a C-contiguous float32 tensor
    converted = ArrayDataset(np.asfortranarray(X, dtype=np.float64))
    assert converted.X.dtype == torch.float32 and converted.X.is_contiguous()
    np.testing.assert_array_equal(converted.X.numpy(), X)


def _record_train_module(monkeypatch):
    seen = {}
    original = _net.train_module

    def spy(module, criterion, X, y, **kwargs):
        net = original(module, criterion, X, y, **kwargs)
        seen["net"], seen["sample_weight"] = net, kwargs.get("sample_weight")
        return net

    import sklearn_lt.torch._heads as heads

    monkeypatch.setattr(heads, "train_module", spy)
    return seen


def test_no_weight_path_without_weights_and_fused_optimizer(small_lt, monkeypatch):
    X, _, y, _ = small_lt
    seen = _record_train_module(monkeypatch)
    clf = LinearClassifier(max_epochs=1, device="cpu", random_state=0).fit(X, y)
    net = clf.net_
    # the dataset the net trained on carries no weights: the criterion never sees an all-ones vector
    assert net.history[-1, "train_loss"] > 0
    assert clf.net_.optimizer_.defaults["fused"] is True
    weighted = LinearClassifier(max_epochs=1, device="cpu", random_state=0).fit(X, y, sample_weight=np.full(len(y), 2.0))
    assert weighted.net_.optimizer_.defaults["fused"] is True
    assert seen["sample_weight"] is not None


def test_all_ones_weights_reach_the_criterion_as_none(small_lt):
    X, _, y, _ = small_lt
    calls = []

    class Spy(torch.nn.Module):
        def forward(self, logits, target, sample_weight=None):
            calls.append(sample_weight)
            return torch.nn.functional.cross_entropy(logits, target)

    sampler = _net.make_train_sampler(y, sampling="instance", batch_size=64, generator=torch.Generator().manual_seed(0))
    _net.train_module(torch.nn.Linear(X.shape[1], 6), Spy(), X.astype(np.float32), y.astype(np.int64),
                      sample_weight=np.ones(len(y), dtype=np.float32), sampler=sampler, max_epochs=1)
    assert calls and all(w is None for w in calls)


def test_fused_is_not_forced_over_the_callers_choice():
    assert _net.default_optimizer_kwargs(torch.optim.SGD, {"foreach": True}, "cpu") == {"foreach": True}
    assert _net.default_optimizer_kwargs(torch.optim.AdamW, {"fused": False}, "cpu") == {"fused": False}
    assert _net.default_optimizer_kwargs(torch.optim.AdamW, None, "cpu") == {"fused": True}
    assert _net.default_optimizer_kwargs(torch.optim.LBFGS, None, "cpu") == {}


def test_prediction_is_chunked_and_consistent(small_lt, monkeypatch):
    X, X_test, y, _ = small_lt
    clf = LinearClassifier(max_epochs=2, device="cpu", random_state=0).fit(X, y)
    X_big = np.tile(X_test, (40, 1))
    full_logits = X_big.astype(np.float32) @ clf.coef_.T + clf.intercept_
    clf.net_.predict_batch_size = 256
    sizes = []
    original = type(clf)._logits

    def spy(self, X):
        sizes.append(len(X))
        return original(self, X)

    monkeypatch.setattr(type(clf), "_logits", spy)
    pred = clf.predict(X_big)
    assert max(sizes) == 256 and sum(sizes) == len(X_big)
    np.testing.assert_array_equal(pred, clf.classes_[np.argmax(clf.decision_function(X_big), axis=1)])
    np.testing.assert_allclose(clf.decision_function(X_big), full_logits, rtol=1e-5, atol=1e-5)
    proba = clf.predict_proba(X_big)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.log(proba), clf.predict_log_proba(X_big), rtol=1e-9, atol=1e-12)


def test_chunked_class_statistics_equal_the_whole_computation():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 5)).astype(np.float32)
    y = rng.integers(0, 7, 1000)
    w = rng.uniform(0.5, 2.0, 1000)
    whole = class_means(X, y, 7, w, chunk=10**6)
    np.testing.assert_allclose(class_means(X, y, 7, w, chunk=64), whole, rtol=1e-12)
    np.testing.assert_allclose(class_means(X, y, 7, None), class_means(X, y, 7, np.ones(1000)), rtol=1e-12)
    assert _median_distance(X, y, whole, w, chunk=64) == _median_distance(X, y, whole, w, chunk=10**6)


def test_learned_ncm_predicts_from_chunks(small_lt):
    X, X_test, y, _ = small_lt
    clf = LearnedNCM(max_epochs=1, device="cpu", random_state=0).fit(X, y)
    X_big = np.tile(X_test, (20, 1))
    clf.net_.predict_batch_size = 100
    chunked = clf.decision_function(X_big)
    clf.net_.predict_batch_size = 10**6
    np.testing.assert_array_equal(chunked, clf.decision_function(X_big))


# ----------------------------------------------------------------------------- full-batch L-BFGS


@pytest.mark.parametrize(
    "estimator",
    [
        LinearClassifier(**LBFGS64),
        LinearClassifier(sampling="class_balanced", **LBFGS64),
        LinearClassifier(loss="balanced_softmax", **LBFGS64),
        LWSClassifier(LinearClassifier(**LBFGS64), **LBFGS64),
        TauNormalizedClassifier(LinearClassifier(**LBFGS64)),
    ],
    ids=["ce", "crt", "balanced_softmax", "lws", "tau_norm"],
)
def test_lbfgs_float64_weights_equal_repetition(estimator):
    assert "check_sample_weight_equivalence_on_dense_data" not in expected_failed_checks(estimator)
    check_sample_weight_equivalence_on_dense_data(type(estimator).__name__, estimator)


def test_mini_batch_heads_keep_the_sample_weight_xfail():
    for est in [LinearClassifier(), LinearClassifier(solver="lbfgs"), LWSClassifier(solver="lbfgs", solver_dtype="float64")]:
        assert "check_sample_weight_equivalence_on_dense_data" in expected_failed_checks(est)


def _objective(X, y, W, b, wd, sample_weight=None):
    """mean (weighted) cross-entropy + 0.5 * wd * ||W||^2, in float64."""
    logits = X.astype(np.float64) @ np.asarray(W, np.float64).T + b
    logits -= logits.max(axis=1, keepdims=True)
    ce = np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(y)), y]
    w = np.ones(len(y)) if sample_weight is None else sample_weight
    return float((w * ce).sum() / w.sum() + 0.5 * wd * (np.asarray(W, np.float64) ** 2).sum())


def test_lbfgs_reaches_logistic_regressions_optimum(small_lt, monkeypatch):
    """mean CE + 0.5 * wd * ||W||^2 is LogisticRegression's objective with C = 1 / (wd * n)."""
    X, _, y, _ = small_lt
    monkeypatch.setattr(_lbfgs, "LBFGS_TOL", 1e-9)
    wd = 1e-2
    ours = LinearClassifier(weight_decay=wd, max_epochs=500, **LBFGS64).fit(X, y)
    ref = LogisticRegression(C=1 / (wd * len(y)), tol=1e-10, max_iter=10_000).fit(X, y)
    mine = _objective(X, y, ours.coef_, ours.intercept_, wd)
    assert mine == pytest.approx(ours.history_[-1, "train_loss"], rel=1e-6)  # the loss it minimised is this one
    assert mine <= _objective(X, y, ref.coef_, ref.intercept_, wd) + 1e-7
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=2e-3)


def test_class_balanced_lbfgs_is_class_weight_balanced(small_lt, monkeypatch):
    X, _, y, _ = small_lt
    monkeypatch.setattr(_lbfgs, "LBFGS_TOL", 1e-9)
    ours = LinearClassifier(sampling="class_balanced", weight_decay=1e-2, max_epochs=500, **LBFGS64).fit(X, y)
    # class_weight="balanced" weights sum to n, as the class-balanced weights do, so C is the same
    ref = LogisticRegression(C=1 / (1e-2 * len(y)), class_weight="balanced", tol=1e-10, max_iter=10_000).fit(X, y)
    w = len(y) / (6 * np.bincount(y))[y]
    assert _objective(X, y, ours.coef_, ours.intercept_, 1e-2, w) <= _objective(X, y, ref.coef_, ref.intercept_, 1e-2, w) + 1e-7
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=2e-3)


def test_lbfgs_chunking_does_not_change_the_solution(small_lt, monkeypatch):
    X, X_test, y, _ = small_lt
    whole = LinearClassifier(max_epochs=40, **LBFGS64).fit(X, y)
    monkeypatch.setattr(_lbfgs, "_CHUNK_LOGITS", 64 * 6)  # rows per chunk: the 256 floor
    chunked = LinearClassifier(max_epochs=40, **LBFGS64).fit(X, y)
    np.testing.assert_allclose(chunked.predict_proba(X_test), whole.predict_proba(X_test), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LinearClassifier(solver="lbfgs", max_epochs=15, device="cpu"),
        lambda: LinearClassifier(solver="lbfgs", sampling="class_balanced", max_epochs=15, device="cpu"),
        lambda: LWSClassifier(solver="lbfgs", max_epochs=5, device="cpu"),
    ],
    ids=["lbfgs", "lbfgs_crt", "lws_lbfgs"],
)
def test_lbfgs_same_seed_same_model(make, small_lt):
    X, X_test, y, _ = small_lt
    a = make().set_params(random_state=3).fit(X, y)
    b = make().set_params(random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X_test), b.predict_proba(X_test))


@pytest.mark.parametrize("solver_dtype", ["float32", "float64"])
@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
def test_lbfgs_same_seed_same_model_in_each_dtype_and_chunking(small_lt, monkeypatch, solver_dtype, chunked):
    X, X_test, y, _ = small_lt
    if chunked:  # rows per chunk: the 256 floor, so the data are several chunks
        monkeypatch.setattr(_lbfgs, "_CHUNK_LOGITS", 64 * 6)
        X, y = np.tile(X, (4, 1)), np.tile(y, 4)
        assert _lbfgs.chunk_rows(6) < len(y)

    def fit():
        return LWSClassifier(
            LinearClassifier(loss="balanced_softmax", solver="lbfgs", solver_dtype=solver_dtype, max_epochs=20),
            solver="lbfgs", solver_dtype=solver_dtype, max_epochs=5, device="cpu", random_state=3,
        ).fit(X, y)

    a, b = fit(), fit()
    np.testing.assert_array_equal(a.estimator_.coef_, b.estimator_.coef_)
    np.testing.assert_array_equal(a.predict_proba(X_test), b.predict_proba(X_test))
    assert a.history_[:, "train_loss"] == b.history_[:, "train_loss"]


@pytest.mark.parametrize("sampling", ["instance", "class_balanced"])
def test_device_side_samplers_give_the_same_fit_for_the_same_seed_on_cpu(small_lt, sampling):
    """The samplers a GPU fit uses (moved with ``.to``), run through train_module on the CPU."""
    from sklearn_lt.torch._losses import LogitAdjustedLoss

    X, X_test, y, _ = small_lt
    X, y = X.astype(np.float32), y.astype(np.int64)

    def fit(seed):
        torch.manual_seed(0)
        generator = torch.Generator().manual_seed(seed)
        sampler = _net.make_train_sampler(y, sampling=sampling, batch_size=32, generator=generator).to("cpu")
        assert isinstance(sampler.generator, torch.Generator) and sampler.generator is not generator
        net = _net.train_module(torch.nn.Linear(X.shape[1], 6), LogitAdjustedLoss(tau=0.0), X, y,
                                sampler=sampler, max_epochs=3, optimizer="adamw", lr=0.01, device="cpu")
        return net.module_.weight.detach().clone()

    first = fit(7)
    torch.testing.assert_close(first, fit(7), rtol=0, atol=0)
    assert not torch.equal(first, fit(8))


def test_lbfgs_first_trial_step_is_scipys_and_no_point_is_evaluated_twice(small_lt):
    """torch's first trial step, -g / ||g||_1, is hundreds of times too short with many parameters;
    LogisticRegression's scipy takes -g / ||g||_2. Splitting off the first step re-evaluates nothing."""
    from sklearn_lt.torch._losses import LogitAdjustedLoss

    X, _, y, _ = small_lt
    points = []

    class Recording(LogitAdjustedLoss):
        def forward(self, logits, target, sample_weight=None):
            points.append(torch.cat([p.detach().reshape(-1).clone() for p in module.parameters()]))
            return super().forward(logits, target, sample_weight)

    module = torch.nn.Linear(X.shape[1], 6, dtype=torch.float64)
    torch.nn.init.zeros_(module.weight)
    torch.nn.init.zeros_(module.bias)
    net = _lbfgs.train_full_batch(module, Recording(tau=0.0), X, y.astype(np.int64), max_evals=12, dtype="float64")
    assert torch.linalg.vector_norm(points[1] - points[0]).item() == pytest.approx(1.0, rel=1e-9)
    assert all(not torch.equal(a, b) for a, b in zip(points, points[1:]))
    assert len(points) == len(net.history) <= 12


def test_lbfgs_history_has_one_row_per_pass_and_stops_at_the_cap(small_lt):
    X, _, y, _ = small_lt
    clf = LinearClassifier(solver="lbfgs", max_epochs=7, device="cpu", random_state=0).fit(X, y)
    losses = clf.history_[:, "train_loss"]
    assert len(losses) == 7  # far from converged, so every pass allowed is used (torch's LBFGS left one unused)
    assert losses[-1] < losses[0]
    assert clf.coef_.dtype == np.float32


def test_lbfgs_rejects_an_augmenter_and_bad_solver(small_lt):
    from sklearn_lt.augmentation import SMARTAugmenter

    X, _, y, _ = small_lt
    with pytest.raises(ValueError, match="augmenter needs solver='minibatch'"):
        LinearClassifier(solver="lbfgs", augmenter=SMARTAugmenter(), device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="solver"):
        LinearClassifier(solver="newton", device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="solver_dtype"):
        LWSClassifier(solver_dtype="float16", device="cpu").fit(X, y)


# ----------------------------------------------------------------------------- the step without per-batch host reads


def test_batch_losses_are_read_once_per_epoch(small_lt, monkeypatch):
    X, _, y, _ = small_lt
    reads, items = [], []
    original_read, original_item = _net.read_losses, torch.Tensor.item
    monkeypatch.setattr(_net, "read_losses", lambda losses: reads.append(len(losses)) or original_read(losses))

    def counting_item(self):
        items.append(1)
        return original_item(self)

    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    clf = LinearClassifier(max_epochs=3, batch_size=16, device="cpu", random_state=0).fit(X, y)
    monkeypatch.setattr(torch.Tensor, "item", original_item)
    n_batches = -(-len(y) // 16)
    assert reads == [n_batches] * 3
    assert len(items) < n_batches  # skorch alone would call .item() once per batch
    # the history is what skorch would have recorded: per-batch losses and their weighted epoch mean
    batches = clf.history_[-1, "batches"]
    assert len(batches) == n_batches and all(isinstance(b["train_loss"], float) for b in batches)
    sizes = np.array([b["train_batch_size"] for b in batches])
    mean = np.average([b["train_loss"] for b in batches], weights=sizes)
    assert clf.history_[-1, "train_loss"] == pytest.approx(mean, rel=1e-12)


def test_device_samplers_are_seeded_and_cover_the_data():
    from sklearn_lt.torch import ClassBalancedSampler, ShuffledBatchSampler

    def epochs(sampler, k=2):
        return [torch.cat(list(sampler)) for _ in range(k)]

    base = ShuffledBatchSampler(50, 8, generator=torch.Generator().manual_seed(0))
    moved = base.to("cpu")
    first = epochs(moved)
    assert all(sorted(e.tolist()) == list(range(50)) for e in first)
    assert not torch.equal(first[0], first[1])
    again = ShuffledBatchSampler(50, 8, generator=torch.Generator().manual_seed(0)).to("cpu")
    assert all(torch.equal(a, b) for a, b in zip(first, epochs(again)))
    assert all(b.device == torch.device("cpu") for b in moved)

    y = np.array([0] * 90 + [1] * 10)
    balanced = ClassBalancedSampler(y, 1000, n_draws=4000, generator=torch.Generator().manual_seed(0)).to("cpu")
    drawn = torch.cat(list(balanced)).numpy()
    assert abs(np.mean(y[drawn]) - 0.5) < 0.05
    same = ClassBalancedSampler(y, 1000, n_draws=4000, generator=torch.Generator().manual_seed(0)).to("cpu")
    np.testing.assert_array_equal(drawn, torch.cat(list(same)).numpy())


def test_train_module_moves_the_sampler_to_a_non_cpu_device_only(small_lt, monkeypatch):
    X, _, y, _ = small_lt
    from sklearn_lt.torch import ShuffledBatchSampler

    moved = []
    monkeypatch.setattr(ShuffledBatchSampler, "to", lambda self, device: moved.append(device) or self)
    LinearClassifier(max_epochs=1, device="cpu", random_state=0).fit(X, y)
    assert moved == []
