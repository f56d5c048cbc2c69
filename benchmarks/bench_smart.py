"""SMART (SMARTAugmenter) on real long-tailed features: the paper's effect, its ablations, the parameter
choices, the sampler route, and memory/speed at the ImageNet-LT feature scale.

Sections (``--section``, several allowed; each run is cached in ``benchmarks/results/smart_runs.jsonl``
so that a later call only adds what is missing, and the markdown is rendered from the cache):

- ``effect``    test accuracy (overall, many/medium/few) of balanced softmax with vs without online SMART,
                with the ablations that tell where a difference comes from, over ``--seeds``;
- ``defaults``  the parameter grid behind SMARTAugmenter's defaults, scored on a validation split of the
                training data (balanced accuracy), never on the test set;
- ``sampler``   the imbalanced-learn route: Pipeline(StandardScaler, SMARTAugmenter, LinearClassifier);
- ``memory``    peak memory and time per training batch of the online hook at ``--n/--d/--classes``
                (default: ImageNet-LT features, 115,846 x 2048, 1,000 classes), in a fresh process;
- ``speed``     epoch time through skorch vs a raw torch loop with the same hook, and the GEMM bound;
- ``ratio``     fit time of online SMART over the plain LinearClassifier (interleaved), dense statistics
                vs the factor route, on ``--data`` and on its 128-d random projection;
- ``ablate``    the changed default (validation, then test, paired with BSCE) and the single-factor
                ablations between the defaults and the paper-literal configuration (validation).

Timings on a shared 2-core machine are noisy: rerun at full scale on a quiet machine for speed claims.

    python benchmarks/bench_smart.py --section effect sampler --data letter icd10cm wordnet
    python benchmarks/bench_smart.py --section memory --n 115846 --d 2048 --classes 1000
    python benchmarks/bench_smart.py --section memory --n 20000 --d 512 --classes 200   # small, quick
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import gemm_gflops

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = RESULTS / "smart_runs.jsonl"
#: the written diagnosis (markdown), appended to the report; its numbers come from the tables above
DIAGNOSIS_FILE = RESULTS / "smart_diagnosis.md"

# ----------------------------------------------------------------------------- configurations
# "loss|key=value|..." ; keys are SMARTAugmenter parameters, plus ``stream=1`` (the tail stream with its
# weights but without the transform: the ablation that isolates the augmentation) and ``epochs=N``.
# Every row with an augmenter names its prior_correction: rows cached before it existed ran with the
# former default, prior_correction="reweight" (then keep_class_prior=True), and were relabelled so.
# ``self_pairing=1`` marks rows run before the partner fix, when head_threshold=None let a tail sample
# borrow from its own class (the paper: "a head class").
PAPER_LITERAL = (
    "tau=1|head_threshold=100|augmented_variance=None|feature_scale=None|omega=paper|omega_bounds=None"
    "|zero_covariance_weight=None|prior_correction=None|tail_sampling=balanced|tail_classes=all"
)
OLD_PAPER_LITERAL = (
    "tau=1|head_threshold=None|augmented_variance=None|feature_scale=None|omega=paper|omega_bounds=None"
    "|zero_covariance_weight=None|prior_correction=None|self_pairing=1|tail_sampling=reversed"
)
# ``tail_sampling=reversed`` likewise marks rows run with the class-reversed tail stream, the default before
# tail_sampling existed: every configuration names the options whose default changed.
REV = "|tail_sampling=reversed"
RW = "|prior_correction=reweight" + REV
LA = "|prior_correction=logit_adjust"
LA_REV = LA + REV
NONE_REV = "|prior_correction=None" + REV

EFFECT_ROWS = [
    ("BSCE", "bsce"),
    ("BSCE + tail stream, no transform (reweight)", "bsce|stream=1|omega=none" + RW),
    ("BSCE + SMART (former defaults: reweight)", "bsce|smart=1" + RW),
    ("BSCE + SMART, prior_correction='logit_adjust', reversed tail stream", "bsce" + LA_REV),
    ("BSCE + SMART, omega='none' (reweight)", "bsce|omega=none" + RW),
    ("BSCE + SMART, logit_adjust, class-balanced tail stream (defaults)", "bsce" + LA + "|tail_sampling=balanced"),
    ("BSCE + SMART, paper-literal", "bsce|" + PAPER_LITERAL),
    ("BSCE + SMART, former paper-literal (self-pairing)", "bsce|" + OLD_PAPER_LITERAL),
    ("CE", "ce"),
    ("CE + tail stream, no transform", "ce|stream=1|omega=none" + NONE_REV),
    ("CE + SMART (paper's 'SMART' row)", "ce" + NONE_REV),
]
# letter's balanced-softmax head is not converged at the default 30 epochs (see the user guide)
CONVERGED_ROWS = [
    ("BSCE, 120 epochs", "bsce|epochs=120"),
    ("BSCE + tail stream, no transform, 120 epochs", "bsce|stream=1|omega=none|epochs=120" + RW),
    ("BSCE + SMART (former defaults), 120 epochs", "bsce|smart=1|epochs=120" + RW),
]
DEFAULT_GRID = [
    "bsce",
    "bsce|stream=1|omega=none" + RW,
    *[f"bsce|tau={t}" + RW for t in (0, 0.1, 1, 10)],
    "bsce|tau=1|augmented_variance=tail" + RW,
    "bsce|tau=0|augmented_variance=None" + RW,
    "bsce|tau=1|augmented_variance=None" + RW,
    "bsce|tau=1|omega=none" + RW,
    "bsce|tau=1|omega=paper" + RW,
    "bsce|tau=1|omega=paper|omega_bounds=None" + RW,
    "bsce|tau=1|statistics=exact" + RW,
    "bsce|tau=1" + NONE_REV,
    "bsce|tau=1|feature_scale=None" + RW,
]
# statistics="exact" (per-pair transfers cached across batches) against the default running statistics, paired on the
# validation split; "statistics=running" is spelt out so that these rows are run afresh with the current code
EXACT_PAIR = ("bsce" + LA + "|tail_sampling=balanced|statistics=exact", "bsce" + LA + "|tail_sampling=balanced|statistics=running")
ONE_SAMPLE_GRID = [  # icd10cm at imbalance 200 has one-sample classes
    "bsce|ir=200",
    "bsce|ir=200|smart=1" + RW,
    "bsce|ir=200|zero_covariance_weight=None" + RW,
]


def _literal_with(**restore):
    """The paper-literal configuration with some factors set back to the library's defaults."""
    parts = dict(p.split("=") for p in PAPER_LITERAL.split("|"))
    parts.update(restore)
    return "bsce|" + "|".join(f"{k}={v}" for k, v in parts.items())


