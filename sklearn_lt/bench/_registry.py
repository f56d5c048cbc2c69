"""What the main benchmark runs: every method of the library and the baselines a user would pick instead.

Each entry is ``name -> Method(make, group, baseline, paper)``: ``make(random_state, device)``
returns an unfitted estimator (scaling included where the model needs it),
``baseline`` names the row the method's paper compares it with (shown next to
it in the table), ``group`` is "baseline" or "method". Two optional fields let
the table be honest about what a fitted method did: ``own_base`` returns the
base classifier a fitted method contains (compared with on the same split
instead of an independently fitted ``baseline``) and ``acted_on`` how much of
the model the method changed.
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
    """One row of the main job: how to build the estimator and what to compare it with.

    Parameters
    ----------
    make : callable
        ``make(random_state, device)`` returns an unfitted estimator.
    group : str, default="method"
        ``"baseline"`` or ``"method"`` (``"user"`` for estimators passed to
        :func:`~sklearn_lt.bench.compare`).
    baseline : str, default=None
        Name of the row the method's paper compares it with.
    paper : str, default=""
        The paper, for ``--list``.
    own_base : callable, default=None
        ``own_base(fitted_final_step)`` returns the fitted base classifier the
        method contains; the paired comparison is then against that base,
        scored on the same split, instead of ``baseline``.
    own_base_label : str, default="own base"
        How the own base's row is labelled.
    acted_on : callable, default=None
        ``acted_on(fitted_final_step)`` returns ``(n_changed, n_total, what)``;
        a method with ``n_changed == 0`` did nothing and gets no comparison.
    """

    make: Callable
    group: str = "method"
    baseline: Optional[str] = None
    paper: str = ""
    own_base: Optional[Callable] = None
    own_base_label: str = "own base"
    acted_on: Optional[Callable] = None


def _base_estimator(fitted):
    return fitted.estimator_


def _alphanet_corrected(fitted):
    return len(fitted.few_classes_), len(fitted.classes_), "classes corrected"


def _dlsa_filters(fitted):
    return fitted.n_filters_, fitted.n_filters, "flow filters built"


# BTM's options that measured better than the paper's settings (doc/user_guide/btm.rst, departures table)
_BTM_TUNED = {"finetune_lr": 0.02, "finetune_batch_size": "auto"}
_BTM_BSCE = {"post_train_loss": "balanced_softmax", "post_train_sampling": "instance"}


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
    # --- AlphaNet (Chang et al.): post-hoc correction of the few-class rows of a cRT base (paper defaults,
    # logit_scale=1.0); its own base is the fitted estimator_ (same training part), not the "cRT" row
    "AlphaNet (cRT) rho=1": Method(
        lambda rs, dev: _scaled(AlphaNetClassifier(rho=1.0, random_state=rs, device=dev)),
        baseline="cRT",
        paper="Chang et al. (AlphaNet)",
        own_base=_base_estimator,
        own_base_label="own cRT base, 90 % of train",
        acted_on=_alphanet_corrected,
    ),
    "AlphaNet (cRT) rho=0.5": Method(
        lambda rs, dev: _scaled(AlphaNetClassifier(rho=0.5, random_state=rs, device=dev)),
        baseline="cRT",
        paper="Chang et al. (AlphaNet)",
        own_base=_base_estimator,
        own_base_label="own cRT base, 90 % of train",
        acted_on=_alphanet_corrected,
    ),
    # option row: the library's logit-scale rule (helps a base that memorised its training data)
    "AlphaNet (cRT) logit_scale=auto": Method(
        lambda rs, dev: _scaled(AlphaNetClassifier(rho=1.0, logit_scale="auto", random_state=rs, device=dev)),
        baseline="cRT",
        paper="Chang et al. (AlphaNet), sklearn_lt option",
        own_base=_base_estimator,
        own_base_label="own cRT base, 90 % of train",
        acted_on=_alphanet_corrected,
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
    # --- BTM (Yu, Du & Wu): balanced few-shot fine-tuning and weight merging of an MLP head. Each BTM row is
    # paired with the pre-trained head given the same post-training alone (n_subsets=0).
    "MLP head": Method(
        lambda rs, dev: _scaled(MLPHeadClassifier(random_state=rs, device=dev)), group="baseline"
    ),
    "MLP head + post-training": Method(  # the paper's post-training: cross-entropy, class-balanced sampling
        lambda rs, dev: _scaled(
            BalancedUndersampleMerger(MLPHeadClassifier(random_state=rs, device=dev), n_subsets=0, random_state=rs)
        ),
        group="baseline",
        baseline="MLP head",
        paper="Yu, Du & Wu 2024 (baseline)",
    ),
    "BTM (MLP head, paper protocol)": Method(  # the defaults: lr 5e-3, batch 256, CE + class-balanced post-training
        lambda rs, dev: _scaled(
            BalancedUndersampleMerger(MLPHeadClassifier(random_state=rs, device=dev), random_state=rs)
        ),
        baseline="MLP head + post-training",
        paper="Yu, Du & Wu 2024",
    ),
    "MLP head + BSCE post-training": Method(
        lambda rs, dev: _scaled(
            BalancedUndersampleMerger(
                MLPHeadClassifier(random_state=rs, device=dev), n_subsets=0, random_state=rs, **_BTM_BSCE
            )
        ),
        group="baseline",
        baseline="MLP head",
        paper="Yu, Du & Wu 2024 (baseline)",
    ),
    "BTM (MLP head, tuned)": Method(  # the options chosen on validation splits (benchmarks/select_btm_defaults.py)
        lambda rs, dev: _scaled(
            BalancedUndersampleMerger(
                MLPHeadClassifier(random_state=rs, device=dev), random_state=rs, **_BTM_TUNED, **_BTM_BSCE
            )
        ),
        baseline="MLP head + BSCE post-training",
        paper="Yu, Du & Wu 2024",
    ),
    # --- DLSA (Xu et al. 2022): flow-filter cascade on top of the balanced-softmax linear classifier
    "DLSA": Method(
        lambda rs, dev: _scaled(DLSAClassifier(random_state=rs, device=dev)),
        baseline="Balanced softmax",
        paper="Xu et al. 2022",
        acted_on=_dlsa_filters,
    ),
}
