"""Summaries of the benchmark rows: means over seeds, paired differences, a careful recommendation, the table."""

import math

import numpy as np

from ._runner import COLUMNS, SCORES

SCORE_TITLES = dict(COLUMNS)
#: Scores the paired comparison reports besides the ranking score.
PAIRED_KEYS = ("accuracy", "few")
#: The baseline every recommendation is checked against.
REFERENCE = "LogisticRegression(balanced)"


def _mean(values):
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def _std(values):
    """Sample standard deviation (ddof=1); nan with fewer than two values."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return float(values.std(ddof=1)) if values.size > 1 else float("nan")


def _per_seed(rows, key):
    """``{(method, seed): value}`` averaged over the folds of each seed."""
    acc = {}
    for row in rows:
        acc.setdefault((row["method"], row["seed"]), []).append(row[key])
    return {k: _mean(v) for k, v in acc.items()}


def did_nothing(row):
    acted = row.get("acted_on")
    return acted is not None and acted[0] == 0


def summarize(rows, *, score="harmonic_mean_recall"):
    """One entry per method (in row order): mean and std (ddof=1) over seeds, and the paired comparison.

    Scores are first averaged over the folds of a seed, so ``n_seeds`` counts
    independent repetitions. A method with a ``baseline`` in the rows gets
    ``paired``: for every score (the ranking ``score`` first), the mean,
    std (ddof=1) and number of seeds improved of the per-seed differences
    method - baseline (same split, same seed). A method that did nothing
    (``acted_on`` zero) gets no paired comparison.
    """
    by_method = {}
    for row in rows:
        by_method.setdefault(row["method"], []).append(row)
    summary = []
    for name, group in by_method.items():
        first = group[0]
        seeds = sorted({r["seed"] for r in group})
        entry = {
            "method": name,
            "group": first.get("group"),
            "baseline": first.get("baseline"),
            "own_base_of": first.get("own_base_of"),
            "n_seeds": len(seeds),
            "seeds": seeds,
            "notes": list(dict.fromkeys(n for r in group for n in r.get("notes", []))),
            "acted_on": first.get("acted_on"),
            "did_nothing": any(did_nothing(r) for r in group),
            "failed": all(r.get("failed", False) for r in group),
        }
        acted = [r["acted_on"] for r in group if r.get("acted_on") is not None]
        if acted:
            entry["acted_on"] = [min(a[0] for a in acted), max(a[1] for a in acted), acted[0][2]]
        for key, _ in COLUMNS:
            per_seed = [_mean([r[key] for r in group if r["seed"] == s]) for s in seeds]
            entry[key] = _mean(per_seed)
            entry[key + "_std"] = _std(per_seed)
        for key in ("n_zero_recall", "n_test_classes"):
            entry[key] = _mean([r.get(key, np.nan) for r in group])
        summary.append(entry)
    index = {e["method"]: e for e in summary}
    # every score is paired (the JSON and DataFrame outputs carry them all); the table shows a few
    keys = [score] + [k for k in SCORES if k != score]
    tables = {key: _per_seed(rows, key) for key in keys}
    for entry in summary:
        base = index.get(entry["baseline"])
        entry["paired"] = None
        entry["vs"] = entry["baseline"] if base else None
        if base is None or entry["did_nothing"] or entry["failed"] or base.get("failed"):
            continue
        entry["paired"] = {key: paired_difference(tables[key], entry["method"], base["method"]) for key in keys}
    return summary


def paired_difference(per_seed, method, reference):
    """Per-seed differences ``method - reference`` over the seeds both have: mean, std (ddof=1), seeds improved."""
    seeds = sorted(s for (m, s) in per_seed if m == method and (reference, s) in per_seed)
    diffs = np.array([per_seed[(method, s)] - per_seed[(reference, s)] for s in seeds], dtype=float)
    diffs = diffs[~np.isnan(diffs)]
    return {
        "mean": _mean(diffs),
        "std": _std(diffs),
        "n": int(diffs.size),
        "improved": int(np.sum(diffs > 0)),
        "diffs": diffs.tolist(),
    }


def harmonic_mean_is_uninformative(rows):
    """Whether the 1e-3 floor of harmonic-mean recall drives it: most rows have a test class with zero recall.

    Then harmonic-mean recall mostly counts zero-recall classes (a single one
    caps it near ``n_classes * 1e-3``) and cannot tell the methods apart.
    """
    scored = [r for r in rows if r.get("own_base_of") is None]
    with_zero = [r for r in scored if r.get("n_zero_recall", 0) > 0]
    return len(scored) > 0 and len(with_zero) >= 0.5 * len(scored), len(with_zero), len(scored)


def choose_score(rows, score=None):
    """The ranking score: ``score`` if the user chose it, else H-mean recall unless it cannot discriminate.

    Returns ``(score, reason)``; ``reason`` is a sentence for the output when the default was replaced.
    """
    if score is not None:
        return score, None
    uninformative, n_zero, n_rows = harmonic_mean_is_uninformative(rows)
    if not uninformative:
        return "harmonic_mean_recall", None
    smallest = min((int(np.min([c for c in _test_class_sizes(r)])) for r in rows if len(r["y_test"])), default=0)
    return "balanced_accuracy", (
        f"Harmonic-mean recall cannot discriminate here: {n_zero} of {n_rows} method runs have a test class with "
        f"zero recall (smallest test class: {smallest} sample{'s' if smallest != 1 else ''}), and each such class floors the score at 1e-3, so "
        "it counts zero-recall classes rather than measuring recall. Ranked by balanced accuracy (mean per-class "
        "recall) instead; choose another with --score."
    )


def _test_class_sizes(row):
    _, counts = np.unique(row["y_test"], return_counts=True)
    return counts


def recommend(rows, summary, score):
    """A few careful sentences: the best method on ``score``, whether its lead holds over seeds, its cost."""
    title = SCORE_TITLES.get(score, score)
    candidates = [
        e for e in summary
        if e["own_base_of"] is None and not e["did_nothing"] and not math.isnan(e[score])
        and not any("were skipped" in n for n in e["notes"])
    ]
    if not candidates:
        return "No recommendation: no method has a complete result."
    ranked = sorted(candidates, key=lambda e: -e[score])
    best = ranked[0]
    per_seed = _per_seed(rows, score)
    lines = [f"Best on {title}: {best['method']} ({_pct(best, score)})."]
    n_seeds = best["n_seeds"]
    others = []
    if len(ranked) > 1:
        others.append(("runner-up", ranked[1]))
    reference = next((e for e in summary if e["method"] == REFERENCE), None)
    if reference is not None and reference is not best and (len(ranked) < 2 or reference is not ranked[1]):
        others.append(("reference", reference))
    for role, other in others:
        d = paired_difference(per_seed, best["method"], other["method"])
        label = f"the runner-up {other['method']}" if role == "runner-up" else other["method"]
        if d["n"] < 2:
            verdict = "one seed gives no spread to judge it by: run more seeds (--seeds 0 1 2) before trusting it"
        elif d["improved"] == d["n"] and d["mean"] > d["std"]:
            verdict = (
                f"ahead in all {d['n']} seeds and the mean paired lead exceeds its seed-to-seed spread: "
                "a consistent lead on this data"
            )
        elif d["mean"] > d["std"]:
            verdict = (
                f"ahead in {d['improved']} of {d['n']} seeds: the lead exceeds the spread on average but is not "
                "consistent"
            )
        else:
            verdict = (
                f"ahead in {d['improved']} of {d['n']} seeds, within the seed-to-seed spread: not a reliable win, "
                "treat them as tied"
            )
        lines.append(f"Lead over {label}: {_points(d)} — {verdict}.")
        ratio = best["fit_seconds"] / other["fit_seconds"] if other["fit_seconds"] > 0 else float("inf")
        ratio_text = f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.2g}"
        lines.append(
            f"  Fit time: {best['fit_seconds']:.2f} s vs {other['fit_seconds']:.2f} s ({ratio_text}x its fit time)."
        )
    if reference is None:
        lines.append(f"({REFERENCE} was not run: add it to --methods to check the lead against a simple baseline.)")
    elif reference is best:
        lines.append(
            f"The simple baseline {REFERENCE} ranks first here: no long-tail method scores higher on {title} "
            "(whether its lead is reliable: see above)."
        )
    if n_seeds < 2:
        lines.append("With one seed nothing above is a tested difference.")
    return "\n".join(lines)


def _pct(entry, key):
    text = f"{100 * entry[key]:.1f}"
    if not math.isnan(entry[key + "_std"]):
        text += f" ± {100 * entry[key + '_std']:.1f}"
    return text


def _points(d):
    if d["n"] == 0 or math.isnan(d["mean"]):
        return "n/a"
    text = f"{100 * d['mean']:+.1f}"
    if d["n"] > 1:
        text += f" ± {100 * d['std']:.1f}"
    return text + f" ({d['improved']}/{d['n']} seeds better)"


def format_table(summary, *, dataset, seeds, score="harmonic_mean_recall", recommendation=None, notice=None,
                 many_threshold=100, few_threshold=20, n_folds=1):
    """The printable table, footnotes for warnings and skipped runs, and the recommendation."""
    footnotes = []

    def mark(entry):
        marks = []
        for note in entry["notes"]:
            if note not in footnotes:
                footnotes.append(note)
            marks.append(f"[{footnotes.index(note) + 1}]")
        return " ".join(marks)

    def cell(entry, key):
        if math.isnan(entry[key]):
            return "-"
        if key.endswith("seconds"):
            return f"{entry[key]:.2f}"
        return _pct(entry, key)

    def delta(entry):
        if entry["did_nothing"]:
            n, total, what = entry["acted_on"]
            return f"did nothing ({n} of {total} {what}): equals its base, no comparison"
        if entry["failed"]:
            return "failed (see notes)"
        if entry["paired"] is None:
            return ""
        shown = [score] + [k for k in PAIRED_KEYS if k != score]
        parts = [f"{SCORE_TITLES.get(k, k)} {_points(entry['paired'][k])}" for k in shown]
        return f"vs {entry['vs']}: " + ", ".join(parts)

    def acted(entry):
        if entry["acted_on"] is None or entry["did_nothing"]:
            return ""
        n, total, what = entry["acted_on"]
        return f"{n}/{total} {what}"

    header = ["method"] + [title for _, title in COLUMNS] + ["acted on", "notes", "paired difference (points)"]
    body = [
        [e["method"]] + [cell(e, key) for key, _ in COLUMNS] + [acted(e), mark(e), delta(e)] for e in summary
    ]
    widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
    split = f", {n_folds} folds per seed" if n_folds > 1 else ""
    lines = [
        (
            f"Long-tailed benchmark on {dataset!r}, seeds {list(seeds)}{split} (scores in %, mean ± std (ddof=1) "
            f"over seeds; many > {many_threshold}, medium {few_threshold}-{many_threshold}, few < {few_threshold} "
            "training samples)"
        ),
        "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in body]
    lines.append(
        f"Paired difference: method - its paper's baseline (or the base it contains) on the same split and seed, "
        f"mean ± std (ddof=1) over seeds, and the seeds in which it was better; ranking score {SCORE_TITLES.get(score, score)}."
    )
    for i, note in enumerate(footnotes, 1):
        lines.append(f"[{i}] {note}")
    if notice:
        lines += ["", notice]
    if recommendation:
        lines += ["", recommendation]
    return "\n".join(lines)


def summary_for_json(summary):
    """The summary with nan as None (valid JSON)."""

    def clean(value):
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return [clean(e) for e in summary]


__all__ = ["SCORES", "choose_score", "format_table", "recommend", "summarize"]
