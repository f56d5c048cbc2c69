"""The main job on the user's own data: file formats, compare(), pairing, notes, resume, clear errors."""

import json

import numpy as np
import pytest

from sklearn_lt.bench import (
    DataError,
    Method,
    compare,
    load_data,
    long_tail_splits,
)
from sklearn_lt.bench.__main__ import main
from sklearn_lt.datasets import make_long_tailed_classification

# fast rows: two scikit-learn baselines and one torch method paired with one of them
FAST = ["LogisticRegression(balanced)", "NearestCentroid", "LearnedNCM"]
NAMES = np.array([f"class_{c}" for c in "abcdefghij"])


@pytest.fixture(scope="module")
def lt_data():
    """10 long-tailed classes (200 down to 10 training samples) with string labels."""
    X_train, X_test, y_train, y_test = make_long_tailed_classification(
        n_classes=10, n_features=6, n_max=200, imbalance_ratio=20, n_test_per_class=15, random_state=0
    )
    return X_train.astype(np.float64), NAMES[y_train], X_test.astype(np.float64), NAMES[y_test]


def _write_csv(path, X, y, target="label"):
    lines = [",".join([f"f{j}" for j in range(X.shape[1])] + [target])]
    lines += [",".join([f"{v:.6g}" for v in row] + [str(label)]) for row, label in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")


def _write(fmt, tmp_path, X, y, Xt, yt):
    """Files of one format; returns (--data args, extra CLI args)."""
    if fmt == "npz-split":
        np.savez(tmp_path / "d.npz", X_train=X, y_train=y, X_test=Xt, y_test=yt)
        return [str(tmp_path / "d.npz")], []
    if fmt == "npz-xy":
        np.savez(tmp_path / "d.npz", X=X, y=y)
        return [str(tmp_path / "d.npz")], ["--cv", "0.3"]
    if fmt == "npy":
        np.save(tmp_path / "X.npy", X)
        np.save(tmp_path / "y.npy", y)
        return [str(tmp_path / "X.npy"), str(tmp_path / "y.npy")], []
    if fmt == "csv":
        _write_csv(tmp_path / "train.csv", X, y)
        _write_csv(tmp_path / "test.csv", Xt, yt)
        return [str(tmp_path / "train.csv")], ["--test-data", str(tmp_path / "test.csv"), "--target", "label"]
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])]).assign(label=y)
    frame.to_parquet(tmp_path / "d.parquet")
    return [str(tmp_path / "d.parquet")], ["--target", "label"]


@pytest.mark.parametrize("fmt", ["npz-split", "npz-xy", "npy", "csv", "parquet"])
def test_cli_on_each_format(fmt, tmp_path, lt_data):
    data_args, extra = _write(fmt, tmp_path, *lt_data)
    out = tmp_path / "r.json"
    argv = ["--data", *data_args, *extra, "--methods", *FAST, "--seeds", "0", "1", "--format", "json",
            "--output", str(out), "--quiet"]
    if fmt == "csv":
        argv += ["--plot", str(tmp_path / "figs")]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    summary = {e["method"]: e for e in result["summary"]}
    assert list(summary) == FAST
    assert all(e["n_seeds"] == 2 for e in summary.values())
    paired = summary["LearnedNCM"]["paired"]
    assert summary["LearnedNCM"]["vs"] == "NearestCentroid"
    assert {d["n"] for d in paired.values()} == {2}
    assert all(d["std"] is not None and 0 <= d["improved"] <= 2 for d in paired.values())
    assert summary["NearestCentroid"]["paired"] is None
    assert result["recommendation"].startswith("Best on")
    if fmt == "csv":
        assert len(list((tmp_path / "figs").iterdir())) == 3


