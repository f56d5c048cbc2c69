"""Fit registered methods on the same splits and seeds, score them, and keep the results as they come."""

import json
import math
import os
import signal
import sys
import threading
import time
import warnings

import numpy as np
from sklearn.base import clone

from ..datasets import load_long_tailed
from ..metrics import (
    geometric_mean_recall,
    harmonic_mean_recall,
    lowest_recall,
    per_class_recall,
)
from ..utils._long_tail import (
    FEW_SHOT_THRESHOLD,
    MANY_SHOT_THRESHOLD,
    SHOT_GROUPS,
    shot_groups,
)
from ._data import fingerprint, long_tail_splits
from ._registry import METHODS, Method

COLUMNS = [
    ("accuracy", "overall"),
    ("many", "many"),
    ("medium", "medium"),
    ("few", "few"),
    ("harmonic_mean_recall", "H-mean"),
    ("geometric_mean_recall", "G-mean"),
    ("balanced_accuracy", "bal.acc"),
    ("lowest_recall", "lowest"),
    ("fit_seconds", "fit s"),
    ("predict_seconds", "predict s"),
]
SCORES = [key for key, _ in COLUMNS if not key.endswith("seconds")]


def score_prediction(y_test, y_pred, classes, counts, *, many_threshold, few_threshold):
    """Long-tail scores of one prediction, with the many/medium/few groups from the training ``counts``."""
    _, recall = per_class_recall(y_test, y_pred, labels=classes)
    groups = shot_groups(counts, many_threshold=many_threshold, few_threshold=few_threshold)
    tested = ~np.isnan(recall)
    scores = {
        "accuracy": float(np.mean(np.asarray(y_test) == np.asarray(y_pred))),
        "balanced_accuracy": float(np.mean(recall[tested])),
        "harmonic_mean_recall": float(harmonic_mean_recall(y_test, y_pred)),
        "geometric_mean_recall": float(geometric_mean_recall(y_test, y_pred)),
        "lowest_recall": float(lowest_recall(y_test, y_pred)),
        "n_zero_recall": int(np.sum(recall[tested] == 0)),
        "n_test_classes": int(tested.sum()),
    }
    for group in SHOT_GROUPS:
        selected = recall[tested & (groups == group)]
        scores[group] = float(np.mean(selected)) if selected.size else float("nan")
        scores["n_" + group] = int(selected.size)
    return scores, recall


def _final_step(estimator):
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _transform_to_final(estimator, X):
    """The features the final step of a (possibly imblearn) pipeline sees at predict time."""
    if not hasattr(estimator, "steps"):
        return X
    for _, step in estimator.steps[:-1]:
        if step is not None and step != "passthrough" and hasattr(step, "transform"):
            X = step.transform(X)
    return X


def _warning_text(record):
    return f"{record.category.__name__}: {str(record.message).strip()}"


