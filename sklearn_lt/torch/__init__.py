"""Torch building blocks: the library's training core, data path, samplers, losses and device choice.

These are what the estimators train with, exposed for users who drive skorch
or torch themselves, e.g. ``NeuralNet(..., dataset=ArrayDataset,
iterator_train__sampler=ClassBalancedSampler(y, 256), iterator_train__batch_size=None)``,
or who train their own module the way the estimators do with :func:`train_module`.
"""

from ._data import ArrayDataset, ClassBalancedSampler, SequentialBatchSampler, ShuffledBatchSampler
from ._device import resolve_device
from ._losses import LogitAdjustedLoss
from ._net import train_module

__all__ = [
    "ArrayDataset",
    "ClassBalancedSampler",
    "LogitAdjustedLoss",
    "SequentialBatchSampler",
    "ShuffledBatchSampler",
    "resolve_device",
    "train_module",
]
