"""Normalizing-flow methods for long-tailed classification.

:class:`DLSAClassifier` (Xu et al., "Constructing Balance from Imbalance for
Long-tailed Image Recognition", ECCV 2022) routes samples through a cascade of
Gaussian-mixture flow filters: each maps the features to a latent space scored
by a fixed mixture of Gaussians, sends the best-fitting share of the samples to
a classifier that also sees the sample's cluster and its class frequencies, and
passes the rest on; what is left after the last filter goes to a
balanced-softmax linear classifier. The flow itself (:class:`GaussianMixtureFlow`,
MAF blocks from zuko) and the cluster-aided classifier are plain torch modules.
"""

from ._dlsa import DLSAClassifier
from ._modules import BatchNormBijection, ClusterAidedClassifier, GaussianMixtureFlow

__all__ = ["BatchNormBijection", "ClusterAidedClassifier", "DLSAClassifier", "GaussianMixtureFlow"]
