"""Speed suite: every torch estimator through skorch vs a raw torch loop of the same computation vs the FLOP bound.

Every torch estimator of the library trains through one function, ``sklearn_lt.torch.train_module``.
This suite records each call an estimator's ``fit`` makes (the module as initialised, criterion,
data, sampler, optimizer, schedule, clipping, validation set, batch hook or augmenter) and replays it
as a hand-written torch loop: same module, same batches (index tensors into the same on-device
tensors), same optimizer step, schedule, clipping and per-epoch validation, no skorch. So the ratio
``skorch / raw`` (the ``replay`` column) is exactly what the wrapping costs, for every stage of
every estimator. A replay measures only the wrapper, so two more loops set the bar: the *strong
raw* loop (the plain torch loop a reviewer would write for the same computation: fused optimizer,
one permutation or class-balanced draw per epoch cut into contiguous slices, no sample weights)
and *GEMM-only* (the stage's matrix products alone). All three run interleaved with the library,
one epoch of each after every library epoch, in the same process (``InterleavedRounds``); the
reported ratios are medians of the per-round ratios.

The FLOP bound is the epoch's floating-point work counted by ``torch.utils.flop_counter`` on real
batches (forward, backward, any batch hook, the validation pass) divided by the float32 GEMM rate
measured on this device (a 4096^3 product): the time the epoch would take if every operation ran
at matrix-product peak and nothing else cost anything.

Each (estimator, n, C) runs in its own process (``--quick`` and ``--in-process``: one process).
Memory is measured on a separate clean fit and a ``predict`` of all n rows, each as the peak RSS
above what was resident just before it (Linux's high-water mark, reset per measurement; and CUDA's
max allocated on a GPU). Data are synthetic long-tailed Gaussian clusters with ImageNet-LT's
profile (largest class 256x the smallest), d = 512 unless ``--d``; the scaling grid is
n = 10,000 -> 115,846 at C = 1,000 and C = 100 -> 1,000 -> 8,142 (iNaturalist's count) at
n = 115,846.

    python benchmarks/bench_speed.py                           # full grid, every estimator (long on a CPU)
    python benchmarks/bench_speed.py --grid core               # n and C scaling for the single-stage models
    python benchmarks/bench_speed.py --quick                   # core heads, small sizes, in process, + a default fit vs LogisticRegression (~2 min)
    python benchmarks/bench_speed.py --device cuda             # the same on a GPU
    python benchmarks/bench_speed.py --models LearnedNCM --configs 115846:1000
    python benchmarks/bench_speed.py --solvers letter icd10cm wordnet 30000:512:1000   # solvers vs LogisticRegression
    python benchmarks/bench_speed.py --lbfgs-penalty [--auto]   # the L-BFGS penalty, cap and dtype on validation splits

With ``--vs-logreg`` (on with ``--quick``) each single-stage head's row adds its default fit (all its
epochs) and ``LogisticRegression(class_weight="balanced")`` on the same data in the same process, next to
the strong raw loop and the FLOP bound for the same epochs: what a user would pick instead, side by side.

Writes ``benchmarks/results/speed_<device>[_quick].md`` and ``.jsonl``.
"""

import argparse
import contextlib
import copy
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
from _common import gemm_gflops
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
INATURALIST_CLASSES = 8142
IMAGENET_LT_N = 115_846


# ----------------------------------------------------------------------------- data and estimators


