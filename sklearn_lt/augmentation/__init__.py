"""Training-only feature augmentation for long-tailed data.

:class:`SMARTAugmenter` (semantic transfer from head to tail, Zhang et al. 2024)
augments rare-class features with the covariance of frequent classes. It is an
imbalanced-learn sampler (``fit_resample``, for :class:`imblearn.pipeline.Pipeline`)
and an online augmenter for the library's torch estimators
(``LinearClassifier(augmenter=SMARTAugmenter())``), which augment every training
batch as the paper does. Neither route changes anything at predict time.
"""

from ._smart import SMARTAugmenter

__all__ = ["SMARTAugmenter"]
