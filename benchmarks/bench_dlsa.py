"""DLSA (Xu et al., ECCV 2022): effect, ablation, routing diagnosis and flow speed.

Effect: on bundled real long-tailed data, over seeds, DLSA on top of the
balanced-softmax linear classifier against that classifier alone (overall and
many/medium/few accuracy), the paper's ablation (each flow loss term removed),
the authors' routed-subset prior, and the diagnosis: share of test samples each
stage gets, head/tail separation of the filter (tail precision beside its base rate, and
balanced accuracy; train and test),
cluster purity, and each stage's accuracy against the baseline on the same
test samples.

Speed: one flow-filter epoch (``n`` pairs, 2 MAF blocks of hidden width ``d``,
``K = 500``) through the library's skorch core against a raw torch loop of the
same computation, with the FLOP count and the bound it gives at this machine's
measured matmul throughput; and the ``K``-component mixture log-likelihood as
one matmul (distance expansion) against the ``n x K x d`` difference tensor.

    python benchmarks/bench_dlsa.py                       # all, small speed scale
    python benchmarks/bench_dlsa.py --scale 1.0           # speed at 115,846 x 512
    python benchmarks/bench_dlsa.py --skip-effect --scale 1.0 --threads 16

Writes ``benchmarks/results/dlsa.md``.
"""

import argparse
import copy
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import gemm_gflops, load_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_lt.datasets import load_long_tailed
from sklearn_lt.flows import DLSAClassifier, GaussianMixtureFlow
from sklearn_lt.linear_model import LinearClassifier
from sklearn_lt.metrics import long_tail_report
from sklearn_lt.torch import train_module

RESULTS = Path(__file__).parent / "results" / "dlsa.md"

