"""BTM (BalancedUndersampleMerger) on the bundled real long-tailed data, with the MLP head.

The paper's claim (Yu, Du & Wu, Tables 2-5): inserting Balanced Training and
Merging between pre-training and classifier post-training raises the harmonic
and geometric mean of per-class recall over the pre-trained model with
post-training alone, while accuracy stays within about a point. Here:

- ``pre-trained``: :class:`MLPHeadClassifier` (cross-entropy, instance
  sampling: the paper's imbalance-blind first stage);
- the baseline, ``pre-trained + post-training``: the pre-trained model's final
  layer re-trained with the library's default balanced post-training, i.e.
  BTM with ``n_subsets=0``;
- ``BTM``: the library default (10 subsets of 10 per class, 30 epochs);
- ablations: the merged model before post-training, one sub-model instead of
  the merge, batch-norm re-estimation, and two other post-training protocols
  (the paper's cross-entropy with class-balanced sampling; a longer one)
  applied alike to the pre-trained and to the merged model.

Every variant starts from the same pre-trained model (``FrozenEstimator``),
so the comparison isolates BTM. Test sets are the balanced test splits of
``load_long_tailed`` (accuracy = mean per-class recall). Speed: the MLP head's
epoch through the skorch core against a raw torch loop of the same
computation and against the GEMM FLOP bound, at a ``--scale`` of your choice.

Run ``python benchmarks/bench_btm.py`` (all data sets, seeds 0-2, ~30 min on
2 busy cores) or ``--datasets letter --seeds 0 --quick`` for a smoke run.
"""

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import StandardScaler

from sklearn_lt.datasets import load_long_tailed
from sklearn_lt.ensemble import BalancedUndersampleMerger
from sklearn_lt.metrics import long_tail_report
from sklearn_lt.neural_network import MLPHead, MLPHeadClassifier

METRICS = [
    ("harmonic_mean_recall", "H-mean"),
    ("geometric_mean_recall", "G-mean"),
    ("lowest_recall", "L-recall"),
    ("accuracy", "Acc."),
    ("many", "Many"),
    ("medium", "Medium"),
    ("few", "Few"),
]

BASELINE = "pre-trained + post-training (baseline)"

# post-training protocols, applied alike to the pre-trained model (the baseline) and to the merged model (BTM)
POST_TRAININGS = {
    "default": {},  # balanced softmax, instance sampling, 10 epochs, lr 0.01
    "paper (CE + class-balanced sampling)": {"post_train_loss": "cross_entropy", "post_train_sampling": "class_balanced"},
    "long (balanced softmax, 30 epochs, lr 0.03)": {"post_train_epochs": 30, "post_train_lr": 0.03},
}


def row_labels():
    labels = ["pre-trained", BASELINE, "BTM", "BTM, merged (no post-training)", "one sub-model + post-training",
              "BTM + batch-norm re-estimation"]
    for name in list(POST_TRAININGS)[1:]:
        labels += [f"baseline, post-training {name}", f"BTM, post-training {name}"]
    return labels


def load(name, seed):
    data = load_long_tailed(name, random_state=seed)
    X, X_test = data.X_train.astype(np.float32), data.X_test.astype(np.float32)
    if name == "letter":  # integer shape statistics: standardise (the embeddings are L2-normalised)
        scaler = StandardScaler().fit(X)
        X, X_test = scaler.transform(X).astype(np.float32), scaler.transform(X_test).astype(np.float32)
    return X, data.y_train, X_test, data.y_test


def report(y_test, y_pred, y_train):
    r = long_tail_report(y_test, y_pred, y_train=y_train, output_dict=True)
    return {key: 100 * r[key] for key, _ in METRICS}


def post_train(model, X, y, seed, **params):
    """Post-training alone of a fitted model: BTM with no subsets around the frozen model."""
    return BalancedUndersampleMerger(FrozenEstimator(model), n_subsets=0, random_state=seed, **params).fit(X, y)


