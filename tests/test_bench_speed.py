"""The speed suite's comparison with LogisticRegression runs and renders (tiny sizes: a smoke test, not a timing)."""

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench_speed(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_speed

    yield bench_speed
    sys.modules.pop("bench_speed", None)


@pytest.mark.parametrize("model", ["LinearClassifier", "LearnedNCM"])
def test_default_fit_is_compared_with_logistic_regression(bench_speed, model):
    from sklearn_lt.linear_model import LinearClassifier
    from sklearn_lt.prototypes import LearnedNCM

    row = bench_speed.run_one(model, 400, 8, 4, 2, "cpu", in_process=True, memory=False, vs_logreg=True)
    default_epochs = {"LinearClassifier": LinearClassifier, "LearnedNCM": LearnedNCM}[model]().max_epochs
    assert row["default_epochs"] == default_epochs
    assert row["default_fit_s"] > 0 and row["logreg_balanced_fit_s"] > 0 and row["logreg_iters"] >= 1
    text = bench_speed.markdown([row], "cpu", gflops=10.0, epochs=2, threads=1, quick=True)
    assert "## A default fit against what a user would pick instead" in text
    line = next(s for s in text.splitlines() if s.startswith(f"| {model} | 400 | 4 | {default_epochs} |"))
    ratio = float(line.rstrip(" |").rsplit("|", 1)[1])
    assert ratio == pytest.approx(row["default_fit_s"] / row["logreg_balanced_fit_s"], abs=0.01)


@pytest.mark.parametrize("model, vs_logreg", [("LinearClassifier", False), ("LWSClassifier", True)])
def test_plain_runs_and_multi_stage_models_have_no_comparison(bench_speed, model, vs_logreg):
    row = bench_speed.run_one(model, 400, 8, 4, 2, "cpu", in_process=True, memory=False, vs_logreg=vs_logreg)
    assert "default_fit_s" not in row
    assert "## A default fit" not in bench_speed.markdown([row], "cpu", gflops=10.0, epochs=2, threads=1, quick=False)
