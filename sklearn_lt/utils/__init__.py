"""Utilities: the long-tail split, a tail-safe validation split and estimator discovery."""

from ._long_tail import FEW_SHOT_THRESHOLD, MANY_SHOT_THRESHOLD, SHOT_GROUPS, shot_groups
from ._split import tail_safe_validation_split
from .discovery import all_estimators

__all__ = [
    "FEW_SHOT_THRESHOLD",
    "MANY_SHOT_THRESHOLD",
    "SHOT_GROUPS",
    "all_estimators",
    "shot_groups",
    "tail_safe_validation_split",
]
