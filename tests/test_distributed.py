"""GridSearchCV over a library estimator on a dask cluster (joblib's dask backend)."""

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.model_selection import GridSearchCV

from sklearn_lt.linear_model import LinearClassifier
from sklearn_lt.metrics import harmonic_mean_recall_scorer

distributed = pytest.importorskip("dask.distributed")


def test_grid_search_on_dask_cluster(small_lt):
    X, _, y, _ = small_lt
    grid = GridSearchCV(
        LinearClassifier(max_epochs=5, random_state=0),
        {"loss": ["cross_entropy", "balanced_softmax"], "sampling": ["instance", "class_balanced"]},
        scoring=harmonic_mean_recall_scorer,
        cv=2,
    )
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster):
            with parallel_config(backend="dask"):
                grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