# single-factor ablations (validation split): the new options from the defaults, and the paper-literal
# configuration with one factor at a time set back to the default
ABLATIONS = [
    ("logit_adjust, reversed tail stream (before the tail_sampling choice)", "bsce" + LA_REV),
    ("paper-literal", "bsce|" + PAPER_LITERAL),
    ("literal, augmented_variance='head'", _literal_with(augmented_variance="head")),
    ("literal, feature_scale='auto'", _literal_with(feature_scale="auto")),
    ("literal, omega='relative', omega_bounds=(0, 5)", _literal_with(omega="relative", omega_bounds="0:5")),
    ("literal, prior_correction='logit_adjust'", _literal_with(prior_correction="logit_adjust")),
    ("literal, reversed tail stream over tail classes", _literal_with(tail_sampling="reversed", tail_classes="tail")),
    ("logit_adjust, tail_sampling='balanced', tail_classes='all'", "bsce" + LA + "|tail_sampling=balanced|tail_classes=all"),
    ("logit_adjust, tail_sampling='balanced' (the defaults)", "bsce" + LA + "|tail_sampling=balanced"),
]


def parse(cfg):
    """``(loss, augmenter or None, options)`` of a configuration string."""
    from sklearn_lt.augmentation import SMARTAugmenter

    parts = cfg.split("|")
    loss = {"bsce": "balanced_softmax", "ce": "cross_entropy"}[parts[0]]
    params, options = {}, {"stream": False, "epochs": 30, "ir": None}
    for part in parts[1:]:
        key, value = part.split("=")
        if key in ("stream", "smart"):
            options["stream"] |= key == "stream" and value == "1"
            params.setdefault("_on", True)
            continue
        if key in ("epochs", "ir"):
            options[key] = float(value) if key == "ir" else int(value)
            continue
        if key == "self_pairing":  # a label of rows run with the former partner rule: not reproducible now
            continue
        if key == "omega_bounds" and ":" in value:
            params[key] = tuple(float(v) for v in value.split(":"))
            continue
        if value == "None":
            value = None if key != "omega_bounds" else (None, None)
        elif value in ("True", "False"):
            value = value == "True"
        else:
            try:
                value = int(value) if value.isdigit() else float(value)
            except ValueError:
                pass
        params[key] = value
    params.pop("_on", None)
    augmented = len(parts) > 1 and any(not p.startswith(("epochs=", "ir=")) for p in parts[1:])
    augmenter = None
    if augmented:
        augmenter = (TailStreamOnly if options["stream"] else SMARTAugmenter)(**params)
    return loss, augmenter, options


def _tail_stream_only():
    from sklearn_lt.augmentation import SMARTAugmenter

    class TailStreamOnly(SMARTAugmenter):
        """Ablation: SMART's two streams and weights, with the tail samples left as they are."""

        def make_train_batch_hook(self, *args, **kwargs):
            hook, sampler = super().make_train_batch_hook(*args, **kwargs)
            if hook is not None:
                # same hook state, its transform step (the ``transfer`` method) overridden in a subclass of its
                # own type: the ablation lives here, not as a seam in the library
                class NoTransformHook(type(hook)):
                    def transfer(self, F, tail, head):
                        return F.clone(), torch.ones(len(F), dtype=F.dtype), torch.zeros(len(F), dtype=torch.bool)

                hook.__class__ = NoTransformHook
            return hook, sampler

    return TailStreamOnly


TailStreamOnly = None  # set in main (keeps the import of sklearn_lt lazy for the memory subprocess)


# ----------------------------------------------------------------------------- runs


def load(name, seed, ir=None):
    from sklearn.preprocessing import StandardScaler

    from sklearn_lt.datasets import load_long_tailed

    data = load_long_tailed(name, random_state=seed, **({"imbalance_ratio": ir} if ir else {}))
    return data, StandardScaler()


def run_online(name, cfg, seed, protocol, device):
    from sklearn.metrics import balanced_accuracy_score

    from sklearn_lt.linear_model import LinearClassifier
    from sklearn_lt.metrics import few_shot_accuracy, harmonic_mean_recall, many_shot_accuracy, medium_shot_accuracy
    from sklearn_lt.utils import tail_safe_validation_split

    loss, augmenter, options = parse(cfg)
    data, scaler = load(name, seed, options["ir"])
    X, y = data.X_train, data.y_train
    if protocol == "validation":
        train, valid = tail_safe_validation_split(y, 0.2, random_state=seed)
        X_eval, y_eval = X[valid], y[valid]
        X, y = X[train], y[train]
    else:
        X_eval, y_eval = data.X_test, data.y_test
    scaler.fit(X)
    X, X_eval = scaler.transform(X).astype(np.float32), scaler.transform(X_eval).astype(np.float32)
    clf = LinearClassifier(loss=loss, augmenter=augmenter, max_epochs=options["epochs"], random_state=seed, device=device)
    start = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - start
    pred = clf.predict(X_eval)
    labels, counts = np.unique(y, return_counts=True)
    one = np.isin(y_eval, labels[counts == 1])
    return {
        "one_sample_acc": float(np.mean(pred[one] == y_eval[one])) if one.any() else None,
        "acc": float(np.mean(pred == y_eval)),
        "bacc": float(balanced_accuracy_score(y_eval, pred)),
        "hmean": float(harmonic_mean_recall(y_eval, pred)),
        "many": many_shot_accuracy(y_eval, pred, y_train=y),
        "medium": medium_shot_accuracy(y_eval, pred, y_train=y),
        "few": few_shot_accuracy(y_eval, pred, y_train=y),
        "fit_s": fit_s,
    }


