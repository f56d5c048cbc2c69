"""Fit every registered method on a bundled real long-tailed split and score it."""

import sys
import time

import numpy as np

from ..datasets import load_long_tailed
from ..metrics import long_tail_report, per_class_recall
from ._registry import METHODS

COLUMNS = [
    ("accuracy", "overall"),
    ("many", "many"),
    ("medium", "medium"),
    ("few", "few"),
    ("harmonic_mean_recall", "H-mean"),
    ("geometric_mean_recall", "G-mean"),
    ("lowest_recall", "lowest"),
    ("fit_seconds", "fit s"),
    ("predict_seconds", "predict s"),
]


def run(dataset="icd10cm", *, seeds=(0,), methods=None, device="auto", progress=True):
    """Fit and score ``methods`` on ``dataset`` for each seed.

    Returns a list of dict rows (one per method and seed) with the
    :func:`~sklearn_lt.metrics.long_tail_report` scores, fit and predict
    seconds, and per-class recalls with training class sizes (for plots).
    """
    names = list(METHODS) if not methods else list(methods)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; available: {list(METHODS)}")
    rows = []
    total = len(names) * len(seeds)
    done = 0
    started = time.perf_counter()
    for seed in seeds:
        data = load_long_tailed(dataset, random_state=seed)
        classes, counts = np.unique(data.y_train, return_counts=True)
        for name in names:
            done += 1
            if progress:
                print(
                    f"[{done:>2}/{total}] seed {seed}  {name:<28} (elapsed {time.perf_counter() - started:5.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            estimator = METHODS[name].make(seed, device)
            t0 = time.perf_counter()
            estimator.fit(data.X_train, data.y_train)
            fit_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            y_pred = estimator.predict(data.X_test)
            predict_seconds = time.perf_counter() - t0
            report = long_tail_report(data.y_test, y_pred, y_train=data.y_train, output_dict=True)
            _, recall = per_class_recall(data.y_test, y_pred, labels=classes)
            rows.append(
                {
                    "method": name,
                    "group": METHODS[name].group,
                    "baseline": METHODS[name].baseline,
                    "seed": seed,
                    "dataset": dataset,
                    **report,
                    "fit_seconds": fit_seconds,
                    "predict_seconds": predict_seconds,
                    "classes": classes,
                    "class_counts": counts.tolist(),
                    "class_recall": recall.tolist(),
                    "y_test": data.y_test,
                    "y_pred": y_pred,
                }
            )
    return rows


def summarize(rows):
    """Mean and std over seeds per method, in registry order; adds the deltas against the paper's baseline."""
    by_method = {}
    for row in rows:
        by_method.setdefault(row["method"], []).append(row)
    summary = []
    for name, group in by_method.items():
        entry = {"method": name, "baseline": group[0]["baseline"], "n_seeds": len(group)}
        for key, _ in COLUMNS:
            values = np.array([r[key] for r in group], dtype=float)
            entry[key] = float(np.nanmean(values))
            entry[key + "_std"] = float(np.nanstd(values)) if len(values) > 1 else 0.0
        summary.append(entry)
    index = {e["method"]: e for e in summary}
    for entry in summary:
        base = index.get(entry["baseline"])
        for key in ("accuracy", "few", "harmonic_mean_recall"):
            entry["delta_" + key] = entry[key] - base[key] if base else float("nan")
    return summary


def format_table(summary, *, dataset, seeds):
    def cell(entry, key):
        if key.endswith("seconds"):
            return f"{entry[key]:.2f}"
        text = f"{100 * entry[key]:.1f}"
        if entry["n_seeds"] > 1:
            text += f" ± {100 * entry[key + '_std']:.1f}"
        return text

    def delta(entry):
        if not entry["baseline"] or np.isnan(entry["delta_accuracy"]):
            return ""
        return (
            f"vs {entry['baseline']}: overall {100 * entry['delta_accuracy']:+.1f}, few {100 * entry['delta_few']:+.1f}, "
            f"H {100 * entry['delta_harmonic_mean_recall']:+.1f}"
        )

    header = ["method"] + [title for _, title in COLUMNS] + ["paper's comparison (points)"]
    body = [[e["method"]] + [cell(e, key) for key, _ in COLUMNS] + [delta(e)] for e in summary]
    widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
    lines = [
        f"Long-tailed benchmark on {dataset!r}, seeds {list(seeds)} (scores in %, mean ± std over seeds; "
        "many > 100, medium 20-100, few < 20 training samples)",
        "  ".join(h.ljust(w) for h, w in zip(header, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in body]
    return "\n".join(lines)
