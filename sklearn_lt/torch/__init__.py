"""Torch building blocks: the library's data path, samplers, losses and device choice.

These are what the estimators train with, exposed for users who drive skorch
or torch themselves, e.g. ``NeuralNet(..., dataset=ArrayDataset,
iterator_train__sampler=ClassBalancedSampler(y, 256), iterator_train__batch_size=None)``.
"""

from ._data import ArrayDataset, ClassBalancedSampler, SequentialBatchSampler, ShuffledBatchSampler
from ._device import resolve_device
from ._losses import LogitAdjustedLoss

__all__ = [
    "ArrayDataset",
    "ClassBalancedSampler",
    "LogitAdjustedLoss",
    "SequentialBatchSampler",
    "ShuffledBatchSampler",
    "resolve_device",
]
