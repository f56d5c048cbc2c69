"""What the benchmark scripts share: the GEMM-rate probe, paired differences over seeds, data loading.

The scripts are run as ``python benchmarks/bench_x.py`` (from the repository
root or from this folder): Python puts the script's folder first on
``sys.path``, so ``from _common import ...`` finds this file from any working
directory. It is not part of the library and uses only its public API.
"""

import argparse
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler

from sklearn_lt.datasets import load_long_tailed
from sklearn_lt.metrics import geometric_mean_recall, harmonic_mean_recall

# ----------------------------------------------------------------------------- machine


def _synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def gemm_gflops(device="cpu", size=2048, *, shape=None, repeats=5):
    """Float32 matrix-product rate of ``device`` in GFLOP/s: the denominator of every FLOP bound.

    Times ``(m x k) @ (k x n)`` with ``(m, k, n) = shape``, or a ``size``-square
    product, after one untimed product (allocation, kernel choice), and returns
    the rate of the fastest of ``repeats`` products, each synchronised on CUDA.
    The fastest, not the median: a bound is what the arithmetic needs at least,
    so its rate is the machine's best, not its rate while shared.
    """
    m, k, n = (size, size, size) if shape is None else shape
    a = torch.randn(m, k, device=device)
    b = torch.randn(k, n, device=device)
    a @ b
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        a @ b
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * m * k * n / min(times) / 1e9


# ----------------------------------------------------------------------------- statistics over seeds


def mean_std(values, *, scale=1.0, digits=2):
    """``"mean ± std"`` of ``values * scale`` over seeds (sample std, ddof=1; the mean alone for one seed)."""
    values = scale * np.asarray(values, dtype=float)
    if values.size < 2:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def paired_difference(values, reference):
    """Per-seed differences ``values - reference`` (same split and seed): mean, std (ddof=1), seeds improved.

    Returns a dict with ``mean``, ``std`` (nan for one seed), ``improved`` (seeds
    where ``values`` is higher) and ``n`` (seeds).
    """
    diff = np.asarray(values, dtype=float) - np.asarray(reference, dtype=float)
    return {
        "mean": float(diff.mean()),
        "std": float(diff.std(ddof=1)) if diff.size > 1 else float("nan"),
        "improved": int((diff > 0).sum()),
        "n": int(diff.size),
    }


def format_paired(values, reference, *, scale=1.0, digits=2):
    """``"+mean ± std (improved/n)"`` of the paired differences ``scale * (values - reference)``."""
    d = paired_difference(scale * np.asarray(values, dtype=float), scale * np.asarray(reference, dtype=float))
    spread = "" if d["n"] < 2 else f" ± {d['std']:.{digits}f}"
    return f"{d['mean']:+.{digits}f}{spread} ({d['improved']}/{d['n']})"


# ----------------------------------------------------------------------------- data and scores


def load_split(name, seed, *, standardize=True, dtype=None):
    """A bundled data set's long-tailed draw ``seed``: ``X, y, X_test, y_test``.

    ``standardize`` fits a :class:`~sklearn.preprocessing.StandardScaler` on the
    training part; ``dtype`` casts the features before and after it.
    """
    data = load_long_tailed(name, random_state=seed)
    X, X_test = data.X_train, data.X_test
    if dtype is not None:
        X, X_test = X.astype(dtype), X_test.astype(dtype)
    if standardize:
        scaler = StandardScaler().fit(X)
        X, X_test = scaler.transform(X), scaler.transform(X_test)
        if dtype is not None:
            X, X_test = X.astype(dtype), X_test.astype(dtype)
    return X, data.y_train, X_test, data.y_test


def recall_means(y_true, y_pred):
    """Harmonic, geometric and arithmetic mean of per-class recall (balanced accuracy), in %."""
    balanced_accuracy = np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)])
    return 100 * np.array([harmonic_mean_recall(y_true, y_pred), geometric_mean_recall(y_true, y_pred), balanced_accuracy])


# ----------------------------------------------------------------------------- raw torch loops


def batch_unpack(batch):
    """``(X, y, sample_weight or None)`` of a :class:`~sklearn_lt.torch.ArrayDataset` batch.

    The dataset yields ``(X, y)``, or ``(X, (y, sample_weight))`` when it holds weights.
    """
    X, target = batch
    if isinstance(target, (tuple, list)):
        return X, target[0], target[1]
    return X, target, None


def as_device_tensor(array, dtype, device="cpu"):
    """``array`` as a contiguous ``dtype`` tensor on ``device`` (no copy of a matching CPU array)."""
    with warnings.catch_warnings():
        # a read-only array is wrapped as it is: the loops never write into their data
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(np.asarray(array), dtype=dtype, device=device).contiguous()


def default_optimizer_kwargs(optimizer, optimizer_kwargs, device):
    """``optimizer_kwargs`` with ``fused=True`` where ``optimizer`` has a fused kernel on ``device``.

    What :func:`sklearn_lt.torch.train_module` documents for SGD, Adam and
    AdamW, unless the caller chose ``fused`` or ``foreach``; a raw loop that
    replays the library's training must step the same way.
    """
    kwargs = dict(optimizer_kwargs or {})
    if optimizer not in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW) or {"fused", "foreach"} & set(kwargs):
        return kwargs
    try:
        optimizer([torch.nn.Parameter(torch.zeros(1, device=device))], lr=0.0, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return kwargs
    return {**kwargs, "fused": True}


# ----------------------------------------------------------------------------- command line

RESULTS = Path(__file__).parent / "results"


def run_datasets_seeds(script, doc, output, run, markdown, argv=None):
    """The command line of a script that runs ``run(datasets, seeds)`` and writes ``markdown(out, datasets, header)``.

    ``--datasets`` (letter and icd10cm) and ``--seeds`` (0 1 2), one torch
    thread; ``header`` says how the table was made (command, date, machine,
    torch, minutes). The table goes to ``--output`` (``results/<output>``) and stdout.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["letter", "icd10cm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--output", default=str(RESULTS / output))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tic = time.perf_counter()
    out = run(args.datasets, args.seeds)
    header = (
        f"`python benchmarks/{Path(script).name} --datasets {' '.join(args.datasets)} --seeds "
        f"{' '.join(map(str, args.seeds))}` — {time.strftime('%Y-%m-%d')}, {platform.processor() or 'cpu'}, "
        f"torch {torch.__version__}, 1 thread; {(time.perf_counter() - tic) / 60:.1f} min."
    )
    text = markdown(out, args.datasets, header)
    Path(args.output).write_text(text + "\n")
    print(text)
