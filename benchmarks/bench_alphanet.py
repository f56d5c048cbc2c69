"""AlphaNet: the paper's effects on real long-tailed data, and the post-hoc fit time at ImageNet-LT scale.

Two parts, written as markdown to ``benchmarks/results/alphanet.md``:

1. **Quality** (the paper's Table 1 and Fig. 3) on bundled real data over
   several seeds (mean ± std): the class-balanced linear base (cRT analogue)
   and AlphaNet on top of it for several ``rho``; the random-neighbours
   control; and the ``logit_scale="auto"`` option against the paper's
   unscaled logits (the default). Each AlphaNet row is paired with *its own*
   base (the same ``random_state`` gives the same validation split and base),
   so the gains are paired differences. The epoch is selected on a validation
   part of the training data, never on the test set.
2. **Speed**: the post-hoc fit at ImageNet-LT feature scale (1,000 classes,
   512-d, 115,846 training samples of which 136 classes / ~1,600 samples are
   few-shot; synthetic features, a frozen nearest-class-mean linear base), its
   epoch time against a raw torch loop of the same computation (same module,
   sampler, optimizer, schedule and per-epoch validation, no skorch), and the
   FLOP bound.

Run from the repository root::

    python benchmarks/bench_alphanet.py                        # everything
    python benchmarks/bench_alphanet.py --scale 0.1            # small speed run
    python benchmarks/bench_alphanet.py --skip-quality         # speed only
"""

import argparse
import copy
import json
import math
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _common import format_paired
from scipy.optimize import brentq
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import NearestCentroid
from sklearn.preprocessing import StandardScaler
from torch.nn import functional as F

from sklearn_lt.datasets import load_long_tailed
from sklearn_lt.linear_model import AlphaNetClassifier
from sklearn_lt.metrics import long_tail_report
from sklearn_lt.utils import tail_safe_validation_split

RESULTS = Path(__file__).parent / "results" / "alphanet.md"
PEAK_GFLOPS = 166.0  # 2 cores x 2.6 GHz x 32 FP32 FLOP/cycle (AVX2 + FMA), see shared/notes/perf.md


# ----------------------------------------------------------------------------- quality


def _variants():
    """name -> AlphaNet parameters (None: the base classifier itself). Defaults: logit_scale=1.0 (the paper)."""
    return {
        "cRT (base)": None,
        "α-cRT ρ=0.5": dict(rho=0.5),
        "α-cRT ρ=1": dict(rho=1.0),
        "random nbrs ρ=1": dict(rho=1.0, neighbor_selection="random"),
        "auto scale ρ=0.5": dict(rho=0.5, logit_scale="auto"),
        "auto scale ρ=1": dict(rho=1.0, logit_scale="auto"),
        "random nbrs ρ=1, auto scale": dict(rho=1.0, neighbor_selection="random", logit_scale="auto"),
    }


# (label, a, b): paired differences a - b, per seed
CONTRASTS = [
    ("auto minus paper logit scale, ρ=1", "auto scale ρ=1", "α-cRT ρ=1"),
    ("auto minus paper logit scale, ρ=0.5", "auto scale ρ=0.5", "α-cRT ρ=0.5"),
    ("ρ=0.5 minus ρ=1 (paper scale)", "α-cRT ρ=0.5", "α-cRT ρ=1"),
    ("nearest minus random neighbours, ρ=1 (paper scale)", "α-cRT ρ=1", "random nbrs ρ=1"),
    ("nearest minus random neighbours, ρ=1 (auto scale)", "auto scale ρ=1", "random nbrs ρ=1, auto scale"),
]
METRICS = (("few", "few"), ("overall", "balanced_accuracy"), ("HM recall", "harmonic_mean_recall"))


def _balanced_ce(clf, X, y):
    """Class-balanced cross-entropy of a fitted classifier's logits (diagnostic)."""
    logits = torch.tensor(clf.decision_function(X), dtype=torch.float64)
    target = torch.tensor(np.searchsorted(clf.classes_, y))
    per_sample = F.cross_entropy(logits, target, reduction="none").numpy()
    return float(np.mean([per_sample[y == c].mean() for c in np.unique(y)]))


