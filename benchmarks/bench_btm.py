"""BTM (BalancedUndersampleMerger) on the bundled real long-tailed data, with the MLP head.

The paper's claim (Yu, Du & Wu, Tables 2-5): inserting Balanced Training and
Merging between pre-training and classifier post-training raises the harmonic
and geometric mean of per-class recall over the pre-trained model with
post-training alone, while accuracy stays within about a point. Here:

- ``pre-trained``: :class:`MLPHeadClassifier` (cross-entropy, instance
  sampling: the paper's imbalance-blind first stage);
- two fine-tunings: the paper's (the defaults: lr 5e-3, batch 256) and the
  tuned option (lr 0.02, ``finetune_batch_size="auto"``), chosen on validation
  splits by ``benchmarks/select_btm_defaults.py``;
- two post-trainings: the paper's (the default: cross-entropy with
  class-balanced sampling) and the balanced-softmax option;
- each BTM row is paired with its own baseline, the pre-trained model with the
  same post-training (BTM with ``n_subsets=0``): per seed, BTM minus baseline;
  mean ± std of these paired differences and the number of seeds BTM is higher;
- ablation: the merged models before post-training.

Every variant of a seed starts from the same pre-trained model
(``FrozenEstimator``), so the comparison isolates BTM. Test sets are the
balanced test splits of ``load_long_tailed`` (accuracy = mean per-class
recall). Speed: the MLP head's epoch through the skorch core against a raw
torch loop of the same computation and against the GEMM FLOP bound, at a
``--scale`` of your choice (``--scale`` with no value skips it).

Run ``python benchmarks/bench_btm.py`` (letter and icd10cm, seeds 0-2) or
``--datasets letter --seeds 0 --quick`` for a smoke run.
"""

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _common import format_paired, gemm_gflops, load_split, mean_std
from sklearn.frozen import FrozenEstimator

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

FINETUNINGS = {  # FT: fine-tuning; the first is the default
    "paper FT (lr 5e-3, batch 256)": {},
    "tuned FT (lr 0.02, batch auto)": {"finetune_lr": 0.02, "finetune_batch_size": "auto"},
}
POST_TRAININGS = {  # PT: post-training; the first is the default
    "paper PT (CE + class-balanced)": {},
    "BSCE PT (balanced softmax)": {"post_train_loss": "balanced_softmax", "post_train_sampling": "instance"},
}
DEFAULT_BTM = f"BTM: {list(FINETUNINGS)[0]} + {list(POST_TRAININGS)[0]}"


def baseline_label(post):
    return f"baseline: pre-trained + {post}"


def btm_label(finetuning, post):
    return f"BTM: {finetuning} + {post}"


def row_labels():
    labels = ["pre-trained"]
    for post in POST_TRAININGS:
        labels.append(baseline_label(post))
        labels += [btm_label(ft, post) for ft in FINETUNINGS]
    labels += [f"BTM merged, no post-training ({ft})" for ft in FINETUNINGS]
    return labels


def paired_with(label):
    """The baseline row a BTM row is paired with (same post-training), or None."""
    for post in POST_TRAININGS:
        if label.startswith("BTM: ") and label.endswith(post):
            return baseline_label(post)
    return None


def report(y_test, y_pred, y_train):
    r = long_tail_report(y_test, y_pred, y_train=y_train, output_dict=True)
    return {key: 100 * r[key] for key, _ in METRICS}


def post_train(model, X, y, seed, **params):
    """Post-training alone of a fitted model: BTM with no subsets around the frozen model."""
    return BalancedUndersampleMerger(FrozenEstimator(model), n_subsets=0, random_state=seed, **params).fit(X, y)