VARIANTS = {
    "Balanced softmax (baseline)": None,
    "DLSA, 0 filters (same hold-out)": dict(n_filters=0),
    "DLSA": dict(),
    "DLSA w/o L_MLE": dict(lambda_mle=0.0),
    "DLSA w/o L_bal": dict(lambda_bal=0.0),
    "DLSA w/o L_pure": dict(lambda_pure=0.0),
    "DLSA, subset prior (authors)": dict(stage_prior="subset"),
    "DLSA, 3 filters (paper)": dict(n_filters=3),
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def fmt(values, scale=100.0, digits=1):
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    mean = scale * float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {scale * float(np.std(values, ddof=1)):.{digits}f}"


# --------------------------------------------------------------------------- effect


def run_effect(datasets, seeds, variants):
    rows = {}  # (dataset, variant) -> list of per-seed dicts
    for dataset in datasets:
        for seed in seeds:
            data = load_long_tailed(dataset, random_state=seed)
            base_pred = None
            for name in variants:
                params = VARIANTS[name]
                if params is None:
                    model = LinearClassifier(loss="balanced_softmax", random_state=seed, device="cpu")
                else:
                    model = DLSAClassifier(random_state=seed, device="cpu", **params)
                pipe = make_pipeline(StandardScaler(), model)
                t0 = time.perf_counter()
                pipe.fit(data.X_train, data.y_train)
                seconds = time.perf_counter() - t0
                pred = pipe.predict(data.X_test)
                report = long_tail_report(data.y_test, pred, y_train=data.y_train, output_dict=True)
                row = {k: report[k] for k in ("accuracy", "many", "medium", "few")}
                row["seconds"] = seconds
                if params is None:
                    base_pred = pred
                else:
                    diagnose(row, pipe, model, data, pred, base_pred)
                rows.setdefault((dataset, name), []).append(row)
                log(f"{dataset} seed {seed} {name:<34} acc {row['accuracy']:.4f} few {row['few']:.4f} "
                    f"({seconds:.0f} s) {row.get('test_share', '')}")
    return rows


def diagnose(row, pipe, model, data, pred, base_pred):
    X_test = pipe[0].transform(data.X_test)
    X_train = pipe[0].transform(data.X_train)
    if model.n_filters_ == 0:
        return
    stages = model.route(X_test)
    row["test_share"] = float(np.mean(stages == 0))
    row["train_share"] = float(model.routing_shares_[0])
    row["sep_train"] = float(model.head_tail_separation(X_train, data.y_train)["balanced_accuracy"][0])
    sep = model.head_tail_separation(X_test, data.y_test)
    row["sep_test"] = float(sep["balanced_accuracy"][0])
    row["tail_precision_test"] = float(sep["tail_precision"][0])
    row["tail_base_rate_test"] = float(sep["tail_base_rate"][0])
    sizes = model.cluster_sizes_[0]
    purity = np.nan_to_num(model.cluster_purity_[0])
    row["purity"] = float((sizes * purity).sum() / sizes.sum())
    correct, base_correct = pred == data.y_test, base_pred == data.y_test
    for stage, key in ((0, "filter"), (model.n_filters_, "final")):
        sel = stages == stage
        if sel.any():
            row[f"acc_{key}"] = float(correct[sel].mean())
            row[f"base_acc_{key}"] = float(base_correct[sel].mean())


def effect_tables(rows, datasets, variants, seeds):
    out = []
    for dataset in datasets:
        d = load_long_tailed(dataset, random_state=seeds[0])
        n_classes = len(np.unique(d.y_train))
        out.append(
            f"\n### {dataset} ({n_classes} classes, {d.X_train.shape[1]} features, {len(d.y_train):,} train / "
            f"{len(d.y_test):,} balanced test samples at seed {seeds[0]}), seeds {list(seeds)}, mean ± std (%)\n"
        )
        out.append("| method | overall | many | medium | few | Δ overall vs baseline | Δ few | fit s |")
        out.append("|---|---|---|---|---|---|---|---|")
        base = rows.get((dataset, "Balanced softmax (baseline)"))
        for name in variants:
            r = rows.get((dataset, name))
            if not r:
                continue
            col = lambda k: [x[k] for x in r]  # noqa: E731
            if base and name != "Balanced softmax (baseline)":
                d_all = fmt([a["accuracy"] - b["accuracy"] for a, b in zip(r, base)])
                d_few = fmt([a["few"] - b["few"] for a, b in zip(r, base)])
            else:
                d_all = d_few = "–"
            out.append(
                f"| {name} | {fmt(col('accuracy'))} | {fmt(col('many'))} | {fmt(col('medium'))} | {fmt(col('few'))} "
                f"| {d_all} | {d_few} | {fmt(col('seconds'), 1.0, 0)} |"
            )
        out.append(
            "\nDiagnosis (filter 1). *share*: samples the filter routes to its cluster-aided classifier "
            "(train: 30 % by construction); *separation*: balanced accuracy of routing as a tail detector "
            "(tail: <= 50 training samples; 0.5 = random); *tail prec.*: tail share among routed test samples "
            "(the paper's Fig. 7 quantity) and, in brackets, among all test samples (what random routing gives); "
            "*purity*: size-weighted share of a cluster's largest class (train); *filter / final acc*: accuracy "
            "of that stage on the test samples routed to it, and of the baseline on the same samples.\n"
        )
        out.append(
            "| method | test share | sep. train | sep. test | tail prec. test (base rate) | purity | filter acc (baseline) "
            "| final acc (baseline) |"
        )
        out.append("|---|---|---|---|---|---|---|---|")
        for name in variants:
            r = rows.get((dataset, name))
            if not r or "test_share" not in r[0]:
                continue
            col = lambda k: [x.get(k, np.nan) for x in r]  # noqa: E731
            out.append(
                f"| {name} | {fmt(col('test_share'))} | {fmt(col('sep_train'))} | {fmt(col('sep_test'))} "
                f"| {fmt(col('tail_precision_test'))} ({fmt(col('tail_base_rate_test'))}) | {fmt(col('purity'))} "
                f"| {fmt(col('acc_filter'))} ({fmt(col('base_acc_filter'))}) "
                f"| {fmt(col('acc_final'))} ({fmt(col('base_acc_final'))}) |"
            )
    return out


# --------------------------------------------------------------------------- paired runs (issue 12)

#: variants of the paired runs: DLSA parameters, or None for the code on PYTHONPATH at its defaults
PAIRED_VARIANTS = {
    "DLSA (defaults)": dict(),
    "DLSA, flow_selection='likelihood'": dict(flow_selection="likelihood"),
    "DLSA, lambda_mle=1": dict(lambda_mle=1.0),
    "DLSA, fixed statistics only (old defaults)": dict(
        flow_selection="likelihood", lambda_mle=1.0, flow_class_counts="global"
    ),
    "DLSA before the fixes (main)": None,
}


def run_paired(datasets, seeds, variants, jsonl):
    """DLSA against Balanced softmax on the same split and seed; one JSON line per (data set, seed, variant).

    "DLSA before the fixes (main)" is ``DLSAClassifier()`` of whatever
    ``sklearn_lt`` is importable: run it with ``PYTHONPATH`` pointing at the
    old checkout.
    """
    import json

    for dataset in datasets:
        for seed in seeds:
            X, y, X_test, y_test = load_split(dataset, seed)
            base = LinearClassifier(loss="balanced_softmax", random_state=seed, device="cpu").fit(X, y)
            base_report = long_tail_report(y_test, base.predict(X_test), y_train=y, output_dict=True)
            for name in variants:
                params = PAIRED_VARIANTS[name] or {}
                t0 = time.perf_counter()
                model = DLSAClassifier(random_state=seed, device="cpu", **params).fit(X, y)
                seconds = time.perf_counter() - t0
                report = long_tail_report(y_test, model.predict(X_test), y_train=y, output_dict=True)
                row = dict(dataset=dataset, seed=seed, variant=name, seconds=seconds)
                for key in ("accuracy", "few"):
                    row[key], row["base_" + key] = report[key], base_report[key]
                if model.n_filters_:
                    stages = model.route(X_test)
                    row["test_share"] = float(np.mean(stages == 0))
                    for split, (Xs, ys) in (("train", (X, y)), ("test", (X_test, y_test))):
                        sep = model.head_tail_separation(Xs, ys)
                        row[f"tail_precision_{split}"] = float(sep["tail_precision"][0])
                        row[f"tail_base_rate_{split}"] = float(
                            sep.get("tail_base_rate", [np.mean(model.class_counts_[np.searchsorted(model.classes_, ys)] <= 50)])[0]
                        )
                        row[f"balanced_accuracy_{split}"] = float(sep["balanced_accuracy"][0])
                    row["flow_epoch"] = getattr(model, "flow_epochs_", [None])[0]
                    history = model.flow_nets_[0].history
                    if row["flow_epoch"] is None and "valid_loss" in history[0]:
                        row["flow_epoch"] = int(np.argmin(history[:, "valid_loss"])) + 1
                    sizes, purity = model.cluster_sizes_[0], np.nan_to_num(model.cluster_purity_[0])
                    row["pure_clusters"] = int(np.sum((purity > 0.7) & (sizes > 10)))
                with open(jsonl, "a") as f:
                    f.write(json.dumps(row) + "\n")
                log(f"{dataset} seed {seed} {name:<44} acc {row['accuracy']:.4f} (base {row['base_accuracy']:.4f}) "
                    f"prec {row.get('tail_precision_test', float('nan')):.3f}/{row.get('tail_base_rate_test', float('nan')):.3f} "
                    f"epoch {row.get('flow_epoch')} ({seconds:.0f} s)")


def paired_tables(jsonl, datasets, variants):
    """Mean ± std over seeds of the paired differences DLSA - Balanced softmax, seeds improved, separation."""
    import json

    rows = [json.loads(line) for line in Path(jsonl).read_text().splitlines() if line.strip()]
    out = [
        "\n## Paired runs: DLSA against Balanced softmax, before and after the issue-12 fixes\n",
        "Same split and seed for both models; Δ = DLSA − Balanced softmax in points, mean ± std over the "
        "seeds of the paired differences; *improved*: seeds where Δ > 0. *tail prec.*: share of tail samples "
        "(<= 50 training samples) among the samples the filter routes, the quantity of the paper's Fig. 7, "
        "beside its *base rate* (share of tail samples among all samples, what random routing gives); "
        "*bal. acc.*: the balanced accuracy of routing as a tail detector that this page used to compare "
        "with the paper; *epoch*: the flow epoch kept; *pure*: clusters with purity > 0.7 and > 10 "
        "training samples at that epoch.\n",
        "| data set | variant | seeds | DLSA acc | Δ overall | improved | Δ few | tail prec. test (base rate) "
        "| tail prec. train (base rate) | bal. acc. test | test share | epoch | pure | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in datasets:
        for name in variants:
            r = [x for x in rows if x["dataset"] == dataset and x["variant"] == name]
            if not r:
                continue
            r.sort(key=lambda x: x["seed"])
            d_all = [x["accuracy"] - x["base_accuracy"] for x in r]
            d_few = [x["few"] - x["base_few"] for x in r]
            col = lambda k: [x.get(k, np.nan) for x in r]  # noqa: E731
            epochs = "/".join(str(e) for e in col("flow_epoch"))
            pure = "/".join(str(e) for e in col("pure_clusters"))
            out.append(
                f"| {dataset} | {name} | {','.join(str(x['seed']) for x in r)} | {fmt(col('accuracy'))} "
                f"| {fmt(d_all)} | {sum(d > 0 for d in d_all)}/{len(r)} | {fmt(d_few)} "
                f"| {fmt(col('tail_precision_test'))} ({fmt(col('tail_base_rate_test'))}) "
                f"| {fmt(col('tail_precision_train'))} ({fmt(col('tail_base_rate_train'))}) "
                f"| {fmt(col('balanced_accuracy_test'))} | {fmt(col('test_share'))} | {epochs} | {pure} "
                f"| {fmt(col('seconds'), 1.0, 0)} |"
            )
    return out


# --------------------------------------------------------------------------- the paper's Fig. 2 probe


def run_probe(datasets, seeds, separations=(0.5, 0.75, 0.9, 1.0)):
    """Is head/tail separation worth anything on this data? (paper Fig. 2, Supp. Sec. 1)

    An oracle sends each sample (train and test, by its true class) to group
    "tail" with probability ``p`` if its class is tail (<= 50 training samples)
    and ``1 - p`` otherwise; a balanced-softmax linear classifier is trained
    per group on that group's training samples and classifies that group's
    test samples. ``p = 0.5`` is random separation, ``p = 1`` ideal.
    """
    rows = {}
    for dataset in datasets:
        for seed in seeds:
            X, y, X_test, y_test = load_split(dataset, seed)
            classes, counts = np.unique(y, return_counts=True)
            tail_class = dict(zip(classes, counts <= 50))
            rng = np.random.default_rng(seed)
            single = LinearClassifier(loss="balanced_softmax", random_state=seed, device="cpu").fit(X, y)
            rows.setdefault((dataset, "one classifier"), []).append(single.score(X_test, y_test))
            for p in separations:
                def groups(labels):
                    is_tail = np.array([tail_class[c] for c in labels])
                    return np.where(is_tail, rng.random(len(labels)) < p, rng.random(len(labels)) >= p)
                g_train, g_test = groups(y), groups(y_test)
                pred = np.empty_like(y_test)
                for g in (True, False):
                    clf = LinearClassifier(loss="balanced_softmax", random_state=seed, device="cpu")
                    clf.fit(X[g_train == g], y[g_train == g])
                    pred[g_test == g] = clf.predict(X_test[g_test == g])
                rows.setdefault((dataset, f"p = {p}"), []).append(float(np.mean(pred == y_test)))
            log(f"probe {dataset} seed {seed}: " + ", ".join(f"{k[1]} {v[-1]:.4f}" for k, v in rows.items() if k[0] == dataset))
    out = [
        "\n## Is head/tail separation worth it here? (the paper's Fig. 2 probe)\n",
        "An oracle splits train and test samples by their true class: a tail-class sample (<= 50 training "
        "samples) goes to the tail group with probability p, a head-class sample with probability 1 - p; a "
        "balanced-softmax linear classifier per group. p = 0.5: random separation; p = 1: ideal. Overall test "
        "accuracy (%), mean ± std over the seeds.\n",
        "| data set | one classifier | " + " | ".join(f"p = {p}" for p in separations) + " |",
        "|---|---|" + "---|" * len(separations),
    ]
    for dataset in datasets:
        cells = [fmt(rows[(dataset, "one classifier")])] + [fmt(rows[(dataset, f"p = {p}")]) for p in separations]
        out.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return out


def run_stage_probe(datasets, seeds):
    """What costs accuracy inside each stage: the routing's data split, or the cluster features?

    For the default DLSA, on the test samples routed to each stage: the stage's
    own classifier, a plain balanced-softmax linear classifier trained on the
    same routed training samples (``route(X_train)``), and the baseline trained
    on all the data.
    """
    rows = {}
    for dataset in datasets:
        for seed in seeds:
            X, y, X_test, y_test = load_split(dataset, seed)
            base = LinearClassifier(loss="balanced_softmax", random_state=seed, device="cpu").fit(X, y)
            dlsa = DLSAClassifier(random_state=seed, device="cpu").fit(X, y)
            stage_train, stage_test = dlsa.route(X), dlsa.route(X_test)
            pred, base_pred = dlsa.predict(X_test), base.predict(X_test)
            for stage, label in ((0, "filter (cluster-aided)"), (dlsa.n_filters_, "final (linear)")):
                plain = LinearClassifier(loss="balanced_softmax", random_state=seed, device="cpu")
                plain.fit(X[stage_train == stage], y[stage_train == stage])
                sel = stage_test == stage
                rows.setdefault((dataset, label), []).append((
                    float(np.mean(pred[sel] == y_test[sel])),
                    float(np.mean(plain.predict(X_test[sel]) == y_test[sel])),
                    float(np.mean(base_pred[sel] == y_test[sel])),
                ))
            log(f"stage probe {dataset} seed {seed}: " + str({k[1]: v[-1] for k, v in rows.items() if k[0] == dataset}))
    out = [
        "\n## Where the accuracy goes inside each stage (default DLSA)\n",
        "On the test samples routed to a stage: that stage's DLSA classifier; a plain balanced-softmax linear "
        "classifier trained on the same routed training samples (x only: no z, no cluster prior); the "
        "baseline trained on all training samples. Accuracy (%), mean ± std over the seeds. Stage vs plain "
        "isolates the cluster features; plain vs baseline the cost of training on a routed subset.\n",
        "| data set | stage | DLSA stage classifier | plain linear, same subset | baseline, all data |",
        "|---|---|---|---|---|",
    ]
    for (dataset, label), values in rows.items():
        a, b, c = (list(v) for v in zip(*values))
        out.append(f"| {dataset} | {label} | {fmt(a)} | {fmt(b)} | {fmt(c)} |")
    return out


# --------------------------------------------------------------------------- speed


def synthetic(n, d, n_classes, seed=0):
    """Long-tailed labels (counts 1280 -> 5, ImageNet-LT's shape) and Gaussian class clusters."""
    gen = np.random.default_rng(seed)
    n_classes = max(2, min(n_classes, n // 10))  # small --scale runs: keep every class populated
    ranks = np.arange(n_classes) / max(n_classes - 1, 1)
    counts = np.maximum(1, np.round(5 * 256 ** (1 - ranks)))
    counts = np.maximum(1, np.floor(counts * n / counts.sum())).astype(int)
    counts[0] += n - counts.sum()
    y = np.repeat(np.arange(n_classes), counts)
    means = gen.standard_normal((n_classes, d)).astype(np.float32)
    X = 0.3 * means[y] + gen.standard_normal((n, d), dtype=np.float32)
    return X, y


def flow_flops_per_epoch(n, d, k):
    """FLOPs of one epoch: n pairs = 2n flow evaluations, forward + backward (2x forward)."""
    made = 2 * (d * d + d * d + d * 2 * d)  # d -> d -> d -> 2d masked layers, multiply-adds x 2
    mixture = 2 * d * k
    return 3 * 2 * n * (2 * made + mixture)


def raw_epoch(flow, criterion, X, y, sampler, lr):
    optimizer = torch.optim.SGD(flow.parameters(), lr=lr)
    flow.train()
    criterion.train()
    t0 = time.perf_counter()
    for idx in sampler:
        loss = criterion(flow(X[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - t0


def run_speed(scale, d, k, n_classes, epochs, batch_size):
    n = int(round(115_846 * scale))
    X, y = synthetic(n, d, n_classes)
    n_classes = int(y.max()) + 1
    # the first filter's flow, loss and pair sampler as DLSAClassifier builds them (one flow epoch on all the
    # data, no validation split); both loops below train copies of them, without the estimator's callbacks
    dlsa = DLSAClassifier(
        n_clusters=k, flow_batch_size=batch_size, flow_max_epochs=1, max_epochs=1, validation_fraction=0.0,
        device="cpu", random_state=0,
    ).fit(X, y)
    flow_net = dlsa.flow_nets_[0]

    def fresh():
        return (copy.deepcopy(flow_net.module_), copy.deepcopy(flow_net.criterion_),
                copy.deepcopy(flow_net.iterator_train__sampler))

    flow, criterion, sampler = fresh()
    net = train_module(
        flow, criterion, X, y, sampler=sampler,
        max_epochs=epochs, optimizer="sgd", lr=dlsa.flow_lr, lr_schedule="constant", device="cpu",
    )
    skorch_times = [h["dur"] for h in net.history]
    flow, criterion, sampler = fresh()
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    raw_times = [raw_epoch(flow, criterion, Xt, yt, sampler, dlsa.flow_lr) for _ in range(epochs)]
    warm = slice(1, None) if epochs > 1 else slice(None)
    skorch_s, raw_s = statistics.median(skorch_times[warm]), statistics.median(raw_times[warm])
    gflops = gemm_gflops()
    flops = flow_flops_per_epoch(n, d, k)

    # the K-component mixture log-likelihood: one matmul against the n x K x d difference tensor
    torch.manual_seed(0)
    z = torch.randn(8192, d)
    mixture = GaussianMixtureFlow(d, k, dlsa.center_std_)
    ladj = torch.zeros(len(z))
    with torch.inference_mode():
        t_mm = min(_timed(lambda: mixture.component_log_likelihood(z, ladj)) for _ in range(5))
        chunk = z[:512]
        t_naive = min(
            _timed(lambda: -0.5 * (chunk[:, None, :] - mixture.centers[None]).pow(2).sum(-1)) for _ in range(3)
        ) * len(z) / len(chunk)
        err = float(
            (mixture.component_log_likelihood(chunk, ladj[:512])
             - (-0.5 * (chunk[:, None, :] - mixture.centers[None]).pow(2).sum(-1) - 0.5 * d * math.log(2 * math.pi)))
            .abs().max()
        )
    return dict(
        n=n, d=d, k=k, n_classes=n_classes, batch_size=batch_size, epochs=epochs,
        skorch_s=skorch_s, raw_s=raw_s, gflops=gflops, flops=flops,
        t_mm=t_mm, t_naive=t_naive, err=err, n_mix=len(z),
    )


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def speed_table(s):
    bound = s["flops"] / (s["gflops"] * 1e9)
    naive_bytes = 2048 * s["k"] * s["d"] * 4  # per batch of 2048 flow evaluations
    return [
        f"\n## Speed (synthetic, {s['n']:,} x {s['d']}, {s['n_classes']} classes, K = {s['k']}, "
        f"batch {s['batch_size']} pairs, torch threads {torch.get_num_threads()})\n",
        "| what | seconds | note |",
        "|---|---|---|",
        f"| flow epoch, library (skorch core `train_module`) | {s['skorch_s']:.2f} | median of epochs 2..{s['epochs']} |",
        f"| flow epoch, raw torch loop (same module, loss, sampler) | {s['raw_s']:.2f} | ratio {s['skorch_s'] / s['raw_s']:.2f} |",
        f"| FLOP bound at the measured matmul rate | {bound:.2f} | {s['flops'] / 1e9:.0f} GFLOP per epoch at "
        f"{s['gflops']:.0f} GFLOP/s (2048² matmul); library at {100 * bound / s['skorch_s']:.0f} % of it |",
        f"| mixture log-likelihood, {s['n_mix']:,} x K={s['k']}, one `addmm` | {s['t_mm'] * 1e3:.1f} ms | "
        f"max abs. difference to the explicit form {s['err']:.1e} |",
        f"| same, via the n x K x d difference tensor | {s['t_naive'] * 1e3:.1f} ms | "
        f"{s['t_naive'] / s['t_mm']:.0f}x slower; {naive_bytes / 2**30:.1f} GiB per 2,048-row batch |",
    ]


# --------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["letter", "icd10cm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="VARIANT")
    parser.add_argument("--skip-effect", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-probe", action="store_true")
    parser.add_argument("--skip-stage-probe", action="store_true")
    parser.add_argument("--append", action="store_true", help="append the sections to --output")
    parser.add_argument("--paired", nargs="*", metavar="VARIANT", choices=list(PAIRED_VARIANTS),
                        help="only the paired runs of these variants (none named: all), one JSON line each to --jsonl")
    parser.add_argument("--paired-table", action="store_true", help="only write the paired table from --jsonl")
    parser.add_argument("--jsonl", type=Path, default=Path(__file__).parent / "results" / "dlsa_paired.jsonl")
    parser.add_argument("--scale", type=float, default=0.05, help="speed data: scale x 115,846 samples (1.0 = full)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--speed-classes", type=int, default=1000)
    parser.add_argument("--speed-epochs", type=int, default=3)
    parser.add_argument("--speed-batch", type=int, default=1024, help="pairs per batch (the authors' 1024)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.paired is not None:
        run_paired(args.datasets, args.seeds, args.paired or list(PAIRED_VARIANTS), args.jsonl)
        return
    if args.paired_table:
        print("\n".join(paired_tables(args.jsonl, args.datasets, list(PAIRED_VARIANTS))))
        return

    lines = [
        "# DLSA benchmark (`benchmarks/bench_dlsa.py`)\n",
        f"Command: `python benchmarks/bench_dlsa.py {' '.join(argv if argv is not None else sys.argv[1:])}`; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs: timings "
        f"are contended), torch {torch.__version__}, {args.threads} thread(s), CPU.",
        "All DLSA rows use the defaults (`DLSAClassifier()`, 1 filter, K auto, 10 % tail-safe validation "
        "hold-out) unless named; every model is `make_pipeline(StandardScaler(), model)`; test sets are "
        "balanced and never used for any choice.",
    ]
    if not args.skip_effect:
        rows = run_effect(args.datasets, args.seeds, args.variants)
        lines.append("\n## Effect, ablation and diagnosis")
        lines += effect_tables(rows, args.datasets, args.variants, args.seeds)
    if not args.skip_probe:
        lines += run_probe(args.datasets, args.seeds)
    if not args.skip_stage_probe:
        lines += run_stage_probe(args.datasets, args.seeds)
    if not args.skip_speed:
        s = run_speed(args.scale, args.dim, args.clusters, args.speed_classes, args.speed_epochs, args.speed_batch)
        lines += speed_table(s)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.append:
        lines = [f"\n<!-- appended by: python benchmarks/bench_dlsa.py {' '.join(sys.argv[1:])} -->"] + lines[3:]
        with args.output.open("a") as f:
            f.write("\n".join(lines) + "\n")
    else:
        args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