def run_sampler(name, variant, seed, device):
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.pipeline import make_pipeline

    from sklearn_lt.augmentation import SMARTAugmenter
    from sklearn_lt.linear_model import LinearClassifier
    from sklearn_lt.metrics import few_shot_accuracy, harmonic_mean_recall, many_shot_accuracy, medium_shot_accuracy

    data, scaler = load(name, seed)
    clf = LinearClassifier(loss="balanced_softmax", random_state=seed, device=device)
    start = time.perf_counter()
    if variant == "none":
        model = make_pipeline(scaler, clf).fit(data.X_train, data.y_train)
    elif variant == "random_oversampling":
        model = make_pipeline(scaler, RandomOverSampler(random_state=seed), clf).fit(data.X_train, data.y_train)
    elif variant == "smart":
        model = make_pipeline(scaler, SMARTAugmenter(random_state=seed), clf).fit(data.X_train, data.y_train)
    elif variant == "smart+omega":  # the weights cannot pass through a Pipeline: fit by hand
        X = scaler.fit_transform(data.X_train)
        smart = SMARTAugmenter(random_state=seed)
        X_res, y_res = smart.fit_resample(X, data.y_train)
        clf.fit(X_res, y_res, sample_weight=smart.sample_weight_)
        model = make_pipeline(scaler, clf)
    fit_s = time.perf_counter() - start
    pred = model.predict(data.X_test)
    y_train = data.y_train
    return {
        "acc": float(np.mean(pred == data.y_test)),
        "hmean": float(harmonic_mean_recall(data.y_test, pred)),
        "many": many_shot_accuracy(data.y_test, pred, y_train=y_train),
        "medium": medium_shot_accuracy(data.y_test, pred, y_train=y_train),
        "few": few_shot_accuracy(data.y_test, pred, y_train=y_train),
        "fit_s": fit_s,
    }


DIAGNOSE_CFGS = {
    "defaults": {},
    "augmented_variance=None": {"augmented_variance": None},
    "Eq. 6 as written (augmented_variance=None, feature_scale=None)": {"augmented_variance": None, "feature_scale": None},
}


def run_diagnose(name, cfg, seed):
    """How far SMART moves tail features, whether they stay in their class, and the scale of omega.

    On the standardised training data, with ``fit_resample`` (exact statistics; every tail class
    brought to the size of the largest). ``move``: median ``||F~ - F||`` over the median distance of a
    tail sample to its class mean; ``own_mean_*``: fraction of samples whose nearest class mean is
    their own class's (original tail samples vs augmented ones); ``omega_*``: the paper's omega (Eq. 11,
    in units of ``feature_scale_``).
    """
    from sklearn_lt.augmentation import SMARTAugmenter

    data, scaler = load(name, seed)
    X = scaler.fit_transform(data.X_train).astype(np.float32)
    y = data.y_train
    smart = SMARTAugmenter(random_state=seed, **DIAGNOSE_CFGS[cfg])
    X_res, y_res = smart.fit_resample(X, y)
    classes = np.unique(y)
    means = smart.class_means_.astype(np.float64)
    added = slice(len(y), len(y_res))
    F_new, y_new = X_res[added].astype(np.float64), y_res[added]
    F_old = X[smart.sample_indices_[added]].astype(np.float64)
    own = means[np.searchsorted(classes, y_new)]
    def nearest(F):
        return classes[np.argmin((means**2).sum(1)[None, :] - 2 * F @ means.T, axis=1)]
    tail = np.isin(y, y_new)
    omega = smart.omega_

    def effective_rank(F, labels):  # (tr C)^2 / tr(C^2) of the pooled within-class covariance of F
        D = F - means[np.searchsorted(classes, labels)]
        eig = np.clip(np.linalg.eigvalsh(D.T @ D / len(D)), 0, None)
        return float(eig.sum() ** 2 / (eig**2).sum())

    return {
        "rank_original": effective_rank(X[tail].astype(np.float64), y[tail]),
        "rank_augmented": effective_rank(F_new, y_new),
        "move": float(np.median(np.linalg.norm(F_new - F_old, axis=1)) / np.median(np.linalg.norm(F_old - own, axis=1))),
        "own_mean_original": float(np.mean(nearest(X[tail].astype(np.float64)) == y[tail])),
        "own_mean_augmented": float(np.mean(nearest(F_new) == y_new)),
        "omega_median": float(np.median(omega)),
        "omega_p05": float(np.percentile(omega, 5)),
        "omega_p95": float(np.percentile(omega, 95)),
        "omega_negative": float(np.mean(omega < 0)),
        "weight_p95": float(np.percentile(smart.sample_weight_[added], 95)),
        "feature_scale": float(smart.feature_scale_),
        "fit_s": 0.0,
    }


def cached():
    if not CACHE.exists():
        return {}
    rows = [json.loads(line) for line in CACHE.read_text().splitlines() if line.strip()]
    return {(r["section"], r["data"], r["cfg"], r["seed"]): r for r in rows}


def record(row):
    RESULTS.mkdir(exist_ok=True)
    with CACHE.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def run_grid(section, datasets, cfgs, seeds, device, protocol="test"):
    done = cached()
    for name in datasets:
        for cfg in cfgs:
            for seed in seeds:
                if (section, name, cfg, seed) in done:
                    continue
                if section == "sampler":
                    result = run_sampler(name, cfg, seed, device)
                elif section == "diagnose":
                    result = run_diagnose(name, cfg, seed)
                else:
                    result = run_online(name, cfg, seed, protocol, device)
                record({"section": section, "data": name, "cfg": cfg, "seed": seed, **result})


# ----------------------------------------------------------------------------- memory and speed


MEMORY_CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[6]))
n, d, C, batches, B = map(int, sys.argv[1:6])
mode, tau, device = sys.argv[7], float(sys.argv[8]), torch.device(sys.argv[9])
cuda = device.type == "cuda"
# ImageNet-LT-like sizes 1280 -> 5: n_i = 5 * 256 ** ((1 - i / (C - 1)) ** k), k bisected so they sum to n
sizes = lambda k: np.floor(5 * 256.0 ** ((1 - np.arange(C) / max(C - 1, 1)) ** k)).astype(np.int64)
lo, hi = 1e-3, 1e3
for _ in range(100):
    mid = np.sqrt(lo * hi)
    lo, hi = (mid, hi) if sizes(mid).sum() > n else (lo, mid)
