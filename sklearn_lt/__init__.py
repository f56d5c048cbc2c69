"""sklearn_lt: scikit-learn compatible estimators for long-tailed classification on feature matrices.

Subpackages: :mod:`sklearn_lt.linear_model` (decoupling baselines),
:mod:`sklearn_lt.metrics` (long-tail metrics and scorers),
:mod:`sklearn_lt.datasets` (long-tailed splits and bundled real data),
:mod:`sklearn_lt.torch` (the data path, samplers and losses the estimators train with).
"""

from ._version import __version__

__all__ = ["__version__"]