def run_quality(dataset, seeds, device, only=None):
    variants = {name: p for name, p in _variants().items() if only is None or p is None or name in only}
    rows = {name: [] for name in variants}
    diag = []
    for seed in seeds:
        data = load_long_tailed(dataset, random_state=seed)
        scaler = StandardScaler().fit(data.X_train)
        X, X_test = scaler.transform(data.X_train), scaler.transform(data.X_test)
        y, y_test = data.y_train, data.y_test
        base_coef = None
        for name, params in variants.items():
            if params is None:
                continue
            t0 = time.perf_counter()
            clf = AlphaNetClassifier(random_state=seed, device=device, **params).fit(X, y)
            fit_s = time.perf_counter() - t0
            if base_coef is None:  # the same random_state gives the same split and base for every variant
                base_coef = clf.estimator_.coef_
                report = long_tail_report(y_test, clf.estimator_.predict(X_test), y_train=y, output_dict=True)
                rows["cRT (base)"].append({**report, "fit_s": float("nan"), "scale": float("nan"), "epoch": float("nan")})
                # the part of the data the base and AlphaNet were trained on (same derivation as in fit)
                split_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max, size=5)[0]
                train, valid = tail_safe_validation_split(y, 0.1, random_state=split_seed)
                few_train = train[np.isin(y[train], clf.few_classes_)]
                diag.append(
                    {
                        "n_few": len(clf.few_classes_),
                        "F": int(np.isin(y, clf.few_classes_).sum()),
                        "train_ce": _balanced_ce(clf.estimator_, X[train], y[train]),
                        "valid_ce": _balanced_ce(clf.estimator_, X[valid], y[valid]),
                        "few_train_acc": float(np.mean(clf.estimator_.predict(X[few_train]) == y[few_train])),
                    }
                )
            assert np.array_equal(base_coef, clf.estimator_.coef_), "variants must share the base"
            report = long_tail_report(y_test, clf.predict(X_test), y_train=y, output_dict=True)
            rows[name].append({**report, "fit_s": fit_s, "scale": clf.logit_scale_, "epoch": clf.best_epoch_})
            print(f"  {dataset} seed {seed} {name:22s} few {report['few']:.3f} all {report['balanced_accuracy']:.3f}"
                  f" ({fit_s:.1f} s)", flush=True)
    return rows, diag


def _ms(values, scale=100.0, digits=1):
    values = [v * scale for v in values]
    if len(values) == 1 or any(math.isnan(v) for v in values):
        return f"{values[0]:.{digits}f}" if not math.isnan(values[0]) else "–"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def quality_markdown(dataset, seeds, rows, diag):
    base = rows["cRT (base)"]
    lines = [
        f"### {dataset} (seeds {', '.join(map(str, seeds))})",
        "",
        f"{diag[0]['n_few']} few classes, F = {statistics.mean(d['F'] for d in diag):.0f} few-split training samples "
        f"(of which ~10 % go to validation). Base diagnostics (class-balanced cross-entropy): "
        f"{_ms([d['train_ce'] for d in diag], 1, 3)} on its training samples, "
        f"{_ms([d['valid_ce'] for d in diag], 1, 3)} on the held-out validation part; it classifies "
        f"{_ms([d['few_train_acc'] for d in diag])} % of the few classes' training samples correctly.",
        "",
        "| model | few | medium | many | overall (balanced test) | HM recall | Δ few vs own base (seeds >) "
        "| Δ overall vs own base (seeds >) | Δ HM recall vs own base (seeds >) "
        "| logit scale | kept epoch | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        d_few, d_all, d_hm = (
            format_paired([r[key] for r in runs], [b[key] for b in base], scale=100, digits=1)
            for key in ("few", "balanced_accuracy", "harmonic_mean_recall")
        )
        is_base = name == "cRT (base)"
        lines.append(
            f"| {name} | {_ms([r['few'] for r in runs])} | {_ms([r['medium'] for r in runs])} "
            f"| {_ms([r['many'] for r in runs])} | {_ms([r['balanced_accuracy'] for r in runs])} "
            f"| {_ms([r['harmonic_mean_recall'] for r in runs])} "
            f"| {'' if is_base else d_few} | {'' if is_base else d_all} | {'' if is_base else d_hm} "
            f"| {'' if is_base else _ms([r['scale'] for r in runs], 1, 2)} "
            f"| {'' if is_base else _ms([r['epoch'] for r in runs], 1, 1)} "
            f"| {'' if is_base else _ms([r['fit_s'] for r in runs], 1, 1)} |"
        )
    lines += [
        "",
        "Paired contrasts (points; mean ± std of the per-seed differences, seeds where the first is higher):",
        "",
        "| contrast | " + " | ".join(label for label, _ in METRICS) + " | per seed (few) |",
        "|---|" + "---|" * (len(METRICS) + 1),
    ]
    for label, a, b in CONTRASTS:
        if a not in rows or b not in rows:
            continue
        cells = [format_paired([r[key] for r in rows[a]], [r[key] for r in rows[b]], scale=100, digits=1)
                 for _, key in METRICS]
        few = [ra["few"] - rb["few"] for ra, rb in zip(rows[a], rows[b])]
        lines.append(f"| {label} | {' | '.join(cells)} | {', '.join(f'{100 * v:+.1f}' for v in few)} |")
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- speed