def test_compare_pairs_alphanet_with_its_own_base(lt_data):
    X, y, Xt, yt = lt_data
    methods = ["LogisticRegression(balanced)", "cRT", "AlphaNet (cRT) rho=1"]
    result = compare(methods, X, y, Xt, yt, seeds=(0, 1, 2))
    own = "AlphaNet (cRT) rho=1 [own cRT base, 90 % of train]"
    per_seed, summary = result.per_seed, result.summary.set_index("method")
    # one row per method and seed, plus AlphaNet's own base on the same seeds
    assert sorted(per_seed["method"].unique()) == sorted(methods + [own])
    assert (per_seed.groupby("method")["seed"].nunique() == 3).all()
    assert summary.loc["AlphaNet (cRT) rho=1", "vs"] == own
    # the paired difference is the mean (and ddof=1 std) of the same-seed differences with that base
    a = per_seed[per_seed["method"] == "AlphaNet (cRT) rho=1"].set_index("seed")["few"]
    b = per_seed[per_seed["method"] == own].set_index("seed")["few"]
    diffs = (a - b).to_numpy()
    assert summary.loc["AlphaNet (cRT) rho=1", "delta_few"] == pytest.approx(diffs.mean())
    assert summary.loc["AlphaNet (cRT) rho=1", "delta_few_std"] == pytest.approx(diffs.std(ddof=1))
    assert summary.loc["AlphaNet (cRT) rho=1", "delta_few_improved"] == np.sum(diffs > 0)
    assert summary.loc["cRT", "accuracy_std"] == pytest.approx(
        per_seed[per_seed["method"] == "cRT"]["accuracy"].std(ddof=1)
    )
    acted = per_seed[per_seed["method"] == "AlphaNet (cRT) rho=1"]["acted_on"].iloc[0]
    assert acted.endswith("/10 classes corrected") and not acted.startswith("0/")
    text = str(result)
    assert own in text and "vs " + own in text and "seeds better" in text


def test_method_that_did_nothing_gets_no_delta():
    # every class has 40 samples: no few class, so AlphaNet warns and returns its base
    X, _, y, _ = make_long_tailed_classification(n_classes=8, n_features=6, n_max=40, imbalance_ratio=1,
                                                 random_state=1)
    result = compare(["cRT", "AlphaNet (cRT) rho=1"], X, y, seeds=(0, 1))
    row = result.summary.set_index("method").loc["AlphaNet (cRT) rho=1"]
    assert row["did_nothing"]
    assert "nothing to correct" in row["notes"]
    assert "delta_few" not in result.summary or np.isnan(row["delta_few"])
    text = str(result)
    assert "did nothing (0 of 8 classes corrected)" in text and "[1] UserWarning" in text
    assert "Best on" in text and "AlphaNet (cRT) rho=1 (" not in result.recommendation