def quality(datasets, seeds, quick, verbose):
    rows = {}  # (dataset, row label) -> list of metric dicts
    times = {}
    submodels = {}  # dataset -> per-model test rows of seed seeds[0] (the paper's Tables 12-15)
    btm_params = {"n_subsets": 3, "finetune_epochs": 10} if quick else {}
    for name in datasets:
        for seed in seeds:
            X, y, X_test, y_test = load(name, seed)

            def add(label, y_pred, seconds=None):
                rows.setdefault((name, label), []).append(report(y_test, y_pred, y))
                if seconds is not None:
                    times.setdefault((name, label), []).append(seconds)
                if verbose:
                    r = rows[(name, label)][-1]
                    print(f"{name} seed {seed} {label:60s} H {r['harmonic_mean_recall']:6.2f} "
                          f"G {r['geometric_mean_recall']:6.2f} Acc {r['accuracy']:6.2f}", flush=True)

            tic = time.perf_counter()
            pre = MLPHeadClassifier(random_state=seed).fit(X, y)
            add("pre-trained", pre.predict(X_test), time.perf_counter() - tic)
            tic = time.perf_counter()
            base = post_train(pre, X, y, seed)
            add(BASELINE, base.predict(X_test), time.perf_counter() - tic)
            tic = time.perf_counter()
            btm = BalancedUndersampleMerger(FrozenEstimator(pre), random_state=seed, **btm_params).fit(X, y)
            add("BTM", btm.predict(X_test), time.perf_counter() - tic)

            def predict(model):
                return btm.classes_[np.argmax(btm._kind.logits(model, X_test), axis=1)]

            merged = btm.merged_estimator_
            add("BTM, merged (no post-training)", predict(merged))
            add("one sub-model + post-training", post_train(btm.finetuned_estimators_[0], X, y, seed).predict(X_test))
            # BN re-estimation of the merged model, then the default post-training (same as recalibrate_bn=True)
            recalibrated = btm._kind.recalibrate(merged, X)
            add("BTM + batch-norm re-estimation", post_train(recalibrated, X, y, seed).predict(X_test))
            for protocol, params in list(POST_TRAININGS.items())[1:]:
                add(f"baseline, post-training {protocol}", post_train(pre, X, y, seed, **params).predict(X_test))
                add(f"BTM, post-training {protocol}", post_train(merged, X, y, seed, **params).predict(X_test))
            if seed == seeds[0]:
                table = [("pre-trained", rows[(name, "pre-trained")][-1])]
                for i, m in enumerate(btm.finetuned_estimators_):
                    table.append((f"sub-model {i + 1}", report(y_test, predict(m), y)))
                table.append(("merged", rows[(name, "BTM, merged (no post-training)")][-1]))
                table.append(("merged + post-training (BTM)", rows[(name, "BTM")][-1]))
                table.append(("pre-trained + post-training (baseline)", rows[(name, BASELINE)][-1]))
                submodels[name] = table
    return rows, times, submodels


def _mlp_flops(n, d, h, c):
    """GEMM FLOPs of one training epoch of Linear(d,h)-BN-ReLU-Linear(h,c): forward 2nh(d+c); backward
    grad-weights 2nh(d+c) and the hidden layer's grad-input 2nhc (X needs no gradient)."""
    return 4 * n * h * d + 6 * n * h * c


