"""The bad-input catalogue, run on every estimator the package exports (discovered, not listed).

Each case must end in a clear error (``ValueError``/``TypeError`` whose message names the
problem) or in a finite, usable model; a fit that learned nothing must say so with a
``ConvergenceWarning``. New estimators inherit the catalogue through
``sklearn_lt.utils.discovery``. The regression tests of issue 15 follow the catalogue.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import NearestCentroid
from sklearn.utils.validation import has_fit_parameter

from sklearn_lt.utils._testing import make_test_instances

INSTANCES = make_test_instances()
CLASSIFIERS = [e for e in INSTANCES if is_classifier(e)]
SAMPLERS = [e for e in INSTANCES if hasattr(e, "fit_resample")]
CLASSIFIER_IDS = [type(e).__name__ for e in CLASSIFIERS]
SAMPLER_IDS = [type(e).__name__ for e in SAMPLERS]
COUNTS = (60, 30, 15, 8, 4)


def _data(counts=COUNTS, n_features=6, seed=0):
    rng = np.random.RandomState(seed)
    centres = 3.0 * rng.normal(size=(len(counts), n_features))
    X = np.vstack([c + rng.normal(size=(n, n_features)) for c, n in zip(centres, counts)])
    return X, np.repeat(np.arange(len(counts)), counts)


def _with(X, row, col, value):
    X = np.array(X, dtype=np.float64)
    X[row, col] = value
    return X


def _new(estimator):
    return clone(estimator).set_params(random_state=0)


def _check_usable(model, X, y, caught):
    """A fitted model must give finite probabilities over its classes; if it predicts one class for
    training data of several classes that a nearest centroid separates, it must have warned
    (ConvergenceWarning); on data where nothing can be learned (constant features) it may stay silent."""

    proba = model.predict_proba(X)
    assert np.all(np.isfinite(proba)), "non-finite probabilities from a model that fitted without error"
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    predicted = model.predict(X)
    assert set(predicted) <= set(model.classes_)
    separable = len(np.unique(y)) > 1 and np.ptp(X) > 0
    if separable:
        separable = balanced_accuracy_score(y, NearestCentroid().fit(X, y).predict(X)) > 0.75
    if len(np.unique(predicted)) == 1 and separable:
        assert any(issubclass(w.category, ConvergenceWarning) for w in caught), (
            "the model predicts one class for all training rows without a ConvergenceWarning"
        )


def _error_or_usable(estimator, X, y, **fit_params):
    """The outcome of a case where either a clear error or a usable model is acceptable."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = _new(estimator).fit(X, y, **fit_params)
        except (ValueError, TypeError) as exc:
            assert len(str(exc)) > 20, f"unclear error message: {exc!r}"
            return "error"
    _check_usable(model, X, y, caught)
    return "model"


# ------------------------------------------------------------------- fit-time inputs that must be refused

X0, Y0 = _data()

FIT_MUST_FAIL = {
    "nan": (_with(X0, 3, 1, np.nan), Y0, "NaN"),
    "inf": (_with(X0, 3, 1, np.inf), Y0, "infinity"),
    "minus_inf": (_with(X0, 0, 0, -np.inf), Y0, "infinity"),
    "beyond_float32": (_with(X0, 0, 0, 1e39), Y0, "float32"),
    "beyond_float32_negative": (_with(X0, 5, 2, -3.5e38), Y0, "float32"),
    "one_class": (X0, np.zeros(len(Y0), dtype=int), "class"),
    "empty": (np.empty((0, 6)), np.empty(0, dtype=int), "0 sample"),
    "one_dimensional_X": (X0[:, 0], Y0, "2D array"),
    "no_feature": (np.empty((len(Y0), 0)), Y0, "0 feature"),
    "y_length_mismatch": (X0, Y0[:-1], "inconsistent numbers of samples"),
    "nan_label": (X0, np.where(np.arange(len(Y0)) == 2, np.nan, Y0.astype(float)), "NaN"),
    "continuous_labels": (X0, Y0 + 0.5, "Unknown label type"),
    "string_features": (X0.astype(str).astype(object) + "x", Y0, "convert|could not"),
    "complex_features": (X0 + 1j, Y0, "[Cc]omplex"),
}


