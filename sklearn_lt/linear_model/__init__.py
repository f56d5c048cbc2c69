"""Linear classifiers for long-tailed data: the decoupling baselines every method is compared with."""

from ._linear import LinearClassifier
from ._posthoc import LWSClassifier, TauNormalizedClassifier
from ._utils import linear_weights

__all__ = ["LWSClassifier", "LinearClassifier", "TauNormalizedClassifier", "linear_weights"]
