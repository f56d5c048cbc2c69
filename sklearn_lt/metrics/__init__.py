"""Metrics that show how the rare classes fare, and ready scorers for model selection."""

from ._classification import (
    few_shot_accuracy,
    geometric_mean_recall,
    harmonic_mean_recall,
    long_tail_report,
    lowest_recall,
    many_shot_accuracy,
    medium_shot_accuracy,
    per_class_recall,
    shot_accuracy,
)
from ._scorer import (
    SCORERS,
    geometric_mean_recall_scorer,
    get_scorer,
    harmonic_mean_recall_scorer,
    lowest_recall_scorer,
)

__all__ = [
    "SCORERS",
    "few_shot_accuracy",
    "geometric_mean_recall",
    "geometric_mean_recall_scorer",
    "get_scorer",
    "harmonic_mean_recall",
    "harmonic_mean_recall_scorer",
    "long_tail_report",
    "lowest_recall",
    "lowest_recall_scorer",
    "many_shot_accuracy",
    "medium_shot_accuracy",
    "per_class_recall",
    "shot_accuracy",
]
