"""scikit-learn's estimator checks, pickling, cloning and search for every public estimator."""

import pickle

import numpy as np
import pytest
from imblearn.utils.estimator_checks import estimator_checks_generator as imblearn_checks_generator
from sklearn.base import clone, is_classifier
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_param_validation,
    estimator_checks_generator,
    parametrize_with_checks,
)

from sklearn_lt.metrics import harmonic_mean_recall
from sklearn_lt.utils import all_estimators
from sklearn_lt.utils._testing import expected_failed_checks, fitted_nets, make_test_instances

INSTANCES = make_test_instances()
# the prediction tests below are for classifiers; samplers (fit_resample) get imbalanced-learn's checks
CLASSIFIERS = [e for e in INSTANCES if is_classifier(e)]
IDS = [type(e).__name__ for e in CLASSIFIERS]
SAMPLERS = [e for e in INSTANCES if hasattr(e, "fit_resample")]


def test_all_estimators_found():
    names = {name for name, _ in all_estimators()}
    assert {"LinearClassifier", "TauNormalizedClassifier", "LWSClassifier"} <= names
    assert not any(name.startswith("Base") for name in names)


@pytest.mark.parametrize("estimator", INSTANCES, ids=lambda e: type(e).__name__)
def test_every_parameter_is_validated(estimator):
    """Every constructor parameter is declared in ``_parameter_constraints`` and a bad value or type
    raises scikit-learn's ``InvalidParameterError`` naming it, before any training."""
    check_param_validation(type(estimator).__name__, estimator)


@parametrize_with_checks(INSTANCES, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# Classes whose fast ``_test_params`` differ from their defaults are checked with default
# parameters too (issue 15: ``AlphaNetClassifier()`` failed 27 of the checks unnoticed). Defaults
# train for tens of epochs on each check's data: those that take minutes are marked slow.
_SLOW_DEFAULTS = {"BalancedUndersampleMerger", "DLSAClassifier", "LearnedNCM", "MultiNCM"}
DEFAULT_INSTANCES = [cls() for _, cls in all_estimators() if getattr(cls, "_test_params", None)]


def _default_check_params():
    for estimator in DEFAULT_INSTANCES:
        name = type(estimator).__name__
        expected = expected_failed_checks(estimator)
        for est, check in estimator_checks_generator(estimator):
            check_name = getattr(check, "func", check).__name__
            marks = [pytest.mark.slow] if name in _SLOW_DEFAULTS else []
            if check_name in expected:
                marks.append(pytest.mark.xfail(reason=expected[check_name]))
            yield pytest.param(est, check, id=f"{name}()-{check_name}", marks=marks)


@pytest.mark.parametrize("estimator, check", list(_default_check_params()))
def test_sklearn_compatible_default_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "estimator, check",
    [
        pair
        for sampler in SAMPLERS
        for pair in imblearn_checks_generator(sampler, expected_failed_checks=expected_failed_checks(sampler), mark="xfail")
    ],
    ids=lambda obj: type(obj).__name__ if hasattr(obj, "get_params") else getattr(obj, "func", obj).__name__,
)
def test_imblearn_compatible_sampler(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=IDS)
def test_pickle_clone_and_predict(estimator, small_lt):
    X, X_test, y, _ = small_lt
    fitted = clone(estimator).set_params(random_state=0).fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(fitted.predict(X_test), restored.predict(X_test))
    np.testing.assert_allclose(fitted.predict_proba(X_test), restored.predict_proba(X_test), rtol=1e-6)
    assert clone(fitted).get_params().keys() == estimator.get_params().keys()


@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=IDS)
def test_same_random_state_same_model(estimator, small_lt):
    X, X_test, y, _ = small_lt
    a = clone(estimator).set_params(random_state=3).fit(X, y)
    b = clone(estimator).set_params(random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X_test), b.predict_proba(X_test))


@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=IDS)
def test_string_labels_and_input_not_modified(estimator, small_lt):
    X, X_test, y, _ = small_lt
    labels = np.array(["head", "b", "c", "d", "e", "tail"], dtype=object)[y]
    X_before, y_before = X.copy(), labels.copy()
    fitted = clone(estimator).set_params(random_state=0).fit(X, labels)
    assert set(fitted.predict(X_test)) <= set(labels)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(labels, y_before)


@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=IDS)
def test_grid_search_with_long_tail_scorer_in_pipeline(estimator, small_lt):
    X, _, y, _ = small_lt
    pipe = make_pipeline(StandardScaler(), clone(estimator).set_params(random_state=0))
    grid = GridSearchCV(
        pipe,
        {"standardscaler__with_mean": [True, False]},
        scoring=make_scorer(harmonic_mean_recall),
        cv=2,
        n_jobs=2,
    )
    grid.fit(X, y)
    assert np.isfinite(grid.best_score_)


@pytest.mark.parametrize("estimator", CLASSIFIERS, ids=IDS)
def test_pickled_tensors_are_device_mapped_on_load(estimator, small_lt):
    """A GPU-trained model must load on a CPU-only machine: skorch maps tensors to the loading
    device only inside its ``__cuda_dependent_attributes__`` blob, so no tensor may be pickled
    outside it (a plain-pickled CUDA tensor cannot be loaded without CUDA; found on an H100)."""
    X, _, y, _ = small_lt
    fitted = clone(estimator).set_params(random_state=0).fit(X, y)
    nets = fitted_nets(fitted)
    if not nets:
        pytest.skip("holds no torch model")
    for net in nets:
        state = net.__getstate__()
        assert "__cuda_dependent_attributes__" in state
        state.pop("__cuda_dependent_attributes__")
        assert b"_load_from_bytes" not in pickle.dumps(state), f"{type(net).__name__} pickles tensors outside the blob"
