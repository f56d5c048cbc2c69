"""``python -m sklearn_lt.benchmarks``: every method and baseline on a bundled real long-tailed data set."""

import argparse
import csv
import json
import sys

from ..datasets import bundled_datasets
from ._registry import METHODS
from ._runner import COLUMNS, format_table, run, summarize


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_lt.benchmarks",
        description="Fit every sklearn_lt method and the baselines a user would pick instead on a bundled "
        "real long-tailed data set; print overall/many/medium/few accuracy, harmonic/geometric mean "
        "recall, lowest recall, fit and predict time.",
    )
    parser.add_argument("--dataset", default="icd10cm", help="bundled data set (default icd10cm); see --list")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="split/model seeds (default 0)")
    parser.add_argument("--methods", nargs="+", default=None, help="subset of methods (default all); see --list")
    parser.add_argument("--device", default="auto", help="torch device for the torch estimators (default auto)")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.add_argument("--output", default=None, help="write the result to this file instead of stdout")
    parser.add_argument("--plot", metavar="DIR", default=None, help="write figures to DIR (needs matplotlib)")
    parser.add_argument("--list", action="store_true", help="list data sets and methods, then exit")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)

    if args.list:
        print("data sets:", ", ".join(bundled_datasets()))
        print("methods:")
        for name, method in METHODS.items():
            vs = f" (compared with {method.baseline}; {method.paper})" if method.baseline else ""
            print(f"  {name:<30} {method.group}{vs}")
        return 0

    rows = run(args.dataset, seeds=args.seeds, methods=args.methods, device=args.device, progress=not args.quiet)
    summary = summarize(rows)
    if args.format == "table":
        text = format_table(summary, dataset=args.dataset, seeds=args.seeds)
    elif args.format == "json":
        text = json.dumps({"dataset": args.dataset, "seeds": args.seeds, "summary": summary}, indent=2)
    else:
        keys = ["method", "baseline", "n_seeds"] + [k for key, _ in COLUMNS for k in (key, key + "_std")]
        out = [",".join(keys)]
        for entry in summary:
            writer_row = [str(entry[k]) if entry[k] is not None else "" for k in keys]
            out.append(",".join(writer_row))
        text = "\n".join(out)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    if args.plot:
        from ._plots import plot_all

        for path in plot_all(rows, summary, args.plot, dataset=args.dataset):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
