"""Learned NCM / Multi-NCM: the paper's effects on real data, the feature-scale rule, and epoch speed.

Three parts, each written as markdown to ``benchmarks/results/ncm.md``:

1. **Quality** (the paper's Table 1 direction) on the bundled real long-tailed
   data, over several seeds (mean ± std): NearestCentroid (NCM), LearnedNCM with
   ``tau=0`` and ``tau=1/8``, MultiNCM, the paper's raw-unit settings and the
   learned-temperature option; plus the paired differences the issue asks about
   and the intra-class variance diagnostic of each data set.
2. **Feature scale**: the default unit of distance against the paper's raw
   units on the same features multiplied by 0.01, 1 and 100 (accuracy and the
   full-data training objective before and after training).
3. **Speed**: one epoch at ImageNet-LT feature scale (115,846 x 512, 1,000
   classes, batch 1,024; synthetic features, ``--scale`` shrinks n) for the
   estimator, for a raw torch loop of the same computation (same module, loss,
   sampler and optimizer, no skorch), and for a plain-autograd raw loop, against
   the FLOP bound ``2 x 2 n d C`` (the features need no gradient, so an epoch is
   two GEMMs) at the measured and at the nominal 125 GFLOP/s.

Run from the repository root::

    python benchmarks/bench_ncm.py                       # everything, full speed scale
    python benchmarks/bench_ncm.py --scale 0.1 --threads 1   # small speed run on a busy machine
    python benchmarks/bench_ncm.py --skip-quality --skip-scale   # speed only
"""

import argparse
import copy
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _common import format_paired, gemm_gflops, load_split, mean_std, paired_difference
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import NearestCentroid
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_lt.datasets import load_long_tailed
from sklearn_lt.metrics import long_tail_report
from sklearn_lt.prototypes import LearnedNCM, MultiNCM, intra_class_variance
from sklearn_lt.torch import ClassBalancedSampler, LogitAdjustedLoss

RESULTS = Path(__file__).parent / "results" / "ncm.md"
NOMINAL_GFLOPS = 125.0


# ----------------------------------------------------------------------------- quality


def _methods(seed):
    """name -> (factory of an unfitted model, name of a fitted model it reuses or None)."""
    common = {"random_state": seed, "device": "cpu"}
    return {
        "NCM (NearestCentroid)": (lambda base: NearestCentroid(), None),
        "LearnedNCM tau=0": (lambda base: LearnedNCM(tau=0.0, **common), None),
        "LearnedNCM tau=1/8": (lambda base: LearnedNCM(**common), None),
        "MultiNCM tau=0": (lambda base: MultiNCM(FrozenEstimator(base), tau=0.0, **common), "LearnedNCM tau=0"),
        "MultiNCM tau=1/8": (lambda base: MultiNCM(FrozenEstimator(base), **common), "LearnedNCM tau=1/8"),
        "LearnedNCM tau=1/8, paper units": (
            lambda base: LearnedNCM(feature_scale=1.0, lr_schedule="constant", **common),
            None,
        ),
        "LearnedNCM tau=1/8, learned T": (lambda base: LearnedNCM(learn_temperature=True, **common), None),
    }


def _balanced_objective(clf, X, y, centroids):
    """Logit-adjusted CE on all training data, every class weighted equally (what training minimises)."""
    scale = clf.feature_scale_
    t = 1.0 if clf.temperature_ is None else clf.temperature_
    x = torch.tensor(X / (scale * t), dtype=torch.float64)
    m = torch.tensor(centroids / (scale * t), dtype=torch.float64)
    logits = -0.5 * torch.cdist(x, m) + clf.tau * torch.log(torch.tensor(clf.class_counts_, dtype=torch.float64))
    per_sample = torch.nn.functional.cross_entropy(logits, torch.tensor(y), reduction="none").numpy()
    return float(np.mean([per_sample[y == k].mean() for k in range(len(clf.classes_))]))