def imagenet_lt_counts(scale=1.0):
    """Class sizes with ImageNet-LT's split: 385 many (101-1280), 479 medium (20-100), 136 few (5-19)."""
    n_many, n_medium, n_few = (max(1, round(n * scale)) for n in (385, 479, 136))
    few = np.round(np.linspace(19, 5, n_few)).astype(int)
    medium = np.round(np.geomspace(100, 20, n_medium)).astype(int)
    target = round(115_846 * scale) - few.sum() - medium.sum()
    u = np.linspace(0, 1, n_many)

    def many(p):
        return np.round(101 + (1280 - 101) * (1 - u) ** p).astype(int)

    p = brentq(lambda p: many(p).sum() - target, 0.01, 50)
    return np.concatenate([many(p), medium, few])


class MeanLinearClassifier(ClassifierMixin, BaseEstimator):
    """Nearest-class-mean as a linear classifier (``w_c = mu_c``, ``b_c = -||mu_c||^2 / 2``): an instant base."""

    def fit(self, X, y):
        centroids = NearestCentroid().fit(X, y)
        self.classes_, self.coef_ = centroids.classes_, centroids.centroids_.astype(np.float64)
        self.intercept_ = -0.5 * (self.coef_**2).sum(axis=1)
        return self

    def predict(self, X):
        return self.classes_[np.argmax(X @ self.coef_.T + self.intercept_, axis=1)]


