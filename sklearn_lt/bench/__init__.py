"""The main benchmark: ``python -m sklearn_lt.bench`` (see ``--help``) and :func:`compare` for your own data."""

from ._compare import Comparison, compare
from ._data import DataError, check_data, load_data, long_tail_splits
from ._registry import METHODS, Method
from ._report import summarize
from ._runner import run

__all__ = [
    "METHODS",
    "Comparison",
    "DataError",
    "Method",
    "check_data",
    "compare",
    "load_data",
    "long_tail_splits",
    "run",
    "summarize",
]