counts = sizes(hi)
y = np.repeat(np.arange(C), counts)
n = len(y)
g = torch.Generator().manual_seed(0)
centres = 0.3 * torch.randn(C, d, generator=g)
X = torch.empty(n, d)
for start in range(0, n, 4096):  # in blocks: the peak below is the data's, not a temporary's
    rows = slice(start, min(start + 4096, n))
    X[rows] = torch.randn(X[rows].shape, generator=g) + centres[torch.as_tensor(y[rows])]
X = X.numpy()
from sklearn_lt.augmentation import SMARTAugmenter
from sklearn_lt.torch import ShuffledBatchSampler
sampler = ShuffledBatchSampler(n, B, generator=torch.Generator().manual_seed(0))
sync = torch.cuda.synchronize if cuda else (lambda: None)
if cuda:  # the training set on the GPU, as train_module puts it there
    Xt, yt = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
    sync()
    gpu_data = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
else:
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hook, sampler = SMARTAugmenter(tau=tau, statistics=mode).make_train_batch_hook(X, y, sampler=sampler, device=device)
times = []
it = iter(sampler)
for _ in range(batches):
    idx = next(it)
    sync()
    start = time.perf_counter()
    out = hook((Xt[idx.to(device)], yt[idx.to(device)]))
    sync()
    times.append(time.perf_counter() - start)
row = {"n": n, "d": d, "classes": C, "batch": B, "statistics": mode, "tau": tau, "device": str(device),
       "rss_data_mb": rss_data / 1024, "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "s_per_batch": float(np.median(times[1:] if len(times) > 1 else times)),
       "max_class": int(counts.max()), "min_class": int(counts.min())}
if cuda:  # the hook holds its own copy of X on the GPU (make_train_batch_hook moves X to the device)
    row["gpu_name"] = torch.cuda.get_device_name(device)
    row["gpu_data_mb"] = gpu_data / 2**20
    row["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
print(json.dumps(row))
"""


def run_memory(n, d, classes, batches, batch_size, threads, statistics, tau, device="cpu"):
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [n, d, classes, batches, batch_size, threads, statistics, tau, device]
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, *map(str, args)],
        capture_output=True, text=True, env=env, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_speed(name, seed, device, threads=1, epochs=3):
    """Epoch time of LinearClassifier + SMART through skorch vs a raw torch loop running the same hook.

    Also the FLOP bound of one epoch of the linear head alone (forward + backward, ``6 n d C`` flops over
    the measured GEMM rate), which shows how far an epoch is from the arithmetic it needs.
    """
    from torch import nn

    from sklearn_lt.augmentation import SMARTAugmenter
    from sklearn_lt.linear_model import LinearClassifier
    from sklearn_lt.torch import LogitAdjustedLoss, ShuffledBatchSampler

    torch.set_num_threads(threads)
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    data, scaler = load(name, seed)
    X = scaler.fit_transform(data.X_train).astype(np.float32)
    classes, y, counts = np.unique(data.y_train, return_inverse=True, return_counts=True)
    rows = {}
    for label, augmenter in (("no augmentation", None), ("SMART", SMARTAugmenter())):
        clf = LinearClassifier(
            loss="balanced_softmax", augmenter=augmenter, max_epochs=epochs, random_state=seed, device=str(device)
        )
        clf.fit(X, y)
        rows[f"skorch, {label}"] = float(np.median(clf.history_[:, "dur"]))
        # the same computation in a raw loop: same module, loss, optimizer, sampler and hook
        torch.manual_seed(seed)
        module = nn.Linear(X.shape[1], len(classes)).to(device)
        nn.init.zeros_(module.weight), nn.init.zeros_(module.bias)
        criterion = LogitAdjustedLoss(counts, tau=1.0).to(device)
        optimizer = torch.optim.AdamW(module.parameters(), lr=0.01, weight_decay=1e-4)
        sampler = ShuffledBatchSampler(len(y), 128, generator=torch.Generator().manual_seed(seed))
        hook = None
        if augmenter is not None:
            hook, sampler = augmenter.make_train_batch_hook(
                X, y, sample_weight=np.ones(len(y), np.float32), sampler=sampler, device=device
            )
        Xt, yt, wt = (torch.as_tensor(a, device=device) for a in (X, y, np.ones(len(y), np.float32)))
        durations = []
        for _ in range(epochs):
            sync()
            start = time.perf_counter()
            for idx in sampler:
                idx = idx.to(device)
                batch = (Xt[idx], (yt[idx], wt[idx]))
                Xb, (yb, wb) = hook(batch) if hook is not None else batch
                optimizer.zero_grad()
                criterion(module(Xb), yb, wb).backward()
                optimizer.step()
            sync()
            durations.append(time.perf_counter() - start)
        rows[f"raw torch, {label}"] = float(np.median(durations))
    rate = gemm_gflops(device=device)
    rows["gemm_gflops"] = rate
    rows["FLOP bound, linear head (6 n d C / GEMM rate)"] = 6.0 * X.shape[0] * X.shape[1] * len(classes) / (rate * 1e9)
    return rows


def run_ratio(name, seed, device, epochs=3, repeats=3, project=None):
    """Fit time of online SMART over the same LinearClassifier without augmenter, interleaved in one process.

    Three fits per repeat, in turn: no augmenter, SMART (defaults: running statistics, dense within
    ``memory_budget``), SMART with ``statistics="exact"`` (per-pair transfers cached across batches).
    Wall-clock and process CPU time (one thread: the CPU time is less disturbed by other jobs on a shared
    machine). ``project``: a random Gaussian projection of the standardised features to that many dimensions
    (seeded), for a data set of that width with icd10cm's classes.
    """
    import sklearn_lt
    from sklearn_lt.augmentation import SMARTAugmenter
    from sklearn_lt.linear_model import LinearClassifier

    data, scaler = load(name, seed)
    X = scaler.fit_transform(data.X_train).astype(np.float32)
    if project:
        X = (X @ np.random.default_rng(seed).normal(size=(X.shape[1], project)) / np.sqrt(X.shape[1])).astype(np.float32)
    y = data.y_train
    setups = {"no augmenter": None, "SMART": SMARTAugmenter, "SMART exact": lambda: SMARTAugmenter(statistics="exact")}
    if epochs > 3:  # the running statistics cost the same every epoch: their 3-epoch row gives the ratio
        del setups["SMART"]
        # a budget with room for every pair's transfer matrix (icd10cm at d = 384: 1.7 GB)
        setups["SMART exact 4 GiB"] = lambda: SMARTAugmenter(statistics="exact", memory_budget=2**32)
    wall, cpu = {k: [] for k in setups}, {k: [] for k in setups}
    for _ in range(repeats):
        for label, make in setups.items():
            clf = LinearClassifier(loss="balanced_softmax", augmenter=make() if make else None, max_epochs=epochs,
                                   random_state=seed, device=device)
            start, start_cpu = time.perf_counter(), time.process_time()
            clf.fit(X, y)
            wall[label].append(time.perf_counter() - start)
            cpu[label].append(time.process_time() - start_cpu)
    running = {}
    if "SMART" in setups:
        running = {"ratio": float(np.median(np.array(wall["SMART"]) / np.array(wall["no augmenter"]))),
                   "ratio_cpu": float(np.median(np.array(cpu["SMART"]) / np.array(cpu["no augmenter"]))),
                   "smart_cpu_s": float(np.median(cpu["SMART"]))}
    return {"data": name if not project else f"{name} projected to {project}-d", "n": X.shape[0], "d": X.shape[1],
            "classes": int(len(np.unique(y))), "epochs": epochs, "repeats": repeats,
            "code": f"{sklearn_lt.__version__} {_git_head(Path(sklearn_lt.__file__).parent)}",
            **running, "plain_cpu_s": float(np.median(cpu["no augmenter"])),
            "ratio_exact_cpu": float(np.median(np.array(cpu["SMART exact"]) / np.array(cpu["no augmenter"]))),
            "exact_cpu_s": float(np.median(cpu["SMART exact"])),
            **({"ratio_exact_4gib_cpu": float(np.median(np.array(cpu["SMART exact 4 GiB"]) / np.array(cpu["no augmenter"])))}
               if "SMART exact 4 GiB" in cpu else {})}


def _git_head(where):
    try:
        return subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


# ----------------------------------------------------------------------------- report


def _sd(values):
    """Standard deviation over seeds or repeats with ddof=1, the project's convention (0 for a single value)."""
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1)) if values.size > 1 else 0.0