@pytest.mark.parametrize("case", list(FIT_MUST_FAIL))
@pytest.mark.parametrize("estimator", INSTANCES, ids=[type(e).__name__ for e in INSTANCES])
def test_fit_refuses_bad_input(estimator, case):
    X, y, match = FIT_MUST_FAIL[case]
    fit = _new(estimator).fit_resample if hasattr(estimator, "fit_resample") else _new(estimator).fit
    if case.startswith("beyond_float32") and not is_classifier(estimator):
        pytest.skip("computes in float64: values beyond float32 are valid input")
    with pytest.raises((ValueError, TypeError), match=match):
        fit(X, y)


BAD_WEIGHTS = {
    "nan": np.where(np.arange(len(Y0)) == 4, np.nan, 1.0),
    "inf": np.where(np.arange(len(Y0)) == 4, np.inf, 1.0),
    "negative": np.where(np.arange(len(Y0)) == 4, -1.0, 1.0),
    "all_zero": np.zeros(len(Y0)),
    "wrong_length": np.ones(len(Y0) - 1),
    "two_dimensional": np.ones((len(Y0), 2)),
}


@pytest.mark.parametrize("case", list(BAD_WEIGHTS))
@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=CLASSIFIER_IDS)
def test_fit_refuses_invalid_sample_weight(estimator, case):
    if not has_fit_parameter(estimator, "sample_weight"):
        pytest.skip("fit takes no sample_weight")
    with pytest.raises(ValueError):
        _new(estimator).fit(X0, Y0, sample_weight=BAD_WEIGHTS[case])


# ------------------------------------------------------------------- unusual but valid inputs


def _one_sample_class():
    return _data(COUNTS + (1,))


def _tiny():
    # fewer samples than any default batch size, three classes of 4, 3 and 2
    return _data((4, 3, 2))


def _constant():
    X, y = _data()
    return np.ones_like(X), y


def _huge_scale():
    # finite in float32, but saturates every softmax: learns nothing or diverges
    X, y = _data()
    return X * 1e30, y


def _duplicate_rows_other_labels():
    X, y = _data()
    return np.vstack([X, X[:10]]), np.concatenate([y, (y[:10] + 1) % len(COUNTS)])


VALID_FIT = {
    "one_sample_class": _one_sample_class,
    "n_below_batch_size": _tiny,
    "constant_features": _constant,
    "huge_scale_divergence": _huge_scale,
    "contradicting_duplicates": _duplicate_rows_other_labels,
    "float16": lambda: (X0.astype(np.float16), Y0),
    "float32": lambda: (X0.astype(np.float32), Y0),
    "int_features": lambda: (np.round(X0 * 10).astype(np.int64), Y0),
    "string_labels": lambda: (X0, np.array(["many", "b", "c", "d", "tail"], dtype=object)[Y0]),
    "column_vector_y": lambda: (X0, Y0[:, None]),
}


@pytest.mark.parametrize("case", list(VALID_FIT))
@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=CLASSIFIER_IDS)
def test_unusual_fit_input_gives_error_or_usable_model(estimator, case):
    X, y = VALID_FIT[case]()
    _error_or_usable(estimator, X, np.ravel(y) if case == "column_vector_y" else y)


@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=CLASSIFIER_IDS)
def test_sgd_with_huge_learning_rate_is_an_error_or_usable_model(estimator):
    params = estimator.get_params(deep=False)
    if "lr" not in params:
        pytest.skip("no learning rate")
    diverging = clone(estimator).set_params(lr=1e8, **({"optimizer": "sgd"} if "optimizer" in params else {}))
    _error_or_usable(diverging, 100 * X0, Y0)


