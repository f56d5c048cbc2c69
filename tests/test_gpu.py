"""Every torch estimator on a CUDA device: fit there, agree with the CPU fit, load on a CPU-only machine.

Skipped where torch sees no CUDA device (CI); run on a GPU machine with
``python -m pytest tests/test_gpu.py``. The rest of the suite also runs on the
GPU there, since ``device="auto"`` picks CUDA.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.base import clone, is_classifier
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV

from sklearn_lt.metrics import harmonic_mean_recall
from sklearn_lt.utils._testing import fitted_nets, make_test_instances

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

TORCH_ESTIMATORS = [e for e in make_test_instances() if "device" in e.get_params() and is_classifier(e)]
IDS = [type(e).__name__ for e in TORCH_ESTIMATORS]


def _module_devices(estimator):
    """The devices of every torch parameter the fitted estimator holds, nested estimators' too."""
    return {p.device.type for net in fitted_nets(estimator) for p in net.module_.parameters()}


@pytest.mark.parametrize("estimator", TORCH_ESTIMATORS, ids=IDS)
def test_fits_on_cuda_and_agrees_with_cpu(estimator, small_lt):
    X, X_test, y, _ = small_lt
    on_gpu = clone(estimator).set_params(device="cuda", random_state=0).fit(X, y)
    on_cpu = clone(estimator).set_params(device="cpu", random_state=0).fit(X, y)
    assert str(getattr(on_gpu, "device_", "cuda")).startswith("cuda")
    assert _module_devices(on_gpu) <= {"cuda"}
    proba = on_gpu.predict_proba(X_test)
    assert isinstance(proba, np.ndarray) and np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # same seed, same data, same algorithm: float rounding differs between devices, the model hardly
    agreement = np.mean(on_gpu.predict(X_test) == on_cpu.predict(X_test))
    assert agreement >= 0.9, f"GPU and CPU fits agree on {agreement:.0%} of the test points"


@pytest.mark.parametrize("estimator", TORCH_ESTIMATORS, ids=IDS)
def test_auto_device_picks_cuda(estimator, small_lt):
    X, _, y, _ = small_lt
    fitted = clone(estimator).set_params(device="auto", random_state=0).fit(X, y)
    assert str(getattr(fitted, "device_", "cuda")).startswith("cuda")


@pytest.mark.parametrize("estimator", TORCH_ESTIMATORS, ids=IDS)
def test_gpu_model_predicts_the_same_on_a_cpu_only_machine(estimator, small_lt, tmp_path):
    X, X_test, y, _ = small_lt
    fitted = clone(estimator).set_params(device="cuda", random_state=0).fit(X, y)
    expected = fitted.predict_proba(X_test)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(fitted))
    np.save(tmp_path / "X.npy", X_test)
    code = (
        "import pickle, warnings, numpy as np, torch\n"
        "assert not torch.cuda.is_available()\n"
        "warnings.simplefilter('ignore')\n"
        f"model = pickle.loads(open({str(tmp_path / 'model.pkl')!r}, 'rb').read())\n"
        f"np.save({str(tmp_path / 'proba.npy')!r}, model.predict_proba(np.load({str(tmp_path / 'X.npy')!r})))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), expected, rtol=1e-4, atol=1e-5)


def test_grid_search_on_cuda(small_lt):
    from sklearn_lt.linear_model import LinearClassifier

    X, _, y, _ = small_lt
    search = GridSearchCV(
        LinearClassifier(max_epochs=5, device="cuda", random_state=0),
        {"loss": ["cross_entropy", "balanced_softmax"]},
        scoring=make_scorer(harmonic_mean_recall),
        cv=2,
        n_jobs=2,
    ).fit(X, y)
    assert search.best_estimator_.device_.startswith("cuda")