def mean_std(values):
    return f"{100 * np.mean(values):.1f} ± {100 * _sd(values):.1f}"


def table(rows, section, name, entries, columns=("acc", "many", "medium", "few", "hmean")):
    lines = [f"| {'setting':40s} | " + " | ".join(columns) + " | fit s | seeds |", "|---|" + "---|" * (len(columns) + 2)]
    for label, cfg in entries:
        runs = [r for (s, dname, c, _), r in rows.items() if s == section and dname == name and c == cfg]
        if not runs:
            continue
        cells = " | ".join(mean_std([r[k] for r in runs]) for k in columns)
        lines.append(f"| {label} | {cells} | {np.mean([r['fit_s'] for r in runs]):.0f} | {len(runs)} |")
    return "\n".join(lines)


PAIRED = [  # (label, cfg, reference cfg): paired over seeds (same split, same initialisation)
    ("SMART, logit_adjust, reversed tail stream - BSCE", "bsce" + LA_REV, "bsce"),
    ("SMART, paper-literal - BSCE", "bsce|" + PAPER_LITERAL, "bsce"),
    ("SMART, logit_adjust, class-balanced tail stream (defaults) - BSCE", "bsce" + LA + "|tail_sampling=balanced", "bsce"),
    ("SMART, logit_adjust - SMART, reweight (reversed tail stream)", "bsce" + LA_REV, "bsce|smart=1" + RW),
    ("SMART (former defaults, reweight) - BSCE", "bsce|smart=1" + RW, "bsce"),
    ("tail stream, no transform - BSCE", "bsce|stream=1|omega=none" + RW, "bsce"),
    ("SMART (reweight) - tail stream, no transform", "bsce|smart=1" + RW, "bsce|stream=1|omega=none" + RW),
    ("SMART, omega='none' - tail stream, no transform", "bsce|omega=none" + RW, "bsce|stream=1|omega=none" + RW),
    ("120 epochs: SMART (reweight) - BSCE", "bsce|smart=1|epochs=120" + RW, "bsce|epochs=120"),
    ("120 epochs: tail stream, no transform - BSCE", "bsce|stream=1|omega=none|epochs=120" + RW, "bsce|epochs=120"),
    ("120 epochs: SMART (reweight) - tail stream", "bsce|smart=1|epochs=120" + RW, "bsce|stream=1|omega=none|epochs=120" + RW),
    ("CE + SMART - CE", "ce" + NONE_REV, "ce"),
    ("CE + SMART - CE + tail stream, no transform", "ce" + NONE_REV, "ce|stream=1|omega=none" + NONE_REV),
]


def seeds_improved(rows, section, name, cfg, ref, column):
    """``(mean, std, improved, n)`` of the per-seed differences ``cfg - ref`` in percentage points."""
    a = {k[3]: r for k, r in rows.items() if k[:3] == (section, name, cfg)}
    b = {k[3]: r for k, r in rows.items() if k[:3] == (section, name, ref)}
    seeds = sorted(set(a) & set(b))
    diff = 100 * np.array([a[s][column] - b[s][column] for s in seeds])
    return (diff.mean(), _sd(diff), int((diff > 0).sum()), len(seeds)) if seeds else None


