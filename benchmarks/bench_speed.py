"""Speed suite: every torch estimator through skorch vs a raw torch loop of the same computation vs the FLOP bound.

Every torch estimator of the library trains through one function, ``sklearn_lt.torch.train_module``.
This suite records each call an estimator's ``fit`` makes (the module as initialised, criterion,
data, sampler, optimizer, schedule, clipping, validation set, batch hook or augmenter) and replays it
as a hand-written torch loop: same module, same batches (index tensors into the same on-device
tensors), same optimizer step, schedule, clipping and per-epoch validation, no skorch. So the ratio
``skorch / raw`` is exactly what the wrapping costs, for every stage of every estimator.

The FLOP bound is the epoch's floating-point work counted by ``torch.utils.flop_counter`` on real
batches (forward, backward, any batch hook, the validation pass) divided by the float32 GEMM rate
measured on this device (a 4096^3 product): the time the epoch would take if every operation ran
at matrix-product peak and nothing else cost anything.

Each (estimator, n, C) runs in its own process, so peak memory (RSS; and CUDA's max allocated on a
GPU) is per configuration. Data are synthetic long-tailed Gaussian clusters with ImageNet-LT's
profile (largest class 256x the smallest), d = 512 unless ``--d``; the scaling grid is
n = 10,000 -> 115,846 at C = 1,000 and C = 100 -> 1,000 -> 8,142 (iNaturalist's count) at
n = 115,846.

    python benchmarks/bench_speed.py                           # full grid, every estimator (long on a CPU)
    python benchmarks/bench_speed.py --grid core               # n and C scaling for the single-stage models
    python benchmarks/bench_speed.py --quick                   # small sizes, a minute
    python benchmarks/bench_speed.py --device cuda             # the same on a GPU
    python benchmarks/bench_speed.py --models LearnedNCM --configs 115846:1000

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

import numpy as np
import torch

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


class TrainModuleRecorder(contextlib.AbstractContextManager):
    """Patch ``train_module`` everywhere in ``sklearn_lt`` and keep what each call trained and how long it took."""

    def __init__(self):
        self.calls = []

    def __enter__(self):
        from sklearn_lt.torch import _net

        self._original = original = _net.train_module

        def recording_train_module(module, criterion, X, y, **kwargs):
            call = {
                "module": copy.deepcopy(module),
                "criterion": copy.deepcopy(criterion),
                "X": X,
                "y": y,
                "kwargs": dict(kwargs),
            }
            net = original(module, criterion, X, y, **kwargs)
            call["epoch_s"] = [float(s) for s in net.history[:, "dur"]]
            call["optimizer"] = type(net.optimizer_)
            call["stage"] = type(module).__name__
            self.calls.append(call)
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
        self.data = ArrayDataset(X, y, w, device=device)
        self.sampler = kw["sampler"]
        self.hook = kw.get("train_batch_hook")
        if kw.get("augmenter") is not None:
            self.hook, self.sampler = kw["augmenter"].make_train_batch_hook(
                X, y, sample_weight=w, sampler=self.sampler, device=device
            )
        self.optimizer = call["optimizer"](self.module.parameters(), lr=kw.get("lr", 0.1), **(kw.get("optimizer_kwargs") or {}))
        schedule, epochs = kw.get("lr_schedule", "cosine"), kw["max_epochs"]
        self.scheduler = None
        if schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(1, epochs))
        elif isinstance(schedule, tuple):
            self.scheduler = schedule[0](self.optimizer, **schedule[1])
        self.clip = kw.get("grad_clip")
        self.valid = None
        if kw.get("valid_data") is not None:
            Xv, yv = kw["valid_data"]
            self.valid = ArrayDataset(Xv, yv, device=device)
            self.valid_batches = SequentialBatchSampler(len(Xv), kw.get("predict_batch_size", 4096))

    def step(self, index):
        from sklearn_lt.torch._net import batch_unpack

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


def _device_name(device):
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.machine()} CPU, {os.cpu_count()} cores"


def gemm_gflops(device, size=4096, repeats=10):
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


# ----------------------------------------------------------------------------- one configuration


def _median_after_warmup(times):
    return float(statistics.median(times[1:] if len(times) > 1 else times))


def run_one(model, n, d, C, epochs, device, in_process=False):
    X, y = long_tailed_data(n, d, C)
    estimator = make_estimator(model, epochs, device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with TrainModuleRecorder() as recorder:
        _sync(device)
        start = time.perf_counter()
        estimator.fit(X, y)
        _sync(device)
        fit_s = time.perf_counter() - start
    start = time.perf_counter()
    estimator.predict(X[:20_000])
    predict_rate = min(n, 20_000) / (time.perf_counter() - start)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_cuda = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None

    stages = []
    for call in recorder.calls:
        replay = RawReplay(call, device)
        raw = [replay.epoch() for _ in range(len(call["epoch_s"]))]
        stages.append(
            {
                "stage": call["stage"],
                "epochs": len(call["epoch_s"]),
                "n_train": len(call["y"]),
                "skorch_s": _median_after_warmup(call["epoch_s"]),
                "raw_s": _median_after_warmup(raw),
                "skorch_total_s": float(sum(call["epoch_s"])),
                "raw_total_s": float(sum(raw)),
                "gflop": replay.epoch_flops() / 1e9,
            }
        )
        del replay
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


def markdown(rows, device, gflops, epochs, threads, quick):
    measured = [r for r in rows if "device_name" in r]
    name = measured[0]["device_name"] if measured else _device_name(device)
    version = measured[0]["torch"] if measured else torch.__version__
    lines = [
        f"# Speed suite: every torch estimator, skorch vs a raw torch loop vs the FLOP bound ({device})",
        "",
        f"Generated by `benchmarks/bench_speed.py{' --quick' if quick else ''} --device {device}` on {name}, "
        f"torch {version}, {threads} torch thread(s). float32 GEMM rate measured here: "
        f"{gflops:,.0f} GFLOP/s (4096^3). Synthetic long-tailed clusters (largest class 256x the smallest), "
        f"d = {rows[0].get('d', 512) if rows else 512}; every training stage runs {epochs} epochs with the estimator's "
        "defaults otherwise; epoch times are medians after the first epoch.",
        "",
        "`skorch`: the estimator's epochs as skorch records them; `raw`: the same `train_module` call replayed "
        "as a plain torch loop (same module, batches, optimizer, schedule, clipping, validation); `bound`: "
        "the epoch's counted FLOPs at the GEMM rate. Main stage = the stage with the most training time "
        "(its module named); totals add every stage of the fit.",
        "",
        "| estimator | n | C | main stage | skorch s/epoch | raw s/epoch | skorch / raw | bound s/epoch | % of bound "
        "| all stages: skorch s | raw s | skorch / raw | fit s | peak RSS MiB |"
        + (" peak CUDA MiB |" if device.startswith("cuda") else ""),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if device.startswith("cuda") else ""),
    ]
    ratios = []  # per row, all stages
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['model']} | {row['n']:,} | {row['C']:,} | failed: {row['error']} |")
            continue
        skorch, raw, bound, main = summarise(row, gflops)
        ratios.append(skorch / raw)
        main_bound = main["gflop"] / gflops
        line = (
            f"| {row['model']} | {row['n']:,} | {row['C']:,} | {main['stage']} | {main['skorch_s']:.3f} | "
            f"{main['raw_s']:.3f} | {main['skorch_s'] / main['raw_s']:.2f} | {main_bound:.4f} | "
            f"{100 * main_bound / main['skorch_s']:.1f} | {skorch:.2f} | {raw:.2f} | {skorch / raw:.2f} | "
            f"{row['fit_s']:.1f} | {row['peak_rss_mib']:,.0f} |"
        )
        if device.startswith("cuda"):
            line += f" {row['peak_cuda_mib']:,.0f} |"
        lines.append(line)
    for r in rows:
        if r.get("note"):
            lines += ["", f"{r['model']} at n = {r['n']:,}, C = {r['C']:,}: {r['note']}."]
    if any(r.get("in_process") for r in rows):
        lines += ["", "Run with `--in-process`: peak RSS is the process's running maximum, not per row"
                  + ("; peak CUDA memory is per row." if device.startswith("cuda") else ".")]
    if ratios:
        lines += [
            "",
            f"skorch / raw of all stages together, over all rows: median {statistics.median(ratios):.2f}, "
            f"range {min(ratios):.2f}-{max(ratios):.2f}.",
        ]
    return "\n".join(lines) + "\n"


def run_in_subprocess(model, n, C, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--one", model, str(n), str(args.d), str(C),
           "--epochs", str(args.epochs), "--device", args.device]
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
    parser.add_argument("--quick", action="store_true", help="n = 10,000, C = 100 and 1,000")
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
    parser.add_argument("--report", action="store_true", help="only render the markdown from the .jsonl")
    parser.add_argument("--one", nargs=4, metavar=("MODEL", "N", "D", "C"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        model, n, d, C = args.one
        print(json.dumps(run_one(model, int(n), int(d), int(C), args.epochs, args.device)))
        return

    tag = args.device.replace(":", "") + ("_quick" if args.quick else "")
    jsonl = os.path.join(RESULTS, f"speed_{tag}.jsonl")
    if args.report:  # render the markdown from rows recorded by earlier (possibly partial) runs
        rows = [json.loads(line) for line in open(jsonl)]
        text = markdown(rows, args.device, rows[0]["gemm_gflops"], rows[0].get("epochs", args.epochs),
                        rows[0].get("threads", torch.get_num_threads()), args.quick)
        with open(os.path.join(RESULTS, f"speed_{tag}.md"), "w") as f:
            f.write(text)
        print(text)
        return

    models = args.models or (CORE_MODELS if args.grid == "core" else MODELS)
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
                    row = run_one(model, n, args.d, C, args.epochs, args.device, in_process=True)
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