@pytest.mark.parametrize("case", ["nan", "inf", "beyond_float32_is_valid", "one_sample_class"])
@pytest.mark.parametrize("sampler", SAMPLERS, ids=SAMPLER_IDS)
def test_sampler_gives_error_or_finite_output(sampler, case):
    X, y = _one_sample_class() if case == "one_sample_class" else (X0, Y0)
    if case != "one_sample_class":
        X = _with(X, 0, 0, {"nan": np.nan, "inf": np.inf, "beyond_float32_is_valid": 1e39}[case])
    try:
        X_res, y_res = _new(sampler).fit_resample(X, y)
    except ValueError as exc:
        assert case in ("nan", "inf"), f"valid input refused: {exc}"
        return
    assert case not in ("nan", "inf")
    assert np.all(np.isfinite(X_res)) and len(X_res) == len(y_res)


# ------------------------------------------------------------------- predict-time inputs

_FITTED = {}


def _fitted(estimator):
    key = type(estimator).__name__
    if key not in _FITTED:
        _FITTED[key] = _new(estimator).fit(X0, Y0)
    return _FITTED[key]


PREDICT_MUST_FAIL = {
    "nan": (_with(X0[:7], 1, 1, np.nan), "NaN"),
    "inf": (_with(X0[:7], 1, 1, np.inf), "infinity"),
    "beyond_float32": (_with(X0[:7], 1, 1, 1e39), "float32"),
    "beyond_float32_negative": (_with(X0[:7], 1, 1, -1e39), "float32"),
    "fewer_features": (X0[:7, :3], "features"),
    "more_features": (np.hstack([X0[:7], X0[:7]]), "features"),
    "one_dimensional": (X0[0], "2D array"),
    "empty": (np.empty((0, 6)), "0 sample"),
}


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function"])
@pytest.mark.parametrize("case", list(PREDICT_MUST_FAIL))
@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=CLASSIFIER_IDS)
def test_predict_refuses_bad_input(estimator, case, method):
    model = _fitted(estimator)
    X, match = PREDICT_MUST_FAIL[case]
    with pytest.raises(ValueError, match=match):
        getattr(model, method)(X)


def _near_float32_max():
    # inside the float32 range, so accepted, but a float32 hidden layer overflows on it
    X = np.full((4, X0.shape[1]), 3e38)
    X[1] *= -1
    X[2, ::2] *= -1
    return X


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba", "decision_function"])
@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=CLASSIFIER_IDS)
def test_predict_overflow_inside_the_model_is_an_error_not_nan(estimator, method):
    """Scores that overflow inside the model were NaN probabilities and an argmax of class 0 (MLP, BTM)."""
    model = _fitted(estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            output = getattr(model, method)(_near_float32_max())
        except ValueError as exc:
            assert "non-finite class scores" in str(exc) and "scale them as the training data were" in str(exc)
            return
    if method == "predict":  # a class label is only right if the probabilities behind it are numbers
        output = model.predict_proba(_near_float32_max())
    if method == "predict_log_proba":
        assert not np.any(np.isnan(output))
    else:
        assert np.all(np.isfinite(output))


@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=CLASSIFIER_IDS)
def test_read_only_memmap_input_without_warnings(estimator, tmp_path):
    model = _fitted(estimator)
    path = tmp_path / "X.npy"
    np.save(path, X0)
    X_map = np.load(path, mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(model.predict(X_map), model.predict(X0))
    assert np.all(np.isfinite(_new(estimator).fit(X_map, Y0).predict_proba(X_map)))


@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=CLASSIFIER_IDS)
def test_fitted_model_survives_pickle_with_finite_output(estimator):
    model = pickle.loads(pickle.dumps(_fitted(estimator)))
    assert np.all(np.isfinite(model.predict_proba(X0)))


# ------------------------------------------------------------------- regression tests of issue 15


def test_item1_beyond_float32_is_refused_where_it_was_a_nan_model():
    from sklearn_lt.linear_model import LinearClassifier

    with pytest.raises(ValueError, match="beyond the float32 range"):
        LinearClassifier(random_state=0, max_epochs=2).fit(_with(X0, 0, 0, 1e39), Y0)
    model = LinearClassifier(random_state=0, max_epochs=2).fit(X0, Y0)
    with pytest.raises(ValueError, match="beyond the float32 range"):
        model.predict(_with(X0, 0, 0, 1e39))