def run_quality(datasets, seeds, log):
    rows, diffs, diagnostics = {}, {}, []
    for name in datasets:
        for seed in seeds:
            data = load_long_tailed(name, random_state=seed)
            scaler = StandardScaler().fit(data.X_train)  # as the main benchmark's registry does
            X, X_test = scaler.transform(data.X_train), scaler.transform(data.X_test)
            y, y_test = data.y_train, data.y_test
            if seed == seeds[0]:
                r = intra_class_variance(data.X_train, y, random_state=0)
                diagnostics.append((name, len(r.classes), r.spearman_r, r.spearman_r_excess))
            fitted, scores = {}, {}
            for method, (make, reuse) in _methods(seed).items():
                start = time.perf_counter()
                model = make(fitted.get(reuse)).fit(X, y)
                elapsed = time.perf_counter() - start + (fitted[reuse].fit_time_ if reuse else 0.0)
                model.fit_time_ = elapsed
                fitted[method] = model
                rep = long_tail_report(y_test, model.predict(X_test), y_train=y, output_dict=True)
                scores[method] = rep
                rows.setdefault((name, method), []).append(
                    [rep["accuracy"], rep["many"], rep["medium"], rep["few"], rep["harmonic_mean_recall"], elapsed]
                )
                log(f"{name} seed={seed} {method}: acc {rep['accuracy']:.3f} few {rep['few']:.3f} ({elapsed:.1f} s)")
            diffs.setdefault((name, "LearnedNCM tau=1/8 - NCM, overall"), []).append(
                scores["LearnedNCM tau=1/8"]["accuracy"] - scores["NCM (NearestCentroid)"]["accuracy"]
            )
            diffs.setdefault((name, "LearnedNCM tau=0 - NCM, overall"), []).append(
                scores["LearnedNCM tau=0"]["accuracy"] - scores["NCM (NearestCentroid)"]["accuracy"]
            )
            diffs.setdefault((name, "LearnedNCM tau=1/8 - tau=0, few-shot"), []).append(
                scores["LearnedNCM tau=1/8"]["few"] - scores["LearnedNCM tau=0"]["few"]
            )
            diffs.setdefault((name, "MultiNCM - LearnedNCM (tau=1/8), overall"), []).append(
                scores["MultiNCM tau=1/8"]["accuracy"] - scores["LearnedNCM tau=1/8"]["accuracy"]
            )
    return rows, diffs, diagnostics


def quality_markdown(rows, diffs, diagnostics, seeds):
    out = [
        "## 1. Quality on the bundled real data",
        "",
        f"Seeds {', '.join(map(str, seeds))} (each seed is a different long-tailed draw of the data and "
        "the model's random_state); features standardised (StandardScaler fitted on the training part), "
        "as the main benchmark does. Test sets are balanced. Many > 100, medium 20-100, few < 20 "
        "training samples. Mean ± std (ddof=1) over seeds. HMR = harmonic mean of per-class recall. "
        "Defaults: 30 epochs, batch 256, SGD lr 5 (in units of `feature_scale_`), momentum 0.9, "
        "gradient clip 0.1 (value clipping), constant learning rate, class-balanced sampling. MultiNCM reuses the "
        "LearnedNCM of the same tau (frozen); its fit time includes that model's.",
        "",
    ]
    names = sorted({name for name, _ in rows}, key=[n for n, _ in rows].index)
    for name in names:
        out += [f"### {name}", "", "| method | all | many | medium | few | HMR | fit s |", "|---|---|---|---|---|---|---|"]
        for (n, method), values in rows.items():
            if n != name:
                continue
            v = np.array(values)
            cells = [mean_std(v[:, i], digits=3) for i in range(5)]
            out.append(f"| {method} | " + " | ".join(cells) + f" | {v[:, 5].mean():.1f} |")
        out.append("")
    out += [
        "### Paired differences (same seed, same data)",
        "",
        "| data | difference | mean ± std | seeds > 0 |",
        "|---|---|---|---|",
    ]
    for (name, what), values in diffs.items():
        d = paired_difference(values, 0.0)
        out.append(f"| {name} | {what} | {d['mean']:+.3f} ± {d['std']:.3f} | {d['improved']}/{d['n']} |")
    out += [
        "",
        "### Intra-class variance diagnostic (raw training features, first seed)",
        "",
        "`spearman_r`: rank correlation of each class's top covariance eigenvalue with its size (the paper "
        "finds it negative on CNN features). `spearman_r_excess`: the same after dividing by the value a "
        "class of that size gets from pooled within-class residuals (the small-sample bias of the top "
        "eigenvalue removed).",
        "",
        "| data | classes | spearman_r | spearman_r_excess |",
        "|---|---|---|---|",
    ]
    for name, n_classes, r, r_excess in diagnostics:
        out.append(f"| {name} | {n_classes} | {r:+.3f} | {r_excess:+.3f} |")
    return out + [""]


