"""The user's own data for the main benchmark: reading files, checking them, and long-tail-safe splits."""

import csv
import hashlib
import os

import numpy as np

from ..utils._class_stats import class_indices

#: File types ``--data`` reads.
DATA_FORMATS = (".npz", ".npy", ".csv", ".parquet")

#: Test fraction of the repeated stratified splits when there is no test set.
DEFAULT_TEST_SIZE = 0.25


class DataError(ValueError):
    """A data file or array the benchmark cannot use; the message says what to fix."""


def _extension(path):
    ext = os.path.splitext(str(path))[1].lower()
    return ".parquet" if ext == ".pq" else ext


def _labels(values):
    """Labels of any type; strings that are all integers become integers (``"3"`` and ``3`` are one class)."""
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        try:
            as_int = values.astype(np.int64)
        except (TypeError, ValueError):
            return values.astype(str)
        if np.array_equal(as_int.astype(str), np.char.strip(values.astype(str))):
            return as_int
        return values.astype(str)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        return values.astype(np.int64)
    return values


def _table_to_arrays(columns, target, source):
    """Features and labels of a column table (dict name -> values), checking the columns one by one."""
    names = list(columns)
    if target is None:
        raise DataError(f"{source}: a table needs --target (the label column); its columns are {names}.")
    if target not in columns:
        raise DataError(f"{source}: no column named {target!r} for the labels; its columns are {names}.")
    features = [name for name in names if name != target]
    if not features:
        raise DataError(f"{source}: no feature column besides the label column {target!r}.")
    X = np.empty((len(columns[target]), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        values = np.asarray(columns[name])
        try:
            X[:, j] = values.astype(np.float64)
        except (TypeError, ValueError):
            bad = next(i for i, v in enumerate(values.tolist()) if not _is_number(v))
            raise DataError(
                f"{source}: feature column {name!r} is not numeric (row {bad + 1} holds {values[bad]!r}); "
                "encode it as numbers or drop it."
            ) from None
    return X, _labels(columns[target])


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _read_csv(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: the file is empty.") from None
        rows = [row for row in reader if row]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise DataError(f"{path}: data row {i + 1} has {len(row)} fields, the header {len(header)}.")
    if len(set(header)) != len(header):
        raise DataError(f"{path}: repeated column names in the header {header}.")
    values = np.array(rows, dtype=object).reshape(len(rows), len(header))
    return {name: values[:, j] for j, name in enumerate(header)}


def _read_parquet(path):
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        raise DataError("reading Parquet needs pandas and pyarrow: pip install 'sklearn_lt[parquet]'") from None
    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise DataError(
            f"reading Parquet needs a Parquet engine for pandas: pip install 'sklearn_lt[parquet]' ({exc})"
        ) from None
    return {str(name): frame[name].to_numpy() for name in frame.columns}


def read_xy(paths, *, target=None):
    """Features and labels of one data set given as files.

    Parameters
    ----------
    paths : str or list of str
        One ``.csv``, ``.parquet`` or ``.npz`` file (keys ``X`` and ``y``), or
        two ``.npy`` files (features, then labels).
    target : str, default=None
        The label column of a CSV or Parquet table; every other column is a feature.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    for path in paths:
        if _extension(path) not in DATA_FORMATS:
            raise DataError(f"{path}: unknown file type; use one of {', '.join(DATA_FORMATS)}.")
        if not os.path.exists(path):
            raise DataError(f"{path}: no such file.")
    exts = [_extension(p) for p in paths]
    if exts == [".npy", ".npy"]:
        X, y = np.load(paths[0], allow_pickle=False), np.load(paths[1], allow_pickle=False)
        return X, _labels(y)
    if len(paths) != 1 or exts[0] == ".npy":
        raise DataError(
            f"{paths}: give one .npz, .csv or .parquet file, or two .npy files (features, then labels)."
        )
    path, ext = paths[0], exts[0]
    if ext == ".npz":
        arrays = read_npz(path)
        if "X_test" in arrays:
            raise DataError(f"{path}: holds a train/test split; pass it as the training data, not as a test set.")
        return arrays["X_train"], arrays["y_train"]
    columns = _read_csv(path) if ext == ".csv" else _read_parquet(path)
    return _table_to_arrays(columns, target, path)


def read_npz(path):
    """Arrays of an ``.npz``: ``X_train, y_train`` and, if present, ``X_test, y_test`` (``X, y`` also accepted)."""
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        if {"X_train", "y_train"} <= keys:
            names = ["X_train", "y_train"] + (["X_test", "y_test"] if {"X_test", "y_test"} <= keys else [])
            if ("X_test" in keys) != ("y_test" in keys):
                raise DataError(f"{path}: has only one of X_test and y_test (keys {sorted(keys)}).")
            arrays = {name: archive[name] for name in names}
        elif {"X", "y"} <= keys:
            arrays = {"X_train": archive["X"], "y_train": archive["y"]}
        else:
            raise DataError(
                f"{path}: needs the arrays X_train, y_train (and optionally X_test, y_test) or X, y; "
                f"it has {sorted(keys)}."
            )
    arrays["y_train"] = _labels(arrays["y_train"])
    if "y_test" in arrays:
        arrays["y_test"] = _labels(arrays["y_test"])
    return arrays


def load_data(paths, *, target=None, test_paths=None):
    """Read the training (and optional test) data the way ``--data``/``--test-data`` do, and check it.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarrays; the test arrays are ``None`` when there is no test set.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    X_test = y_test = None
    if len(paths) == 1 and _extension(paths[0]) == ".npz":
        for path in paths:
            if not os.path.exists(path):
                raise DataError(f"{path}: no such file.")
        arrays = read_npz(paths[0])
        X_train, y_train = arrays["X_train"], arrays["y_train"]
        X_test, y_test = arrays.get("X_test"), arrays.get("y_test")
    else:
        X_train, y_train = read_xy(paths, target=target)
    if test_paths:
        if X_test is not None:
            raise DataError(f"{paths[0]} already holds a test set; drop --test-data or the file's X_test/y_test.")
        X_test, y_test = read_xy(test_paths, target=target)
    return check_data(X_train, y_train, X_test, y_test)


def check_data(X_train, y_train, X_test=None, y_test=None):
    """Check arrays for the benchmark and return them as numeric ``X`` and 1-D ``y``.

    Raises :class:`DataError` (a ``ValueError``) naming the problem: non-numeric
    or non-finite features, mismatched lengths, fewer than two classes, or test
    classes the training data does not have.
    """
    X_train, y_train = _check_xy(X_train, y_train, "training")
    classes = np.unique(y_train)
    if len(classes) < 2:
        raise DataError(f"the training labels hold {len(classes)} class ({classes.tolist()}); a classifier needs two or more.")
    if (X_test is None) != (y_test is None):
        raise DataError("give both X_test and y_test, or neither.")
    if X_test is not None:
        X_test, y_test = _check_xy(X_test, y_test, "test")
        if X_test.shape[1] != X_train.shape[1]:
            raise DataError(f"the test features have {X_test.shape[1]} columns, the training features {X_train.shape[1]}.")
        if y_train.dtype.kind in "OUS" and y_test.dtype.kind not in "OUS":
            y_test = y_test.astype(str)
        unseen = np.setdiff1d(np.unique(y_test), classes)
        if len(unseen):
            shown = ", ".join(map(repr, unseen[:10].tolist())) + (" ..." if len(unseen) > 10 else "")
            raise DataError(
                f"the test set has {len(unseen)} class(es) the training data does not: {shown}. No method can "
                "predict them; drop those test samples or add training samples."
            )
    return X_train, y_train, X_test, y_test


def _check_xy(X, y, which):
    X = np.asarray(X)
    y = np.asarray(y)
    if X.dtype.kind not in "biuf":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(f"the {which} features are not numeric (dtype {X.dtype}); encode them as numbers.") from None
    if X.ndim != 2:
        raise DataError(f"the {which} features must be a 2-D array, got shape {X.shape}.")
    if y.ndim != 1:
        raise DataError(f"the {which} labels must be a 1-D array, got shape {y.shape}.")
    if len(X) != len(y):
        raise DataError(f"{len(X)} {which} samples but {len(y)} labels.")
    if len(X) == 0:
        raise DataError(f"the {which} data is empty.")
    if not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise DataError(f"the {which} features hold NaN or infinite values (first at row {bad[0]}, column {bad[1]}).")
    return X.astype(np.float32) if X.dtype != np.float64 else X, y


def fingerprint(*arrays):
    """A short hash of arrays (to tell whether a results file belongs to this data)."""
    digest = hashlib.sha1()
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.astype(str).tobytes() if array.dtype.kind == "O" else array.tobytes())
    return digest.hexdigest()[:16]


def long_tail_splits(y, *, cv=None, random_state=0):
    """Train/test index pairs that keep every class in training.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
    cv : None, float, int or splitter, default=None
        ``None``: one stratified split with 25 % of each class for testing.
        A float in (0, 1): that test fraction. An int ``k >= 2``: ``k``
        stratified folds. A scikit-learn splitter (with ``split``): its splits
        as given (checked to keep every class in training).
    random_state : int, default=0
        Seed of the shuffling.

    Returns
    -------
    splits : list of (train_index, test_index)

    Notes
    -----
    A class of ``n >= 2`` samples always keeps at least one in training and
    gives at least one to testing (``max(1, round(test_size * n))``, at most
    ``n - 1``). With ``k`` folds, a class with fewer samples than folds is
    tested in only ``n`` of the ``k`` folds (one sample each) and trained on in
    all. A class of a single sample is never tested: it stays in training
    (its recall is not scored).
    """
    y = np.asarray(y)
    n = len(y)
    rng = np.random.RandomState(random_state)
    members = [rng.permutation(m) for m in class_indices(y)]
    if cv is None or isinstance(cv, float):
        test_size = DEFAULT_TEST_SIZE if cv is None else float(cv)
        if not 0 < test_size < 1:
            raise ValueError(f"a test fraction must lie in (0, 1), got {cv}.")
        test = [m[: min(len(m) - 1, max(1, round(test_size * len(m))))] for m in members]
        test = np.sort(np.concatenate(test))
        return [(np.setdiff1d(np.arange(n), test), test)]
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv={cv}: k-fold needs k >= 2.")
        fold_of = np.full(n, -1)
        for m in members:
            if len(m) < 2:
                continue  # a single sample stays in training
            # a random start spreads the small classes over all folds, not always the first ones
            fold_of[m] = (np.arange(len(m)) + rng.randint(cv)) % cv
        splits = []
        for k in range(cv):
            test = np.flatnonzero(fold_of == k)
            splits.append((np.flatnonzero(fold_of != k), test))
        return splits
    if hasattr(cv, "split"):
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(np.zeros((n, 1)), y)]
    else:
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv]
    for tr, te in splits:
        missing = np.setdiff1d(np.unique(y[te]), np.unique(y[tr]))
        if len(missing):
            raise ValueError(
                f"a split of cv tests class(es) {missing[:10].tolist()} that its training part lacks; "
                "use an int or float cv, which keep every class in training."
            )
    return splits
