"""The shared training core: samplers, device choice, seeding, pickling, bad input."""

import pickle

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from skorch import NeuralNet
from torch import nn

from sklearn_lt.flows import DLSAClassifier
from sklearn_lt.linear_model import LinearClassifier
from sklearn_lt.torch import ArrayDataset, ClassBalancedSampler, LogitAdjustedLoss, ShuffledBatchSampler, resolve_device


def test_class_balanced_sampler_draws_classes_equally():
    y = np.repeat(np.arange(5), [1000, 300, 50, 5, 1])
    sampler = ClassBalancedSampler(y, batch_size=500, n_draws=20000, generator=torch.Generator().manual_seed(0))
    drawn = torch.cat(list(sampler)).numpy()
    assert len(drawn) == 20000 and len(sampler) == 40
    counts = np.bincount(y[drawn], minlength=5)
    # chi-square against the uniform distribution over classes
    assert chisquare(counts).pvalue > 1e-3
    # and within a class, every sample can be drawn
    assert set(drawn[y[drawn] == 3]) == set(np.flatnonzero(y == 3))


def test_reversed_and_instance_class_probabilities():
    y = np.repeat([0, 1], [90, 10])
    reversed_ = ClassBalancedSampler(y, 10, class_probs="reversed")
    np.testing.assert_allclose(reversed_.class_probs_, [0.1, 0.9])
    np.testing.assert_allclose(ClassBalancedSampler(y, 10, class_probs="instance").class_probs_, [0.9, 0.1])
    with pytest.raises(ValueError, match="class_probs"):
        ClassBalancedSampler(y, 10, class_probs=[1.0])


def test_samplers_are_reproducible():
    y = np.repeat(np.arange(3), [50, 20, 2])
    for make in (lambda g: ClassBalancedSampler(y, 16, generator=g), lambda g: ShuffledBatchSampler(len(y), 16, generator=g)):
        a = torch.cat(list(make(torch.Generator().manual_seed(1))))
        b = torch.cat(list(make(torch.Generator().manual_seed(1))))
        assert torch.equal(a, b)


def test_sampler_works_through_skorch_iterator_train_sampler():
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1], [200, 10])
    X = (rng.normal(size=(210, 2)) + 3 * y[:, None]).astype(np.float32)
    seen = []

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, X):
            return self.lin(X)

    class Net(NeuralNet):
        def train_step_single(self, batch, **fit_params):
            seen.append(batch[1].numpy().copy())
            return super().train_step_single(batch, **fit_params)

    net = Net(
        Recorder,
        nn.CrossEntropyLoss,
        max_epochs=3,
        train_split=None,
        iterator_train__sampler=ClassBalancedSampler(y, 64, generator=torch.Generator().manual_seed(0)),
        iterator_train__batch_size=None,
        verbose=0,
    )
    net.fit(ArrayDataset(X, y), y=None)
    share = np.concatenate(seen).mean()
    assert 0.4 < share < 0.6  # the 10-sample class fills half of every epoch


def test_logit_adjusted_loss():
    logits, y = torch.zeros(2, 2), torch.tensor([0, 1])
    plain = LogitAdjustedLoss(tau=0.0)(logits, y)
    assert float(plain) == pytest.approx(np.log(2))
    adjusted = LogitAdjustedLoss([99, 1], tau=1.0)(logits, y)
    assert float(adjusted) > float(plain)  # the rare class is pushed down in training, so it must learn more
    weighted = LogitAdjustedLoss(tau=0.0)(torch.tensor([[5.0, 0.0], [0.0, 0.0]]), y, torch.tensor([0.0, 1.0]))
    assert float(weighted) == pytest.approx(np.log(2))


def test_device_resolution():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_same_random_state_gives_bit_identical_model_and_leaves_global_rng(small_lt):
    X, X_test, y, _ = small_lt
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = LinearClassifier(random_state=7).fit(X, y)
    after = torch.rand(1)
    assert torch.equal(before, after)  # fit does not consume the caller's torch RNG
    b = LinearClassifier(random_state=7).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    c = LinearClassifier(random_state=8, sampling="class_balanced").fit(X, y)
    assert not np.array_equal(a.coef_, c.coef_)


