"""Prototype (nearest-class-mean) classifiers for long-tailed features.

:class:`LearnedNCM` learns one centroid per class, starting from the class
means, with a logit-adjusted cross-entropy on the distances and class-balanced
sampling; :class:`MultiNCM` adds displacements shared by all classes around
those centroids (Sharma et al., "Learned Nearest-Class-Mean for Biased
Representations in Long-Tailed Recognition"). :func:`intra_class_variance` is
the paper's diagnostic of representation bias: how the spread of each class
in feature space relates to its size.
"""

from ._diagnostics import intra_class_variance
from ._ncm import LearnedNCM, MultiNCM

__all__ = ["LearnedNCM", "MultiNCM", "intra_class_variance"]