def test_user_estimators_failures_and_max_fit_seconds(lt_data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    class Broken(LogisticRegression):
        def fit(self, X, y):
            raise RuntimeError("cannot fit this")

    X, y, Xt, yt = lt_data
    methods = {
        "tree": DecisionTreeClassifier(random_state=123),
        "broken": Broken(),
        "NC": Method(lambda rs, dev: __import__("sklearn.neighbors").neighbors.NearestCentroid(), group="baseline"),
    }
    result = compare(methods, X, y, Xt, yt, seeds=(0, 1, 2), max_fit_seconds=0.0)
    summary = result.summary.set_index("method")
    assert "failed, no result: RuntimeError: cannot fit this" in summary.loc["broken", "notes"]
    # the first seed of every method took longer than 0 s: the other seeds were skipped, and the table says so;
    # a failed fit has no time, so a method that fails is tried on every seed
    assert summary["n_seeds"].to_dict() == {"tree": 1, "broken": 3, "NC": 1}
    assert "the other seeds were skipped" in summary.loc["tree", "notes"]
    assert "No recommendation" in result.recommendation
    # the seed reaches every random_state of a user's estimator
    trees = compare({"tree": DecisionTreeClassifier()}, X, y, Xt, yt, seeds=(0, 0)).per_seed
    assert trees["accuracy"].nunique() == 1


def test_harmonic_mean_floor_is_detected():
    # 12 classes, 3 test samples each for the tail: most methods miss a whole test class
    X, _, y, _ = make_long_tailed_classification(n_classes=12, n_features=4, n_max=60, imbalance_ratio=12,
                                                 class_sep=1.0, random_state=0)
    result = compare(["LogisticRegression(balanced)", "NearestCentroid"], X, y, seeds=(0, 1))
    assert result.score == "balanced_accuracy"
    assert "Harmonic-mean recall cannot discriminate" in result.score_notice
    assert "Best on bal.acc" in result.recommendation
    chosen = compare(["LogisticRegression(balanced)", "NearestCentroid"], X, y, seeds=(0, 1),
                     scoring="harmonic_mean_recall")
    assert chosen.score == "harmonic_mean_recall" and chosen.score_notice is None


def _without_times(summary):
    return [{k: v for k, v in e.items() if "seconds" not in k} for e in summary]


def test_interrupted_run_resumes_to_the_same_table(tmp_path, capsys, lt_data):
    X, y, Xt, yt = lt_data
    np.savez(tmp_path / "d.npz", X_train=X, y_train=y, X_test=Xt, y_test=yt)
    base = ["--data", str(tmp_path / "d.npz"), "--methods", *FAST, "--seeds", "0", "1", "--format", "json",
            "--quiet"]
    full = tmp_path / "full.jsonl"
    main([*base, "--results", str(full), "--output", str(tmp_path / "full.json")])
    lines = full.read_text().splitlines()
    assert len(lines) == 1 + 3 * 2  # a header and one line per method and seed
    # an interruption after three fits, in the middle of writing the fourth
    part = tmp_path / "part.jsonl"
    part.write_text("\n".join(lines[:4]) + "\n" + lines[4][: len(lines[4]) // 2])
    main([*base, "--results", str(part), "--resume", "--output", str(tmp_path / "resumed.json")])
    resumed = part.read_text().splitlines()
    assert len(resumed) == len(lines) and resumed[:4] == lines[:4]
    full_summary = json.loads((tmp_path / "full.json").read_text())["summary"]
    resumed_summary = json.loads((tmp_path / "resumed.json").read_text())["summary"]
    assert _without_times(resumed_summary) == _without_times(full_summary)
    # the reused fits keep their recorded times too
    assert [json.loads(x)["fit_seconds"] for x in resumed[1:4]] == [json.loads(x)["fit_seconds"] for x in lines[1:4]]
    # a results file of other data is refused, not mixed in
    np.savez(tmp_path / "other.npz", X_train=X + 1, y_train=y, X_test=Xt, y_test=yt)
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path / "other.npz"), "--methods", "NearestCentroid", "--quiet",
              "--results", str(part), "--resume"])
    assert "other data or settings" in capsys.readouterr().err
    # nor is a finished run overwritten by a command that forgot --resume
    with pytest.raises(SystemExit):
        main([*base, "--results", str(part)])
    assert "already holds results: add --resume" in capsys.readouterr().err
    assert part.read_text().splitlines() == resumed


def test_compare_resume_skips_finished_fits(tmp_path, lt_data):
    X, y, _, _ = lt_data
    calls = []

    def make(rs, dev):
        from sklearn.neighbors import NearestCentroid

        calls.append(rs)
        return NearestCentroid()

    path = tmp_path / "r.jsonl"
    first = compare({"NC": Method(make)}, X, y, seeds=(0, 1), results_file=str(path))
    again = compare({"NC": Method(make)}, X, y, seeds=(0, 1, 2), results_file=str(path), resume=True)
    assert calls == [0, 1, 2]
    assert again.per_seed["accuracy"].tolist()[:2] == first.per_seed["accuracy"].tolist()


