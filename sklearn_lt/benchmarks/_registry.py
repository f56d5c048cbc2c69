"""What the main benchmark runs: every method of the library and the baselines a user would pick instead.

Each entry is ``name -> Method(make, baseline, paper)``: ``make(random_state, device)``
returns an unfitted estimator (scaling included where the model needs it),
``baseline`` names the row the method's paper compares it with (shown next to
it in the table), ``group`` is "baseline" or "method".
"""

from dataclasses import dataclass
from typing import Callable, Optional

from imblearn.pipeline import make_pipeline as make_imblearn_pipeline
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..augmentation import SMARTAugmenter
from ..ensemble import BalancedUndersampleMerger
from ..flows import DLSAClassifier
from ..linear_model import AlphaNetClassifier, LinearClassifier, LWSClassifier, TauNormalizedClassifier
from ..neural_network import MLPHeadClassifier
from ..prototypes import LearnedNCM, MultiNCM


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
    # --- AlphaNet (Chang et al.): post-hoc correction of the few-class rows of a cRT base
    "AlphaNet (cRT) rho=1": Method(
        lambda rs, dev: _scaled(AlphaNetClassifier(rho=1.0, random_state=rs, device=dev)),
        baseline="cRT",
        paper="Chang et al. (AlphaNet)",
    ),
    "AlphaNet (cRT) rho=0.5": Method(
        lambda rs, dev: _scaled(AlphaNetClassifier(rho=0.5, random_state=rs, device=dev)),
        baseline="cRT",
        paper="Chang et al. (AlphaNet)",
    ),
    # --- Learned NCM (Sharma et al.): learned centroids vs the empirical means; + shared displacements
    "LearnedNCM": Method(
        lambda rs, dev: _scaled(LearnedNCM(random_state=rs, device=dev)),
        baseline="NearestCentroid",
        paper="Sharma et al., Learned NCM",
    ),
    "MultiNCM": Method(
        lambda rs, dev: _scaled(MultiNCM(random_state=rs, device=dev)),
        baseline="LearnedNCM",
        paper="Sharma et al., Learned NCM",
    ),
    # --- SMART (Zhang et al. 2024): head-to-tail feature augmentation, online and as a sampler
    "SMART (online, BSCE)": Method(
        lambda rs, dev: _scaled(
            LinearClassifier(loss="balanced_softmax", augmenter=SMARTAugmenter(), random_state=rs, device=dev)
        ),
        baseline="Balanced softmax",
        paper="Zhang et al. 2024",
    ),
    # the former default: keeps each class's share of the loss by down-weighting instead of moving BSCE's prior
    "SMART (online, BSCE, prior reweight)": Method(
        lambda rs, dev: _scaled(
            LinearClassifier(
                loss="balanced_softmax",
                augmenter=SMARTAugmenter(prior_correction="reweight"),
                random_state=rs,
                device=dev,
            )
        ),
        baseline="Balanced softmax",
        paper="Zhang et al. 2024",
    ),
    "SMART (sampler, BSCE)": Method(
        lambda rs, dev: make_imblearn_pipeline(
            StandardScaler(),
            SMARTAugmenter(random_state=rs),
            LinearClassifier(loss="balanced_softmax", random_state=rs, device=dev),
        ),
        baseline="Balanced softmax",
        paper="Zhang et al. 2024",
    ),
    # --- BTM (Yu, Du & Wu): balanced few-shot fine-tuning and weight merging of an MLP head
    "MLP head": Method(
        lambda rs, dev: _scaled(MLPHeadClassifier(random_state=rs, device=dev)), group="baseline"
    ),
    "MLP head + post-training": Method(
        lambda rs, dev: _scaled(
            BalancedUndersampleMerger(MLPHeadClassifier(random_state=rs, device=dev), n_subsets=0, random_state=rs)
        ),
        group="baseline",
        baseline="MLP head",
        paper="Yu, Du & Wu 2024 (baseline)",
    ),
    "BTM (MLP head)": Method(
        lambda rs, dev: _scaled(
            BalancedUndersampleMerger(MLPHeadClassifier(random_state=rs, device=dev), random_state=rs)
        ),
        baseline="MLP head + post-training",
        paper="Yu, Du & Wu 2024",
    ),
    # --- DLSA (Xu et al. 2022): flow-filter cascade on top of the balanced-softmax linear classifier
    "DLSA": Method(
        lambda rs, dev: _scaled(DLSAClassifier(random_state=rs, device=dev)),
        baseline="Balanced softmax",
        paper="Xu et al. 2022",
    ),
}
