"""Neural-network classifier heads for feature matrices.

:class:`MLPHeadClassifier` is a multi-layer perceptron (hidden layers with
optional batch normalisation, then one linear layer) trained through the
library's torch core with its long-tail losses (cross-entropy, balanced
softmax, logit adjustment) and samplers (instance, class-balanced). It is the
non-linear "whole model" on features that methods which fine-tune or merge
networks, such as :class:`sklearn_lt.ensemble.BalancedUndersampleMerger`,
work on; :class:`MLPHead` is its torch module.
"""

from ._mlp import MLPHead, MLPHeadClassifier

__all__ = ["MLPHead", "MLPHeadClassifier"]