def test_long_tail_splits_keep_every_class_in_training():
    y = np.array([0] * 50 + [1] * 7 + [2] * 2 + [3])
    (train, test), = long_tail_splits(y, random_state=0)
    assert set(y[train]) == {0, 1, 2, 3}
    assert np.bincount(y[test], minlength=4).tolist() == [12, 2, 1, 0]  # a single sample is never tested
    folds = long_tail_splits(y, cv=5, random_state=0)
    assert len(folds) == 5
    for train, test in folds:
        assert set(y[train]) == {0, 1, 2, 3} and not set(train) & set(test)
    tested = np.concatenate([te for _, te in folds])
    assert np.sort(tested).tolist() == np.flatnonzero(y != 3).tolist()  # each sample tested once, class 3 never
    assert sum(2 in y[te] for _, te in folds) == 2  # 2 samples, 5 folds: tested in 2 folds


def _error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--quiet"])
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_bad_files_are_clear_errors(tmp_path, capsys, lt_data):
    X, y, Xt, yt = lt_data
    _write_csv(tmp_path / "ok.csv", X, y)
    err = _error(["--data", str(tmp_path / "ok.csv"), "--target", "class"], capsys)
    assert "no column named 'class'" in err and "f0" in err and "label" in err
    err = _error(["--data", str(tmp_path / "ok.csv")], capsys)
    assert "needs --target" in err

    text = (tmp_path / "ok.csv").read_text().splitlines()
    text[3] = text[3].replace(text[3].split(",")[2], "high", 1)
    (tmp_path / "str.csv").write_text("\n".join(text))
    err = _error(["--data", str(tmp_path / "str.csv"), "--target", "label"], capsys)
    assert "feature column 'f2' is not numeric (row 3 holds 'high')" in err

    _write_csv(tmp_path / "one.csv", X[:20], ["only"] * 20)
    err = _error(["--data", str(tmp_path / "one.csv"), "--target", "label"], capsys)
    assert "1 class" in err and "two or more" in err

    keep = y != "class_j"
    np.savez(tmp_path / "unseen.npz", X_train=X[keep], y_train=y[keep], X_test=Xt, y_test=yt)
    err = _error(["--data", str(tmp_path / "unseen.npz")], capsys)
    assert "1 class(es) the training data does not: 'class_j'" in err

    np.savez(tmp_path / "keys.npz", features=X, labels=y)
    err = _error(["--data", str(tmp_path / "keys.npz")], capsys)
    assert "needs the arrays X_train, y_train" in err and "features" in err

    err = _error(["--data", str(tmp_path / "nope.csv"), "--target", "label"], capsys)
    assert "no such file" in err
    err = _error(["--data", str(tmp_path / "d.txt")], capsys)
    assert "unknown file type" in err and ".parquet" in err

    X_nan = X.copy()
    X_nan[5, 1] = np.nan
    with pytest.raises(DataError, match="NaN or infinite values \\(first at row 5, column 1\\)"):
        compare(["NearestCentroid"], X_nan, y)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y[:-1])
    with pytest.raises(DataError, match=f"{len(X)} training samples but {len(X) - 1} labels"):
        load_data([str(tmp_path / "X.npy"), str(tmp_path / "y.npy")])


def test_unknown_choices_are_argparse_errors(capsys):
    err = _error(["--dataset", "mnist"], capsys)
    assert "invalid choice: 'mnist'" in err and "letter" in err
    err = _error(["--methods", "SVM"], capsys)
    assert "unknown method(s) ['SVM']" in err and "'cRT'" in err
    err = _error(["--data", "x.csv", "--dataset", "letter"], capsys)
    assert "not both" in err