def test_item2_diverging_training_is_an_error_naming_the_fix():
    from sklearn_lt.neural_network import MLPHeadClassifier
    from sklearn_lt.torch._callbacks import TrainingDivergedError

    with pytest.raises(ValueError, match=r"diverged.*smaller learning rate \(lr\).*standardise") as info:
        MLPHeadClassifier(optimizer="sgd", lr=1e6, max_epochs=3, random_state=0).fit(100 * X0, Y0)
    assert isinstance(info.value, TrainingDivergedError)


def test_item2_dlsa_diverging_flow_is_an_error_not_a_nan_threshold():
    from sklearn_lt.flows import DLSAClassifier

    with pytest.raises(ValueError, match="diverged"):
        DLSAClassifier(flow_lr=1e8, flow_max_epochs=2, max_epochs=2, random_state=0).fit(1e3 * X0, Y0)


@pytest.mark.parametrize("name", ["TauNormalizedClassifier", "LWSClassifier", "AlphaNetClassifier"])
def test_item3_random_state_reaches_a_user_supplied_base(name):
    from sklearn.model_selection import cross_val_score

    from sklearn_lt import linear_model

    cls = getattr(linear_model, name)
    extra = {"n_neighbors": 2, "max_epochs": 2} if name == "AlphaNetClassifier" else {}

    def make():
        return cls(linear_model.LinearClassifier(loss="balanced_softmax", max_epochs=3), random_state=0, **extra)

    np.testing.assert_array_equal(make().fit(X0, Y0).predict_proba(X0), make().fit(X0, Y0).predict_proba(X0))
    np.testing.assert_array_equal(cross_val_score(make(), X0, Y0, cv=2), cross_val_score(make(), X0, Y0, cv=2))


@pytest.mark.parametrize("name", ["LinearClassifier", "LearnedNCM", "MLPHeadClassifier"])
def test_item5_early_stopping_needs_and_gets_a_validation_split(name):
    from skorch.callbacks import EarlyStopping

    from sklearn_lt.utils import all_estimators

    cls = dict(all_estimators())[name]
    with pytest.raises(ValueError, match="monitors 'valid_loss'.*validation_fraction"):
        cls(callbacks=[EarlyStopping()], max_epochs=2, random_state=0).fit(X0, Y0)
    model = cls(callbacks=[EarlyStopping(patience=1)], validation_fraction=0.25, max_epochs=40, random_state=0)
    model.fit(X0, Y0)
    assert np.all(np.isfinite(model.history_[:, "valid_loss"]))  # scored every epoch on the held-out part


def test_item5_validation_fraction_off_by_default_leaves_the_fit_unchanged():
    from sklearn_lt.linear_model import LinearClassifier

    a = LinearClassifier(max_epochs=3, random_state=0).fit(X0, Y0)
    b = LinearClassifier(max_epochs=3, validation_fraction=0, random_state=0).fit(X0, Y0)
    np.testing.assert_array_equal(a.coef_, b.coef_)


@pytest.mark.parametrize("params", [{"max_epochs": 0}, {"flow_max_epochs": 0}, {"max_epochs": 0, "flow_max_epochs": 0}])
def test_item6_dlsa_zero_epochs_fit(params):
    from sklearn_lt.flows import DLSAClassifier

    model = DLSAClassifier(random_state=0, **{"flow_max_epochs": 2, "max_epochs": 2, **params}).fit(X0, Y0)
    assert np.all(np.isfinite(model.predict_proba(X0)))


@pytest.mark.parametrize("name", ["TauNormalizedClassifier", "LWSClassifier", "MultiNCM", "AlphaNetClassifier"])
def test_item7_frozen_base_with_other_features_is_refused_at_fit(name):
    from sklearn.frozen import FrozenEstimator

    from sklearn_lt.linear_model import LinearClassifier
    from sklearn_lt.prototypes import LearnedNCM
    from sklearn_lt.utils import all_estimators

    base = LearnedNCM(max_epochs=1) if name == "MultiNCM" else LinearClassifier(max_epochs=1)
    frozen = FrozenEstimator(base.fit(X0[:, :4], Y0))
    params = {"max_epochs": 1} if name != "TauNormalizedClassifier" else {}
    if name == "AlphaNetClassifier":
        params["n_neighbors"] = 2
    with pytest.raises(ValueError, match="4 features.* 6 features|has 4 features per weight row"):
        dict(all_estimators())[name](frozen, **params).fit(X0, Y0)