def long_tailed_data(n, d, C, seed=0):
    """``n`` samples of ``C`` Gaussian clusters, class sizes falling 256-fold (ImageNet-LT's shape), >= 2 each."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(C) / max(C - 1, 1)
    sizes = 256.0 ** (1 - ranks)
    counts = 2 + np.floor(sizes * (n - 2 * C) / sizes.sum()).astype(int)  # at least 2 per class
    counts[0] += n - counts.sum()
    y = np.repeat(np.arange(C), counts)
    means = rng.standard_normal((C, d), dtype=np.float32)
    X = 0.3 * means[y] + rng.standard_normal((n, d), dtype=np.float32)
    return X, y


def make_estimator(name, epochs, device):
    """The estimator, with every training stage set to ``epochs`` epochs and its other defaults."""
    from sklearn_lt.augmentation import SMARTAugmenter
    from sklearn_lt.ensemble import BalancedUndersampleMerger
    from sklearn_lt.flows import DLSAClassifier
    from sklearn_lt.linear_model import AlphaNetClassifier, LinearClassifier, LWSClassifier
    from sklearn_lt.neural_network import MLPHeadClassifier
    from sklearn_lt.prototypes import LearnedNCM, MultiNCM

    common = dict(random_state=0, device=device)
    base_linear = LinearClassifier(max_epochs=epochs, **common)
    factories = {
        "LinearClassifier": lambda: LinearClassifier(max_epochs=epochs, **common),
        "LinearClassifier+SMART": lambda: LinearClassifier(
            loss="balanced_softmax", augmenter=SMARTAugmenter(random_state=0), max_epochs=epochs, **common
        ),
        "LWSClassifier": lambda: LWSClassifier(base_linear, max_epochs=epochs, **common),
        "AlphaNetClassifier": lambda: AlphaNetClassifier(
            LinearClassifier(sampling="class_balanced", max_epochs=epochs, **common),
            max_epochs=epochs, min_epochs=1, **common
        ),
        "LearnedNCM": lambda: LearnedNCM(max_epochs=epochs, **common),
        "MultiNCM": lambda: MultiNCM(LearnedNCM(max_epochs=epochs, **common), max_epochs=epochs, **common),
        "MLPHeadClassifier": lambda: MLPHeadClassifier(max_epochs=epochs, **common),
        "BalancedUndersampleMerger": lambda: BalancedUndersampleMerger(
            MLPHeadClassifier(max_epochs=epochs, **common),
            n_subsets=2, finetune_epochs=epochs, post_train_epochs=epochs, random_state=0,
        ),
        "DLSAClassifier": lambda: DLSAClassifier(flow_max_epochs=epochs, max_epochs=epochs, **common),
    }
    return factories[name]()


def make_default_estimator(name, device):
    """A single-stage head exactly at its defaults (all its epochs), for the comparison with LogisticRegression."""
    from sklearn_lt.linear_model import LinearClassifier
    from sklearn_lt.neural_network import MLPHeadClassifier
    from sklearn_lt.prototypes import LearnedNCM

    heads = {"LinearClassifier": LinearClassifier, "LearnedNCM": LearnedNCM, "MLPHeadClassifier": MLPHeadClassifier}
    return heads[name](random_state=0, device=device)


MODELS = [
    "LinearClassifier",
    "LWSClassifier",
    "AlphaNetClassifier",
    "LearnedNCM",
    "MultiNCM",
    "MLPHeadClassifier",
    "BalancedUndersampleMerger",
    "DLSAClassifier",
    "LinearClassifier+SMART",
]
CORE_MODELS = ["LinearClassifier", "LearnedNCM", "MLPHeadClassifier"]
N_GRID = [(10_000, 1000), (50_000, 1000), (IMAGENET_LT_N, 1000)]
C_GRID = [(IMAGENET_LT_N, 100), (IMAGENET_LT_N, INATURALIST_CLASSES)]


# ----------------------------------------------------------------------------- recording train_module calls


def lr_scheduler(optimizer, train_module_kwargs):
    """The learning-rate schedule ``train_module`` would use for these keyword arguments (None: constant)."""
    schedule, epochs = train_module_kwargs.get("lr_schedule", "cosine"), train_module_kwargs["max_epochs"]
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if isinstance(schedule, tuple):
        return schedule[0](optimizer, **schedule[1])
    return None


# the optimizer names train_module accepts, as classes (for the raw loops that replay a call)
OPTIMIZER_CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


class TrainModuleRecorder(contextlib.AbstractContextManager):
    """Patch ``train_module`` everywhere in ``sklearn_lt`` and keep what each call trained and how long it took.

    With ``interleave``, every call also trains, after each of its epochs, one epoch of the replay,
    of the strong raw loop and of the GEMM-only loop (:class:`InterleavedRounds`), each on its own
    copy of the initial module and sampler, so the library's own training is unchanged.
    """

    def __init__(self, device="cpu", interleave=False):
        self.calls = []
        self.device = device
        self.interleave = interleave

    def __enter__(self):
        import sklearn_lt.torch

        self._original = original = sklearn_lt.torch.train_module
        recorder = self

        def recording_train_module(module, criterion, X, y, **kwargs):
            optimizer = kwargs.get("optimizer", "sgd")
            call = {
                "module": copy.deepcopy(module),
                "criterion": copy.deepcopy(criterion),
                "X": X,
                "y": y,
                "kwargs": dict(kwargs),
                "optimizer": OPTIMIZER_CLASSES.get(optimizer, optimizer),
            }
            rounds = None
            if recorder.interleave:
                def private(c):  # own module and sampler (its generator), so the loops do not disturb the fit
                    c = dict(c, module=copy.deepcopy(c["module"]))
                    c["kwargs"] = dict(c["kwargs"], sampler=copy.deepcopy(c["kwargs"]["sampler"]))
                    return c

                loops = {"replay": RawReplay(private(call), recorder.device)}
                strong = StrongRaw(private(call), recorder.device)
                if strong.available:
                    loops["strong"] = strong
                loops["gemm"] = GemmOnly(private(call), recorder.device)
                rounds = InterleavedRounds(loops)
                kwargs = dict(kwargs, callbacks=[*(kwargs.get("callbacks") or []), ("interleaved", rounds)])
            net = original(module, criterion, X, y, **kwargs)
            call["epoch_s"] = [float(s) for s in net.history[:, "dur"]]
            call["optimizer"] = type(net.optimizer_)
            call["stage"] = type(module).__name__
            call["rounds"] = rounds
            recorder.calls.append(call)
            if rounds is not None:
                net.callbacks = [cb for cb in (net.callbacks or []) if cb != ("interleaved", rounds)]
            return net

        self._patched = []
        for name, mod in list(sys.modules.items()):
            if name.startswith("sklearn_lt") and getattr(mod, "train_module", None) is original:
                setattr(mod, "train_module", recording_train_module)
                self._patched.append(mod)
        return self

    def __exit__(self, *exc):
        for mod in self._patched:
            mod.train_module = self._original
        return False

    @property
    def interleaved_s(self):
        return sum(c["rounds"].spent for c in self.calls if c.get("rounds") is not None)


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class RawReplay:
    """One recorded ``train_module`` call as a plain torch loop."""

    def __init__(self, call, device):
        from sklearn_lt.torch import ArrayDataset, SequentialBatchSampler

        kw = call["kwargs"]
        self.device = device
        self.module = call["module"].to(device)
        self.criterion = call["criterion"].to(device)
        X, y, w = call["X"], call["y"], kw.get("sample_weight")
        w = None if w is None or np.all(np.asarray(w) == 1) else w  # as train_module does
        self.data = ArrayDataset(X, y, w, device=device)
        self.sampler = kw["sampler"]
        self.hook = kw.get("train_batch_hook")
        if kw.get("augmenter") is not None:
            self.hook, self.sampler = kw["augmenter"].make_train_batch_hook(
                X, y, sample_weight=w, sampler=self.sampler, device=device
            )
        from _common import default_optimizer_kwargs

        options = default_optimizer_kwargs(call["optimizer"], kw.get("optimizer_kwargs"), device)
        self.optimizer = call["optimizer"](self.module.parameters(), lr=kw.get("lr", 0.1), **options)
        self.scheduler = lr_scheduler(self.optimizer, kw)
        self.clip = kw.get("grad_clip")
        self.valid = None
        if kw.get("valid_data") is not None:
            Xv, yv = kw["valid_data"]
            self.valid = ArrayDataset(Xv, yv, device=device)
            self.valid_batches = SequentialBatchSampler(len(Xv), kw.get("predict_batch_size", 4096))

    def step(self, index):
        from _common import batch_unpack

        batch = self.data[index]
        if self.hook is not None:
            batch = self.hook(batch)
        Xb, yb, wb = batch_unpack(batch)
        self.optimizer.zero_grad()
        loss = self.criterion(self.module(Xb), yb, wb)
        loss.backward()
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.clip)
        self.optimizer.step()

    def validate(self):
        if self.valid is None:
            return
        self.module.eval()
        with torch.no_grad():
            for index in self.valid_batches:
                Xb, yb = self.valid[index]
                self.criterion(self.module(Xb), yb, None)
        self.module.train()

    def epoch(self):
        self.module.train()
        _sync(self.device)
        start = time.perf_counter()
        for index in self.sampler:
            self.step(index)
        self.validate()
        _sync(self.device)
        elapsed = time.perf_counter() - start
        if self.scheduler is not None:
            self.scheduler.step()
        return elapsed

    def epoch_flops(self, max_batches=4):
        """FLOPs of one epoch (training steps from ``max_batches`` real batches, plus validation)."""
        from torch.utils.flop_counter import FlopCounterMode

        n_batches, counted = len(self.sampler), 0
        with FlopCounterMode(display=False) as counter:
            for index in self.sampler:  # the sampler itself, so that batch hooks see the rows they train on
                if counted == max_batches:
                    break
                self.step(index)
                counted += 1
        train = counter.get_total_flops() * n_batches / max(1, counted)
        with FlopCounterMode(display=False) as counter:
            self.validate()
        return train + counter.get_total_flops()


class StrongRaw:
    """The strongest plain torch loop of a recorded stage: what a reviewer would write by hand.

    Same module (as initialised), criterion, optimizer class and hyper-parameters, batch size,
    schedule and clipping as the library's stage, but: the optimizer fused where torch has a kernel
    for the device, no sample weights unless the user gave some, and one gather per epoch (a
    permutation for instance sampling, the class-balanced draws otherwise) cut into contiguous
    slices. Stages with a batch hook or an augmenter have no strong loop (``available`` False).
    """

    def __init__(self, call, device):
        from _common import as_device_tensor, default_optimizer_kwargs

        from sklearn_lt.torch import ClassBalancedSampler

        kw = call["kwargs"]
        self.available = kw.get("train_batch_hook") is None and kw.get("augmenter") is None
        self.device = device
        self.module = copy.deepcopy(call["module"]).to(device)
        self.criterion = copy.deepcopy(call["criterion"]).to(device)
        self.X = as_device_tensor(call["X"], torch.float32, device)
        self.y = as_device_tensor(call["y"], torch.int64, device)
        w = kw.get("sample_weight")
        self.w = None if w is None or np.all(np.asarray(w) == 1) else as_device_tensor(w, torch.float32, device)
        self.sampler = kw["sampler"]
        self.batch_size = self.sampler.batch_size
        self.balanced = isinstance(self.sampler, ClassBalancedSampler)
        self.generator = torch.Generator().manual_seed(0)
        options = dict(kw.get("optimizer_kwargs") or {})
        params = self.module.parameters()
        if "param_groups" in options:  # skorch's (name pattern, options) groups, as in NCM's temperature
            groups = options.pop("param_groups")
            named = dict(self.module.named_parameters())
            grouped, taken = [], set()
            for pattern, opts in groups:
                names = [n for n in named if n == pattern or n.startswith(pattern)]
                taken.update(names)
                grouped.append({"params": [named[n] for n in names], **opts})
            params = [{"params": [p for n, p in named.items() if n not in taken]}] + grouped
        optimizer = call["optimizer"]
        self.optimizer = optimizer(params, lr=kw.get("lr", 0.1), **default_optimizer_kwargs(optimizer, options, device))
        self.scheduler = lr_scheduler(self.optimizer, kw)
        self.clip = kw.get("grad_clip")

    def epoch(self):
        self.module.train()
        _sync(self.device)
        start = time.perf_counter()
        n = len(self.y)
        if self.balanced:
            order = self.sampler.draw(self.sampler.n_draws).to(self.device)
        else:
            order = torch.randperm(n, generator=self.generator).to(self.device)
        X, y = self.X[order], self.y[order]
        w = None if self.w is None else self.w[order]
        for lo in range(0, len(order), self.batch_size):
            hi = lo + self.batch_size
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.criterion(self.module(X[lo:hi]), y[lo:hi], None if w is None else w[lo:hi])
            loss.backward()
            if self.clip is not None:
                torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.clip)
            self.optimizer.step()
        _sync(self.device)
        elapsed = time.perf_counter() - start
        if self.scheduler is not None:
            self.scheduler.step()
        return elapsed


class GemmOnly:
    """The matrix products of a training epoch and nothing else (a lower bound that is measured, not counted).

    For every ``nn.Linear`` of the module (the ``d -> C`` map for a head without one, e.g. the NCM
    distances): the forward product and the weight-gradient product, plus the input-gradient
    product for every layer but the first (its input, the features, needs no gradient), on
    contiguous batches of the stage's batch size.
    """

    def __init__(self, call, device):
        module, X = call["module"], call["X"]
        d = X.shape[1]
        layers = [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, torch.nn.Linear)]
        if not layers:
            with torch.no_grad():
                out = module.to("cpu")(torch.as_tensor(np.asarray(X[:2], dtype=np.float32)))
            layers = [(d, out.shape[1])]
        self.device = device
        self.n, self.batch_size = len(X), call["kwargs"]["sampler"].batch_size
        self.weights = [torch.randn(o, i, device=device) for i, o in layers]
        self.inputs = [torch.randn(self.batch_size, i, device=device) for i, _ in layers]
        self.grads = [torch.randn(self.batch_size, o, device=device) for _, o in layers]

    def epoch(self):
        _sync(self.device)
        start = time.perf_counter()
        for lo in range(0, self.n, self.batch_size):
            b = min(self.batch_size, self.n - lo)
            for k, (W, x, g) in enumerate(zip(self.weights, self.inputs, self.grads)):
                x, g = x[:b], g[:b]
                x @ W.T
                g.T @ x
                if k:
                    g @ W
        _sync(self.device)
        return time.perf_counter() - start


class InterleavedRounds(Callback):
    """skorch callback: after every library epoch, one epoch of each comparison loop (rounds in one process).

    skorch's ``EpochTimer`` closes the library epoch's ``dur`` before later callbacks run, so the
    comparison loops do not count in it; their time is kept apart and subtracted from the fit time.
    """

    def __init__(self, loops):
        self.loops = loops  # name -> object with .epoch()
        self.times = {name: [] for name in loops}
        self.spent = 0.0

    def on_epoch_end(self, net, **kwargs):
        start = time.perf_counter()
        for name, loop in self.loops.items():
            self.times[name].append(loop.epoch())
        self.spent += time.perf_counter() - start


def _device_name(device):
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.machine()} CPU, {os.cpu_count()} cores"


# ----------------------------------------------------------------------------- one configuration


def _median_after_warmup(times):
    return float(statistics.median(times[1:] if len(times) > 1 else times))


def _rss_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss():
    """Reset the kernel's high-water mark of this process (Linux: writing 5 to clear_refs); False elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_above(base_mib, device):
    """Peak RSS since the last reset minus ``base_mib`` (and CUDA's peak allocation), in MiB."""
    cuda = torch.cuda.max_memory_allocated() / 2**20 if str(device).startswith("cuda") else None
    return _rss_mib("VmHWM") - base_mib, cuda


