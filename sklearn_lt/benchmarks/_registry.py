"""What the main benchmark runs: every method of the library and the baselines a user would pick instead.

Each entry is ``name -> Method(make, baseline, paper)``: ``make(random_state, device)``
returns an unfitted estimator (scaling included where the model needs it),
``baseline`` names the row the method's paper compares it with (shown next to
it in the table), ``group`` is "baseline" or "method".
"""

from dataclasses import dataclass
from typing import Callable, Optional

from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..flows import DLSAClassifier
from ..linear_model import LinearClassifier, LWSClassifier, TauNormalizedClassifier


@dataclass(frozen=True)
class Method:
    make: Callable
    group: str = "method"
    baseline: Optional[str] = None
    paper: str = ""


def _scaled(estimator):
    return make_pipeline(StandardScaler(), estimator)


METHODS = {
    # --- what a scikit-learn user would reach for
    "LogisticRegression": Method(
        lambda rs, dev: _scaled(LogisticRegression(max_iter=1000)), group="baseline"
    ),
    "LogisticRegression(balanced)": Method(
        lambda rs, dev: _scaled(LogisticRegression(max_iter=1000, class_weight="balanced")), group="baseline"
    ),
    "NearestCentroid": Method(lambda rs, dev: _scaled(NearestCentroid()), group="baseline"),
    # --- decoupling baselines (Kang et al. 2020; Ren et al. 2020)
    "Linear CE": Method(
        lambda rs, dev: _scaled(LinearClassifier(random_state=rs, device=dev)), group="baseline"
    ),
    "cRT": Method(
        lambda rs, dev: _scaled(LinearClassifier(sampling="class_balanced", random_state=rs, device=dev)),
        group="baseline",
        baseline="Linear CE",
        paper="Kang et al. 2020",
    ),
    "tau-norm": Method(
        lambda rs, dev: _scaled(TauNormalizedClassifier(LinearClassifier(random_state=rs, device=dev))),
        group="baseline",
        baseline="Linear CE",
        paper="Kang et al. 2020",
    ),
    "LWS": Method(
        lambda rs, dev: _scaled(LWSClassifier(LinearClassifier(random_state=rs, device=dev), random_state=rs, device=dev)),
        group="baseline",
        baseline="Linear CE",
        paper="Kang et al. 2020",
    ),
    "Balanced softmax": Method(
        lambda rs, dev: _scaled(LinearClassifier(loss="balanced_softmax", random_state=rs, device=dev)),
        group="baseline",
        baseline="Linear CE",
        paper="Ren et al. 2020",
    ),
    # --- DLSA (Xu et al. 2022): flow-filter cascade on top of the balanced-softmax linear classifier
    "DLSA": Method(
        lambda rs, dev: _scaled(DLSAClassifier(random_state=rs, device=dev)),
        baseline="Balanced softmax",
        paper="Xu et al. 2022",
    ),
}