@pytest.mark.parametrize(
    "estimator",
    [
        LinearClassifier(max_epochs=3, random_state=0),
        DLSAClassifier(flow_max_epochs=2, max_epochs=3, device="cpu", random_state=0),
    ],
    ids=["LinearClassifier", "DLSAClassifier"],
)
def test_predicting_leaves_the_global_rng_alone(small_lt, estimator):
    # a DataLoader draws a seed from torch's global generator each time it is iterated: predicting
    # through skorch's forward moved the caller's random stream
    X, X_test, y, _ = small_lt
    estimator.fit(X, y)
    state = torch.get_rng_state()
    estimator.predict_proba(X_test)
    estimator.predict(X_test[:7])
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    "scores",
    [[3.0, 1.0, 2.0, 1.0, 1.5], [2.0, 2.0, 2.0], [np.nan, 4.0, np.inf, 4.0, 3.0], [1.0, 2.0, 3.0], [5.0, 4.0, 3.0]],
)
def test_keep_best_epoch_lower_is_better_keeps_the_epoch_early_stopping_restores(scores):
    # DLSA's classifiers kept their best validation epoch with skorch's EarlyStopping before they used
    # KeepBestEpoch: the kept epoch must be the same, ties (first wins) and non-finite losses included
    from skorch.callbacks import EarlyStopping
    from skorch.history import History

    from sklearn_lt.torch._callbacks import KeepBestEpoch

    def kept_weight(callback):
        net = type("Net", (), {})()
        net.module_, net.history, net.max_epochs, net.verbose = nn.Linear(1, 1), History(), len(scores), 0
        callback.on_train_begin(net)
        for epoch, score in enumerate(scores, start=1):
            with torch.no_grad():
                net.module_.weight.fill_(epoch)
            net.history.new_epoch()
            net.history.record("epoch", epoch)
            net.history.record("valid_loss", score)
            callback.on_epoch_end(net)
        callback.on_train_end(net)
        return net.module_.weight.item()

    early = EarlyStopping(patience=len(scores) + 1, threshold=0.0, load_best=True, sink=lambda *a, **k: None)
    ours = KeepBestEpoch("valid_loss", min_epochs=1, lower_is_better=True)
    assert kept_weight(ours) == kept_weight(early) == ours.best_epoch_ == early.best_epoch_


def test_net_and_history_exposed(small_lt):
    X, _, y, _ = small_lt
    clf = LinearClassifier(max_epochs=4, random_state=0).fit(X, y)
    assert len(clf.history_) == 4 and clf.history_[-1, "train_loss"] < clf.history_[0, "train_loss"]
    assert isinstance(clf.net_.module_, nn.Linear)


def test_verbose_prints_epoch_table(small_lt, capsys):
    X, _, y, _ = small_lt
    LinearClassifier(max_epochs=2, verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert "epoch" in out and "train_loss" in out


def test_model_trained_on_cuda_loads_on_cpu(small_lt):
    """A pickle that says 'cuda' loads and predicts on a CPU-only machine (simulated when no GPU)."""
    X, X_test, y, _ = small_lt
    clf = LinearClassifier(max_epochs=3, random_state=0)
    if torch.cuda.is_available():
        clf.set_params(device="cuda").fit(X, y)
        expected = clf.predict_proba(X_test)
        blob = pickle.dumps(clf)
        restored = pickle.loads(blob)
        restored.net_.set_params(device="cpu")
        restored.net_.module_.to("cpu")
    else:
        clf.fit(X, y)
        expected = clf.predict_proba(X_test)
        clf.device_ = "cuda"
        clf.net_.device = "cuda"  # what a GPU-trained net records
        blob = pickle.dumps(clf)
        with pytest.warns(Warning):
            restored = pickle.loads(blob)
        assert restored.device_ == "cpu" and str(restored.net_.device) == "cpu"
    np.testing.assert_allclose(restored.predict_proba(X_test), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.array([[np.nan, 1.0], [1.0, 2.0]]), [0, 1], "NaN"),
        (np.array([[np.inf, 1.0], [1.0, 2.0]]), [0, 1], "infinity"),
        (np.ones((3, 2)), [1, 1, 1], "at least 2 classes"),
        (np.empty((0, 2)), [], "0 sample"),
        (np.ones((3, 2)), [0.5, 1.5, 2.5], "Unknown label type"),
        (np.ones((3, 2)), [0, 1], "inconsistent numbers of samples"),
    ],
)
def test_bad_input_messages(X, y, match):
    with pytest.raises(ValueError, match=match):
        LinearClassifier(max_epochs=1).fit(X, y)


def test_wrong_feature_count_at_predict(small_lt):
    X, X_test, y, _ = small_lt
    clf = LinearClassifier(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X_test[:, :3])


@pytest.mark.parametrize("params, match", [
    ({"loss": "focal"}, "'loss' parameter of LinearClassifier"),
    ({"sampling": "square_root"}, "'sampling' parameter"),
    ({"lr": -1}, "'lr' parameter"),
    ({"max_epochs": 1.5}, "'max_epochs' parameter"),
    ({"optimizer": "lbfgs"}, "'optimizer' parameter"),
])
def test_bad_parameters_are_named(small_lt, params, match):
    X, _, y, _ = small_lt
    with pytest.raises(ValueError, match=match):
        LinearClassifier(**params).fit(X, y)