def test_item8_balanced_undersample_merger_leaves_the_global_torch_rng_alone():
    from sklearn_lt.ensemble import BalancedUndersampleMerger
    from sklearn_lt.neural_network import MLPHeadClassifier
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    BalancedUndersampleMerger(
        MLPHeadClassifier(hidden_layer_sizes=(8,), max_epochs=2), n_subsets=1, finetune_epochs=1,
        post_train_epochs=1, random_state=0,
    ).fit(X0, Y0)
    assert torch.equal(before, torch.random.get_rng_state())


@pytest.mark.parametrize(
    "make, parameter",
    [
        (lambda: __import__("sklearn_lt.linear_model", fromlist=["x"]).LinearClassifier(momentum=5), "momentum"),
        (lambda: __import__("sklearn_lt.neural_network", fromlist=["x"]).MLPHeadClassifier(momentum=1.0), "momentum"),
        (
            lambda: __import__("sklearn_lt.linear_model", fromlist=["x"]).TauNormalizedClassifier(keep_intercept="yes"),
            "keep_intercept",
        ),
    ],
)
def test_item9_hyper_parameter_gaps_raise_invalid_parameter_error(make, parameter):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=f"The '{parameter}' parameter of"):
        make().fit(X0, Y0)


def test_item11_a_fit_that_learns_nothing_warns():
    from sklearn_lt.linear_model import LinearClassifier

    with pytest.warns(ConvergenceWarning, match="predicts one class .* separates .* training ended without learning"):
        LinearClassifier(random_state=0, max_epochs=5).fit(X0 * 1e30, Y0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        LinearClassifier(random_state=0, max_epochs=5).fit(X0, Y0)  # a normal fit stays silent


def test_item11_dlsa_constant_features_stop_the_cascade_instead_of_an_empty_stage():
    from sklearn_lt.flows import DLSAClassifier

    with pytest.warns(ConvergenceWarning, match="routes all or none"):
        model = DLSAClassifier(flow_max_epochs=2, max_epochs=2, random_state=0).fit(np.ones_like(X0), Y0)
    assert model.n_filters_ == 0
    assert len(model.net_.history) == 2 and np.isfinite(model.net_.history[-1, "train_loss"])


def test_item12_messages_show_plain_labels_and_smart_keeps_float16():
    from sklearn_lt.augmentation import SMARTAugmenter
    from sklearn_lt.linear_model import LinearClassifier

    with pytest.raises(ValueError) as info:
        LinearClassifier().fit(X0, np.full(len(Y0), 3))
    assert "np.int64" not in str(info.value) and "(3)" in str(info.value)
    X_res, _ = SMARTAugmenter(head_threshold=20, random_state=0).fit_resample(X0.astype(np.float16), Y0)
    assert X_res.dtype == np.float16


# ------------------------------------------------------------------- regression tests of the input audit


def test_audit_make_long_tailed_message_shows_the_plain_label():
    from sklearn_lt.datasets import make_long_tailed

    with pytest.raises(ValueError, match=r"class 1 has 30 samples") as info:
        make_long_tailed(X0, Y0, imbalance_ratio=2, n_test_per_class=3, random_state=0)
    assert "np.int64" not in str(info.value)
    with pytest.raises(ValueError, match=r"class 'b' has 30 samples"):
        make_long_tailed(X0, np.array(["a", "b", "c", "d", "tail"])[Y0], imbalance_ratio=2, n_test_per_class=3)


@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=CLASSIFIER_IDS)
def test_audit_fit_on_a_dataframe_raises_no_feature_name_warning(estimator):
    """The fit-time check of a degenerate fit predicted on the validated array and warned that "X does not have
    valid feature names" on every fit on a DataFrame."""
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(X0, columns=[f"feature_{i}" for i in range(X0.shape[1])])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*feature names", category=UserWarning)
        model = _new(estimator).fit(X, Y0)
        model.predict(X)
    np.testing.assert_array_equal(model.feature_names_in_, X.columns)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(X0)  # the warning still fires where it means something