def measure_memory(model, X, y, epochs, device):
    """A clean fit and a predict of every row, each with the peak memory above what was resident before it."""
    import gc

    # a small fit first, so that lazy imports and one-time allocations do not count as the fit's memory
    warm = np.random.default_rng(0).choice(len(X), min(len(X), 2000), replace=False)
    make_estimator(model, 1, device).fit(X[warm], y[warm])
    gc.collect()
    estimator = make_estimator(model, epochs, device)
    if str(device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    if not _reset_peak_rss():
        return {}
    base = _rss_mib("VmRSS")
    _sync(device)
    start = time.perf_counter()
    estimator.fit(X, y)
    _sync(device)
    fit_s = time.perf_counter() - start
    fit_peak, fit_cuda = _peak_above(base, device)
    gc.collect()
    if str(device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    _reset_peak_rss()
    base = _rss_mib("VmRSS")
    start = time.perf_counter()
    estimator.predict(X)
    predict_s = time.perf_counter() - start
    predict_peak, predict_cuda = _peak_above(base, device)
    return {
        "clean_fit_s": fit_s,
        "fit_peak_above_mib": fit_peak,
        "predict_peak_above_mib": predict_peak,
        "predict_all_rows_per_s": len(X) / predict_s,
        "fit_peak_cuda_mib": fit_cuda,
        "predict_peak_cuda_mib": predict_cuda,
        "X_mib": X.nbytes / 2**20,
    }


def default_fit_vs_logreg(model, X, y, device):
    """The head's own default fit and ``LogisticRegression(class_weight="balanced")`` on the same data, in turn.

    What a user would pick instead, timed in the same process as the interleaved library / raw / GEMM
    epochs of the row, so that the three comparisons share one machine state. LogisticRegression runs
    on the CPU with scikit-learn's defaults (lbfgs, ``max_iter=100``).
    """
    from sklearn.linear_model import LogisticRegression

    estimator = make_default_estimator(model, device)
    _sync(device)
    start = time.perf_counter()
    estimator.fit(X, y)
    _sync(device)
    default_fit_s = time.perf_counter() - start
    logreg = LogisticRegression(class_weight="balanced")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded as its iteration count instead
        logreg.fit(X, y)
    logreg_s = time.perf_counter() - start
    return {
        "default_epochs": int(estimator.max_epochs),
        "default_fit_s": default_fit_s,
        "logreg_balanced_fit_s": logreg_s,
        "logreg_iters": int(np.max(logreg.n_iter_)),
    }


def _median_ratio(a, b):
    """Median of the per-round ratios a[i] / b[i], after the first (warm-up) round."""
    pairs = list(zip(a, b))
    pairs = pairs[1:] if len(pairs) > 1 else pairs
    return float(statistics.median(x / y for x, y in pairs))


def run_one(model, n, d, C, epochs, device, in_process=False, memory=True, vs_logreg=False):
    X, y = long_tailed_data(n, d, C)
    row_memory = measure_memory(model, X, y, epochs, device) if memory else {}
    estimator = make_estimator(model, epochs, device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with TrainModuleRecorder(device, interleave=True) as recorder:
        _sync(device)
        start = time.perf_counter()
        estimator.fit(X, y)
        _sync(device)
        fit_s = time.perf_counter() - start - recorder.interleaved_s
    start = time.perf_counter()
    estimator.predict(X[:20_000])
    predict_rate = min(n, 20_000) / (time.perf_counter() - start)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_cuda = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None

    stages = []
    for call in recorder.calls:
        times = call["rounds"].times
        library = call["epoch_s"]
        stage = {
            "stage": call["stage"],
            "epochs": len(library),
            "n_train": len(call["y"]),
            "skorch_s": _median_after_warmup(library),
            "raw_s": _median_after_warmup(times["replay"]),
            "gemm_s": _median_after_warmup(times["gemm"]),
            "skorch_total_s": float(sum(library)),
            "raw_total_s": float(sum(times["replay"])),
            "skorch_over_raw": _median_ratio(library, times["replay"]),
            "skorch_over_gemm": _median_ratio(library, times["gemm"]),
            "gflop": RawReplay(call, device).epoch_flops() / 1e9,
        }
        if "strong" in times:
            stage.update(
                strong_s=_median_after_warmup(times["strong"]),
                strong_total_s=float(sum(times["strong"])),
                skorch_over_strong=_median_ratio(library, times["strong"]),
            )
        stages.append(stage)
    return {
        "model": model,
        "device_name": _device_name(device),
        "torch": torch.__version__,
        "n": n,
        "d": d,
        "C": C,
        "epochs": epochs,
        "device": device,
        "fit_s": fit_s,
        "predict_rows_per_s": predict_rate,
        "peak_rss_mib": peak_rss,
        "peak_cuda_mib": peak_cuda,
        "in_process": in_process,
        "stages": stages,
        **row_memory,
        **(default_fit_vs_logreg(model, X, y, device) if vs_logreg and model in CORE_MODELS else {}),
    }


# ----------------------------------------------------------------------------- the suite


def configs_for(grid, quick):
    if quick:
        return [(10_000, 100), (10_000, 1000)]
    if grid == "n":
        return N_GRID
    if grid == "C":
        return C_GRID
    return N_GRID + C_GRID


def summarise(row, gflops):
    """Totals over stages: skorch vs raw training time and the bound; the main stage = most skorch time."""
    stages = row["stages"]
    skorch = sum(s["skorch_total_s"] for s in stages)
    raw = sum(s["raw_total_s"] for s in stages)
    bound = sum(s["gflop"] * s["epochs"] for s in stages) / gflops
    main = max(stages, key=lambda s: s["skorch_total_s"])
    return skorch, raw, bound, main


def _fmt(value, spec):
    return "—" if value is None or (isinstance(value, float) and value != value) else format(value, spec)


def markdown(rows, device, gflops, epochs, threads, quick):
    measured = [r for r in rows if "device_name" in r]
    name = measured[0]["device_name"] if measured else _device_name(device)
    version = measured[0]["torch"] if measured else torch.__version__
    cuda = device.startswith("cuda")
    lines = [
        f"# Speed suite: every torch estimator vs a strong raw torch loop, the GEMMs alone and the FLOP bound ({device})",
        "",
        f"Generated by `benchmarks/bench_speed.py{' --quick' if quick else ''} --device {device}` on {name}, "
        f"torch {version}, {threads} torch thread(s). float32 GEMM rate measured here: "
        f"{gflops:,.0f} GFLOP/s (4096^3). Synthetic long-tailed clusters (largest class 256x the smallest), "
        f"d = {rows[0].get('d', 512) if rows else 512}; every training stage runs {epochs} epochs with the estimator's "
        "defaults otherwise.",
        "",
        "Timing is interleaved in rounds in one process: after each library epoch (skorch's own `dur`) the same "
        "process runs one epoch of each comparison loop, each on its own copy of the initial module. "
        "`strong raw`: the plain torch loop a reviewer would write for the same computation (same module, loss, "
        "optimizer and hyper-parameters, batch size and schedule; fused optimizer, one permutation or class-balanced "
        "draw per epoch cut into contiguous slices, no sample weights); `GEMM-only`: the stage's matrix products "
        "alone on contiguous batches; `replay`: the library's own data path replayed without skorch. Ratios are "
        "medians of the per-round ratios after the first round; seconds are medians after the first epoch. "
        "`bound`: the epoch's counted FLOPs at the GEMM rate. Main stage = the stage with the most training time. "
        "Memory: a separate clean fit, then `predict` on all n rows, each reported as the peak RSS above what was "
        "resident just before it (the kernel's high-water mark, reset per measurement), with X's own size.",
        "",
        "| estimator | n | C | main stage | library s/epoch | strong raw s/epoch | library / strong raw | GEMM-only s "
        "| library / GEMM-only | replay s | library / replay | bound s | % of bound | fit s | X MiB "
        "| fit peak above data MiB | predict-all peak above data MiB | predict rows/s |"
        + (" peak CUDA MiB |" if cuda else ""),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if cuda else ""),
    ]
    strong_ratios = []
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['model']} | {row['n']:,} | {row['C']:,} | failed: {row['error']} |")
            continue
        _, _, _, main = summarise(row, gflops)
        if main.get("skorch_over_strong") is not None:
            strong_ratios.append(main["skorch_over_strong"])
        main_bound = main["gflop"] / gflops
        line = (
            f"| {row['model']} | {row['n']:,} | {row['C']:,} | {main['stage']} | {main['skorch_s']:.3f} | "
            f"{_fmt(main.get('strong_s'), '.3f')} | {_fmt(main.get('skorch_over_strong'), '.2f')} | "
            f"{_fmt(main.get('gemm_s'), '.3f')} | {_fmt(main.get('skorch_over_gemm'), '.2f')} | "
            f"{main['raw_s']:.3f} | {_fmt(main.get('skorch_over_raw'), '.2f')} | {main_bound:.4f} | "
            f"{100 * main_bound / main['skorch_s']:.1f} | {row['fit_s']:.1f} | {_fmt(row.get('X_mib'), ',.0f')} | "
            f"{_fmt(row.get('fit_peak_above_mib'), ',.0f')} | {_fmt(row.get('predict_peak_above_mib'), ',.0f')} | "
            f"{_fmt(row.get('predict_all_rows_per_s'), ',.0f')} |"
        )
        if cuda:
            line += f" {_fmt(row.get('peak_cuda_mib'), ',.0f')} |"
        lines.append(line)
    for r in rows:
        if r.get("note"):
            lines += ["", f"{r['model']} at n = {r['n']:,}, C = {r['C']:,}: {r['note']}."]
    if strong_ratios:
        lines += [
            "",
            f"library / strong raw of the main stage, over all rows: median {statistics.median(strong_ratios):.2f}, "
            f"range {min(strong_ratios):.2f}-{max(strong_ratios):.2f}.",
        ]
    return "\n".join(lines + logreg_markdown(rows, gflops)) + "\n"


def logreg_markdown(rows, gflops):
    """The default fit of each single-stage head next to a strong raw loop, the FLOP bound and LogisticRegression."""
    compared = [r for r in rows if "default_fit_s" in r and "error" not in r]
    if not compared:
        return []
    lines = [
        "",
        "## A default fit against what a user would pick instead",
        "",
        "Same process and data as the row above, after its interleaved epochs: the head at its defaults (all its "
        "epochs, `fit` timed whole) and `LogisticRegression(class_weight='balanced')` (scikit-learn's defaults: "
        "lbfgs, max_iter=100, on the CPU; `iters` its iterations). `strong raw` and `bound` are the main stage's "
        "per-epoch strong raw loop and FLOP bound from the table above, times the default epochs. Ratios < 1: "
        "the library is faster.",
        "",
        "| estimator | n | C | default epochs | default fit s | strong raw s | bound s | LR balanced fit s (iters) "
        "| fit / strong raw | fit / bound | fit / LR balanced |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in compared:
        _, _, _, main = summarise(row, gflops)
        epochs = row["default_epochs"]
        strong = main.get("strong_s")
        strong = None if strong is None else strong * epochs
        bound = main["gflop"] / gflops * epochs
        fit = row["default_fit_s"]
        lines.append(
            f"| {row['model']} | {row['n']:,} | {row['C']:,} | {epochs} | {fit:.2f} | {_fmt(strong, '.2f')} | "
            f"{bound:.2f} | {row['logreg_balanced_fit_s']:.2f} ({row['logreg_iters']}) | "
            f"{_fmt(None if strong is None else fit / strong, '.2f')} | {fit / bound:.1f} | "
            f"{fit / row['logreg_balanced_fit_s']:.2f} |"
        )
    return lines


# ----------------------------------------------------------------------------- solvers of the convex heads


def solver_estimators(device, seed):
    """The linear heads with each solver, and scikit-learn's LogisticRegression as a user would call it."""
    from sklearn.linear_model import LogisticRegression

    from sklearn_lt.linear_model import LinearClassifier, LWSClassifier, TauNormalizedClassifier

    common = dict(device=device, random_state=seed)
    rows = {}
    for solver in ("minibatch", "lbfgs"):
        rows[f"LinearClassifier CE {solver}"] = LinearClassifier(solver=solver, **common)
        rows[f"LinearClassifier balanced_softmax {solver}"] = LinearClassifier(
            loss="balanced_softmax", solver=solver, **common
        )
        rows[f"cRT {solver}"] = LinearClassifier(sampling="class_balanced", solver=solver, **common)
        rows[f"LWS {solver}"] = LWSClassifier(LinearClassifier(solver=solver, **common), solver=solver, **common)
        rows[f"tau-norm {solver}"] = TauNormalizedClassifier(LinearClassifier(solver=solver, **common), random_state=seed)
    # LWSClassifier(solver="lbfgs") on its default base: the scales by L-BFGS, the base by mini-batches
    rows["LWS lbfgs scales, minibatch base"] = LWSClassifier(solver="lbfgs", **common)
    rows["LogisticRegression"] = LogisticRegression()
    rows["LogisticRegression balanced"] = LogisticRegression(class_weight="balanced")
    return rows


def solver_data(name, seed, split):
    """(X_fit, y_fit, X_eval, y_eval): a bundled set (validation carved from its training part, or its test
    split) or a synthetic ``n:d:C`` set (a balanced held-out set from the same clusters)."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if ":" in name:
        n, d, C = (int(v) for v in name.split(":"))
        X, y = long_tailed_data(n, d, C, seed=seed)
        means = np.random.default_rng(seed).standard_normal((C, d), dtype=np.float32)  # long_tailed_data's first draw
        y_eval = np.repeat(np.arange(C), 10)  # balanced, fresh noise
        noise = np.random.default_rng(seed + 10_000).standard_normal((len(y_eval), d), dtype=np.float32)
        return X, y, 0.3 * means[y_eval] + noise, y_eval
    from sklearn_lt.datasets import load_long_tailed

    data = load_long_tailed(name, random_state=seed)
    X, y = data.X_train.astype(np.float32), data.y_train
    if split == "validation":
        X, X_eval, y, y_eval = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    else:
        X_eval, y_eval = data.X_test.astype(np.float32), data.y_test
    if name == "letter":  # integer shape statistics: standardise, as the data set's description says
        scaler = StandardScaler().fit(X)
        X, X_eval = scaler.transform(X).astype(np.float32), scaler.transform(X_eval).astype(np.float32)
    return X, y, X_eval, y_eval


def run_solvers(datasets, seeds, split, device, names=None, jsonl=None):
    """Fit time and balanced accuracy of every head with every solver, same data and process, seed by seed.

    The estimators run in turn on each seed's data, in reversed order on odd seeds, so that a drift of the
    machine's load falls on both sides of a ratio; LogisticRegression's iterations are recorded (its
    ``max_iter`` is scikit-learn's default, 100) to say whether it converged. ``names`` (labels of
    :func:`solver_estimators`) selects rows and sets their order; each row is appended to ``jsonl`` as
    soon as it is measured, so that a run stopped early keeps what finished.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import balanced_accuracy_score

    rows = []
    # one small fit of each estimator first, so that no row pays for lazy imports or first-call set-up
    Xw, yw = long_tailed_data(400, 8, 4)
    for est in solver_estimators(device, 0).values():
        est.fit(Xw, yw)
    for name in datasets:
        for seed in seeds:
            X, y, X_eval, y_eval = solver_data(name, seed, split)
            available = solver_estimators(device, seed)
            estimators = [(label, available[label]) for label in names] if names else list(available.items())
            for label, est in estimators if seed % 2 == 0 else estimators[::-1]:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    _sync(device)
                    start = time.perf_counter()
                    est.fit(X, y)
                    _sync(device)
                    fit_s = time.perf_counter() - start
                row = {"data": name, "split": split, "seed": seed, "estimator": label, "fit_s": fit_s,
                       "balanced_accuracy": float(balanced_accuracy_score(y_eval, est.predict(X_eval))),
                       "n": len(y), "d": X.shape[1], "C": len(np.unique(y))}
                if hasattr(est, "history_"):  # passes over the data (L-BFGS: evaluations; LWS: of its scales)
                    row.update(evals=len(est.history_))
                if hasattr(est, "n_iter_"):
                    row.update(n_iter=int(np.max(est.n_iter_)), max_iter=est.max_iter,
                               converged=not any(issubclass(w.category, ConvergenceWarning) for w in caught))
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                if jsonl:
                    with open(jsonl, "a") as f:
                        f.write(json.dumps(row) + "\n")
    return rows


def solver_markdown(rows, device):
    import collections

    groups = collections.defaultdict(dict)
    for r in rows:
        groups[(r["data"], r["estimator"])][r["seed"]] = r
    split = rows[0]["split"]
    lines = [
        f"# Solvers of the convex heads vs LogisticRegression ({device})",
        "",
        "Generated by `benchmarks/bench_speed.py --solvers`. Every estimator at its defaults but the solver "
        "(LWS: its base LinearClassifier with the same solver), fitted on the same data in one process, in turn "
        "(reversed order on odd seeds); "
        f"balanced accuracy on the {split} split "
        "(validation: 25 % carved, stratified, from the long-tailed training part of a bundled set; synthetic "
        "`n:d:C` sets: a balanced held-out set of 10 per class from the same Gaussian clusters; the test split "
        "is not used for choosing). Mean ± std (ddof=1) over seeds (the seed draws the long-tailed split and "
        "the estimator's random_state). Versus LogisticRegression(class_weight='balanced') on the same data and "
        "seed: time ratio (median of the per-seed ratios; < 1 is faster) and paired balanced-accuracy "
        "difference, mean ± std (ddof=1), seeds improved. LogisticRegression: lbfgs, max_iter=100 (scikit-learn's "
        "default); `iters` is its iteration count, `*` where it stopped at max_iter without converging.",
        "",
        "| data | n x d x C | estimator | fit s | balanced accuracy | time / LR bal. | bacc − LR bal. | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def ms(values):
        v = np.asarray(values, dtype=float)
        return f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.4f}"

    for (data, est), per_seed in groups.items():
        rs = list(per_seed.values())
        ref = groups.get((data, "LogisticRegression balanced"), {})
        common = [s for s in per_seed if s in ref]
        ratio = diff = ""
        if common and est != "LogisticRegression balanced":
            ratio = f"{np.median([per_seed[s]['fit_s'] / ref[s]['fit_s'] for s in common]):.2f}"
            d = np.array([per_seed[s]["balanced_accuracy"] - ref[s]["balanced_accuracy"] for s in common])
            diff = f"{d.mean():+.4f} ± {d.std(ddof=1) if len(d) > 1 else 0.0:.4f} ({int((d > 0).sum())}/{len(d)})"
        label = est
        if "n_iter" in rs[0]:
            label += " (iters " + ", ".join(f"{r['n_iter']}{'' if r['converged'] else '*'}" for r in rs) + ")"
        t = [r["fit_s"] for r in rs]
        lines.append(
            f"| {data} | {rs[0]['n']:,} x {rs[0]['d']} x {rs[0]['C']} | {label} | {np.mean(t):.2f} | "
            f"{ms([r['balanced_accuracy'] for r in rs])} | {ratio} | {diff} | {len(rs)} |"
        )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the L-BFGS penalty on validation splits

PENALTY_GRID = (1e-4, 1e-5, 1e-6, 1e-7, 0.0)


def penalty_estimators(seed, penalties=PENALTY_GRID, evals=(30, 100)):
    """The linear heads by mini-batch (the reference), and by L-BFGS at every L2 penalty and evaluation cap."""
    from sklearn_lt.linear_model import LinearClassifier, LWSClassifier, TauNormalizedClassifier

    common = dict(device="cpu", random_state=seed)
    heads = {
        "CE": dict(),
        "balanced_softmax": dict(loss="balanced_softmax"),
        "cRT": dict(sampling="class_balanced"),
    }
    rows = {}
    for head, kw in heads.items():
        rows[(head, "minibatch", None, None, "float32")] = LinearClassifier(**kw, **common)
        for l2 in penalties:
            for cap in evals:
                rows[(head, "lbfgs", l2, cap, "float32")] = LinearClassifier(
                    solver="lbfgs", weight_decay=l2, max_epochs=cap, **kw, **common
                )
        rows[(head, "lbfgs", 1e-6, 100, "float64")] = LinearClassifier(
            solver="lbfgs", weight_decay=1e-6, max_epochs=100, solver_dtype="float64", **kw, **common
        )
    rows[("LWS", "minibatch", None, None, "float32")] = LWSClassifier(**common)
    rows[("tau-norm", "minibatch", None, None, "float32")] = TauNormalizedClassifier(random_state=seed)
    for l2 in penalties:
        base = LinearClassifier(solver="lbfgs", weight_decay=l2, max_epochs=100, **common)
        rows[("LWS", "lbfgs", l2, 100, "float32")] = LWSClassifier(base, solver="lbfgs", **common)
        rows[("tau-norm", "lbfgs", l2, 100, "float32")] = TauNormalizedClassifier(base, random_state=seed)
    return rows


def run_penalty_sweep(datasets, seeds):
    """Balanced accuracy on validation splits (carved from the training part) of every penalty and cap."""

    rows = []
    for name in datasets:
        for seed in seeds:
            X, y, X_eval, y_eval = solver_data(name, seed, "validation")
            for (head, solver, l2, cap, dtype), est in penalty_estimators(seed).items():
                start = time.perf_counter()
                est.fit(X, y)
                fit_s = time.perf_counter() - start
                net = getattr(est, "net_", None) or getattr(est.estimator_, "net_", None)
                W = est.coef_ if head != "LWS" else est.estimator_.coef_
                row = {"data": name, "seed": seed, "head": head, "solver": solver, "l2": l2, "max_evals": cap,
                       "dtype": dtype, **_penalty_fit_summary(est, net.history, W, fit_s, X, y, X_eval, y_eval)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def _penalty_fit_summary(est, history, coef, fit_s, X, y, X_eval, y_eval):
    """The measured part of a penalty-sweep row: time, evaluations, loss, weight norm, balanced accuracies."""
    from sklearn.metrics import balanced_accuracy_score

    return {"fit_s": fit_s, "evals": len(history), "train_loss": float(history[-1, "train_loss"]),
            "coef_norm": float(np.linalg.norm(coef)),
            "balanced_accuracy": float(balanced_accuracy_score(y_eval, est.predict(X_eval))),
            "train_balanced_accuracy": float(balanced_accuracy_score(y, est.predict(X))),
            "n": len(y), "d": X.shape[1], "C": len(np.unique(y))}


def run_auto_penalty(datasets, seeds, penalties=PENALTY_GRID, cap=100, inner_fraction=0.2):
    """L-BFGS with its penalty chosen on an inner tail-safe validation split of the fit part, then refitted.

    What a ``weight_decay="auto"`` would do (one fold of LogisticRegressionCV, scored by balanced accuracy):
    the outer validation split (the one every other row is scored on) never takes part in the choice.
    """
    from sklearn.metrics import balanced_accuracy_score

    from sklearn_lt.linear_model import LinearClassifier
    from sklearn_lt.utils import tail_safe_validation_split

    heads = {"CE": dict(), "balanced_softmax": dict(loss="balanced_softmax"), "cRT": dict(sampling="class_balanced")}
    rows = []
    for name in datasets:
        for seed in seeds:
            X, y, X_eval, y_eval = solver_data(name, seed, "validation")
            inner, held = tail_safe_validation_split(y, inner_fraction, random_state=seed)
            for head, kw in heads.items():
                def make(l2):
                    return LinearClassifier(solver="lbfgs", weight_decay=l2, max_epochs=cap, device="cpu",
                                            random_state=seed, **kw)
                start = time.perf_counter()
                scores = {l2: balanced_accuracy_score(y[held], make(l2).fit(X[inner], y[inner]).predict(X[held]))
                          for l2 in penalties}
                chosen = max(penalties, key=lambda l2: (scores[l2], l2))  # ties: the stronger penalty
                est = make(chosen).fit(X, y)
                fit_s = time.perf_counter() - start
                row = {"data": name, "seed": seed, "head": head, "solver": "lbfgs auto", "l2": None,
                       "max_evals": cap, "dtype": "float32", "chosen_l2": chosen,
                       **_penalty_fit_summary(est, est.history_, est.coef_, fit_s, X, y, X_eval, y_eval)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def paired(a, b):
    """'mean ± std (ddof=1) of a - b, k/n seeds improved' for per-seed dicts of the same seeds."""
    d = np.array([a[s] - b[s] for s in sorted(a)])
    std = d.std(ddof=1) if len(d) > 1 else 0.0
    return f"{d.mean():+.4f} ± {std:.4f} ({int((d > 0).sum())}/{len(d)})"


def penalty_markdown(rows):
    import collections

    by = collections.defaultdict(dict)
    for r in rows:
        by[(r["data"], r["head"], r["solver"], r["l2"], r["max_evals"], r["dtype"])][r["seed"]] = r
    lines = [
        "# The L-BFGS penalty of the linear heads, on validation splits (cpu)",
        "",
        "Generated by `benchmarks/bench_speed.py --lbfgs-penalty`. Balanced accuracy on a validation split "
        "(25 %, stratified, carved from the long-tailed training part; the test split is not used), "
        "3 seeds (the seed draws the split and the estimator's random_state). `l2` is the L-BFGS objective's "
        "penalty `0.5 * l2 * ||W||^2` on the mean loss (set through `weight_decay`); `cap` the most "
        "evaluations (`max_epochs`); `evals` the evaluations used (fewer than the cap: converged). "
        "Paired: this row minus the mini-batch default of the same head, same split and seed, "
        "mean ± std (ddof=1) and seeds improved. LWS and τ-norm: their base LinearClassifier (CE) by "
        "L-BFGS with that penalty (LWS's scales by L-BFGS, no penalty).",
        "",
        "| data | head | solver | l2 | cap | dtype | evals | ‖W‖ | train bacc | val bacc | vs mini-batch | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, per_seed in by.items():
        data, head, solver, l2, cap, dtype = key
        rs = list(per_seed.values())
        ref = by[(data, head, "minibatch", None, None, "float32")]
        acc = {s: r["balanced_accuracy"] for s, r in per_seed.items()}
        diff = "" if solver == "minibatch" else paired(acc, {s: ref[s]["balanced_accuracy"] for s in acc})
        mean = lambda k: np.mean([r[k] for r in rs])  # noqa: E731
        lines.append(
            f"| {data} | {head} | {solver} | {'' if l2 is None else f'{l2:g}'} | {cap or ''} | {dtype} | "
            f"{mean('evals'):.0f} | {mean('coef_norm'):.0f} | {mean('train_balanced_accuracy'):.3f} | "
            f"{mean('balanced_accuracy'):.4f} | {diff} | {mean('fit_s'):.2f} |"
        )
    chosen = [f"{r['data']} {r['head']} seed {r['seed']}: {r['chosen_l2']:g}" for r in rows if "chosen_l2" in r]
    if chosen:
        lines += ["", "`lbfgs auto`: the penalty chosen from the grid on an inner tail-safe 20 % split of the fit "
                  "part by balanced accuracy, then refitted on the whole fit part (fit s: the whole search). "
                  "Chosen: " + "; ".join(chosen) + "."]
    return "\n".join(lines) + "\n"


def run_in_subprocess(model, n, C, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--one", model, str(n), str(args.d), str(C),
           "--epochs", str(args.epochs), "--device", args.device] + (["--vs-logreg"] if args.vs_logreg else [])
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=args.timeout)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.CalledProcessError as exc:
        return {"model": model, "n": n, "C": C, "error": exc.stderr.strip().splitlines()[-1][:120]}
    except subprocess.TimeoutExpired:
        return {"model": model, "n": n, "C": C, "error": f"over {args.timeout:.0f} s"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="the core heads at n = 10,000, C = 100 and 1,000, in this process (about a minute)")
    parser.add_argument("--grid", choices=["all", "n", "C", "core"], default="all",
                        help="'core': the full grid for LinearClassifier, LearnedNCM, MLPHeadClassifier only")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=None)
    parser.add_argument("--configs", nargs="+", default=None, metavar="N:C", help="explicit (n, C) pairs")
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per configuration")
    parser.add_argument("--in-process", action="store_true",
                        help="run every configuration in this process (saves start-up time; on a GPU the peak "
                        "memory is still per configuration, RSS is not)")
    parser.add_argument("--solvers", nargs="*", metavar="DATA", default=None,
                        help="the linear heads' solvers vs LogisticRegression on bundled sets (letter icd10cm "
                        "wordnet) or synthetic n:d:C sets; writes solvers_<device>.md/.jsonl")
    parser.add_argument("--lbfgs-penalty", nargs="*", metavar="DATA", default=None,
                        help="sweep the L-BFGS penalty and evaluation cap of the linear heads on validation splits")
    parser.add_argument("--auto", action="store_true",
                        help="with --lbfgs-penalty: add the rows of the penalty chosen on an inner validation split")
    parser.add_argument("--split", choices=["validation", "test"], default="validation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--estimators", nargs="+", default=None, help="with --solvers: only these rows")
    parser.add_argument("--tag", default="", help="suffix of the result files (speed_<device>[_quick][_TAG])")
    parser.add_argument("--report", action="store_true", help="only render the markdown from the .jsonl")
    parser.add_argument("--vs-logreg", action="store_true",
                        help="also time each single-stage head's default fit (all its epochs) and "
                        "LogisticRegression(class_weight='balanced') on the row's data (on with --quick)")
    parser.add_argument("--one", nargs=4, metavar=("MODEL", "N", "D", "C"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        model, n, d, C = args.one
        print(json.dumps(run_one(model, int(n), int(d), int(C), args.epochs, args.device, vs_logreg=args.vs_logreg)))
        return

    if args.lbfgs_penalty is not None:
        path = os.path.join(RESULTS, "lbfgs_penalty_cpu_validation")
        if args.report:
            rows = [json.loads(line) for line in open(path + ".jsonl")]
        else:
            data = args.lbfgs_penalty or ["letter", "icd10cm", "wordnet"]
            if args.auto:
                rows = [json.loads(line) for line in open(path + ".jsonl")]
                rows = [r for r in rows if r["solver"] != "lbfgs auto"] + run_auto_penalty(data, args.seeds)
            else:
                rows = run_penalty_sweep(data, args.seeds)
            with open(path + ".jsonl", "w") as f:
                f.writelines(json.dumps(row) + "\n" for row in rows)
        text = penalty_markdown(rows)
        with open(path + ".md", "w") as f:
            f.write(text)
        print(text)
        return

    if args.solvers is not None:
        datasets = args.solvers or ["letter", "icd10cm", "wordnet"]
        tag = f"solvers_{args.device.replace(':', '')}_{args.split}" + (f"_{args.tag}" if args.tag else "")
        if args.report:  # render the markdown from the rows recorded so far
            rows = [json.loads(line) for line in open(os.path.join(RESULTS, f"{tag}.jsonl"))]
        else:
            run_solvers(datasets, args.seeds, args.split, args.device, args.estimators,
                        jsonl=os.path.join(RESULTS, f"{tag}.jsonl"))
            rows = [json.loads(line) for line in open(os.path.join(RESULTS, f"{tag}.jsonl"))]
        text = solver_markdown(rows, args.device)
        with open(os.path.join(RESULTS, f"{tag}.md"), "w") as f:
            f.write(text)
        print(text)
        return

    tag = args.device.replace(":", "") + ("_quick" if args.quick else "") + (f"_{args.tag}" if args.tag else "")
    jsonl = os.path.join(RESULTS, f"speed_{tag}.jsonl")
    if args.report:  # render the markdown from rows recorded by earlier (possibly partial) runs
        rows = [json.loads(line) for line in open(jsonl)]
        text = markdown(rows, args.device, rows[0]["gemm_gflops"], rows[0].get("epochs", args.epochs),
                        rows[0].get("threads", torch.get_num_threads()), args.quick)
        with open(os.path.join(RESULTS, f"speed_{tag}.md"), "w") as f:
            f.write(text)
        print(text)
        return

    if args.quick:  # the documented minutes: the three core heads, small sizes, no process per configuration
        args.in_process = True
        args.vs_logreg = True
    models = args.models or (CORE_MODELS if args.grid == "core" or args.quick else MODELS)
    if args.configs:
        configs = [tuple(int(v) for v in c.split(":")) for c in args.configs]
    else:
        configs = configs_for("all" if args.grid == "core" else args.grid, args.quick)
    gflops = gemm_gflops(args.device)
    print(f"GEMM {gflops:,.0f} GFLOP/s on {args.device}", file=sys.stderr, flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    rows = []
    for model in models:
        for n, C in configs:
            start = time.perf_counter()
            if args.in_process:
                try:
                    row = run_one(model, n, args.d, C, args.epochs, args.device, in_process=True,
                                  vs_logreg=args.vs_logreg)
                except Exception as exc:  # record and go on: one failing configuration must not end the suite
                    row = {"model": model, "n": n, "C": C, "error": f"{type(exc).__name__}: {exc}"[:120]}
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
            else:
                row = run_in_subprocess(model, n, C, args)
            row.update(gemm_gflops=gflops, threads=torch.get_num_threads(), epochs=args.epochs)
            rows.append(row)
            with open(jsonl, "a") as f:
                f.write(json.dumps(row) + "\n")
            if "error" in row:
                print(f"{model} n={n} C={C}: {row['error']}", file=sys.stderr, flush=True)
            else:
                skorch, raw, bound, main_stage = summarise(row, gflops)
                print(f"{model} n={n} C={C}: skorch {skorch:.2f}s raw {raw:.2f}s (x{skorch / raw:.2f}) "
                      f"bound {bound:.2f}s fit {row['fit_s']:.1f}s [{time.perf_counter() - start:.0f}s]",
                      file=sys.stderr, flush=True)
    text = markdown(rows, args.device, gflops, args.epochs, torch.get_num_threads(), args.quick)
    with open(os.path.join(RESULTS, f"speed_{tag}.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