def _raw_loop(module, sampler, X, y, X_val, y_val, epochs, batch=4096):
    """The same training as AlphaNetClassifier's skorch net, written as a plain torch loop."""
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.1)
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    X_val = torch.as_tensor(X_val, dtype=torch.float32)
    X_val = torch.cat([X_val, X_val @ module.weight.T + module.bias], dim=1)  # base scores precomputed, as in fit
    _, y_val_idx = np.unique(y_val, return_inverse=True)
    times, best = [], -1.0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        module.train()
        for idx in sampler:
            loss = F.cross_entropy(module(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        module.eval()
        with torch.no_grad():
            pred = torch.cat([module(X_val[i : i + batch]).argmax(1) for i in range(0, len(X_val), batch)]).numpy()
        score = np.mean(np.bincount(y_val_idx, pred == y_val) / np.bincount(y_val_idx))
        if epoch + 1 >= 5 and score > best:
            best, _best_state = score, copy.deepcopy(module.state_dict())  # the copy costs what the estimator pays
        times.append(time.perf_counter() - t0)
    return times


def _epoch_flops(n_few, k, d, n_classes, n_train_epoch, n_val, hidden=(32, 32, 32), batch=64):
    """FLOPs one epoch needs at least (multiply-add = 2).

    Per batch of b samples: the coefficient MLP on the n_few source matrices
    (forward; backward = weight gradients of every layer plus input gradients
    of all but the first, whose input is constant), the combination
    ``w + alpha V`` (forward and the gradient for alpha), all logits
    ``2 b d C`` forward, and the gradient of the few rows only ``2 b d n_few``
    (the features and base rows need none). Validation: the few columns only
    (the estimator precomputes the base scores of the validation data once).
    """
    sizes = [(k + 1) * d, *hidden, k]
    layers = [2 * n_few * a * b for a, b in zip(sizes[:-1], sizes[1:])]
    mlp = 2 * layers[0] + 3 * sum(layers[1:])
    combine = 2 * (2 * n_few * k * d)
    n_batches = math.ceil(n_train_epoch / batch)
    train = n_batches * (mlp + combine) + 2 * n_train_epoch * d * (n_classes + n_few)
    # validation: the base scores are precomputed once, each epoch recomputes the few columns
    return train + 2 * n_val * d * n_few


def run_speed(scale, rho, threads):
    torch.set_num_threads(threads)
    counts = imagenet_lt_counts(scale)
    n_classes, d = len(counts), 512
    rng = np.random.RandomState(0)
    centres = rng.normal(size=(n_classes, d)).astype(np.float32)
    y = np.repeat(np.arange(n_classes), counts)
    X = (0.3 * centres[y] + rng.normal(size=(len(y), d))).astype(np.float32)
    base = MeanLinearClassifier().fit(X, y)
    torch.optim.AdamW(torch.nn.Linear(1, 1).parameters())  # one-time lazy imports of torch.optim, not AlphaNet's cost

    clf = AlphaNetClassifier(FrozenEstimator(base), rho=rho, device="cpu", random_state=0)
    t0 = time.perf_counter()
    clf.fit(X, y)
    total = time.perf_counter() - t0
    epoch_s = list(clf.history_[:, "dur"])
    prep = total - sum(epoch_s)

    # the raw loop on the fitted estimator's own pieces (its module and epoch sampler, copied) and its split
    seeds = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=5)
    train, valid = tail_safe_validation_split(y, 0.1, random_state=seeds[0])
    few = np.flatnonzero(np.isin(clf.classes_, clf.few_classes_))
    module = copy.deepcopy(clf.net_.module_)
    sampler = copy.deepcopy(clf.net_.iterator_train__sampler)
    raw_s = _raw_loop(module, sampler, X[train], y[train], X[valid], y[valid], epochs=len(epoch_s))

    # an epoch: every few-split training sample once, plus int(rho * F) class-balanced base draws
    n_few_train = int(np.isin(y[train], few).sum())
    n_epoch = n_few_train + int(rho * n_few_train)
    flops = _epoch_flops(len(few), clf.n_neighbors, d, n_classes, n_epoch, len(valid))
    return {
        "n": len(y),
        "n_classes": n_classes,
        "d": d,
        "n_few": len(few),
        "F": int(np.isin(y, few).sum()),
        "n_epoch": n_epoch,
        "n_val": len(valid),
        "total": total,
        "prep": prep,
        "epoch_med": statistics.median(epoch_s),
        "raw_med": statistics.median(raw_s),
        "flops": flops,
        "epochs": len(epoch_s),
        "scale": clf.logit_scale_,
        "threads": threads,
    }


def speed_markdown(s, scale, rho):
    bound = s["flops"] / (PEAK_GFLOPS * 1e9)
    return "\n".join(
        [
            f"## Post-hoc fit time at ImageNet-LT feature scale (scale={scale}, ρ={rho})",
            "",
            f"Synthetic features: {s['n']:,} × {s['d']} training samples, {s['n_classes']} classes "
            f"({s['n_few']} few classes with {s['F']:,} samples), a frozen nearest-class-mean linear base; "
            f"{s['n_val']:,} samples held out for validation; each epoch trains on {s['n_epoch']:,} samples "
            f"(batch 64) and scores the validation part. torch threads: {s['threads']}. CPU: {platform.processor() or platform.machine()}.",
            "",
            "| | seconds |",
            "|---|---|",
            f"| whole `fit` (25 epochs + preparation) | {s['total']:.1f} |",
            f"| preparation: split, class means, neighbours, automatic logit scale | {s['prep']:.1f} |",
            f"| one epoch, AlphaNetClassifier (skorch), median | {s['epoch_med']:.3f} |",
            f"| one epoch, raw torch loop of the same computation, median | {s['raw_med']:.3f} |",
            f"| one epoch, FLOP bound ({s['flops'] / 1e9:.1f} GFLOP at {PEAK_GFLOPS:.0f} GFLOP/s) | {bound:.3f} |",
            "",
            f"skorch overhead: {s['epoch_med'] / s['raw_med']:.2f}× the raw loop; the raw loop runs at "
            f"{s['flops'] / s['raw_med'] / 1e9:.0f} GFLOP/s. The paper advertises a 5-minute correction on a GPU.",
            "",
        ]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="icd10cm,letter,wordnet")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the ImageNet-LT speed problem")
    parser.add_argument("--rho", type=float, default=1.0, help="rho of the speed run")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    parts = [
        "# AlphaNet benchmark",
        "",
        f"`python benchmarks/bench_alphanet.py {' '.join(__import__('sys').argv[1:])}` — torch {torch.__version__}, "
        f"{args.threads} torch thread(s), device {args.device}; timings on a shared 2-core machine.",
        "",
    ]
    if not args.skip_quality:
        seeds = [int(s) for s in args.seeds.split(",")]
        parts += [
            "## Few-shot accuracy over the cRT base (paper Table 1, Fig. 3)",
            "",
            "Test accuracy in % (mean ± std over seeds; each seed draws a different long-tailed split and "
            "seeds the models). Features standardised. Base: `LinearClassifier(sampling='class_balanced')` fitted "
            "by AlphaNet on 90 % of the training data; the other 10 % selects the epoch. Δ columns are paired "
            "differences to the same seed's base.",
            "",
        ]
        only = None if args.variants is None else set(args.variants.split(","))
        raw = {}
        for dataset in args.datasets.split(","):
            rows, diag = run_quality(dataset, seeds, args.device, only)
            raw[dataset] = {"rows": rows, "diagnostics": diag}
            parts.append(quality_markdown(dataset, seeds, rows, diag))
        args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=float))
    if not args.skip_speed:
        speed = run_speed(args.scale, args.rho, args.threads)
        parts.append(speed_markdown(speed, args.scale, args.rho))
    text = "\n".join(parts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