# ----------------------------------------------------------------------------- feature scale


def run_scale(name, seeds, factors, log):
    """Default vs paper units on the raw (unit-norm) embeddings multiplied by each factor."""
    settings = {
        "default (feature_scale='auto')": {},
        "paper units (feature_scale=1)": {"feature_scale": 1.0},
    }
    rows = {}
    for seed in seeds:
        data = load_long_tailed(name, random_state=seed)
        y = data.y_train
        y_enc = np.searchsorted(np.unique(y), y)
        for factor in factors:
            X, X_test = data.X_train * factor, data.X_test * factor
            for label, params in settings.items():
                clf = LearnedNCM(random_state=seed, device="cpu", **params).fit(X, y)
                rep = long_tail_report(data.y_test, clf.predict(X_test), y_train=y, output_dict=True)
                start = _balanced_objective(clf, X, y_enc, clf.empirical_centroids_)
                end = _balanced_objective(clf, X, y_enc, clf.centroids_)
                shift = np.median(np.linalg.norm(clf.centroids_ - clf.empirical_centroids_, axis=1))
                within = np.median(np.linalg.norm(X - clf.empirical_centroids_[y_enc], axis=1))
                rows.setdefault((factor, label), []).append(
                    [rep["accuracy"], rep["few"], start, end, shift / within]
                )
                log(f"scale {name} x{factor} seed={seed} {label}: acc {rep['accuracy']:.3f} obj {start:.3f}->{end:.3f}")
    return rows


def scale_markdown(name, rows, seeds):
    out = [
        "## 2. Feature scale: the default unit of distance vs the paper's raw units",
        "",
        f"{name}, raw features (unit-norm sentence embeddings, no scaler) multiplied by a factor; seeds "
        f"{', '.join(map(str, seeds))}; LearnedNCM tau=1/8. Objective = the training loss (logit-adjusted "
        "CE) on all training data with every class weighted equally, at the empirical means -> at the "
        "learned centroids, in each model's own units. Shift = median distance a centroid moved, over the "
        "median distance of a sample to its class mean.",
        "",
        "| factor | setting | all | few | objective start -> end | shift / within-class distance |",
        "|---|---|---|---|---|---|",
    ]
    for (factor, label), values in rows.items():
        v = np.array(values)
        m = v.mean(0)
        out.append(
            f"| {factor:g} | {label} | {mean_std(v[:, 0], digits=3)} | {mean_std(v[:, 1], digits=3)} | "
            f"{m[2]:.3f} -> {m[3]:.3f} | {m[4]:.2f} |"
        )
    return out + [""]


# ----------------------------------------------------------------------------- issue 12 options


