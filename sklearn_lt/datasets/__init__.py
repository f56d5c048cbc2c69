"""Long-tailed data: splits of balanced data, a synthetic generator and bundled real data sets."""

from ._long_tailed import long_tailed_counts, make_long_tailed, make_long_tailed_classification
from ._real import bundled_datasets, load_dataset, load_long_tailed

__all__ = [
    "bundled_datasets",
    "load_dataset",
    "load_long_tailed",
    "long_tailed_counts",
    "make_long_tailed",
    "make_long_tailed_classification",
]
