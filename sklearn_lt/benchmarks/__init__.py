"""The main benchmark: ``python -m sklearn_lt.benchmarks`` (see ``--help``)."""

from ._registry import METHODS, Method
from ._runner import run, summarize

__all__ = ["METHODS", "Method", "run", "summarize"]