def paired_table(rows, datasets, columns=("acc", "few", "hmean")):
    """Per-seed differences (percentage points), mean ± std over the seeds both configurations ran."""
    lines = ["| data | difference | " + " | ".join(columns) + " | seeds improved (acc) |", "|---|---|" + "---|" * (len(columns) + 1)]
    for name in datasets:
        for label, cfg, ref in PAIRED:
            a = {k[3]: r for k, r in rows.items() if k[:3] == ("effect", name, cfg)}
            b = {k[3]: r for k, r in rows.items() if k[:3] == ("effect", name, ref)}
            seeds = sorted(set(a) & set(b))
            if not seeds:
                continue
            cells = []
            for c in columns:
                diff = 100 * np.array([a[s][c] - b[s][c] for s in seeds])
                cells.append(f"{diff.mean():+.1f} ± {_sd(diff):.1f}")
            improved = int(sum(a[s]["acc"] > b[s]["acc"] for s in seeds))
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + f" | {improved}/{len(seeds)} |")
    return "\n".join(lines)


def with_epochs(cfg, epochs):
    return cfg if epochs == 30 else f"{cfg}|epochs={epochs}"


def run_plan(seeds, device, part=("letter", "icd10cm")):
    first = "bsce" + LA_REV
    if "letter" in part:
        run_plan_letter(seeds, device, first)
    if "icd10cm" in part:
        run_plan_icd10cm(seeds, device)


def run_plan_letter(seeds, device, first):
    run_grid("defaults", ["letter"], ["bsce", first], seeds, device, protocol="validation")
    run_grid("effect", ["letter"], ["bsce", first], seeds, device)
    for seed in seeds:
        run_grid("defaults", ["letter"], [cfg for _, cfg in ABLATIONS], [seed], device, protocol="validation")
    run_grid("effect", ["letter"], ["bsce|" + PAPER_LITERAL], seeds, device)


BALANCED_TAIL = "bsce" + LA + "|tail_sampling=balanced"  # the defaults since the ablations


def run_plan_icd10cm(seeds, device):
    run_grid("effect", ["letter"], [BALANCED_TAIL], seeds, device)  # letter's test rows: a minute
    for seed in seeds:
        # the literal configuration and its single-factor variants first: they explain the collapse
        order = [cfg for label, cfg in ABLATIONS if "literal" in label] + [
            cfg for label, cfg in ABLATIONS if "literal" not in label and "tail_classes='all'" not in label
        ]
        cfgs = [with_epochs(c, 5) for c in ["bsce", *order]]
        run_grid("defaults", ["icd10cm"], cfgs, [seed], device, protocol="validation")
    run_grid("effect", ["icd10cm"], [BALANCED_TAIL], seeds, device)  # the defaults, 30 epochs: the slow part


def ablation_table(rows, name, columns=("bacc", "few", "many"), epochs=30):
    lines = ["| setting | " + " | ".join(columns) + " | bacc - BSCE | seeds improved |", "|---|" + "---|" * (len(columns) + 3)]
    for label, cfg in ABLATIONS:
        cfg = with_epochs(cfg, epochs)
        runs = [r for (s, d, c, _), r in rows.items() if (s, d, c) == ("defaults", name, cfg)]
        if not runs:
            continue
        cells = " | ".join(mean_std([r[k] for r in runs]) for k in columns)
        paired = seeds_improved(rows, "defaults", name, cfg, with_epochs("bsce", epochs), "bacc")
        diff = f"{paired[0]:+.1f} ± {paired[1]:.1f} | {paired[2]}/{paired[3]}" if paired else "- | -"
        lines.append(f"| {label} | {cells} | {diff} |")
    return "\n".join(lines)


def exact_table(rows, name, epochs=5, columns=("bacc", "few", "many")):
    """``statistics="exact"`` against ``"running"`` (the defaults otherwise), paired on the validation split."""
    exact, running = (with_epochs(cfg, epochs) for cfg in EXACT_PAIR)
    lines = ["| statistics | " + " | ".join(columns) + " | fit s |", "|---|" + "---|" * (len(columns) + 1)]
    for label, cfg in (("running (default)", running), ("exact (pair cache)", exact)):
        runs = [r for (s, d, c, _), r in rows.items() if (s, d, c) == ("defaults", name, cfg)]
        if not runs:
            return ""
        cells = " | ".join(mean_std([r[k] for r in runs]) for k in columns)
        lines.append(f"| {label} | {cells} | {np.mean([r['fit_s'] for r in runs]):.0f} |")
    for column in columns:
        paired = seeds_improved(rows, "defaults", name, exact, running, column)
        lines.append(f"| exact - running, {column} (seeds improved) | {paired[0]:+.1f} ± {paired[1]:.1f} ({paired[2]}/{paired[3]})"
                     + " |" * len(columns))
    return "\n".join(lines)


def diagnose_table(rows, name):
    keys = [("move", "move"), ("own_mean_original", "own mean, tail samples"),
            ("own_mean_augmented", "own mean, augmented"), ("rank_original", "eff. rank, tail samples"),
            ("rank_augmented", "eff. rank, augmented"), ("omega_median", "omega median"),
            ("omega_p05", "omega 5 %"), ("omega_p95", "omega 95 %"), ("omega_negative", "omega < 0"),
            ("weight_p95", "loss weight 95 %")]
    lines = ["| transform | " + " | ".join(label for _, label in keys) + " | seeds |", "|---|" + "---|" * (len(keys) + 1)]
    for cfg in DIAGNOSE_CFGS:
        runs = [r for (s, d, c, _), r in rows.items() if (s, d, c) == ("diagnose", name, cfg)]
        if not runs:
            continue
        cells = [f"{np.mean([r[k] for r in runs]):.2f} ± {_sd([r[k] for r in runs]):.2f}" for k, _ in keys]
        lines.append(f"| {cfg} | " + " | ".join(cells) + f" | {len(runs)} |")
    return "\n".join(lines)


