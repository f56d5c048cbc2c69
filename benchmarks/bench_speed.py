"""Speed of the training core: skorch-wrapped epochs against a raw torch loop and the FLOP bound.

For each model and scale, one process (so peak memory is per configuration) times
- ``raw``: a hand-written torch loop — same module, same batches (index tensors into
  in-memory tensors), same optimizer, loss and learning-rate schedule;
- ``sklearn_lt``: the estimator's ``fit`` through skorch (epoch time from ``history_``).
The FLOP bound counts the two GEMMs per batch of a head on fixed features (forward
and weight gradient; X needs no gradient, so autograd runs no third GEMM) at the
GEMM throughput measured on this machine.

    python benchmarks/bench_speed.py                   # n-scaling and C-scaling at d=512 (minutes)
    python benchmarks/bench_speed.py --quick           # small sizes
    python benchmarks/bench_speed.py --device cuda     # on a GPU
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def gemm_gflops(device, d=2048):
    a = torch.randn(d, d, device=device)
    b = torch.randn(d, d, device=device)
    for _ in range(2):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    reps = 5
    for _ in range(reps):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * d**3 * reps / (time.perf_counter() - t) / 1e9


def make_data(n, d, C, seed=0):
    rng = np.random.default_rng(seed)
    counts = np.maximum(1, np.floor(n * (np.arange(C) + 1.0) ** -0.8 / np.sum((np.arange(C) + 1.0) ** -0.8))).astype(int)
    counts[0] += n - counts.sum()
    y = np.repeat(np.arange(C), counts)
    means = rng.normal(size=(C, d)).astype(np.float32)
    X = 0.3 * means[y] + rng.normal(size=(n, d)).astype(np.float32)
    return X, y


def one(model, n, d, C, epochs, batch_size, device):
    from sklearn_lt.linear_model import LinearClassifier
    from sklearn_lt.torch import ArrayDataset, ShuffledBatchSampler, LogitAdjustedLoss

    X, y = make_data(n, d, C)
    est = LinearClassifier(max_epochs=epochs, batch_size=batch_size, random_state=0, device=device)
    t = time.perf_counter()
    est.fit(X, y)
    fit_wall = time.perf_counter() - t
    skorch_epochs = est.history_[:, "dur"][1:]  # the first epoch pays warm-up

    # the raw loop: same module, loss, optimizer, schedule, sampler and data path
    torch.manual_seed(0)
    module = torch.nn.Linear(d, C).to(device)
    torch.nn.init.zeros_(module.weight)
    torch.nn.init.zeros_(module.bias)
    criterion = LogitAdjustedLoss(tau=0.0)
    optimizer = torch.optim.AdamW(module.parameters(), lr=0.01, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    data = ArrayDataset(X, y, np.ones(len(y), np.float32), device=device)
    sampler = ShuffledBatchSampler(len(y), batch_size, generator=torch.Generator().manual_seed(0))
    raw_epochs = []
    for _ in range(epochs):
        t = time.perf_counter()
        for index in sampler:
            Xb, (yb, wb) = data[index]
            optimizer.zero_grad()
            loss = criterion(module(Xb), yb, wb)
            loss.backward()
            optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        raw_epochs.append(time.perf_counter() - t)
        schedule.step()
    raw = float(np.median(raw_epochs[1:]))
    wrapped = float(np.median(skorch_epochs))
    flops = 2 * 2 * n * d * C
    return {
        "model": model,
        "n": n,
        "d": d,
        "C": C,
        "batch_size": batch_size,
        "device": device,
        "raw_epoch_s": raw,
        "sklearn_lt_epoch_s": wrapped,
        "overhead": wrapped / raw,
        "gemm_gflop": flops / 1e9,
        "fit_wall_s": fit_wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--one", nargs=4, metavar=("MODEL", "N", "D", "C"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        model, n, d, C = args.one
        print(json.dumps(one(model, int(n), int(d), int(C), args.epochs, args.batch_size, args.device)))
        return
    if args.quick:
        configs = [(10_000, 128, 100), (10_000, 128, 1000)]
    else:
        configs = [(10_000, 512, 1000), (50_000, 512, 1000), (115_846, 512, 1000), (115_846, 512, 100), (115_846, 512, 8142)]
    peak = gemm_gflops(args.device)
    rows = []
    for n, d, C in configs:
        out = subprocess.run(
            [sys.executable, __file__, "--one", "linear", str(n), str(d), str(C), "--epochs", str(args.epochs),
             "--batch-size", str(args.batch_size), "--device", args.device],
            check=True, capture_output=True, text=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["flop_bound_s"] = row["gemm_gflop"] / peak
        rows.append(row)
        print(f"n={n} d={d} C={C}: raw {row['raw_epoch_s']:.3f}s  sklearn_lt {row['sklearn_lt_epoch_s']:.3f}s "
              f"(x{row['overhead']:.2f})  bound {row['flop_bound_s']:.3f}s", file=sys.stderr, flush=True)
    lines = [
        f"# Training-core speed: LinearClassifier through skorch vs a raw torch loop ({args.device})",
        "",
        f"GEMM throughput measured here: {peak:.0f} GFLOP/s (2048^3 float32). Epoch = median over epochs 2..{args.epochs}, "
        f"batch {args.batch_size}, AdamW, torch threads {torch.get_num_threads()}.",
        "",
        "| n | d | C | raw torch s/epoch | sklearn_lt s/epoch | ratio | 2-GEMM FLOP bound s | % of bound (sklearn_lt) | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['d']} | {r['C']:,} | {r['raw_epoch_s']:.3f} | {r['sklearn_lt_epoch_s']:.3f} | "
            f"{r['overhead']:.2f} | {r['flop_bound_s']:.3f} | {100 * r['flop_bound_s'] / r['sklearn_lt_epoch_s']:.0f} | "
            f"{r['peak_rss_mib']:.0f} |"
        )
    os.makedirs(RESULTS, exist_ok=True)
    suffix = "" if args.device == "cpu" else "_" + args.device.replace(":", "")
    path = os.path.join(RESULTS, f"speed_core{'_quick' if args.quick else ''}{suffix}.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
