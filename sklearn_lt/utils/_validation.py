"""Input and parameter checks shared by every estimator (one place for the messages)."""


import numpy as np

#: Largest magnitude a float32 can hold; the torch models compute in float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float32_range(X, *, estimator=None, input_name="X"):
    """Raise a ValueError when finite values of ``X`` would overflow to infinity in float32.

    Validation checks finiteness in the input's own precision (float64), but
    the torch models compute in float32, where ``|x| > 3.4e38`` becomes
    ``inf`` and then NaN: the model would silently predict one class. Call it
    on validated arrays, at fit and at predict.

    Parameters
    ----------
    X : ndarray
        A validated (finite) array.
    estimator : estimator or str, default=None
        Named in the message.
    input_name : str, default="X"
        Named in the message.

    Returns
    -------
    X : ndarray
        The same array.
    """
    X_array = np.asarray(X)
    if X_array.dtype.kind == "f" and X_array.dtype.itemsize > 4 and X_array.size:
        largest = float(np.max(np.abs(X_array)))
        if largest > FLOAT32_MAX:
            who = "" if estimator is None else f"{estimator if isinstance(estimator, str) else type(estimator).__name__} "
            raise ValueError(
                f"Input {input_name} has a value of magnitude {largest:.3g}, beyond the float32 range "
                f"(+-{FLOAT32_MAX:.3g}) that the {who}model computes in: it would become infinite. Rescale the "
                "features (e.g. sklearn.preprocessing.StandardScaler)."
            )
    return X


def label_repr(label):
    """``repr`` of a class label without numpy's type wrapper (``1``, not ``np.int64(1)``), for messages."""
    return repr(label.item() if isinstance(label, np.generic) else label)
