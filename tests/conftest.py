
import numpy as np
import pytest
import torch

# Tests run two workers on two cores (pytest-xdist): one torch thread each avoids the
# 30-160x slow-down of oversubscribed small-batch training (../shared/notes/data.md).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def letter_lt():
    """The bundled real long-tailed split (UCI Letter, 26 classes), standardised."""
    from sklearn.preprocessing import StandardScaler

    from sklearn_lt.datasets import load_long_tailed

    data = load_long_tailed("letter", random_state=0)
    scaler = StandardScaler().fit(data.X_train)
    return (
        scaler.transform(data.X_train).astype(np.float32),
        scaler.transform(data.X_test).astype(np.float32),
        data.y_train,
        data.y_test,
    )


@pytest.fixture
def small_lt():
    from sklearn_lt.datasets import make_long_tailed_classification

    return make_long_tailed_classification(n_classes=6, n_features=8, n_max=120, random_state=0)