def quality(datasets, seeds, quick, verbose):
    rows = {}  # (dataset, row label) -> list of metric dicts, one per seed in order
    times = {}
    submodels = {}  # dataset -> per-model test rows of seed seeds[0] (the paper's Tables 12-15)
    quick_params = {"n_subsets": 3, "finetune_epochs": 10} if quick else {}
    for name in datasets:
        for seed in seeds:
            # letter's integer shape statistics are standardised; the embeddings are L2-normalised
            X, y, X_test, y_test = load_split(name, seed, standardize=name == "letter", dtype=np.float32)

            def add(label, y_pred, seconds=None, name=name, seed=seed, y_test=y_test, y=y):
                rows.setdefault((name, label), []).append(report(y_test, y_pred, y))
                if seconds is not None:
                    times.setdefault((name, label), []).append(seconds)
                if verbose:
                    r = rows[(name, label)][-1]
                    print(f"{name} seed {seed} {label:90s} H {r['harmonic_mean_recall']:6.2f} "
                          f"G {r['geometric_mean_recall']:6.2f} Acc {r['accuracy']:6.2f}", flush=True)

            tic = time.perf_counter()
            pre = MLPHeadClassifier(random_state=seed).fit(X, y)
            add("pre-trained", pre.predict(X_test), time.perf_counter() - tic)
            for post, post_params in POST_TRAININGS.items():
                tic = time.perf_counter()
                add(baseline_label(post), post_train(pre, X, y, seed, **post_params).predict(X_test),
                    time.perf_counter() - tic)
            for finetuning, ft_params in FINETUNINGS.items():
                tic = time.perf_counter()
                btm = BalancedUndersampleMerger(FrozenEstimator(pre), post_train=False, random_state=seed,
                                                **ft_params, **quick_params).fit(X, y)
                seconds = time.perf_counter() - tic

                def predict(model, btm=btm, X_test=X_test):
                    return btm.classes_[np.argmax(btm._kind.logits(model, X_test), axis=1)]

                add(f"BTM merged, no post-training ({finetuning})", predict(btm.merged_estimator_), seconds)
                for post, post_params in POST_TRAININGS.items():
                    final = post_train(btm.merged_estimator_, X, y, seed, **post_params)
                    add(btm_label(finetuning, post), final.predict(X_test))
                if seed == seeds[0] and finetuning != list(FINETUNINGS)[0]:
                    table = [("pre-trained", rows[(name, "pre-trained")][-1])]
                    for i, m in enumerate(btm.finetuned_estimators_):
                        table.append((f"sub-model {i + 1}", report(y_test, predict(m), y)))
                    table.append(("merged", rows[(name, f"BTM merged, no post-training ({finetuning})")][-1]))
                    for post in POST_TRAININGS:
                        table.append((f"merged + {post}", rows[(name, btm_label(finetuning, post))][-1]))
                        table.append((f"pre-trained + {post}", rows[(name, baseline_label(post))][-1]))
                    submodels[name] = (finetuning, table)
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
    gflops = gemm_gflops()

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


def _paired(rows, name, label, key):
    return format_paired([r[key] for r in rows[(name, label)]], [r[key] for r in rows[(name, paired_with(label))]])


def markdown(rows, times, submodels, datasets, seeds, quick, speed_rows, elapsed):
    out = [
        "# BTM (BalancedUndersampleMerger) with the MLP head on real long-tailed data",
        "",
        f"`python benchmarks/bench_btm.py {'--quick ' if quick else ''}--datasets {' '.join(datasets)} "
        f"--seeds {' '.join(map(str, seeds))}` — {time.strftime('%Y-%m-%d')}, {platform.processor() or 'cpu'}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {elapsed / 60:.1f} min. Timings were "
        "taken on 2 cores shared with other jobs: read them as ±30 %.",
        "",
        "Mean ± std (ddof=1) over seeds (each seed draws its own long-tailed training split and balanced test split, "
        "and its own pre-trained model, which every row of that seed shares). Percentages; Acc. on the "
        "balanced test set is the mean per-class recall. FT: fine-tuning, PT: post-training, BSCE: balanced "
        "softmax. **Paired Δ**: per seed, the BTM row minus its own "
        "baseline (the pre-trained model with the same post-training); mean ± std of the differences, and in "
        "brackets the number of seeds where BTM is higher. The default `BalancedUndersampleMerger()` is "
        f"*{DEFAULT_BTM}*; the options were chosen on validation splits (`btm_selection.md`), not on these "
        "test splits.",
        "",
    ]
    if not datasets:
        out = out[:4]
    for name in datasets:
        out += [f"## {name}", ""]
        header = ("| model | " + " | ".join(label for _, label in METRICS)
                  + " | paired ΔH | paired ΔG | paired ΔAcc | fit s |")
        out += [header, "|" + "---|" * (len(METRICS) + 5)]
        for label in row_labels():
            rs = rows[(name, label)]
            cells = [mean_std([r[k] for r in rs]) for k, _ in METRICS]
            if paired_with(label):
                deltas = [_paired(rows, name, label, k)
                          for k in ("harmonic_mean_recall", "geometric_mean_recall", "accuracy")]
            else:
                deltas = ["", "", ""]
            t = times.get((name, label))
            fit = f"{np.mean(t):.1f}" if t else ""
            bold = "**" if label == DEFAULT_BTM else ""
            out.append(f"| {bold}{label}{bold} | " + " | ".join(cells) + " | " + " | ".join(deltas) + f" | {fit} |")
        out += ["", "The fit time of a `BTM merged` row is pre-training excluded: the ten fine-tunings and the merge.",
                ""]
        if name in submodels:
            finetuning, table = submodels[name]
            out += [
                f"Each model of the BTM fit of seed {seeds[0]} with the {finetuning} (the paper's Tables 12-15), "
                "on the test set:",
                "",
                "| model | H-mean | G-mean | Acc. | Few |",
                "|---|---|---|---|---|",
            ]
            for label, r in table:
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
    parser.add_argument("--datasets", nargs="*", default=["letter", "icd10cm"],
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
