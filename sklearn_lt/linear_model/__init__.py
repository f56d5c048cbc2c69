"""Linear classifiers for long-tailed data: the decoupling baselines every method is compared with,
and post-hoc corrections of a fitted linear classifier (tau-normalisation, LWS, AlphaNet)."""

from ._alphanet import AlphaNetClassifier
from ._linear import LinearClassifier
from ._posthoc import LWSClassifier, TauNormalizedClassifier
from ._utils import linear_weights

__all__ = ["AlphaNetClassifier", "LWSClassifier", "LinearClassifier", "TauNormalizedClassifier", "linear_weights"]
