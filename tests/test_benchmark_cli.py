import json

import numpy as np
import pytest

from sklearn_lt.bench.__main__ import main
from sklearn_lt.bench._plots import few_shot_confusion


def test_main_job_prints_table_and_figures(tmp_path, capsys):
    plot_dir = tmp_path / "figs"
    methods = ["NearestCentroid", "Linear CE", "Balanced softmax"]
    assert main(["--dataset", "letter", "--methods", *methods, "--seeds", "0", "--quiet", "--plot", str(plot_dir)]) == 0
    out = capsys.readouterr().out
    for name in methods + ["few", "H-mean", "vs Linear CE"]:
        assert name in out
    assert sorted(p.name for p in plot_dir.iterdir()) == [
        "few_shot_confusion.png",
        "many_medium_few.png",
        "recall_vs_class_size.png",
    ]


def test_main_job_json_over_seeds(tmp_path):
    out = tmp_path / "r.json"
    main(["--dataset", "letter", "--methods", "NearestCentroid", "--seeds", "0", "1", "--format", "json",
          "--output", str(out), "--quiet"])
    summary = json.loads(out.read_text())["summary"]
    assert summary[0]["n_seeds"] == 2 and summary[0]["accuracy_std"] > 0


def test_unknown_method_is_named(capsys):
    with pytest.raises(SystemExit):
        main(["--methods", "SVM", "--quiet"])
    assert "unknown method(s) ['SVM']; choose from" in capsys.readouterr().err


def test_few_shot_confusion_shares_sum_to_one():
    row = {
        "classes": np.array(["a", "b", "c"]),
        "class_counts": [500, 50, 5],
        "y_test": np.array(["c", "c", "c", "c", "a"]),
        "y_pred": np.array(["c", "a", "b", "a", "a"]),
    }
    shares = few_shot_confusion(row)
    assert shares == {"correct": 0.25, "into many": 0.5, "into medium": 0.25, "into few": 0.0}