def speed(scale, epochs=3):
    n, d, c, h = scale
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.randint(c, size=n)
    y[:c] = np.arange(c)
    batch = 1024
    # GEMM ceiling of this machine, now (the bound is contended like everything else)
    a = torch.randn(2048, 2048)
    torch.mm(a, a)
    tic = time.perf_counter()
    for _ in range(5):
        torch.mm(a, a)
    gflops = 5 * 2 * 2048**3 / (time.perf_counter() - tic) / 1e9

    clf = MLPHeadClassifier(hidden_layer_sizes=(h,), max_epochs=epochs, batch_size=batch, optimizer="sgd", lr=0.01,
                            device="cpu", random_state=0).fit(X, y)
    skorch_epoch = float(np.median(clf.history_[:, "dur"][1:]))

    torch.manual_seed(0)
    module = MLPHead(d, c, (h,))
    opt = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    durations = []
    for _ in range(epochs):
        tic = time.perf_counter()
        module.train()
        for idx in torch.randperm(n).split(batch):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(module(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        durations.append(time.perf_counter() - tic)
    raw_epoch = float(np.median(durations[1:]))
    bound = _mlp_flops(n, d, h, c) / (gflops * 1e9)
    return {"n": n, "d": d, "C": c, "hidden": h, "batch": batch, "skorch_s": skorch_epoch, "raw_s": raw_epoch,
            "bound_s": bound, "gflops": gflops}


def _fmt(values):
    values = np.asarray(values)
    return f"{values.mean():.2f} ± {values.std():.2f}"


def markdown(rows, times, submodels, datasets, seeds, quick, speed_rows, elapsed):
    out = [
        "# BTM (BalancedUndersampleMerger) with the MLP head on real long-tailed data",
        "",
        f"`python benchmarks/bench_btm.py {'--quick ' if quick else ''}--datasets {' '.join(datasets)} "
        f"--seeds {' '.join(map(str, seeds))}` — {time.strftime('%Y-%m-%d')}, {platform.processor() or 'cpu'}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {elapsed / 60:.1f} min. Timings were "
        "taken on 2 cores shared with other jobs: read them as ±30 %.",
        "",
        "Mean ± std over seeds (each seed draws its own long-tailed training split and balanced test split, "
        "and its own pre-trained model, which every row of that seed shares). Percentages; Acc. on the "
        "balanced test set is the mean per-class recall. Δ is the difference of the means to the baseline "
        f"*{BASELINE}*.",
        "",
    ]
    if not datasets:
        out = out[:4]
    for name in datasets:
        out += [f"## {name}", ""]
        header = "| model | " + " | ".join(label for _, label in METRICS) + " | ΔH | ΔG | ΔAcc | fit s |"
        out += [header, "|" + "---|" * (len(METRICS) + 5)]
        base = {k: np.mean([r[k] for r in rows[(name, BASELINE)]]) for k, _ in METRICS}
        for label in row_labels():
            rs = rows[(name, label)]
            cells = [_fmt([r[k] for r in rs]) for k, _ in METRICS]
            mean = {k: np.mean([r[k] for r in rs]) for k, _ in METRICS}
            deltas = [f"{mean[k] - base[k]:+.2f}" for k in ("harmonic_mean_recall", "geometric_mean_recall", "accuracy")]
            t = times.get((name, label))
            fit = f"{np.mean(t):.1f}" if t else ""
            bold = "**" if label in ("BTM", BASELINE) else ""
            out.append(f"| {bold}{label}{bold} | " + " | ".join(cells) + " | " + " | ".join(deltas) + f" | {fit} |")
        out.append("")
        if name in submodels:
            out += [
                f"Each model of the BTM fit of seed {seeds[0]} (the paper's Tables 12-15), on the test set:",
                "",
                "| model | H-mean | G-mean | Acc. | Few |",
                "|---|---|---|---|---|",
            ]
            for label, r in submodels[name]:
                out.append(f"| {label} | {r['harmonic_mean_recall']:.2f} | {r['geometric_mean_recall']:.2f} | "
                           f"{r['accuracy']:.2f} | {r['few']:.2f} |")
            out.append("")
    if speed_rows:
        out += [
            "## Speed: one epoch of the MLP head (Linear-BN-ReLU-Linear), batch 1024, CPU",
            "",
            "`skorch` is `MLPHeadClassifier` through the library's core (median epoch of skorch's history); "
            "`raw` the same module and SGD step in a plain torch loop; the bound is the epoch's GEMM FLOPs "
            "(4nhd + 6nhC) at the 2048² matmul rate measured just before.",
            "",
            "| n | d | C | hidden | skorch s/epoch | raw s/epoch | skorch / raw | GEMM bound s | raw / bound | GFLOP/s (mm) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in speed_rows:
            out.append(
                f"| {s['n']} | {s['d']} | {s['C']} | {s['hidden']} | {s['skorch_s']:.3f} | {s['raw_s']:.3f} | "
                f"{s['skorch_s'] / s['raw_s']:.2f} | {s['bound_s']:.3f} | {s['raw_s'] / s['bound_s']:.1f} | "
                f"{s['gflops']:.0f} |"
            )
        out.append("")
    return "\n".join(out)


SCALES = {
    "small": (20_000, 384, 147, 256),
    "imagenet": (115_846, 512, 1000, 512),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="*", default=["letter", "wordnet", "icd10cm"],
                        help="data sets of the quality table; none to run only the speed measurement")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="3 subsets, 10 fine-tuning epochs (smoke run)")
    parser.add_argument("--scale", nargs="*", default=["small"], choices=sorted(SCALES),
                        help="speed measurement scale(s); none to skip")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "btm.md"))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tic = time.perf_counter()
    rows, times, submodels = quality(args.datasets, args.seeds, args.quick, args.verbose)
    speed_rows = [speed(SCALES[s]) for s in args.scale]
    text = markdown(rows, times, submodels, args.datasets, args.seeds, args.quick, speed_rows,
                    time.perf_counter() - tic)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    Path(args.output).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
