"""sklearn_lt/base.py: fit_base_estimator, the one place where a meta-estimator fits its base estimator."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid

from sklearn_lt.base import ClassifierOutputMixin, fit_base_estimator, validate_classification_data
from sklearn_lt.datasets import make_long_tailed_classification
from sklearn_lt.torch import _base as torch_base


@pytest.fixture(scope="module")
def data():
    X, _, y, _ = make_long_tailed_classification(n_classes=4, n_features=5, n_max=40, imbalance_ratio=4, random_state=0)
    return X, y


class Meta(ClassifierMixin, BaseEstimator):
    def __init__(self, estimator=None, random_state=None):
        self.estimator = estimator
        self.random_state = random_state


class Seeded(ClassifierMixin, BaseEstimator):
    """Records how it was fitted."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.unique(y)
        self.fitted_with_ = (self.random_state, sample_weight)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def _meta(X, y, **params):
    meta = Meta(**params)
    validate_classification_data(meta, X, y)
    return meta


def test_base_pieces_live_in_sklearn_lt_base_and_torch_base_uses_them():
    assert torch_base.ClassifierOutputMixin is ClassifierOutputMixin
    assert torch_base.validate_classification_data is validate_classification_data
    assert issubclass(torch_base.BaseTorchClassifier, ClassifierOutputMixin)


def test_default_is_fitted_as_given_when_estimator_is_none(data):
    X, y = data
    default = Seeded(random_state=7)
    base = fit_base_estimator(_meta(X, y), X, y, default=default, random_state=3)
    assert base is default and base.fitted_with_ == (7, None)


def test_clone_leaves_the_users_estimator_unfitted_and_unchanged(data):
    X, y = data
    user = Seeded()
    base = fit_base_estimator(_meta(X, y, estimator=user), X, y, default=None, random_state=3)
    assert base is not user
    assert not hasattr(user, "classes_") and user.random_state is None


@pytest.mark.parametrize("user_seed, expected", [(None, 3), (11, 11)])
def test_random_state_goes_only_to_a_base_without_one(data, user_seed, expected):
    X, y = data
    meta = _meta(X, y, estimator=Seeded(random_state=user_seed))
    base = fit_base_estimator(meta, X, y, default=None, random_state=3)
    assert base.fitted_with_[0] == expected


def test_sample_weight_is_forwarded_unless_all_ones(data):
    X, y = data
    meta = _meta(X, y, estimator=Seeded())
    w = np.linspace(0.5, 2.0, len(y))
    assert fit_base_estimator(meta, X, y, w, default=None).fitted_with_[1] is w
    assert fit_base_estimator(meta, X, y, np.ones(len(y)), default=None).fitted_with_[1] is None
    # a base without sample_weight support works when there are no real weights
    fit_base_estimator(_meta(X, y, estimator=NearestCentroid()), X, y, np.ones(len(y)), default=None)


def test_a_frozen_estimator_is_used_without_refitting(data):
    X, y = data
    fitted = LogisticRegression().fit(X, y)
    coef = fitted.coef_.copy()
    frozen = FrozenEstimator(fitted)
    base = fit_base_estimator(_meta(X, y, estimator=frozen), X[:10], y[:10], default=None, random_state=0)
    assert base is frozen
    np.testing.assert_array_equal(fitted.coef_, coef)


def test_a_base_fitted_on_other_classes_is_rejected(data):
    X, y = data
    frozen = FrozenEstimator(LogisticRegression().fit(X, y + 1))
    with pytest.raises(ValueError, match="the pre-trained estimator's classes_ .* differ from the classes in y"):
        fit_base_estimator(_meta(X, y, estimator=frozen), X, y, default=None, role="pre-trained estimator")


def test_encoded_classes_are_accepted_only_when_asked(data):
    X, y = data
    labels = np.array(["a", "b", "c", "d"])[y]
    meta = _meta(X, labels, estimator=Seeded())
    fit_base_estimator(meta, X, y, default=None, encoded_ok=True)
    with pytest.raises(ValueError, match="differ from the classes in y"):
        fit_base_estimator(meta, X, y, default=None)


def test_a_base_without_the_needed_attribute_gets_a_type_error(data):
    X, y = data
    meta = _meta(X, y, estimator=LogisticRegression())
    with pytest.raises(TypeError, match="LogisticRegression has no centroids_: Meta needs a nearest-centroid model"):
        fit_base_estimator(meta, X, y, default=None, needs=("centroids_", "a nearest-centroid model"))
