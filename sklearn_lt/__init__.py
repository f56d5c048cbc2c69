"""sklearn_lt: scikit-learn compatible estimators for long-tailed classification on feature matrices.

Modules and subpackages:

- :mod:`sklearn_lt.base`: what every classifier of the library shares
  (validation of classification data, outputs computed from logits, fitting
  a base estimator inside a meta-estimator);

- :mod:`sklearn_lt.linear_model`: the decoupling baselines every method is
  compared with, and post-hoc corrections of a fitted linear classifier
  (tau-normalisation, LWS, AlphaNet);
- :mod:`sklearn_lt.neural_network`: an MLP head trained with the long-tail
  losses and samplers;
- :mod:`sklearn_lt.prototypes`: Learned NCM and Multi-NCM;
- :mod:`sklearn_lt.ensemble`: Balanced Training and Merging (BTM);
- :mod:`sklearn_lt.augmentation`: SMART feature augmentation of the rare classes;
- :mod:`sklearn_lt.flows`: DLSA, normalizing-flow filters in front of a classifier;
- :mod:`sklearn_lt.metrics`: long-tail metrics and scorers;
- :mod:`sklearn_lt.datasets`: long-tailed splits, a synthetic generator and
  bundled real data;
- :mod:`sklearn_lt.torch`: the training core (``train_module``), data path,
  samplers and losses the estimators train with;
- :mod:`sklearn_lt.utils`: the long-tail split, a tail-safe validation split
  and estimator discovery;
- :mod:`sklearn_lt.bench`: the main benchmark (``python -m sklearn_lt.bench``)
  and :func:`~sklearn_lt.bench.compare` for your own data.
"""

from ._version import __version__

__all__ = ["__version__"]