def _options():
    """name -> (LearnedNCM parameters, name of the row it is paired with)."""
    return {
        "default (clip='value', grad_clip=0.1)": ({}, None),
        "clip='norm' (previous default)": ({"clip": "norm"}, "default (clip='value', grad_clip=0.1)"),
        "grad_clip=None": ({"grad_clip": None}, "default (clip='value', grad_clip=0.1)"),
        "validation_fraction=0.1": ({"validation_fraction": 0.1}, "default (clip='value', grad_clip=0.1)"),
        "learned T, clip='norm'": ({"learn_temperature": True, "clip": "norm"}, None),
        "learned T, clip='value'": ({"learn_temperature": True}, "learned T, clip='norm'"),
        "learned T, clip='value' (vs no T)": ({"learn_temperature": True}, "default (clip='value', grad_clip=0.1)"),
    }


def run_options(datasets, seeds, log):
    """Paired rows for the clipping and best-epoch options (same draw, same random_state)."""
    rows = {}
    for name in datasets:
        for seed in seeds:
            X, y, X_test, y_test = load_split(name, seed)
            for label, (params, _) in _options().items():
                clf = LearnedNCM(random_state=seed, device="cpu", **params).fit(X, y)
                rep = long_tail_report(y_test, clf.predict(X_test), y_train=y, output_dict=True)
                rows.setdefault((name, label), []).append((rep, clf.centroids_, clf.best_epoch_))
                log(f"options {name} seed={seed} {label}: overall {rep['balanced_accuracy']:.3f} few {rep['few']:.3f}")
    return rows


