"""Losses on logits, with optional per-sample weights."""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def weighted_mean(values, sample_weight=None):
    if sample_weight is None:
        return values.mean()
    return (values * sample_weight).sum() / sample_weight.sum().clamp_min(torch.finfo(values.dtype).tiny)


class LogitAdjustedLoss(nn.Module):
    """Cross-entropy on ``logits + tau * log(n_y)`` (Menon et al.'s logit adjustment).

    ``tau=0`` is plain cross-entropy; ``tau=1`` is balanced softmax (Ren et al.):
    training against the class prior makes the unadjusted logits fit a balanced
    test distribution. The adjustment is applied in training only; prediction
    uses the raw logits.

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,), default=None
        Training samples per class. Required when ``tau != 0``.
    tau : float, default=1.0
        Strength of the adjustment.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.torch import LogitAdjustedLoss
    >>> loss = LogitAdjustedLoss([100, 1], tau=1.0)
    >>> float(loss(torch.zeros(1, 2), torch.tensor([1]))) > float(torch.log(torch.tensor(2.0)))
    True
    """

    def __init__(self, class_counts=None, tau=1.0):
        super().__init__()
        self.tau = float(tau)
        if not np.isfinite(self.tau):
            raise ValueError(f"tau must be a finite number, got {tau!r}.")
        if self.tau != 0.0:
            if class_counts is None:
                raise ValueError("LogitAdjustedLoss with tau != 0 needs class_counts.")
            counts = np.asarray(class_counts, dtype=np.float64)
            # a NaN count makes every loss NaN (reported as a diverged fit), a negative one silently counts as 1
            if counts.ndim != 1 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
                raise ValueError(
                    "class_counts must be a 1-d array of finite, non-negative class sizes, got an array of shape "
                    f"{counts.shape} with values from {np.min(counts, initial=np.inf)} to {np.max(counts, initial=-np.inf)}."
                )
            counts = torch.as_tensor(counts, dtype=torch.float32)
            self.register_buffer("adjustment", self.tau * torch.log(counts.clamp_min(1.0)))
        else:
            self.adjustment = None

    def forward(self, logits, y, sample_weight=None):
        if self.adjustment is not None:
            logits = logits + self.adjustment
        return weighted_mean(F.cross_entropy(logits, y, reduction="none"), sample_weight)