def test_ctrl_c_keeps_finished_fits_for_resume(tmp_path, capsys, monkeypatch, lt_data):
    from sklearn_lt.bench import METHODS

    X, y, Xt, yt = lt_data
    np.savez(tmp_path / "d.npz", X_train=X, y_train=y, X_test=Xt, y_test=yt)
    argv = ["--data", str(tmp_path / "d.npz"), "--methods", "LogisticRegression(balanced)", "NearestCentroid",
            "--seeds", "0", "1", "--format", "json", "--quiet", "--results", str(tmp_path / "r.jsonl")]
    original = METHODS["NearestCentroid"]

    def interrupted_on_seed_1(rs, dev):
        if rs == 1:
            raise KeyboardInterrupt
        return original.make(rs, dev)

    monkeypatch.setitem(METHODS, "NearestCentroid", Method(interrupted_on_seed_1, group="baseline"))
    assert main([*argv, "--output", str(tmp_path / "never.json")]) == 130
    assert "3 finished fits are in" in capsys.readouterr().err and not (tmp_path / "never.json").exists()
    monkeypatch.setitem(METHODS, "NearestCentroid", original)
    main([*argv, "--resume", "--output", str(tmp_path / "resumed.json")])
    main([*argv[:-2], "--output", str(tmp_path / "full.json")])
    resumed = json.loads((tmp_path / "resumed.json").read_text())["summary"]
    full = json.loads((tmp_path / "full.json").read_text())["summary"]
    assert _without_times(resumed) == _without_times(full)


def test_ctrl_c_swallowed_inside_a_fit_is_not_stored(tmp_path, capsys, monkeypatch, lt_data):
    # skorch catches KeyboardInterrupt and returns a partly trained net: that result must not be recorded
    import os
    import signal

    from sklearn.neighbors import NearestCentroid

    from sklearn_lt.bench import METHODS

    class SwallowsCtrlC(NearestCentroid):
        def fit(self, X, y):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10_000):  # the handler runs at the next bytecode boundaries
                    pass
            except KeyboardInterrupt:
                pass
            return super().fit(X, y)

    X, y, Xt, yt = lt_data
    np.savez(tmp_path / "d.npz", X_train=X, y_train=y, X_test=Xt, y_test=yt)
    monkeypatch.setitem(METHODS, "NearestCentroid", Method(lambda rs, dev: SwallowsCtrlC(), group="baseline"))
    results = tmp_path / "r.jsonl"
    code = main(["--data", str(tmp_path / "d.npz"), "--methods", "LogisticRegression(balanced)", "NearestCentroid",
                 "--seeds", "0", "--quiet", "--results", str(results)])
    assert code == 130
    assert "1 finished fits are in" in capsys.readouterr().err
    assert [json.loads(line).get("method") for line in results.read_text().splitlines()[1:]] == [
        "LogisticRegression(balanced)"
    ]


def test_group_thresholds_are_parameters(tmp_path, lt_data):
    X, y, Xt, yt = lt_data
    counts = np.unique(y, return_counts=True)[1]
    default = compare(["NearestCentroid"], X, y, Xt, yt, seeds=(0,)).per_seed.iloc[0]
    assert (default["n_many"], default["n_few"]) == (np.sum(counts > 100), np.sum(counts < 20))
    moved = compare(["NearestCentroid"], X, y, Xt, yt, seeds=(0,), many_threshold=50, few_threshold=40).per_seed.iloc[0]
    assert (moved["n_many"], moved["n_few"]) == (np.sum(counts > 50), np.sum(counts < 40))
    np.savez(tmp_path / "d.npz", X_train=X, y_train=y, X_test=Xt, y_test=yt)
    out = tmp_path / "r.csv"
    main(["--data", str(tmp_path / "d.npz"), "--methods", "NearestCentroid", "--seeds", "0", "--few-threshold", "40",
          "--many-threshold", "50", "--format", "csv", "--output", str(out), "--quiet"])
    header, row = out.read_text().splitlines()
    assert header.startswith("method,vs,n_seeds,accuracy") and row.startswith("NearestCentroid,,1,")