@pytest.mark.parametrize(
    "class_counts, tau, match",
    [([10, -1], 1.0, "non-negative"), ([np.nan, 1], 1.0, "finite"), ([[10, 1]], 1.0, "1-d"), ([10, 1], np.nan, "tau")],
)
def test_audit_logit_adjusted_loss_refuses_invalid_counts(class_counts, tau, match):
    """A negative count was silently taken as 1, a NaN one made every loss NaN, a 2-d one broadcast."""
    from sklearn_lt.torch import LogitAdjustedLoss

    with pytest.raises(ValueError, match=match):
        LogitAdjustedLoss(np.array(class_counts), tau=tau)
    loss = LogitAdjustedLoss(np.array([10, 0]))  # an empty class is valid: its prior is floored at one sample
    assert torch.isfinite(loss(torch.zeros(2, 2), torch.tensor([0, 1])))


def test_audit_smart_no_head_class_message_is_plain_and_short():
    """The message listed every class size as {np.int64(0): np.int64(3), ...}, one entry per class."""
    from sklearn_lt.augmentation import SMARTAugmenter

    X, y = _data((3, 1, 1))
    with pytest.raises(ValueError, match=r"class 'b'.* head_threshold=3 .*the largest other class has 3\)") as info:
        SMARTAugmenter(head_threshold=3, random_state=0).fit_resample(X, np.array(["a", "b", "c"])[y])
    assert "np." not in str(info.value)


def test_audit_tau_normalisation_never_gives_nan_weights():
    """A zero weight row was 0 / 0 = NaN for tau > 1, and a huge tau overflowed: NaN probabilities either way."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    from sklearn_lt.linear_model import TauNormalizedClassifier

    base = LogisticRegression().fit(X0, Y0)
    base.coef_[2] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = TauNormalizedClassifier(FrozenEstimator(base), tau=2.0).fit(X0, Y0)
    np.testing.assert_array_equal(model.coef_[2], 0.0)
    assert np.all(np.isfinite(model.predict_proba(X0)))
    with pytest.raises(ValueError, match=r"tau=1000000.0 overflows the normalised weights.*smaller tau"):
        TauNormalizedClassifier(LogisticRegression(), tau=1e6).fit(X0, Y0)


def _fit_output(estimator):
    if hasattr(estimator, "fit_resample"):
        return _new(estimator).fit_resample(X0, Y0)[0]
    return _new(estimator).fit(X0, Y0).predict_proba(X0)


@pytest.mark.parametrize("estimator", INSTANCES, ids=[type(e).__name__ for e in INSTANCES])
def test_audit_fit_under_a_float64_torch_default_dtype(estimator):
    """Under torch.set_default_dtype(torch.float64) every torch fit failed with "mat1 and mat2 must have the same
    dtype": the modules were built in float64 for float32 data. The fit must now be the float32 one, and leave the
    caller's default alone."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        output = _fit_output(estimator)
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(previous)
    np.testing.assert_array_equal(output, _fit_output(estimator))


def test_audit_metric_labels_must_be_one_dimensional():
    """labels=[[0, 1]] failed deep inside with "operands could not be broadcast together"."""
    from sklearn_lt.metrics import harmonic_mean_recall, per_class_recall

    with pytest.raises(ValueError, match=r"labels must be a 1-d list of class labels, got an array of shape \(1, 2\)"):
        per_class_recall([0, 0, 1, 1, 2, 2], [0, 0, 0, 0, 0, 0], labels=[[0, 1]])
    assert harmonic_mean_recall([0, 0, 1, 1], [0, 0, 1, 0], labels=[0, 1, 5]) == pytest.approx(2 / 3)  # 5 left out
