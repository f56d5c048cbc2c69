"""DLSA: dynamic label space adjustment by a cascade of Gaussian-mixture flow filters (Xu et al., ECCV 2022)."""

import math
import numbers
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from ..torch._base import BaseTorchClassifier
from ..torch._callbacks import KeepBestEpoch, TrainingDivergedError
from ..torch._data import ShuffledBatchSampler
from ..torch._losses import LogitAdjustedLoss
from ..torch._net import train_module
from ..utils import _param_constraints as pc
from ..utils._split import tail_safe_validation_split
from ..utils._validation import check_float32_range
from ._flow_training import (
    ClassPairSampler,
    DLSAFlowLoss,
    RecordLossTerms,
    SelectFlowEpoch,
    effective_lambda_mle,
    flow_class_weights,
    flow_outputs,
)
from ._modules import ClusterAidedClassifier, GaussianMixtureFlow

#: head/tail border of the paper's separation diagnostic (Fig. 2 and 7): a tail class has at most 50 samples
TAIL_THRESHOLD = 50
#: the paper's number of clusters, used once the data is large enough
MAX_AUTO_CLUSTERS = 500
#: training samples per cluster aimed at by ``n_clusters="auto"``
SAMPLES_PER_CLUSTER = 50
#: mean distance between two mixture centres aimed at by ``center_std="auto"`` (Supp. Sec. 3)
CENTER_DISTANCE = 3.0


