"""How BTM's tuned options were chosen: a grid scored on validation splits carved from the training data.

The paper fixes its fine-tuning learning rate per data set for SGD-trained
ResNets (5e-3 on CIFAR100-LT and Places-LT, 1e-3 on ImageNet-LT, 5e-4 on
iNaturalist), its batch at 256 and its post-training at MiSLAS's second stage
(class-balanced sampling; cross-entropy here, see the user guide). These are
the defaults of :class:`~sklearn_lt.ensemble.BalancedUndersampleMerger`. This
script scores them and the alternatives offered as options, on data the test
splits never touch:

- each bundled data set's *training* split is cut into a training part (70 %)
  and a validation part (30 % of every class, :func:`tail_safe_validation_split`;
  a class with fewer than 4 samples gives none, so its recall is not measured);
- the MLP head is pre-trained on the training part (cross-entropy, instance
  sampling), then every fine-tuning setting (learning rate x batch size) is
  run from that same model and its merge post-trained with every post-training
  protocol; the baseline is the pre-trained model with the same post-training;
- scores are on the validation part: H-mean, G-mean and mean per-class recall
  (the validation part is long-tailed; per-class recall does not care).

Run ``python benchmarks/select_btm_defaults.py`` (letter and icd10cm, seeds
0-2); it writes ``benchmarks/results/btm_selection.md`` and ``.jsonl``.
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _common import mean_std, paired_difference, recall_means
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import StandardScaler

from sklearn_lt.datasets import load_long_tailed
from sklearn_lt.ensemble import BalancedUndersampleMerger
from sklearn_lt.neural_network import MLPHeadClassifier
from sklearn_lt.utils import tail_safe_validation_split

FINETUNINGS = {  # label -> (finetune_lr, finetune_batch_size)
    "lr 5e-3, batch 256 (paper)": (5e-3, 256),
    "lr 5e-3, batch auto": (5e-3, "auto"),
    "lr 0.02, batch 256": (0.02, 256),
    "lr 0.02, batch auto": (0.02, "auto"),
}
POST_TRAININGS = {
    "CE + class-balanced (paper)": {"post_train_loss": "cross_entropy", "post_train_sampling": "class_balanced"},
    "balanced softmax": {"post_train_loss": "balanced_softmax", "post_train_sampling": "instance"},
}
METRICS = ("H", "G", "Acc")


def scores(y_true, y_pred):
    return dict(zip(METRICS, recall_means(y_true, y_pred).tolist()))


def validation_data(name, seed, fraction):
    data = load_long_tailed(name, random_state=seed)
    train, valid = tail_safe_validation_split(data.y_train, fraction, random_state=seed)
    X, y = data.X_train[train].astype(np.float32), data.y_train[train]
    X_val, y_val = data.X_train[valid].astype(np.float32), data.y_train[valid]
    if name == "letter":  # integer shape statistics: standardise (the embeddings are L2-normalised)
        scaler = StandardScaler().fit(X)
        X, X_val = scaler.transform(X).astype(np.float32), scaler.transform(X_val).astype(np.float32)
    return X, y, X_val, y_val


def run(datasets, seeds, fraction, verbose):
    records = []
    for name in datasets:
        for seed in seeds:
            X, y, X_val, y_val = validation_data(name, seed, fraction)
            pre = MLPHeadClassifier(random_state=seed).fit(X, y)

            def post_train(model, params, seed=seed, X=X, y=y):
                return BalancedUndersampleMerger(FrozenEstimator(model), n_subsets=0, random_state=seed,
                                                 **params).fit(X, y)

            def record(setting, post, y_pred, seconds=None, name=name, seed=seed, y_val=y_val):
                r = {"dataset": name, "seed": seed, "finetuning": setting, "post_training": post,
                     **scores(y_val, y_pred), "seconds": seconds}
                records.append(r)
                if verbose:
                    print(json.dumps(r), flush=True)

            for post, params in POST_TRAININGS.items():
                record("baseline (no BTM)", post, post_train(pre, params).predict(X_val))
            for setting, (lr, batch) in FINETUNINGS.items():
                tic = time.perf_counter()
                btm = BalancedUndersampleMerger(FrozenEstimator(pre), finetune_lr=lr, finetune_batch_size=batch,
                                                post_train=False, random_state=seed).fit(X, y)
                seconds = time.perf_counter() - tic
                record(setting, "none (merged)", btm.predict(X_val), seconds)
                for post, params in POST_TRAININGS.items():
                    record(setting, post, post_train(btm.merged_estimator_, params).predict(X_val))
    return records


def markdown(records, argv_line, elapsed):
    out = [
        "# BTM options chosen on validation splits of the training data",
        "",
        f"`{argv_line}` — {time.strftime('%Y-%m-%d')}, {platform.processor() or 'cpu'}, torch {torch.__version__}, "
        f"1 thread; {elapsed / 60:.1f} min. Validation = 30 % of every class of the bundled *training* split "
        "(the test splits are not read). The MLP head is pre-trained on the other 70 %.",
        "",
        "Δ = BTM minus its own baseline (the pre-trained model with the same post-training), per seed; "
        "mean ± std (ddof=1) of the paired differences, and the number of seeds where BTM is higher. Absolute values are "
        "mean ± std over seeds. Percentages.",
        "",
    ]
    for name in dict.fromkeys(r["dataset"] for r in records):
        rs = [r for r in records if r["dataset"] == name]
        seeds = sorted({r["seed"] for r in rs})
        out += [f"## {name} (seeds {', '.join(map(str, seeds))})", "",
                "| fine-tuning | post-training | H | G | Acc. | ΔH | ΔG | ΔAcc | H up | fine-tune s |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for setting in ["baseline (no BTM)", *FINETUNINGS]:
            for post in [*POST_TRAININGS, "none (merged)"]:
                cell = [r for r in rs if r["finetuning"] == setting and r["post_training"] == post]
                if not cell:
                    continue
                cell.sort(key=lambda r: r["seed"])
                vals = {k: [r[k] for r in cell] for k in METRICS}
                row = [mean_std(vals[k], digits=1) for k in METRICS]
                base_post = post if post in POST_TRAININGS else None
                if setting != "baseline (no BTM)" and base_post:
                    base = [r for r in rs if r["finetuning"] == "baseline (no BTM)" and r["post_training"] == post]
                    base.sort(key=lambda r: r["seed"])
                    diffs = {k: paired_difference(vals[k], [b[k] for b in base]) for k in METRICS}
                    row += [f"{diffs[k]['mean']:+.1f} ± {diffs[k]['std']:.1f}" for k in METRICS]
                    row.append(f"{diffs['H']['improved']}/{len(cell)}")
                else:
                    row += ["", "", "", ""]
                secs = [r["seconds"] for r in cell if r["seconds"] is not None]
                row.append(f"{np.mean(secs):.0f}" if secs else "")
                out.append(f"| {setting} | {post} | " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["letter", "icd10cm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--validation-fraction", type=float, default=0.3)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "btm_selection"))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tic = time.perf_counter()
    records = run(args.datasets, args.seeds, args.validation_fraction, args.verbose)
    argv_line = ("python benchmarks/select_btm_defaults.py --datasets " + " ".join(args.datasets) + " --seeds "
                 + " ".join(map(str, args.seeds)))
    Path(args.output + ".jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    text = markdown(records, argv_line, time.perf_counter() - tic)
    Path(args.output + ".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