def options_markdown(rows, datasets, seeds):
    out = [
        "## 4. Clipping and best-epoch options (issue 12)",
        "",
        f"LearnedNCM tau=1/8, seeds {', '.join(map(str, seeds))}, standardised features, test sets balanced. "
        "Paired differences (points) against the row named, same draw and random_state: mean ± std (ddof=1) and the "
        "seeds where the option is higher; 'identical' counts the seeds whose learned centroids are bit-identical.",
        "",
        "| data | setting | overall | few | HM recall | vs | Δ overall | Δ few | Δ HM recall | identical | kept epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ("balanced_accuracy", "few", "harmonic_mean_recall")
    for name in datasets:
        for label, (_, ref) in _options().items():
            runs = rows[(name, label)]
            cells = [mean_std([r[0][k] for r in runs], scale=100, digits=1) for k in keys]
            deltas, same = ["", "", ""], ""
            if ref is not None:
                base = rows[(name, ref)]
                deltas = [format_paired([r[0][k] for r in runs], [b[0][k] for b in base], scale=100) for k in keys]
                same = f"{sum(np.array_equal(r[1], b[1]) for r, b in zip(runs, base))}/{len(runs)}"
            epochs = ", ".join(str(r[2]) for r in runs)
            out.append(f"| {name} | {label} | " + " | ".join(cells) + f" | {ref or ''} | " + " | ".join(deltas) + f" | {same} | {epochs} |")
    return out + [""]


# ----------------------------------------------------------------------------- speed


def synthetic_imagenet_lt(scale, n_features=512, n_classes=1000, seed=0):
    """Gaussian class clusters with ImageNet-LT's size (115,846 x 512, 1,000 classes, 1280 -> 5 per class)."""
    rng = np.random.RandomState(seed)
    sizes = 5 * 256 ** ((1 - np.arange(n_classes) / (n_classes - 1)) ** 1.9)
    sizes = np.maximum(1, np.round(sizes * 115_846 * scale / sizes.sum())).astype(int)
    y = np.repeat(np.arange(n_classes), sizes)
    means = rng.normal(size=(n_classes, n_features)).astype(np.float32)
    X = 0.3 * means[y] + rng.normal(size=(len(y), n_features)).astype(np.float32)
    return X.astype(np.float32), y


def training_gemm_gflops(batch_size, d, C):
    """GFLOP/s of the two GEMMs of a training step (logits, centroid gradient), as the machine is now."""
    forward = 2 * batch_size * d * C / gemm_gflops(shape=(batch_size, d, C))
    backward = 2 * batch_size * d * C / gemm_gflops(shape=(C, batch_size, d))
    return 2 * (2 * batch_size * d * C) / (forward + backward)


def _raw_epochs(module, loss_fn, X, y, sampler, epochs, clip, lr=5.0):
    optimizer = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for idx in sampler:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(module(Xt[idx]), yt[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times


class _PlainNCM(torch.nn.Module):
    """The textbook torch version: expansion, clamp, sqrt, all through autograd."""

    def __init__(self, centroids, inv_scale):
        super().__init__()
        self.centroids = torch.nn.Parameter(torch.as_tensor(centroids * inv_scale, dtype=torch.float32))
        self.inv_scale = inv_scale

    def forward(self, X):
        x, m = X * self.inv_scale, self.centroids
        d2 = (x * x).sum(1, keepdim=True) - 2 * x @ m.T + (m * m).sum(1)
        return -0.5 * d2.clamp_min(1e-12).sqrt()


def run_speed(scale, epochs, rounds, batch_size, log):
    X, y = synthetic_imagenet_lt(scale)
    n, d = X.shape
    C = int(y.max()) + 1
    counts = np.bincount(y)
    flops = 2 * (2 * n * d * C)
    square = gemm_gflops(size=4096)
    log(f"speed: n={n} d={d} C={C}; 4096^3 GEMM {square:.1f} GFLOP/s")

    est_times, raw_times, plain_times, fit_walls, gemm_rates = [], [], [], [], []
    for r in range(rounds):
        gemm_rates.append(training_gemm_gflops(batch_size, d, C))
        est = LearnedNCM(max_epochs=epochs, batch_size=batch_size, lr_schedule="constant", device="cpu", random_state=r)
        start = time.perf_counter()
        est.fit(X, y)
        fit_walls.append(time.perf_counter() - start)
        est_times += list(est.history_[:, "dur"])[1:]
        module = copy.deepcopy(est.net_.module_)  # the estimator's own module, trained on from where it stopped
        gen = torch.Generator().manual_seed(r)
        sampler = ClassBalancedSampler(y, batch_size, generator=gen)
        raw_times += _raw_epochs(module, LogitAdjustedLoss(counts, 0.125), X, y, sampler, epochs, 0.1)[1:]
        plain = _PlainNCM(est.empirical_centroids_, 1.0 / est.feature_scale_)
        adj = 0.125 * torch.log(torch.as_tensor(counts, dtype=torch.float32))
        plain_loss = lambda logits, t: torch.nn.functional.cross_entropy(logits + adj, t)  # noqa: E731
        plain_times += _raw_epochs(plain, plain_loss, X, y, sampler, epochs, 0.1)[1:]
        log(f"round {r}: estimator {est_times[-1]:.2f} s, raw {raw_times[-1]:.2f} s, plain {plain_times[-1]:.2f} s")

    multi = MultiNCM(FrozenEstimator(est), max_epochs=2, batch_size=batch_size, device="cpu", random_state=0)
    multi_epoch = multi.fit(X, y).history_[-1, "dur"]
    log(f"MultiNCM epoch {multi_epoch:.2f} s")

    X_test = X[: min(n, 50_000)]
    start = time.perf_counter()
    est.predict(X_test)
    predict_s = time.perf_counter() - start
    return {
        "n": n,
        "d": d,
        "C": C,
        "peak": statistics.median(gemm_rates),
        "square": square,
        "flops": flops,
        "estimator": statistics.median(est_times),
        "raw": statistics.median(raw_times),
        "plain": statistics.median(plain_times),
        "fit_wall": statistics.median(fit_walls),
        "multi": multi_epoch,
        "predict_rate": len(X_test) / predict_s,
        "epochs_measured": len(est_times),
    }


def speed_markdown(res, scale, threads, batch_size):
    bound = res["flops"] / 1e9 / res["peak"]
    nominal = res["flops"] / 1e9 / NOMINAL_GFLOPS
    out = [
        "## 3. Epoch time at ImageNet-LT feature scale",
        "",
        f"Synthetic Gaussian class clusters, n = {res['n']:,} (scale {scale}), d = {res['d']}, C = {res['C']}, "
        f"batch {batch_size}, class-balanced sampling, SGD momentum 0.9, clip 0.1; torch threads = {threads}; "
        f"{platform.processor() or platform.machine()}. Median of {res['epochs_measured']} epochs per variant "
        "(the first epoch of each run is dropped), variants interleaved. FLOP bound = 2 GEMMs of "
        f"2·n·d·C = {res['flops'] / 1e9:.1f} GFLOP per epoch.",
        "",
        f"Measured GEMM rates: the two training-step GEMMs ({batch_size}x{res['d']} @ {res['d']}x{res['C']} and "
        f"{res['C']}x{batch_size} @ {batch_size}x{res['d']}), timed between the runs: {res['peak']:.0f} GFLOP/s; "
        f"a 4096^3 GEMM: {res['square']:.0f} GFLOP/s.",
        "",
        "| variant | s / epoch | vs raw loop | % of bound (training GEMMs at "
        f"{res['peak']:.0f} GFLOP/s: {bound:.2f} s) | % of bound (nominal {NOMINAL_GFLOPS:.0f} GFLOP/s: {nominal:.2f} s) |",
        "|---|---|---|---|---|",
    ]
    for label, key in (
        ("LearnedNCM (skorch, fused distance)", "estimator"),
        ("raw torch loop, same module/loss/sampler", "raw"),
        ("raw torch loop, plain autograd (clamp + sqrt)", "plain"),
    ):
        t = res[key]
        out.append(
            f"| {label} | {t:.3f} | {t / res['raw']:.2f}x | {100 * bound / t:.0f} % | {100 * nominal / t:.0f} % |"
        )
    out.append(
        f"| MultiNCM, 20 displacements (skorch, fused min over 21) | {res['multi']:.3f} | "
        f"{res['multi'] / res['raw']:.2f}x | | |"
    )
    out += [
        "",
        f"Whole `fit` wall time (set-up + all epochs): {res['fit_wall']:.1f} s; "
        f"predict (float64, exact distances): {res['predict_rate'] / 1e3:.0f} k samples/s.",
        "",
    ]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="icd10cm,letter,wordnet")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of ImageNet-LT's 115,846 samples")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per speed run (the first is dropped)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved speed runs per variant")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scale-data", default="icd10cm", help="data set of the feature-scale study")
    parser.add_argument("--scale-factors", default="0.01,1,100")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-options", action="store_true")
    parser.add_argument("--options-data", default="letter,icd10cm", help="data sets of the clipping/epoch options")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    seeds = [int(s) for s in args.seeds.split(",")]
    lines = ["# Learned NCM and Multi-NCM: benchmark", "", f"`python benchmarks/bench_ncm.py {' '.join(_argv())}`", ""]
    with threadpool_limits(args.threads):
        if not args.skip_quality:
            lines += quality_markdown(*run_quality(args.datasets.split(","), seeds, log), seeds)
        if not args.skip_scale:
            factors = [float(f) for f in args.scale_factors.split(",")]
            lines += scale_markdown(args.scale_data, run_scale(args.scale_data, seeds[:3], factors, log), seeds[:3])
        if not args.skip_options:
            datasets = args.options_data.split(",")
            lines += options_markdown(run_options(datasets, seeds[:3], log), datasets, seeds[:3])
        if not args.skip_speed:
            lines += speed_markdown(
                run_speed(args.scale, args.epochs, args.rounds, args.batch_size, log),
                args.scale,
                args.threads,
                args.batch_size,
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


def _argv():
    import sys

    return sys.argv[1:]


if __name__ == "__main__":
    main()
