"""Meta-estimators' tags follow those of the estimator they wrap, where that is true of the whole."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils import get_tags

from sklearn_lt.ensemble import BalancedUndersampleMerger
from sklearn_lt.linear_model import AlphaNetClassifier, LinearClassifier, LWSClassifier, TauNormalizedClassifier
from sklearn_lt.prototypes import LearnedNCM, MultiNCM


def _restrictive(tags):
    """Tags of an estimator that needs non-negative input, two classes, and is not reproducible."""
    tags.input_tags.positive_only = True
    tags.input_tags.sparse = True
    tags.input_tags.allow_nan = True
    tags.non_deterministic = True
    tags.classifier_tags.multi_class = False
    tags.classifier_tags.poor_score = True
    return tags


class _RestrictiveLinear(LinearClassifier):
    def __sklearn_tags__(self):
        return _restrictive(super().__sklearn_tags__())


class _RestrictiveNCM(LearnedNCM):
    def __sklearn_tags__(self):
        return _restrictive(super().__sklearn_tags__())


META = [
    (TauNormalizedClassifier, _RestrictiveLinear),
    (LWSClassifier, _RestrictiveLinear),
    (AlphaNetClassifier, _RestrictiveLinear),
    (MultiNCM, _RestrictiveNCM),
    (BalancedUndersampleMerger, _RestrictiveLinear),
]
IDS = [meta.__name__ for meta, _ in META]


@pytest.mark.parametrize("meta, inner", META, ids=IDS)
@pytest.mark.parametrize("frozen", [False, True], ids=["clone", "frozen"])
def test_requirements_of_the_inner_estimator_pass_through(meta, inner, frozen):
    estimator = FrozenEstimator(inner()) if frozen else inner()
    tags = get_tags(meta(estimator=estimator))
    assert tags.input_tags.positive_only
    assert tags.non_deterministic
    assert not tags.classifier_tags.multi_class
    assert tags.classifier_tags.poor_score
    # the meta-estimator validates X as a dense, finite array itself: what the inner one accepts
    # beyond that is not accepted by the whole
    assert not tags.input_tags.sparse
    assert not tags.input_tags.allow_nan


@pytest.mark.parametrize("meta, inner", META, ids=IDS)
def test_default_inner_estimator_keeps_default_tags(meta, inner):
    tags = get_tags(meta())
    assert not tags.input_tags.positive_only
    assert not tags.non_deterministic
    assert tags.classifier_tags.multi_class
    assert not tags.classifier_tags.poor_score


@pytest.mark.parametrize("meta", [TauNormalizedClassifier, LWSClassifier, AlphaNetClassifier])
def test_sparse_tag_is_false_because_the_meta_estimator_rejects_sparse_input(meta):
    # LogisticRegression accepts sparse X, the meta-estimator does not: the tag says what fit does
    estimator = LogisticRegression()
    assert get_tags(estimator).input_tags.sparse
    assert not get_tags(meta(estimator=estimator)).input_tags.sparse
    X = sp.random(40, 3, density=0.5, format="csr", random_state=0)
    y = np.arange(40) % 2
    with pytest.raises(TypeError, match="[Ss]parse"):
        meta(estimator=estimator).fit(X, y)


def test_invalid_estimator_does_not_break_the_tags():
    # check_param_validation reads the tags of an estimator whose parameters are invalid
    assert get_tags(TauNormalizedClassifier(estimator="not an estimator")).input_tags.sparse is False
