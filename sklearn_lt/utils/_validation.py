"""Input and parameter checks shared by every estimator (one place for the messages)."""

import numbers

import numpy as np


def check_option(name, value, options):
    """Raise a ValueError naming the parameter when ``value`` is not one of ``options``."""
    if isinstance(value, str) or value is None or isinstance(value, (bool, numbers.Number)):
        if value in options:
            return value
    raise ValueError(f"{name}={value!r} is not supported; choose one of {sorted(map(str, options))}.")


def check_positive_int(name, value, *, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_nonnegative_float(name, value, *, positive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}.")
    return float(value)


def check_min_class_count(classes, class_counts, minimum, *, method, fix):
    """Name every class with fewer than ``minimum`` training samples, and the way out."""
    too_small = [(c, int(n)) for c, n in zip(classes, class_counts) if n < minimum]
    if too_small:
        shown = ", ".join(f"{c!r} ({n})" for c, n in too_small[:10])
        more = f" and {len(too_small) - 10} more" if len(too_small) > 10 else ""
        raise ValueError(
            f"{method} needs at least {minimum} training samples per class, but these classes have "
            f"fewer: {shown}{more}. {fix}"
        )