def auto_n_clusters(n_samples, n_classes):
    """``n_clusters="auto"``: ``min(500, max(n_classes, n_samples // 50))``, at least 2.

    The paper's 500 clusters (about 230 ImageNet-LT samples each) need about
    25,000 samples; below that a cluster would hold too few samples for its
    class frequencies ``P(y | h)`` to mean anything, so aim at ~50 samples per
    cluster, but keep at least one cluster per class so that pure clusters are
    possible at all.

    Examples
    --------
    >>> from sklearn_lt.flows._dlsa import auto_n_clusters
    >>> auto_n_clusters(115_846, 1000), auto_n_clusters(2_935, 26), auto_n_clusters(60, 3)
    (500, 58, 3)
    """
    return int(max(2, min(MAX_AUTO_CLUSTERS, max(n_classes, n_samples // SAMPLES_PER_CLUSTER))))


def auto_center_std(n_features):
    """``center_std="auto"``: ``3 / sqrt(2 d)``, so that two centres lie ~3 latent units apart.

    The supplement (Sec. 3) derives ``E|mu_p - mu_q|^2 = 2 d sigma^2`` and wants
    the centres about three unit standard deviations apart; its chosen 0.05 is
    this rule at ResNet-50's ``d = 2048`` (0.047). A fixed 0.05 at ``d = 16``
    would put all centres within 0.3 of each other: every cluster the same.
    """
    return CENTER_DISTANCE / math.sqrt(2.0 * max(int(n_features), 1))


class DLSAClassifier(BaseTorchClassifier):
    """Dynamic label space adjustment: a cascade of Gaussian-mixture flow filters before classification.

    Each filter is a normalizing flow (two MAF blocks with batch-norm
    bijections) from the features to a latent space with a uniform mixture of
    ``K`` unit Gaussians at fixed random centres. It is trained with a
    class-weighted likelihood (weights ``n_y^-q``, so rare classes are fitted
    best), a cluster-balancedness term and a purity term on pairs of samples of
    different classes. The ``filter_fraction`` of the training samples with the
    highest likelihood goes to that filter's *cluster-aided classifier*
    ``softmax(FC[x] + FC[z, P(y | h)])`` (``z`` the flow latent, ``P(y | h)``
    the class frequencies of the sample's cluster); the rest go to the next
    filter, and what is left after the last one to a balanced-softmax linear
    classifier. At prediction the same absolute likelihood thresholds route the
    samples, so the share routed to each stage may differ from training.

    The idea: the weighted likelihood makes tail samples fit the mixture best,
    so the filters peel a tail-rich, more balanced group off the data, and the
    head-dominated remainder is classified with less head-to-tail bias.

    Parameters
    ----------
    n_filters : int, default=1
        Flow filters in the cascade (the paper's figures use 3, the authors'
        released configurations 1 for CE/CBS features); 0 is the plain
        balanced-softmax linear classifier. The cascade stops early when a
        filter would route nothing or fewer than two classes are left.
    n_clusters : int or "auto", default="auto"
        Mixture components ``K`` per filter. ``"auto"`` is
        ``min(500, max(n_classes, n_samples // 50))``: the paper's 500 on large
        data, about 50 samples per cluster (and at least one per class) on
        small data, where 500 clusters would be nearly empty.
    filter_fraction : float in [0, 1), default=0.3
        Share of the samples reaching a filter that it routes to its
        cluster-aided classifier (the training-likelihood quantile ``1 - filter_fraction``
        becomes the threshold).
    q : float, default=2.0
        Exponent of the likelihood class weights ``n_y^-q``.
    lambda_mle : float or "authors", default="authors"
        Weight of the likelihood term, which is computed as a class-weighted
        mean in nats per dimension. The authors' term (weights summing to one
        over classes, averaged over the batch) equals this one times
        ``lambda_lh * d / C`` (``d`` features, ``C`` classes of the flow's
        training samples, ``lambda_lh`` their coefficient: 1 in Eq. 11, 2 in
        the ImageNet-LT configuration). ``"authors"`` is ``d / C``
        (``lambda_lh = 1``); a number is used as it is, so ``lambda_mle=1``
        weighs one nat per dimension the same at any ``d`` and ``C``; 0 removes
        the term. The value used per filter is in `flow_lambda_mle_`.
    lambda_bal, lambda_pure : float, default=1.0, 0.02
        Weights of the balancedness and purity terms; 0 removes a term (the
        paper's ablation).
    eta : float in [0, 1), default=0.7
        Momentum of the cluster-posterior estimate in the balancedness term.
    center_std : float or "auto", default="auto"
        Standard deviation of the centre coordinates; ``"auto"`` is
        ``3 / sqrt(2 d)`` (Supp. Sec. 3: centres about 3 apart; 0.047 at
        ``d = 2048``, the paper's 0.05).
    stage_prior : {"global", "subset"}, default="global"
        Class counts in the balanced-softmax loss of each stage's classifier.
        ``"global"`` (all training counts) makes each stage's logits the
        balanced-test posterior given the routing, the Bayes-consistent choice;
        ``"subset"`` uses the counts of the samples routed to that stage (the
        authors' cluster-aided classifier).
    flow_class_counts : {"subset", "global"}, default="subset"
        Class counts ``n_y`` of the likelihood weights of a filter.
        ``"subset"`` (the authors): the counts of the training samples that
        reach that filter; ``"global"``: all training counts (the same at
        every depth).
    flow_selection : {"clusters", "likelihood"}, default="clusters"
        Which flow epoch is kept. ``"clusters"`` (the authors): the epoch with
        the most clusters of purity > 0.7 and more than 10 samples on the
        filter's training samples, among epochs whose largest cluster holds
        less than 21.6 times the mean cluster size (the authors' 5,000 of
        ImageNet-LT's 115,846 samples in 500 clusters). ``"likelihood"``: the
        epoch of lowest class-weighted validation likelihood loss (the last
        epoch when ``validation_fraction=0``). Either way, after every epoch
        and before it is scored, the batch-norm statistics are set to those of
        its weights on the flow's training samples (class-uniform, as the pair
        stream; see ``flows._flow_training.reestimate_flow_statistics``), and the kept state
        holds them.
    flow_max_epochs : int, default=50
        Flow training epochs (an epoch is ``n_samples`` pairs).
    flow_batch_size : int, default=256
        Pairs per flow batch (the authors' 1024 gives too few steps on small data).
    flow_lr : float, default=0.2
        Learning rate of the flow (plain SGD, constant, as the authors).
    max_epochs : int, default=30
        Epochs of each stage's classifier (AdamW, cosine schedule).
    batch_size : int, default=128
        Batch size of the classifiers.
    lr : float, default=0.01
        Initial learning rate of the classifiers.
    weight_decay : float, default=1e-4
        Weight decay of the classifiers.
    validation_fraction : float in [0, 1), default=0.1
        Share of each class held out (:func:`~sklearn_lt.utils.tail_safe_validation_split`)
        to keep the epoch of lowest validation loss of each classifier and to
        report (``flow_selection="likelihood"``: select on) the flows'
        validation likelihood; 0 trains on everything and keeps the
        classifiers' last epochs.
    device : str, default="auto"
        ``"auto"`` (CUDA if available, else CPU) or a torch device string.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the centres, the initialisation and the sampling.
    verbose : int, default=0
        1 prints skorch's per-epoch tables.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Training samples per class (before the validation split).
    n_filters_ : int
        Filters actually built.
    n_clusters_ : int
        Mixture components per filter.
    center_std_ : float
        Standard deviation of the centres.
    thresholds_ : ndarray of shape (`n_filters_`,)
        Log-likelihood thresholds: a sample reaching filter ``j`` with
        ``log p_j(x) >= thresholds_[j]`` is classified by stage ``j``.
    flow_nets_ : list of skorch nets
        The fitted flows (``flow_nets_[j].module_`` is a :class:`GaussianMixtureFlow`);
        their history has per epoch the loss terms ``mle``, ``bal``, ``pure``,
        ``valid_loss`` (with validation data), ``pure_clusters`` and
        ``largest_cluster`` (``flow_selection="clusters"``) and ``selected``.
    flow_epochs_ : list of int or None
        The epoch kept for each flow (1-based; None when none qualified and
        the last weights are kept).
    flow_lambda_mle_ : list of float
        The likelihood weight each flow was trained with (see ``lambda_mle``).
    stage_nets_ : list of skorch nets
        The fitted cluster-aided classifiers.
    net_ : skorch net
        The final balanced-softmax linear classifier; ``history_`` its history.
    cluster_priors_ : list of ndarrays of shape (`n_clusters_`, n_classes)
        ``P(y | h)`` of each filter, from the training samples (zeros for an empty cluster).
    cluster_sizes_ : list of ndarrays of shape (`n_clusters_`,)
        Training samples per cluster of each filter.
    cluster_purity_ : list of ndarrays of shape (`n_clusters_`,)
        Share of a cluster's largest class (NaN for an empty cluster).
    routing_shares_ : ndarray of shape (`n_filters_` + 1,)
        Share of the training samples each stage classified.
    separation_accuracy_ : ndarray of shape (`n_filters_`,)
        Head/tail separation accuracy of each filter on the training samples
        reaching it (see :meth:`head_tail_separation`); 0.5 is random routing.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.
    device_ : str
        Device the model was trained on.

    Notes
    -----
    DLSA splits the training data between its stages, so every stage
    classifier learns from a subset; it can only win where the filters
    separate head from tail well and the data is large. On the library's
    bundled data (a few thousand samples) it is 2-6 points *below* the
    balanced-softmax classifier it builds on (letter, icd10cm; 3 seeds), and
    its filter's tail precision is within a few points of the tail base rate,
    i.e. of random routing; ``head_tail_separation`` and ``route`` let you
    check this on your own validation data (see the user guide, "DLSA").

    See Also
    --------
    sklearn_lt.linear_model.LinearClassifier : the balanced-softmax classifier DLSA builds on.
    GaussianMixtureFlow : the flow filter module.

    References
    ----------
    .. [1] Y. Xu, Y.-L. Li, J. Li and C. Lu, "Constructing Balance from Imbalance
       for Long-tailed Image Recognition", ECCV 2022. https://github.com/silicx/DLSA

    Examples
    --------
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> from sklearn_lt.flows import DLSAClassifier
    >>> X, X_test, y, y_test = make_long_tailed_classification(random_state=0)
    >>> clf = DLSAClassifier(flow_max_epochs=5, random_state=0).fit(X, y)
    >>> clf.n_filters_, clf.thresholds_.shape
    (1, (1,))
    >>> stages = clf.route(X_test)  # 0: the filter's classifier, 1: the final one
    >>> sorted(set(stages.tolist())) == [0, 1]
    True
    >>> round(clf.score(X_test, y_test), 1) >= 0.5
    True
    """

    # 50 classifier epochs: a stage of scikit-learn's 200-sample check data is one batch, one step per epoch
    _test_params = {"flow_max_epochs": 2, "max_epochs": 50}

    _parameter_constraints: dict = {
        "n_filters": pc.EPOCHS,
        "n_clusters": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "filter_fraction": pc.FRACTION,
        "q": pc.NONNEGATIVE_REAL,
        "lambda_mle": [StrOptions({"authors"}), *pc.NONNEGATIVE_REAL],
        "lambda_bal": pc.NONNEGATIVE_REAL,
        "lambda_pure": pc.NONNEGATIVE_REAL,
        "eta": pc.FRACTION,
        "center_std": [StrOptions({"auto"}), *pc.POSITIVE_REAL],
        "stage_prior": [StrOptions({"global", "subset"})],
        "flow_class_counts": [StrOptions({"subset", "global"})],
        "flow_selection": [StrOptions({"clusters", "likelihood"})],
        "flow_max_epochs": pc.EPOCHS,
        "flow_batch_size": pc.POSITIVE_INT,
        "flow_lr": pc.NONNEGATIVE_REAL,
        "max_epochs": pc.EPOCHS,
        "batch_size": pc.POSITIVE_INT,
        "lr": pc.NONNEGATIVE_REAL,
        "weight_decay": pc.NONNEGATIVE_REAL,
        "validation_fraction": pc.FRACTION,
        **pc.TORCH_COMMON,
    }

    def __init__(
        self,
        *,
        n_filters=1,
        n_clusters="auto",
        filter_fraction=0.3,
        q=2.0,
        lambda_mle="authors",
        lambda_bal=1.0,
        lambda_pure=0.02,
        eta=0.7,
        center_std="auto",
        stage_prior="global",
        flow_class_counts="subset",
        flow_selection="clusters",
        flow_max_epochs=50,
        flow_batch_size=256,
        flow_lr=0.2,
        max_epochs=30,
        batch_size=128,
        lr=0.01,
        weight_decay=1e-4,
        validation_fraction=0.1,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_filters = n_filters
        self.n_clusters = n_clusters
        self.filter_fraction = filter_fraction
        self.q = q
        self.lambda_mle = lambda_mle
        self.lambda_bal = lambda_bal
        self.lambda_pure = lambda_pure
        self.eta = eta
        self.center_std = center_std
        self.stage_prior = stage_prior
        self.flow_class_counts = flow_class_counts
        self.flow_selection = flow_selection
        self.flow_max_epochs = flow_max_epochs
        self.flow_batch_size = flow_batch_size
        self.flow_lr = flow_lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _fit_net(self, X, y, sample_weight, generator):
        """The paper's cascade: per filter, fit the flow (selecting its epoch), route, train its classifier.

        The samples a filter does not route go on to the next filter; what is
        left after the last one trains the final balanced-softmax classifier,
        which is returned (``net_``). Suffix ``_t``: indices into the training
        rows ``data.Xt``; ``_v``: into the validation rows ``data.Xv``.
        """
        data = self._split(X, y, sample_weight, generator)
        self._start_cascade(data)
        stage_t = np.full(len(data.yt), -1)
        active_t, active_v = np.arange(len(data.yt)), np.arange(len(data.yv))
        for depth in range(self.n_filters):
            filtered = self._add_filter(depth, data, active_t, active_v, generator)
            if filtered is None:
                break
            routed_t, active_v = filtered
            stage_t[routed_t] = depth
            active_t = np.setdiff1d(active_t, routed_t)
        self._record_routing(data, stage_t, active_t)
        return self._fit_final_classifier(data, active_t, active_v, generator)

    def _split(self, X, y, sample_weight, generator):
        """Hold out the ``validation_fraction`` of every class (none when it is 0)."""
        if self.validation_fraction > 0:
            split_seed = int(torch.randint(np.iinfo(np.int32).max, (1,), generator=generator))
            train, valid = tail_safe_validation_split(y, self.validation_fraction, random_state=split_seed)
        else:
            train, valid = np.arange(len(y)), np.arange(0)
        return _FitData(X, y, sample_weight, train, valid, len(self.classes_))

    def _start_cascade(self, data):
        """Resolve the ``"auto"`` flow parameters and empty the per-filter attributes."""
        n_features = data.Xt.shape[1]
        self.n_clusters_ = (
            auto_n_clusters(len(data.yt), len(self.classes_)) if isinstance(self.n_clusters, str) else int(self.n_clusters)
        )
        self.center_std_ = auto_center_std(n_features) if isinstance(self.center_std, str) else float(self.center_std)
        self.flow_nets_, self.stage_nets_, self.thresholds_ = [], [], []
        self.cluster_priors_, self.cluster_sizes_, self.cluster_purity_ = [], [], []
        self.flow_epochs_, self.flow_lambda_mle_ = [], []

    def _add_filter(self, depth, data, active_t, active_v, generator):
        """Filter ``depth`` on the samples reaching it: fit its flow, route, train its cluster-aided classifier.

        Returns the training rows it routes and the validation rows that pass
        it on, or None when the cascade stops before it.
        """
        n_active = len(active_t)
        n_keep = int(n_active * (1.0 - self.filter_fraction))
        if len(np.unique(data.yt[active_t])) < 2 or n_keep in (0, n_active):
            return None  # nothing to separate, nothing to route, or nothing left for the next stage
        flow_net = self._fit_flow(data, active_t, active_v, generator)
        routing = self._route_training(depth, flow_net, data, active_t, n_keep)
        if routing is None:
            return None
        threshold, routed_t, (_, z_t, h_t) = routing
        prior, features_t = self._cluster_aided_features(data, routed_t, z_t, h_t)
        valid_data, active_v = self._route_validation(flow_net, data, active_v, threshold, prior)
        n_features, n_classes = data.Xt.shape[1], len(self.classes_)
        stage_net = self._train_classifier(
            ClusterAidedClassifier(n_features, n_features, n_classes),
            self._stage_prior_counts(data, routed_t),
            features_t.astype(np.float32),
            data.yt[routed_t],
            data.wt[routed_t],
            valid_data,
            generator,
        )
        self._record_filter(flow_net, stage_net, threshold, prior, h_t)
        return routed_t, active_v

    def _fit_flow(self, data, active_t, active_v, generator):
        """Train a flow filter on the training samples reaching it, keeping the epoch ``flow_selection`` picks."""
        Xa, ya = data.Xt[active_t], data.yt[active_t]
        n_features, n_classes = Xa.shape[1], len(self.classes_)
        weight_counts = (
            data.train_counts if self.flow_class_counts == "global" else np.bincount(ya, minlength=n_classes)
        )
        lambda_mle = effective_lambda_mle(self.lambda_mle, n_features, np.count_nonzero(weight_counts))
        flow = GaussianMixtureFlow(n_features, self.n_clusters_, self.center_std_, mean=data.mean, scale=data.scale)
        criterion = DLSAFlowLoss(
            flow_class_weights(weight_counts, self.q),
            n_features,
            lambda_mle=lambda_mle,
            lambda_bal=self.lambda_bal,
            lambda_pure=self.lambda_pure,
            eta=self.eta,
        )
        valid = (data.Xv[active_v], data.yv[active_v], data.wv[active_v]) if len(active_v) else None
        selection = SelectFlowEpoch(self.flow_selection, Xa, ya, valid=valid)
        flow_net = train_module(
            flow,
            criterion,
            Xa,
            ya,
            sample_weight=data.wt[active_t],
            sampler=ClassPairSampler(ya, self.flow_batch_size, generator=generator),
            max_epochs=self.flow_max_epochs,
            optimizer="sgd",
            lr=self.flow_lr,
            lr_schedule="constant",
            callbacks=[("loss_terms", RecordLossTerms()), ("select_epoch", selection)],
            device=self.device_,
            verbose=self.verbose,
        )
        self.flow_epochs_.append(selection.best_epoch_)
        self.flow_lambda_mle_.append(lambda_mle)
        return flow_net

    def _route_training(self, depth, flow_net, data, active_t, n_keep):
        """The filter's threshold (the likelihood quantile that routes ``filter_fraction``) and the rows it routes.

        Returns ``(threshold, routed rows, flow outputs on all training rows)``,
        or None (with a warning) when ties leave nothing on one side.
        """
        outputs_t = flow_outputs(flow_net, data.Xt)
        llh = outputs_t[0][active_t]
        if not np.all(np.isfinite(llh)):
            raise TrainingDivergedError(
                f"DLSAClassifier: flow filter {depth} gives non-finite log-likelihoods: its training diverged. "
                "Use a smaller flow_lr, and standardise the features if their scale is large."
            )
        threshold = np.sort(llh)[n_keep]
        routed_t = active_t[llh >= threshold]
        if len(routed_t) in (0, len(active_t)):
            # ties (e.g. constant features) leave nothing to one side: a stage would train on no sample
            warnings.warn(
                f"DLSAClassifier: flow filter {depth} gives {len(np.unique(llh))} distinct "
                f"log-likelihood(s) for {len(active_t)} samples, so its threshold routes all or none of them; the "
                f"cascade stops with {depth} filter(s). Check that the features are not constant.",
                ConvergenceWarning,
                stacklevel=6,  # the caller of fit, through _add_filter, _fit_net, fit and its _fit_context
            )
            return None
        return threshold, routed_t, outputs_t

    def _cluster_aided_features(self, data, routed_t, z_t, h_t):
        """The filter's cluster prior ``P(y | h)`` and the features ``[x, z, P(y | h)]`` of the routed rows."""
        counts = np.zeros((self.n_clusters_, len(self.classes_)))
        np.add.at(counts, (h_t, data.yt), data.wt)
        prior = _normalise_rows(counts)
        # a training sample's own label must not be in its cluster prior: at test time it is not
        loo = counts[h_t[routed_t]].copy()
        loo[np.arange(len(routed_t)), data.yt[routed_t]] -= data.wt[routed_t]
        features_t = np.hstack([data.Xt[routed_t], z_t[routed_t], _normalise_rows(np.clip(loo, 0, None))])
        return prior, features_t

    def _route_validation(self, flow_net, data, active_v, threshold, prior):
        """The stage's validation set (the validation rows the filter routes) and the rows it passes on."""
        valid_data = None
        if len(active_v):
            llh_v, z_v, h_v = flow_outputs(flow_net, data.Xv[active_v])
            hit = llh_v >= threshold
            if hit.any():
                valid_data = (np.hstack([data.Xv[active_v][hit], z_v[hit], prior[h_v[hit]]]), data.yv[active_v][hit])
            active_v = active_v[~hit]
        return valid_data, active_v

    def _stage_prior_counts(self, data, rows_t):
        """Class counts of a stage's balanced-softmax loss (``stage_prior``)."""
        if self.stage_prior == "global":
            return data.train_counts
        return np.bincount(data.yt[rows_t], minlength=len(self.classes_))

    def _train_classifier(self, module, prior_counts, features, y, sample_weight, valid, generator):
        """Train a stage's classifier with the balanced-softmax loss, keeping its epoch of lowest validation loss."""
        # the first of equal losses: the epoch skorch's EarlyStopping(threshold=0), used before, restored
        callbacks = None
        if valid is not None:
            callbacks = [("keep_best", KeepBestEpoch("valid_loss", min_epochs=1, lower_is_better=True))]
        return train_module(
            module,
            LogitAdjustedLoss(prior_counts, tau=1.0),
            features,
            y,
            sample_weight=sample_weight,
            sampler=ShuffledBatchSampler(len(y), self.batch_size, generator=generator),
            max_epochs=self.max_epochs,
            optimizer="adamw",
            lr=self.lr,
            optimizer_kwargs={"weight_decay": self.weight_decay},
            callbacks=callbacks,
            valid_data=valid,
            device=self.device_,
            verbose=self.verbose,
        )

    def _record_filter(self, flow_net, stage_net, threshold, prior, h_t):
        self.flow_nets_.append(flow_net)
        self.stage_nets_.append(stage_net)
        self.thresholds_.append(float(threshold))
        self.cluster_priors_.append(prior)
        sizes = np.bincount(h_t, minlength=self.n_clusters_)
        self.cluster_sizes_.append(sizes)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.cluster_purity_.append(np.where(sizes > 0, prior.max(1), np.nan))

    def _record_routing(self, data, stage_t, active_t):
        """``n_filters_``, ``thresholds_`` as an array, the training routing shares and the filters' separation."""
        self.n_filters_ = len(self.flow_nets_)
        self.thresholds_ = np.asarray(self.thresholds_, dtype=np.float64)
        stage_t[active_t] = self.n_filters_
        self.routing_shares_ = np.bincount(stage_t, minlength=self.n_filters_ + 1) / len(stage_t)
        is_tail = data.train_counts[data.yt] <= TAIL_THRESHOLD
        self.separation_accuracy_ = _separation(stage_t, self.n_filters_, is_tail)["balanced_accuracy"]

    def _fit_final_classifier(self, data, active_t, active_v, generator):
        """The balanced-softmax linear classifier (zero-initialised) of the samples no filter routed."""
        n_features, n_classes = data.Xt.shape[1], len(self.classes_)
        final = nn.Linear(n_features, n_classes)
        nn.init.zeros_(final.weight)
        nn.init.zeros_(final.bias)
        valid = (data.Xv[active_v], data.yv[active_v]) if len(active_v) else None
        Xa, ya, wa = data.Xt[active_t], data.yt[active_t], data.wt[active_t]
        return self._train_classifier(final, self._stage_prior_counts(data, active_t), Xa, ya, wa, valid, generator)

    # ------------------------------------------------------------------ routing
    def _validated(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        check_float32_range(X, estimator=self)
        return np.asarray(X, dtype=np.float32)

    def _cascade(self, X):
        """Stage of every sample and, per filter, the flow outputs of the samples reaching it."""
        stages = np.full(len(X), self.n_filters_)
        active = np.arange(len(X))
        outputs = []
        for depth, flow_net in enumerate(self.flow_nets_):
            llh, z, h = flow_outputs(flow_net, X[active])
            hit = llh >= self.thresholds_[depth]
            outputs.append((active, llh, z, h, hit))
            stages[active[hit]] = depth
            active = active[~hit]
        return stages, outputs

    def _logits(self, X):
        logits = np.zeros((len(X), len(self.classes_)), dtype=np.float32)
        stages, outputs = self._cascade(X)
        for depth, (active, _, z, h, hit) in enumerate(outputs):
            if hit.any():
                features = np.hstack([X[active[hit]], z[hit], self.cluster_priors_[depth][h[hit]]])
                logits[active[hit]] = self.stage_nets_[depth].predict_logits(features.astype(np.float32)).numpy()
        rest = stages == self.n_filters_
        if rest.any():
            logits[rest] = self.net_.predict_logits(X[rest]).numpy()
        return logits

    def route(self, X):
        """Which stage classifies each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        stages : ndarray of shape (n_samples,)
            ``j < n_filters_``: the cluster-aided classifier of filter ``j``;
            ``n_filters_``: the final balanced-softmax classifier.
        """
        return self._cascade(self._validated(X))[0]

    def log_likelihood(self, X):
        """``log p(x)`` under every filter's flow (whether or not the sample reaches it).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples, `n_filters_`)
        """
        X = self._validated(X)
        return np.column_stack([flow_outputs(net, X)[0] for net in self.flow_nets_] or [np.zeros((len(X), 0))])

    def assign_clusters(self, X):
        """Cluster (nearest latent centre) of each sample under every filter.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        clusters : ndarray of shape (n_samples, `n_filters_`)
        """
        X = self._validated(X)
        clusters = [flow_outputs(net, X)[2] for net in self.flow_nets_]
        return np.column_stack(clusters or [np.zeros((len(X), 0), dtype=np.int64)])

    def head_tail_separation(self, X, y, *, tail_threshold=TAIL_THRESHOLD):
        """How well each filter separates tail from head samples (the paper's Fig. 7 diagnostic).

        A class is *tail* when it had at most ``tail_threshold`` training
        samples. Among the samples that reach filter ``j``, the filter's
        decision "route to my classifier" is scored as a prediction of "is
        tail". The paper's Fig. 7 reports the tail precision; it depends on the
        share of tail samples, so compare it with ``"tail_base_rate"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels from ``classes_``.
        tail_threshold : int, default=50

        Returns
        -------
        separation : dict of ndarrays of shape (`n_filters_`,)
            ``"tail_precision"``: share of tail samples among those the filter
            routes, the quantity of the paper's Fig. 7 ("the accuracy of these
            samples being tail classes"), to be read against
            ``"tail_base_rate"``, the share of tail samples among those reaching
            the filter (what random routing scores); ``"balanced_accuracy"``:
            mean of the routing rate of tail samples and the keeping rate of
            head samples (0.5 for random routing, NaN when one group does not
            reach the filter); ``"tail_rate"``, ``"head_rate"``: share of the
            tail / head samples reaching the filter that it routes.
        """
        stages = self.route(X)
        y = np.asarray(y)
        index = np.searchsorted(self.classes_, y)
        index = np.clip(index, 0, len(self.classes_) - 1)
        if len(y) != len(stages) or not np.array_equal(self.classes_[index], y):
            raise ValueError("y must have one label from classes_ per row of X.")
        return _separation(stages, self.n_filters_, self.class_counts_[index] <= tail_threshold)


class _FitData:
    """The rows every stage of one fit reads: training (``Xt, yt, wt``) and validation (``Xv, yv, wv``) parts,
    the training class counts and the flows' input standardisation."""

    def __init__(self, X, y, sample_weight, train, valid, n_classes):
        self.Xt, self.yt, self.wt = X[train], y[train], sample_weight[train]
        self.Xv, self.yv, self.wv = X[valid], y[valid], sample_weight[valid]
        self.train_counts = np.bincount(self.yt, minlength=n_classes).astype(np.float64)
        self.mean, self.scale = self.Xt.mean(0), self.Xt.std(0)
        self.scale[~(self.scale > 1e-12)] = 1.0


def _normalise_rows(counts):
    totals = counts.sum(1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts, dtype=np.float64), where=totals > 0)


def _separation(stages, n_filters, is_tail):
    keys = ("balanced_accuracy", "tail_precision", "tail_base_rate", "tail_rate", "head_rate")
    result = {key: np.full(n_filters, np.nan) for key in keys}
    reaching = np.ones(len(stages), dtype=bool)
    for depth in range(n_filters):
        routed = stages == depth
        tail, head = reaching & is_tail, reaching & ~is_tail
        if reaching.any():
            result["tail_base_rate"][depth] = is_tail[reaching].mean()
        if tail.any():
            result["tail_rate"][depth] = routed[tail].mean()
        if head.any():
            result["head_rate"][depth] = routed[head].mean()
        if (reaching & routed).any():
            result["tail_precision"][depth] = is_tail[reaching & routed].mean()
        result["balanced_accuracy"][depth] = 0.5 * (result["tail_rate"][depth] + 1 - result["head_rate"][depth])
        reaching &= ~routed
    return result