def fit_and_score(method, X_train, y_train, X_test, y_test, *, seed, device, many_threshold, few_threshold):
    """Fit ``method`` for one seed on one split; return its record and its own base's record (or None)."""
    classes, counts = np.unique(y_train, return_counts=True)
    estimator = method.make(seed, device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        estimator.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        y_pred = estimator.predict(X_test)
        predict_seconds = time.perf_counter() - t0
    notes = list(dict.fromkeys(_warning_text(w) for w in caught if not issubclass(w.category, DeprecationWarning)))
    scores, recall = score_prediction(
        y_test, y_pred, classes, counts, many_threshold=many_threshold, few_threshold=few_threshold
    )
    record = {
        **scores,
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "notes": notes,
        "acted_on": None,
        "class_recall": _json_floats(recall),
        "y_pred": np.searchsorted(classes, y_pred).tolist(),
    }
    final = _final_step(estimator)
    if method.acted_on is not None:
        record["acted_on"] = list(method.acted_on(final))
    base_record = None
    if method.own_base is not None:
        base = method.own_base(final)
        t0 = time.perf_counter()
        base_pred = base.predict(_transform_to_final(estimator, X_test))
        base_predict = time.perf_counter() - t0
        scores, recall = score_prediction(
            y_test, base_pred, classes, counts, many_threshold=many_threshold, few_threshold=few_threshold
        )
        base_record = {
            **scores,
            # the base is fitted inside the method's fit: it has no fit time of its own
            "fit_seconds": float("nan"),
            "predict_seconds": base_predict,
            "notes": [],
            "acted_on": None,
            "class_recall": _json_floats(recall),
            "y_pred": np.searchsorted(classes, base_pred).tolist(),
        }
    return record, base_record


class _InterruptGuard:
    """Notes a Ctrl-C (SIGINT) during a fit, which skorch would otherwise swallow, ending training early."""

    def __init__(self):
        self.interrupted = False
        self._previous = None

    def _handler(self, signum, frame):
        self.interrupted = True
        raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _failed_record(exc, n_classes):
    record = {key: float("nan") for key, _ in COLUMNS}
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    record.update(
        notes=[f"failed, no result: {type(exc).__name__}: {message}"],
        acted_on=None,
        n_zero_recall=0,
        n_test_classes=0,
        class_recall=[None] * n_classes,
        y_pred=None,
        failed=True,
    )
    return record


def _json_floats(values):
    return [None if (v is None or (isinstance(v, float) and math.isnan(v))) else float(v) for v in values]


def own_base_name(name, method):
    return f"{name} [{method.own_base_label}]"


class ResultStore:
    """Results as JSON lines, one per fitted (method, seed, fold), appended and flushed as each finishes.

    The first line describes the data and settings; resuming with other data or
    settings is refused rather than mixing results.
    """

    def __init__(self, path, header, *, resume):
        self.path = path
        self.records = {}
        if resume and os.path.exists(path):
            with open(path) as f:
                lines = f.read().split("\n")
            # an interrupted write leaves at most one incomplete last line: it is dropped and redone
            parsed = []
            for line in lines:
                if not line.strip():
                    continue
                try:
                    parsed.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
            if parsed:
                old = parsed[0].get("header")
                if old != header:
                    raise ValueError(
                        f"--resume: {path} was written for other data or settings ({old}); this run is {header}. "
                        "Use another results file or drop --resume."
                    )
                for rec in parsed[1:]:
                    self.records[(rec["method"], rec["seed"], rec["fold"])] = rec
            with open(path, "w") as f:  # rewrite without a torn last line
                for rec in [{"header": header}] + list(self.records.values()):
                    f.write(json.dumps(rec) + "\n")
        else:
            if os.path.exists(path) and _n_lines(path) > 1:
                # a forgotten --resume must not wipe a long run's results
                raise ValueError(
                    f"{path} already holds results: add --resume (resume=True) to continue that run, or choose "
                    "another file."
                )
            with open(path, "w") as f:
                f.write(json.dumps({"header": header}) + "\n")

    def get(self, method, seed, fold):
        return self.records.get((method, seed, fold))

    def add(self, record):
        self.records[(record["method"], record["seed"], record["fold"])] = record
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _n_lines(path):
    with open(path) as f:
        return sum(1 for line in f if line.strip())


class _MemoryStore:
    def __init__(self):
        self.records = {}

    def get(self, method, seed, fold):
        return self.records.get((method, seed, fold))

    def add(self, record):
        self.records[(record["method"], record["seed"], record["fold"])] = record


def _duration(seconds):
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def resolve_methods(methods):
    """``{name: Method}`` from registry names, a ``{name: Method or estimator}`` dict, or a mixed list."""
    if methods is None:
        return dict(METHODS)
    if isinstance(methods, dict):
        items = list(methods.items())
    else:
        items = []
        for m in methods:
            items.append((m, METHODS.get(m)) if isinstance(m, str) else (type(m).__name__, m))
    resolved = {}
    for name, m in items:
        if m is None:
            raise ValueError(f"unknown method {name!r}; available: {list(METHODS)}")
        if not isinstance(m, Method):
            m = Method(_estimator_factory(m), group="user")
        if name in resolved:
            raise ValueError(f"two methods are named {name!r}; pass a dict to name them apart.")
        resolved[name] = m
    return resolved


def _estimator_factory(estimator):
    """``make(random_state, device)`` for a user's estimator: a clone with every ``random_state`` set to the seed."""

    def make(random_state, device):
        est = clone(estimator)
        params = est.get_params()
        seeded = {k: random_state for k in params if k == "random_state" or k.endswith("__random_state")}
        return est.set_params(**seeded)

    return make


def run_benchmark(
    methods,
    split_source,
    seeds,
    *,
    device="auto",
    many_threshold=MANY_SHOT_THRESHOLD,
    few_threshold=FEW_SHOT_THRESHOLD,
    max_fit_seconds=None,
    store=None,
    progress=True,
    dataset="data",
):
    """Fit every method on every split of every seed; return the rows (one per method, seed and fold).

    ``split_source(seed)`` returns a list of ``(X_train, y_train, X_test, y_test)``.
    Rows of an own base (a method's base classifier, scored on the same split)
    follow their method's row. Records already in ``store`` are reused, so an
    interrupted run continues where it stopped.
    """
    methods = resolve_methods(methods)
    store = store if store is not None else _MemoryStore()
    seeds = list(seeds)
    first_seed = seeds[0]
    rows, skipped = [], {}
    per_method_seconds = {}
    started = time.perf_counter()
    jobs_total = None
    jobs_done = 0
    for seed in seeds:
        splits = split_source(seed)
        if jobs_total is None:
            jobs_total = len(splits) * len(seeds) * len(methods)
        for fold, (X_tr, y_tr, X_te, y_te) in enumerate(splits):
            classes, counts = np.unique(y_tr, return_counts=True)
            for name, method in methods.items():
                jobs_done += 1
                if name in skipped:
                    continue
                record = store.get(name, seed, fold)
                if record is None:
                    if progress:
                        print(
                            f"[{jobs_done:>3}/{jobs_total}] seed {seed}"
                            + (f" fold {fold}" if len(splits) > 1 else "")
                            + f"  {name:<30} elapsed {_duration(time.perf_counter() - started)}"
                            + _eta(methods, per_method_seconds, jobs_done - 1, jobs_total, started, skipped),
                            file=sys.stderr,
                            flush=True,
                        )
                    with _InterruptGuard() as guard:
                        try:
                            rec, base_rec = fit_and_score(
                                method, X_tr, y_tr, X_te, y_te, seed=seed, device=device,
                                many_threshold=many_threshold, few_threshold=few_threshold,
                            )
                        except Exception as exc:  # noqa: BLE001 - one method failing on the user's data must not lose the others
                            rec, base_rec = _failed_record(exc, len(classes)), None
                    if guard.interrupted:
                        # skorch swallows Ctrl-C and returns a partly trained net: that fit is discarded, not stored
                        raise KeyboardInterrupt
                    record = {"method": name, "seed": seed, "fold": fold, **rec, "own_base": base_rec}
                    store.add(record)
                per_method_seconds.setdefault(name, []).append(record["fit_seconds"])
                info = {"group": method.group, "baseline": method.baseline, "own_base_of": None}
                if record["own_base"] is not None:
                    base_name = own_base_name(name, method)
                    rows.append(_row(base_name, record["own_base"], seed, fold, dataset, classes, counts, y_te,
                                     {"group": "own base", "baseline": None, "own_base_of": name}))
                    info["baseline"] = base_name
                rows.append(_row(name, record, seed, fold, dataset, classes, counts, y_te, info))
                if (
                    max_fit_seconds is not None
                    and seed == first_seed
                    and fold == 0
                    and record["fit_seconds"] > max_fit_seconds
                    and len(seeds) > 1
                ):
                    skipped[name] = (
                        f"fit took {record['fit_seconds']:.1f} s > --max-fit-seconds {max_fit_seconds:g} on seed "
                        f"{seed}: the other seeds were skipped"
                    )
    for row in rows:
        if row["method"] in skipped:
            row["notes"] = row["notes"] + [skipped[row["method"]]]
        elif row["own_base_of"] in skipped:
            row["notes"] = row["notes"] + [skipped[row["own_base_of"]]]
    if progress:
        print(f"done in {_duration(time.perf_counter() - started)}", file=sys.stderr, flush=True)
    return rows


def _eta(methods, per_method_seconds, done, total, started, skipped):
    if done == 0:
        return ""
    elapsed = time.perf_counter() - started
    remaining = total - done
    if all(name in per_method_seconds or name in skipped for name in methods):
        # every method has run once: its own mean fit time predicts its remaining fits
        per_job = {n: _mean_or_zero(per_method_seconds[n]) for n in per_method_seconds}
        cycle = sum(per_job.get(n, 0.0) for n in methods if n not in skipped)
        eta = cycle * remaining / len(methods)
    else:
        eta = elapsed / done * remaining
    return f", ETA {_duration(eta)}"


def _mean_or_zero(values):
    values = [v for v in values if not math.isnan(v)]  # a failed fit has no time
    return float(np.mean(values)) if values else 0.0


def _row(name, record, seed, fold, dataset, classes, counts, y_test, info):
    row = {
        "method": name,
        **info,
        "seed": seed,
        "fold": fold,
        "dataset": dataset,
        **{k: v for k, v in record.items() if k not in ("method", "seed", "fold", "own_base", "y_pred", "class_recall")},
        "failed": bool(record.get("failed", False)),
    }
    row["notes"] = list(record.get("notes", []))
    row["classes"] = classes
    row["class_counts"] = counts.tolist()
    row["class_recall"] = [np.nan if v is None else v for v in record["class_recall"]]
    row["y_test"] = y_test
    row["y_pred"] = None if record["y_pred"] is None else classes[np.asarray(record["y_pred"], dtype=int)]
    return row


def bundled_split_source(dataset):
    def source(seed):
        data = load_long_tailed(dataset, random_state=seed)
        return [(data.X_train, data.y_train, data.X_test, data.y_test)]

    return source


def user_split_source(X_train, y_train, X_test=None, y_test=None, *, cv=None):
    """Splits of the user's data: the given test set for every seed, or seeded long-tail-safe splits."""

    def source(seed):
        if X_test is not None:
            return [(X_train, y_train, X_test, y_test)]
        return [
            (X_train[tr], y_train[tr], X_train[te], y_train[te])
            for tr, te in long_tail_splits(y_train, cv=cv, random_state=seed)
        ]

    return source


def data_header(X_train, y_train, X_test, y_test, *, cv, many_threshold, few_threshold, device):
    """What a results file must agree on to be resumed."""
    return {
        "data": fingerprint(X_train, y_train, X_test, y_test),
        "cv": repr(cv),
        "many_threshold": many_threshold,
        "few_threshold": few_threshold,
        "device": device,
    }


def run(dataset="icd10cm", *, seeds=(0,), methods=None, device="auto", progress=True, **kwargs):
    """Fit and score ``methods`` on the bundled ``dataset`` for each seed.

    Returns a list of dict rows (one per method and seed) with the long-tail
    scores, fit and predict seconds, warnings raised during the fit
    (``notes``), and per-class recalls with training class sizes (for plots).
    Keyword arguments go to the runner (``max_fit_seconds``, ``store``...).
    """
    return run_benchmark(
        methods, bundled_split_source(dataset), seeds, device=device, progress=progress, dataset=dataset, **kwargs
    )
