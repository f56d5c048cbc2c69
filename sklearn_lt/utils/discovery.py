"""Find every public estimator of the package, so common tests cover new ones automatically."""

import inspect
import pkgutil
from importlib import import_module

from sklearn.base import BaseEstimator


def all_estimators():
    """List the public estimator classes defined in ``sklearn_lt``.

    Walks the package (skipping ``tests`` and private modules' re-exports are
    found through the public ``__init__`` files), keeps concrete subclasses of
    :class:`sklearn.base.BaseEstimator` defined inside ``sklearn_lt`` whose name
    does not start with ``Base`` or ``_``.

    Returns
    -------
    estimators : list of (name, class) tuples
        Sorted by name.

    Examples
    --------
    >>> from sklearn_lt.utils import all_estimators
    >>> names = [name for name, _ in all_estimators()]
    >>> "LinearClassifier" in names
    True
    """
    import sklearn_lt

    found = {}
    for module_info in pkgutil.walk_packages(sklearn_lt.__path__, prefix="sklearn_lt."):
        parts = module_info.name.split(".")
        if any(part == "tests" or part.startswith("_") for part in parts[1:]):
            continue
        if parts[1] == "bench":
            continue
        module = import_module(module_info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, BaseEstimator)
                and obj.__module__.startswith("sklearn_lt.")
                and not name.startswith(("Base", "_"))
                and not inspect.isabstract(obj)
            ):
                found[name] = obj
    return sorted(found.items())