def render(datasets, memory_rows, speed_rows, ratio_rows=()):
    rows = cached()
    out = [
        "# SMART (SMARTAugmenter) benchmark",
        "",
        "Generated by `benchmarks/bench_smart.py` (runs cached in `smart_runs.jsonl`). Accuracies in %, "
        "mean ± std over seeds (each seed: its own long-tailed split of the data, its own initialisation and "
        "sampling). Linear head on standardised features, `LinearClassifier` defaults (AdamW, lr 0.01, 30 "
        "epochs, batch 128) unless the row says otherwise. Test sets are balanced. Timings were taken on a "
        "shared 2-core CPU and are noisy.",
    ]
    present = sorted({d for (_, d, _, _) in rows})
    names = [d for d in datasets if d in present] + [d for d in present if d not in datasets]
    out += [
        "",
        "## Summary: paired differences (percentage points, same seed = same split and initialisation)",
        "",
        paired_table(rows, names),
        "",
        "See *Diagnosis* at the end for what these say.",
    ]
    for name in names:
        section_tables = []
        effect = table(rows, "effect", name, EFFECT_ROWS + CONVERGED_ROWS)
        if effect.count("\n") > 1:
            section_tables += [f"### Online SMART on `{name}` (test set)", "", effect, ""]
        one = table(
            rows,
            "effect",
            name,
            [("BSCE", ONE_SAMPLE_GRID[0]), ("BSCE + SMART (defaults)", ONE_SAMPLE_GRID[1]),
             ("BSCE + SMART, zero_covariance_weight=None", ONE_SAMPLE_GRID[2])],
            columns=("acc", "few", "hmean", "one_sample_acc"),
        )
        if one.count("\n") > 1:
            section_tables += [
                f"### One-sample classes: `{name}` at imbalance ratio 200 (test set; `one_sample_acc`: classes "
                "with a single training sample)", "", one, "",
            ]
        sampler = table(
            rows,
            "sampler",
            name,
            [
                ("BSCE (Pipeline without sampler)", "none"),
                ("Pipeline + RandomOverSampler", "random_oversampling"),
                ("Pipeline + SMARTAugmenter", "smart"),
                ("SMARTAugmenter + sample_weight_ (by hand)", "smart+omega"),
            ],
        )
        if sampler.count("\n") > 1:
            section_tables += [f"### Sampler route on `{name}` (imblearn Pipeline, test set)", "", sampler, ""]
        grid = table(
            rows,
            "defaults",
            name,
            [(cfg, cfg) for cfg in DEFAULT_GRID + ONE_SAMPLE_GRID],
            columns=("bacc", "few", "many"),
        )
        if grid.count("\n") > 1:
            section_tables += [
                f"### Parameter choice on `{name}`: validation split (20 % of the training data, balanced accuracy)",
                "",
                grid,
                "",
            ]
        for epochs in (30, 5):
            ablation = ablation_table(rows, name, epochs=epochs)
            if ablation.count("\n") > 1:
                section_tables += [
                    f"### Single-factor ablations on `{name}`, {epochs} epochs: validation split (20 % of the "
                    f"training data), paired against BSCE ({epochs} epochs) on the same split", "", ablation, "",
                ]
        exact = exact_table(rows, name)
        if exact:
            section_tables += [
                f"### `statistics='exact'` (pair cache) vs `'running'` on `{name}`, 5 epochs: validation split "
                "(20 % of the training data), paired over seeds", "", exact, "",
            ]
        diag = diagnose_table(rows, name)
        if diag.count("\n") > 1:
            section_tables += [
                f"### What the transform does on `{name}` (`fit_resample` on the standardised training data)",
                "",
                "`move`: median distance an augmented feature moved from its tail sample, over the median "
                "distance of a tail sample to its class mean. `own mean`: fraction of samples whose nearest class "
                "mean is their own class's. `eff. rank`: (tr C)^2 / tr(C^2) of the pooled within-class "
                "covariance C of the samples' deviations from their class means. `omega`: the paper's Eq. 11 weight in units of `feature_scale_` "
                "(defaults: `loss weight` = omega / its mean, clipped to [0, 5]).",
                "",
                diag,
                "",
            ]
        if section_tables:
            out += ["", f"## {name}", ""] + section_tables
    if memory_rows:
        out += ["", "## Memory and time per batch of the online hook (synthetic long-tailed features)", ""]
        out += [
            "| device | n | d | classes | class sizes | statistics | tau | data RSS (MB) | peak RSS (MB) "
            "| GPU data (MB) | GPU peak (MB) | s / batch (B=256) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in memory_rows:
            gpu = (f"{r['gpu_data_mb']:.0f} | {r['gpu_peak_mb']:.0f}") if "gpu_peak_mb" in r else "- | -"
            out.append(
                f"| {r.get('gpu_name', r.get('device', 'cpu'))} | {r['n']} | {r['d']} | {r['classes']} | "
                f"{r['min_class']}-{r['max_class']} | {r['statistics']} | {r.get('tau', 1.0):g} | "
                f"{r['rss_data_mb']:.0f} | {r['rss_peak_mb']:.0f} | {gpu} | {r['s_per_batch']:.2f} |"
            )
        dense = max(r["classes"] * r["d"] ** 2 * 4 / 2**30 for r in memory_rows)
        out += [
            "",
            "`data RSS` is the resident memory after building the features (torch and the data); `peak RSS` adds the "
            f"hook and {max(r['batch'] for r in memory_rows)}-sample batches. On a GPU, `GPU data` is the training "
            "matrix on the device and `GPU peak` is `torch.cuda.max_memory_allocated` over the hook's set-up "
            "(its own device copy of the features) and batches; RSS then includes the CUDA context. Times are "
            "taken between `torch.cuda.synchronize()` calls. Dense per-class covariances alone "
            f"would take {dense:.1f} GiB at the largest scale above. The time per batch is the d x d work of SMART "
            "(a softmax over d^2 entries per (tail, head) pair; tau=0 needs none): a GPU's job at d = 2048.",
        ]
    if ratio_rows:
        out += ["", "## Fit time of online SMART over the same LinearClassifier without augmenter "
                "(balanced softmax; median ratio of interleaved fits in one process, shared 2-core CPU, 1 thread)", ""]
        out += ["| data | n | d | classes | epochs x repeats | code (commit) | SMART / plain, wall | SMART / plain, CPU "
                "| plain CPU s | SMART CPU s | SMART exact+cache / plain, CPU | exact+cache CPU s "
                "| exact+cache, memory_budget=4 GiB / plain, CPU |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in ratio_rows:
            if "ratio" not in r and "ratio_exact_cpu" not in r:  # rows of the former layout: dense statistics and factor route, wall clock
                r = {**r, "code": "previous round (factor route: "
                     f"{r['SMART (factor route, memory_budget=0)']:.1f})", "ratio": r["SMART (dense statistics)"]}
            cells = [f"{r[k]:.{digits}f}" if k in r else "" for k, digits in
                     (("ratio", 1), ("ratio_cpu", 1), ("plain_cpu_s", 2), ("smart_cpu_s", 1),
                      ("ratio_exact_cpu", 1), ("exact_cpu_s", 1), ("ratio_exact_4gib_cpu", 1))]
            out.append(f"| {r['data']} | {r['n']} | {r['d']} | {r['classes']} | {r['epochs']} x {r['repeats']} | "
                       f"{r['code']} | " + " | ".join(cells) + " |")
    if DIAGNOSIS_FILE.exists():
        out += ["", DIAGNOSIS_FILE.read_text().strip()]
    if speed_rows:
        out += ["", "## Epoch time: skorch vs a raw torch loop with the same hook (s / epoch, median)", ""]
        out += ["| data | setting | s / epoch |", "|---|---|---|"]
        for name, r in speed_rows.items():
            out += [f"| {name} | {k} | {v:.3g} |" for k, v in r.items() if k != "gemm_gflops"]
            if "gemm_gflops" in r:
                out += [f"| {name} | measured GEMM rate (GFLOP/s) | {r['gemm_gflops']:.0f} |"]
    return "\n".join(out) + "\n"


def main(argv=None):
    global TailStreamOnly
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--section", nargs="+", default=["effect", "sampler"],
                        choices=["effect", "defaults", "ablate", "plan", "sampler", "diagnose", "memory", "speed", "ratio", "exact", "report"])
    parser.add_argument("--data", nargs="+", default=["letter", "icd10cm", "wordnet"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=115846)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3, help="ratio: epochs per fit (above 3, no running-statistics fit)")
    parser.add_argument("--out", default=str(RESULTS / "smart.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    TailStreamOnly = _tail_stream_only()

    if "defaults" in args.section:
        run_grid("defaults", args.data, DEFAULT_GRID, args.seeds, args.device, protocol="validation")
        if "icd10cm" in args.data:
            run_grid("defaults", ["icd10cm"], ONE_SAMPLE_GRID, args.seeds, args.device, protocol="validation")
    if "effect" in args.section:
        run_grid("effect", args.data, [cfg for _, cfg in EFFECT_ROWS], args.seeds, args.device)
        if "icd10cm" in args.data:
            run_grid("effect", ["icd10cm"], ONE_SAMPLE_GRID, args.seeds, args.device)
        if "letter" in args.data:
            run_grid("effect", ["letter"], [cfg for _, cfg in CONVERGED_ROWS], args.seeds, args.device)
    if "plan" in args.section:
        # what a shared 2-core machine affords in an hour: letter's full plan; icd10cm's single-factor
        # ablations at 5 epochs (paired with BSCE at 5 epochs), seed by seed; then its paired test rows
        # (``--data letter`` or ``--data icd10cm`` for one part)
        run_plan(args.seeds, args.device, part=args.data)
    if "ablate" in args.section:
        # the changed default first (validation, then test, paired with BSCE), then the single-factor
        # ablations seed by seed, so that an interrupted run still covers every factor
        first = "bsce" + LA_REV
        for name in args.data:
            run_grid("defaults", [name], ["bsce", first], args.seeds, args.device, protocol="validation")
            run_grid("effect", [name], ["bsce", first], args.seeds, args.device)
            for seed in args.seeds:
                run_grid("defaults", [name], [cfg for _, cfg in ABLATIONS], [seed], args.device, protocol="validation")
            run_grid("effect", [name], ["bsce|" + PAPER_LITERAL], args.seeds, args.device)
    if "exact" in args.section:
        for seed in args.seeds:  # seed by seed: an interrupted run still has paired rows
            run_grid("defaults", args.data, [with_epochs(cfg, 5) for cfg in EXACT_PAIR], [seed], args.device,
                     protocol="validation")
    if "diagnose" in args.section:
        run_grid("diagnose", args.data, list(DIAGNOSE_CFGS), args.seeds, args.device)
    if "sampler" in args.section:
        run_grid("sampler", args.data, ["none", "random_oversampling", "smart", "smart+omega"], args.seeds, args.device)

    extra = RESULTS / "smart_scale.json"
    scale = json.loads(extra.read_text()) if extra.exists() else {"memory": [], "speed": {}}
    if "memory" in args.section:
        for statistics, tau in (("running", 1.0), ("exact", 1.0), ("running", 0.0)):
            row = run_memory(args.n, args.d, args.classes, args.batches, 256, args.threads, statistics, tau, args.device)
            print(json.dumps(row), flush=True)
            def key(r):
                return (r["n"], r["d"], r["classes"], r["statistics"], r.get("tau"), r.get("device", "cpu"))
            scale["memory"] = [r for r in scale["memory"] if key(r) != key(row)] + [row]
    if "ratio" in args.section:
        scale.setdefault("ratio", [])
        for name in args.data:
            for project in (None, 128):
                row = run_ratio(name, args.seeds[0], args.device, epochs=args.epochs, project=project)
                print(json.dumps(row), flush=True)
                def same(r):
                    return r["data"] == row["data"] and r.get("code") == row["code"] and r["epochs"] == row["epochs"]
                scale["ratio"] = [r for r in scale["ratio"] if not same(r)] + [row]
    if "speed" in args.section:
        for name in args.data:
            scale["speed"][f"{name} ({args.device})"] = run_speed(name, args.seeds[0], args.device, args.threads)
            print(name, scale["speed"][f"{name} ({args.device})"], flush=True)
    if "memory" in args.section or "speed" in args.section or "ratio" in args.section:
        RESULTS.mkdir(exist_ok=True)
        extra.write_text(json.dumps(scale, indent=1))
    Path(args.out).write_text(render(args.data, scale["memory"], scale["speed"], scale.get("ratio", [])))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
