"""Figures of the main benchmark (matplotlib, an optional dependency)."""

import os

import numpy as np

from ..utils._long_tail import SHOT_GROUPS, shot_groups


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("--plot needs matplotlib: pip install 'sklearn_lt[plot]'") from exc
    return plt


def _first_split(rows):
    """The rows of the first seed's first split (every method's predictions there)."""
    seed, fold = min(r["seed"] for r in rows), 0
    return [r for r in rows if r["seed"] == seed and r.get("fold", 0) == fold and r.get("y_pred") is not None]


def plot_recall_vs_class_size(rows, ax, methods=None, *, many_threshold=100, few_threshold=20):
    """Per-class test recall against training class size, one series per method (first seed's split)."""
    for row in _first_split(rows):
        if methods and row["method"] not in methods:
            continue
        counts = np.asarray(row["class_counts"])
        recall = np.asarray(row["class_recall"], dtype=float)
        tested = ~np.isnan(recall)  # a class without test samples has no recall
        counts, recall = counts[tested], recall[tested]
        order = np.argsort(-counts, kind="stable")
        # a running mean over 9 neighbouring classes makes the trend readable
        smooth = np.convolve(recall[order], np.ones(9) / 9, mode="same")
        ax.plot(counts[order], smooth, label=row["method"], lw=1.5)
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.axvline(many_threshold, color="grey", lw=0.8, ls=":")
    ax.axvline(few_threshold, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("training samples of the class (log scale, head on the left)")
    ax.set_ylabel("test recall (running mean over 9 classes)")
    ax.legend(fontsize=7, ncol=2)


def plot_shot_bars(summary, ax):
    """Many/medium/few accuracy per method, mean over seeds."""
    width = 0.8 / len(SHOT_GROUPS)
    x = np.arange(len(summary))
    for i, group in enumerate(SHOT_GROUPS):
        values = [100 * e[group] for e in summary]
        errors = [0.0 if np.isnan(e[group + "_std"]) else 100 * e[group + "_std"] for e in summary]
        ax.bar(x + (i - 1) * width, values, width, yerr=errors, label=group)
    ax.set_xticks(x, [e["method"] for e in summary], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.legend()


def few_shot_confusion(row, *, many_threshold=100, few_threshold=20):
    """Where the few-shot classes' test samples go: correct, or into a many/medium/few class."""
    classes = np.asarray(row["classes"])
    groups = shot_groups(row["class_counts"], many_threshold=many_threshold, few_threshold=few_threshold)
    groups = dict(zip(classes.tolist(), groups.tolist()))
    y_test, y_pred = np.asarray(row["y_test"]), np.asarray(row["y_pred"])
    is_few = np.array([groups.get(label) == "few" for label in y_test.tolist()])
    if not is_few.any():
        return {}
    truth, pred = y_test[is_few], y_pred[is_few]
    wrong_groups = np.array([groups.get(label, "unknown") for label in pred[truth != pred].tolist()])
    shares = {"correct": float(np.mean(truth == pred))}
    for group in SHOT_GROUPS:
        shares["into " + group] = float(np.sum(wrong_groups == group) / len(truth))
    return shares


def plot_few_shot_confusion(rows, ax, **thresholds):
    data = [(r["method"], few_shot_confusion(r, **thresholds)) for r in _first_split(rows)]
    data = [(m, s) for m, s in data if s]
    keys = ["correct"] + ["into " + g for g in SHOT_GROUPS]
    bottom = np.zeros(len(data))
    for key in keys:
        values = np.array([100 * s[key] for _, s in data])
        ax.bar(range(len(data)), values, bottom=bottom, label=key)
        bottom += values
    ax.set_xticks(range(len(data)), [m for m, _ in data], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("% of few-shot test samples")
    ax.legend(fontsize=7)


def plot_all(rows, summary, directory, *, dataset, many_threshold=100, few_threshold=20):
    """Write the three figures as PNG files into ``directory``; return their paths."""
    plt = _pyplot()
    thresholds = {"many_threshold": many_threshold, "few_threshold": few_threshold}
    os.makedirs(directory, exist_ok=True)
    figures = {
        "recall_vs_class_size.png": lambda ax: plot_recall_vs_class_size(rows, ax, **thresholds),
        "many_medium_few.png": lambda ax: plot_shot_bars(summary, ax),
        "few_shot_confusion.png": lambda ax: plot_few_shot_confusion(rows, ax, **thresholds),
    }
    paths = []
    for name, draw in figures.items():
        fig, ax = plt.subplots(figsize=(9, 5))
        draw(ax)
        ax.set_title(f"{name[:-4].replace('_', ' ')} — {dataset}")
        fig.tight_layout()
        path = os.path.join(directory, name)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
