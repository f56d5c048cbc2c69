"""``python -m sklearn_lt.bench``: every method and baseline on a bundled data set or on your own features."""

import argparse
import json
import math
import sys

from ..datasets import bundled_datasets
from ..utils._long_tail import FEW_SHOT_THRESHOLD, MANY_SHOT_THRESHOLD
from ._compare import _conclude
from ._data import DATA_FORMATS, DataError, load_data
from ._registry import METHODS
from ._report import summary_for_json
from ._runner import (
    SCORES,
    ResultStore,
    bundled_split_source,
    data_header,
    run_benchmark,
    user_split_source,
)


def _cv(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a test fraction (0.25) nor a number of folds (5)") from None
    if value.is_integer() and value >= 2:
        return int(value)
    if 0 < value < 1:
        return value
    raise argparse.ArgumentTypeError(f"{text!r}: give a test fraction in (0, 1) or a number of folds >= 2")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_lt.bench",
        description="Fit every sklearn_lt method and the baselines a user would pick instead on a bundled real "
        "long-tailed data set or on your own features (--data), with the same splits and seeds for all; print "
        "overall/many/medium/few accuracy, means of recall, fit and predict time, each method's paired difference "
        "with its paper's baseline, and a recommendation.",
    )
    source = parser.add_argument_group("data")
    source.add_argument("--dataset", choices=bundled_datasets(), default=None,
                        help="bundled data set (default icd10cm when no --data)")
    source.add_argument("--data", nargs="+", metavar="PATH", default=None,
                        help="your data: one .npz (X_train, y_train, X_test, y_test, or X, y), .csv or .parquet "
                        "file (label column --target), or two .npy files (features, labels)")
    source.add_argument("--test-data", nargs="+", metavar="PATH", default=None,
                        help="a separate test set in the same format as --data")
    source.add_argument("--target", default=None, help="label column of a CSV or Parquet file")
    source.add_argument("--cv", type=_cv, default=None,
                        help="without a test set: a test fraction (default 0.25) or a number of folds, drawn per "
                        "seed, stratified, every class kept in training")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="split/model seeds (default 0 1 2)")
    parser.add_argument("--methods", nargs="+", default=None, help="subset of methods (default all); see --list")
    parser.add_argument("--score", choices=SCORES, default=None,
                        help="score to rank by (default harmonic_mean_recall, or balanced_accuracy when the "
                        "harmonic mean cannot discriminate on this data)")
    parser.add_argument("--many-threshold", type=int, default=MANY_SHOT_THRESHOLD,
                        help=f"many-shot: more training samples than this (default {MANY_SHOT_THRESHOLD})")
    parser.add_argument("--few-threshold", type=int, default=FEW_SHOT_THRESHOLD,
                        help=f"few-shot: fewer training samples than this (default {FEW_SHOT_THRESHOLD})")
    parser.add_argument("--max-fit-seconds", type=float, default=None,
                        help="skip the other seeds of a method whose first fit takes longer")
    parser.add_argument("--results", metavar="JSONL", default=None,
                        help="append each finished fit to this file as it completes")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the fits already in --results (same data and settings) and run the rest")
    parser.add_argument("--device", default="auto", help="torch device for the torch estimators (default auto)")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.add_argument("--output", default=None, help="write the result to this file instead of stdout")
    parser.add_argument("--plot", metavar="DIR", default=None, help="write figures to DIR (needs matplotlib)")
    parser.add_argument("--list", action="store_true", help="list data sets and methods, then exit")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.list:
        print("data sets:", ", ".join(bundled_datasets()))
        print("your own data (--data):", ", ".join(DATA_FORMATS))
        print("methods:")
        for name, method in METHODS.items():
            vs = f" (compared with {method.baseline}; {method.paper})" if method.baseline else ""
            print(f"  {name:<30} {method.group}{vs}")
        return 0
    if args.methods:
        unknown = [m for m in args.methods if m not in METHODS]
        if unknown:
            parser.error(f"unknown method(s) {unknown}; choose from: " + ", ".join(repr(m) for m in METHODS))
    if args.data and args.dataset:
        parser.error("give --dataset or --data, not both")
    if args.resume and not args.results:
        parser.error("--resume needs --results FILE")
    if args.many_threshold < args.few_threshold - 1:
        parser.error("--few-threshold must not exceed --many-threshold + 1")

    thresholds = {"many_threshold": args.many_threshold, "few_threshold": args.few_threshold}
    if args.data:
        try:
            X_train, y_train, X_test, y_test = load_data(args.data, target=args.target, test_paths=args.test_data)
        except DataError as exc:
            parser.error(f"--data: {exc}")
        if X_test is not None and args.cv is not None:
            parser.error("--cv splits data without a test set; this data has one")
        dataset = " + ".join(args.data)
        source = user_split_source(X_train, y_train, X_test, y_test, cv=args.cv)
        header = data_header(X_train, y_train, X_test, y_test, cv=args.cv, device=args.device, **thresholds)
    else:
        if args.test_data or args.target or args.cv is not None:
            parser.error("--test-data, --target and --cv go with --data")
        dataset = args.dataset or "icd10cm"
        source = bundled_split_source(dataset)
        header = {"dataset": dataset, "device": args.device, **thresholds}

    try:
        store = ResultStore(args.results, header, resume=args.resume) if args.results else None
    except ValueError as exc:
        parser.error(f"--results: {exc}")
    try:
        rows = run_benchmark(
            args.methods, source, args.seeds, device=args.device, max_fit_seconds=args.max_fit_seconds, store=store,
            progress=not args.quiet, dataset=dataset, **thresholds,
        )
    except KeyboardInterrupt:
        if store is None:
            print("interrupted; nothing kept (--results FILE keeps finished fits for --resume)", file=sys.stderr)
        else:
            print(
                f"interrupted; {len(store.records)} finished fits are in {args.results}: "
                "run the same command with --resume to continue",
                file=sys.stderr,
            )
        return 130
    result = _conclude(rows, args.seeds, args.score, dataset, args.many_threshold, args.few_threshold)
    summary = result._summary
    if args.format == "table":
        text = result.to_text()
    elif args.format == "json":
        text = json.dumps(
            {"dataset": dataset, "seeds": args.seeds, "score": result.score, "score_notice": result.score_notice,
             "summary": summary_for_json(summary), "recommendation": result.recommendation},
            indent=2,
        )
    else:
        text = _csv(result.summary)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    if args.plot:
        from ._plots import plot_all

        for path in plot_all(rows, summary, args.plot, dataset=dataset, **thresholds):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _csv(table):
    import csv
    import io

    records = table.to_dict("records") if hasattr(table, "to_dict") else table
    keys = list(dict.fromkeys(k for r in records for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: "" if _missing(record.get(k)) else record.get(k) for k in keys})
    return out.getvalue().rstrip("\n")


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
