import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from sklearn_lt.linear_model import LinearClassifier, LWSClassifier, TauNormalizedClassifier, linear_weights
from sklearn_lt.metrics import few_shot_accuracy, harmonic_mean_recall


def test_long_tail_losses_beat_cross_entropy_on_few_shot_real_data(letter_lt):
    """On real long-tailed data (Letter-LT, imbalance 100) cRT and balanced softmax lift the few-shot classes."""
    X, X_test, y, y_test = letter_lt
    few, hmean = {}, {}
    for name, params in {
        "ce": {},
        "crt": {"sampling": "class_balanced"},
        "bsce": {"loss": "balanced_softmax"},
    }.items():
        pred = LinearClassifier(random_state=0, **params).fit(X, y).predict(X_test)
        few[name] = few_shot_accuracy(y_test, pred, y_train=y)
        hmean[name] = harmonic_mean_recall(y_test, pred)
    assert few["crt"] > few["ce"] + 0.15
    assert few["bsce"] > few["ce"] + 0.15
    assert min(hmean["crt"], hmean["bsce"]) > hmean["ce"]


def test_logit_adjusted_tau_one_is_balanced_softmax(small_lt):
    X, X_test, y, _ = small_lt
    a = LinearClassifier(loss="balanced_softmax", max_epochs=3, random_state=0).fit(X, y)
    b = LinearClassifier(loss="logit_adjusted", tau=1.0, max_epochs=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_tau_normalisation(small_lt):
    X, X_test, y, _ = small_lt
    base = LinearClassifier(random_state=0).fit(X, y)
    W, _ = linear_weights(base)
    unit = TauNormalizedClassifier(FrozenEstimator(base), tau=1.0).fit(X, y)
    np.testing.assert_allclose(np.linalg.norm(unit.coef_, axis=1), 1.0, rtol=1e-6)
    identity = TauNormalizedClassifier(FrozenEstimator(base), tau=0.0, keep_intercept=True).fit(X, y)
    np.testing.assert_array_equal(identity.predict(X_test), base.predict(X_test))
    half = TauNormalizedClassifier(FrozenEstimator(base), tau=0.5).fit(X, y)
    np.testing.assert_allclose(half.coef_, W / np.linalg.norm(W, axis=1, keepdims=True) ** 0.5)
    assert np.all(np.isclose(half.intercept_, 0))


def test_lws_without_training_is_the_base_and_learns_larger_tail_scales(letter_lt):
    X, X_test, y, y_test = letter_lt
    base = LinearClassifier(random_state=0).fit(X, y)
    untrained = LWSClassifier(FrozenEstimator(base), max_epochs=0).fit(X, y)
    np.testing.assert_array_equal(untrained.predict(X_test), base.predict(X_test))
    lws = LWSClassifier(FrozenEstimator(base), random_state=0).fit(X, y)
    counts = lws.class_counts_
    # balanced training raises the scales of the rare classes relative to the head
    assert lws.scales_[counts < 20].mean() > lws.scales_[counts > 100].mean()
    assert few_shot_accuracy(y_test, lws.predict(X_test), y_train=y) > few_shot_accuracy(y_test, base.predict(X_test), y_train=y)


def test_binary_sklearn_model_weights_give_same_decisions():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=80) > 0, "yes", "no")
    lr = LogisticRegression().fit(X, y)
    W, b = linear_weights(lr)
    assert W.shape == (2, 3)
    np.testing.assert_allclose((X @ W.T + b) @ [-1, 1], lr.decision_function(X))
    tau0 = TauNormalizedClassifier(FrozenEstimator(lr), tau=0.0, keep_intercept=True).fit(X, y)
    np.testing.assert_array_equal(tau0.predict(X), lr.predict(X))


def test_non_linear_base_is_rejected_with_a_clear_message(small_lt):
    from sklearn.neighbors import KNeighborsClassifier

    X, _, y, _ = small_lt
    with pytest.raises(TypeError, match="coef_"):
        TauNormalizedClassifier(KNeighborsClassifier()).fit(X, y)
