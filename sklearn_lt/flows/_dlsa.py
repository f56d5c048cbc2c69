"""DLSA: dynamic label space adjustment by a cascade of Gaussian-mixture flow filters (Xu et al., ECCV 2022)."""

import copy
import math
import numbers
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import Callback
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Sampler

from ..torch._base import BaseTorchClassifier
from ..torch._callbacks import KeepBestEpoch, TrainingDivergedError
from ..torch._data import PREDICT_BATCH_ROWS, ShuffledBatchSampler, batched_forward, row_batches
from ..torch._losses import LogitAdjustedLoss
from ..torch._net import train_module
from ..utils import _param_constraints as pc
from ..utils._split import tail_safe_validation_split
from ..utils._validation import check_float32_range, check_positive_int
from ._modules import ClusterAidedClassifier, GaussianMixtureFlow

#: head/tail border of the paper's separation diagnostic (Fig. 2 and 7): a tail class has at most 50 samples
TAIL_THRESHOLD = 50
#: the paper's number of clusters, used once the data is large enough
MAX_AUTO_CLUSTERS = 500
#: training samples per cluster aimed at by ``n_clusters="auto"``
SAMPLES_PER_CLUSTER = 50
#: mean distance between two mixture centres aimed at by ``center_std="auto"`` (Supp. Sec. 3)
CENTER_DISTANCE = 3.0
#: the authors' flow-epoch criterion (``train_dlsa.py``): count clusters purer than this ...
SELECTION_MIN_PURITY = 0.7
#: ... holding more than this many training samples ...
SELECTION_MIN_SIZE = 10
#: ... and reject an epoch whose largest cluster holds 5,000 samples or more, on ImageNet-LT's
#: 115,846 samples in 500 clusters: 21.6 times the mean cluster size, the scale-free form used here
SELECTION_MAX_CLUSTER_RATIO = 5000 / (115_846 / 500)


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


class ClassPairSampler(Sampler):
    """Pairs of samples from two different, uniformly drawn classes (DLSA's flow-training stream).

    Each pair draws a class ``a`` uniformly, a class ``b != a`` uniformly among
    the others, and one random sample of each; a batch of ``batch_size`` pairs
    is yielded as one index tensor ``[a-samples..., b-samples...]`` of length
    ``2 * batch_size`` (the last one may be shorter). An epoch is ``len(y)`` pairs.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Encoded labels with at least two classes.
    batch_size : int
        Pairs per batch.
    generator : torch.Generator, default=None
    """

    def __init__(self, y, batch_size, *, generator=None):
        y = np.asarray(y)
        classes, y_enc, counts = np.unique(y, return_inverse=True, return_counts=True)
        if len(classes) < 2:
            raise ValueError("ClassPairSampler needs samples of at least two classes.")
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.n_pairs = len(y)
        self.generator = generator
        order = np.argsort(y_enc, kind="stable")
        self._order = torch.as_tensor(order, dtype=torch.int64)
        self._starts = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)[:-1]]), dtype=torch.int64)
        self._counts = torch.as_tensor(counts, dtype=torch.int64)

    def __len__(self):
        return (self.n_pairs + self.batch_size - 1) // self.batch_size

    def _sample_of(self, classes):
        offset = (torch.rand(len(classes), generator=self.generator, dtype=torch.float64) * self._counts[classes]).long()
        return self._order[self._starts[classes] + offset]

    def __iter__(self):
        n_classes = len(self._counts)
        a = torch.randint(n_classes, (self.n_pairs,), generator=self.generator)
        b = (a + 1 + torch.randint(n_classes - 1, (self.n_pairs,), generator=self.generator)) % n_classes
        pos, neg = self._sample_of(a), self._sample_of(b)
        for start in range(0, self.n_pairs, self.batch_size):
            stop = start + self.batch_size
            yield torch.cat([pos[start:stop], neg[start:stop]])


class DLSAFlowLoss(nn.Module):
    """The flow filter's objective ``lambda_mle L_MLE + lambda_bal L_bal + lambda_pure L_pure`` (paper Eq. 11).

    Called by the training core as ``loss(log_p_x_given_k, y, sample_weight)``
    on a :class:`ClassPairSampler` batch (first half one sample of each pair,
    second half the other):

    - ``L_MLE``: class-weighted negative log-likelihood of the first halves,
      weights ``w(y) = n_y^-q / sum_c n_c^-q`` (times any sample weights),
      normalised to a weighted mean and divided by ``d`` (nats per dimension),
      so the lambdas mean the same at any ``d``, class count and batch size;
    - ``L_bal = sum_k p_k log p_k + log K`` (KL to uniform) of the
      momentum-smoothed, bias-corrected batch cluster posterior
      ``p = p~_t / (1 - eta^t)``, ``p~_t = eta p~_{t-1} + (1 - eta) mean_B P(h | x)``;
    - ``L_pure = mean_pairs sum_k P(k | x_a) log P(k | x_b)`` with the ``x_a``
      side detached: pushes the two samples of different classes apart.

    In evaluation mode (skorch's validation pass on plain batches) it returns
    the weighted negative log-likelihood per dimension only, and leaves the
    momentum state untouched. ``last_terms`` holds the three terms of the last
    training batch.
    """

    def __init__(self, class_weights, n_features, *, lambda_mle=1.0, lambda_bal=1.0, lambda_pure=0.02, eta=0.7):
        super().__init__()
        self.register_buffer("class_weights", torch.as_tensor(np.asarray(class_weights), dtype=torch.float32))
        self.n_features = int(n_features)
        self.lambda_mle = float(lambda_mle)
        self.lambda_bal = float(lambda_bal)
        self.lambda_pure = float(lambda_pure)
        self.eta = float(eta)
        self.register_buffer("p_tilde", torch.zeros(0))
        self.step = 0
        self.last_terms = {}

    def _nll(self, llh, y, sample_weight):
        w = self.class_weights[y]
        if sample_weight is not None:
            w = w * sample_weight
        return -(w * llh).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny) / self.n_features

    def forward(self, comp, y, sample_weight=None):
        n_clusters = comp.shape[1]
        llh = torch.logsumexp(comp, dim=1) - math.log(n_clusters)
        if not self.training:
            return self._nll(llh, y, sample_weight)
        half = comp.shape[0] // 2
        sw = None if sample_weight is None else sample_weight[:half]
        mle = self._nll(llh[:half], y[:half], sw)
        log_post = F.log_softmax(comp, dim=1)
        post_a = log_post[:half].exp()

        if self.p_tilde.numel() != n_clusters:
            self.p_tilde = torch.zeros(n_clusters, device=comp.device)
            self.step = 0
        self.step += 1
        p_tilde = self.eta * self.p_tilde + (1 - self.eta) * (post_a.mean(0) + 1e-7)
        self.p_tilde = p_tilde.detach()
        p = p_tilde / (1 - self.eta**self.step)
        bal = (p * p.log()).sum() + math.log(n_clusters)

        pure = (post_a.detach() * log_post[half : 2 * half]).sum(1).mean()
        self.last_terms = {"mle": mle.detach(), "bal": bal.detach(), "pure": pure.detach()}
        return self.lambda_mle * mle + self.lambda_bal * bal + self.lambda_pure * pure


class _RecordLossTerms(Callback):
    """Write the epoch means of the flow loss terms into the history (``mle``, ``bal``, ``pure``)."""

    def on_epoch_begin(self, net, **kwargs):
        self._sums, self._n = {}, 0

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            for key, value in net.criterion_.last_terms.items():
                self._sums[key] = self._sums.get(key, 0.0) + value
            self._n += 1

    def on_epoch_end(self, net, **kwargs):
        for key, value in self._sums.items():
            net.history.record(key, float(value) / max(self._n, 1))


def reestimate_flow_statistics(module, X, y, batch_size=PREDICT_BATCH_ROWS):
    """Set the batch-norm statistics of a flow to those of its current weights on the training stream.

    During training a batch-norm bijection normalises each batch by its own
    statistics and folds them into running averages (momentum 0.1), which
    therefore describe the weights of the last ten or so steps, not the final
    ones: at SGD lr 0.2 the evaluation-mode likelihoods drift far from those the
    flow was trained for (on icd10cm 3.10 against 1.22 nats per dimension).
    The flow trains on class-uniform pairs, so the statistics a layer should
    hold are the class-uniform mean and variance of its inputs (each sample
    weighing ``1 / (C n_y)``): the limit of a pass over the pair stream,
    without its sampling noise, which a flow with large log-scales amplifies
    into large likelihood errors on small data. They are computed layer by
    layer in evaluation mode, each layer's input normalised by the new
    statistics of the layers below, exactly as routing will see them.

    Parameters
    ----------
    module : GaussianMixtureFlow
    X : ndarray of shape (n_samples, n_features)
        The flow's training samples.
    y : ndarray of shape (n_samples,)
        Their encoded labels.
    batch_size : int, default=PREDICT_BATCH_ROWS
        Rows per forward chunk.
    """
    norms = list(module.norms)
    if not norms or len(y) == 0:
        return
    was_training = module.training
    module.eval()
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    weights = 1.0 / (counts[inverse] * len(counts))
    device = module.centers.device
    with torch.no_grad():
        for depth, norm in enumerate(norms):
            total = torch.zeros(norm.running_mean.shape, dtype=torch.float64, device=device)
            total_sq = torch.zeros_like(total)
            for rows, xb in row_batches(X, device, batch_size):
                wb = torch.as_tensor(weights[rows], device=device)[:, None]
                z = (xb - module.input_mean) / module.input_scale
                for block in range(depth + 1):
                    z, _ = module.mafs[block]().call_and_ladj(z)
                    if block < depth:
                        z, _ = module.norms[block](z)
                z = z.double()
                total += (wb * z).sum(0)
                total_sq += (wb * z * z).sum(0)
            norm.running_mean.copy_(total)
            norm.running_var.copy_((total_sq - total * total).clamp_min(0.0))
    module.train(was_training)


def count_pure_clusters(clusters, y, n_clusters, *, min_purity=SELECTION_MIN_PURITY, min_size=SELECTION_MIN_SIZE):
    """The authors' flow-epoch score: clusters with purity above ``min_purity`` and more than ``min_size`` samples.

    Returns ``(count, largest cluster size)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.flows._dlsa import count_pure_clusters
    >>> clusters = np.repeat([0, 1, 2], [12, 12, 4])
    >>> y = np.r_[np.zeros(12), np.zeros(6), np.ones(6), np.zeros(4)].astype(int)
    >>> count_pure_clusters(clusters, y, n_clusters=3)  # cluster 1 is mixed, cluster 2 too small
    (1, 12)
    """
    n_classes = int(y.max()) + 1 if len(y) else 1
    table = np.zeros((n_clusters, n_classes))
    np.add.at(table, (clusters, y), 1)
    sizes = table.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        purity = np.where(sizes > 0, table.max(1) / np.maximum(sizes, 1), 0.0)
    return int(np.sum((purity > min_purity) & (sizes > min_size))), int(sizes.max(initial=0))


class _SelectFlowEpoch(Callback):
    """After every flow epoch: re-estimate the batch-norm statistics, score the epoch, keep the best state.

    (The statistics are re-estimated after every epoch, not only for the kept
    one, because both criteria score the epoch in evaluation mode.)

    ``criterion="clusters"`` is the authors' rule: the most clusters with
    purity > 0.7 and more than 10 samples on the flow's training samples,
    among epochs whose largest cluster is below
    ``SELECTION_MAX_CLUSTER_RATIO`` times the mean cluster size (ties keep the
    earlier epoch). ``"likelihood"``: the lowest class-weighted validation
    negative log-likelihood per dimension (no validation data: the last
    epoch). The history gets ``valid_loss`` (when there is validation data),
    ``pure_clusters`` and ``largest_cluster`` (criterion "clusters") and
    ``selected`` (whether the epoch is the best so far). The state saved for
    the best epoch holds the statistics re-estimated for its own weights, so
    restoring it restores consistent statistics.
    """

    def __init__(self, criterion, X_train, y_train, valid=None):
        self.criterion = criterion
        self.X_train, self.y_train = X_train, y_train
        self.valid = valid

    def on_train_begin(self, net, **kwargs):
        self.best_score_, self.best_epoch_, self._best_state = -np.inf, None, None

    def on_epoch_end(self, net, **kwargs):
        module = net.module_
        reestimate_flow_statistics(module, self.X_train, self.y_train)
        score = None
        if self.valid is not None:
            llh = _flow_outputs(net, self.valid[0])[0]
            w = net.criterion_.class_weights.cpu().numpy()[self.valid[1]] * self.valid[2]
            valid_loss = float(-(w * llh).sum() / max(w.sum(), np.finfo(float).tiny) / module.n_features)
            net.history.record("valid_loss", valid_loss)
            if self.criterion == "likelihood":
                score = -valid_loss
        if self.criterion == "clusters":
            clusters = _flow_outputs(net, self.X_train)[2]
            count, largest = count_pure_clusters(clusters, self.y_train, module.n_clusters)
            net.history.record("pure_clusters", count)
            net.history.record("largest_cluster", largest)
            if largest < SELECTION_MAX_CLUSTER_RATIO * len(self.y_train) / module.n_clusters:
                score = count
        elif self.valid is None:
            score = len(net.history)  # nothing to select on: the last epoch
        best = score is not None and score > self.best_score_
        if best:
            self.best_score_, self.best_epoch_ = score, len(net.history)
            self._best_state = copy.deepcopy(module.state_dict())
        net.history.record("selected", bool(best))

    def on_train_end(self, net, **kwargs):
        if self._best_state is not None:
            net.module_.load_state_dict(self._best_state)
        else:  # no epoch passed the largest-cluster guard (the authors keep the last weights): fresh statistics
            reestimate_flow_statistics(net.module_, self.X_train, self.y_train)
        # training-only state: the fitted net must not carry the training data
        self._best_state = self.X_train = self.y_train = self.valid = None


def flow_class_weights(counts, q):
    """The likelihood weights ``w(y) = n_y^-q / sum_c n_c^-q`` over the classes present (0 for absent ones)."""
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.zeros_like(counts)
    present = counts > 0
    weights[present] = counts[present] ** -float(q)
    return weights / weights.sum()


def effective_lambda_mle(lambda_mle, n_features, n_classes):
    """The weight of the per-dimension weighted-mean likelihood term for a ``lambda_mle`` parameter value.

    The authors' term is ``lambda_lh * mean_B(w(y) * -log p(x))`` with weights
    summing to one over the ``C`` classes of the flow's training samples; on
    class-uniform pairs ``E[w(y)] = 1 / C``, so it is ``lambda_lh * d / C`` times
    the weighted mean in nats per dimension used here. ``"authors"`` is that
    scale with ``lambda_lh = 1`` (the paper's Eq. 11; the authors' ImageNet-LT
    configuration uses 2): ``d / C``. A number is used as it is.

    Examples
    --------
    >>> from sklearn_lt.flows._dlsa import effective_lambda_mle
    >>> effective_lambda_mle("authors", 2048, 1000), effective_lambda_mle(0.5, 2048, 1000)
    (2.048, 0.5)
    """
    if isinstance(lambda_mle, str):
        return float(n_features) / max(int(n_classes), 1)
    return float(lambda_mle)


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
        stream; see ``flows._dlsa.reestimate_flow_statistics``), and the kept state
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

    # ------------------------------------------------------------------ checks
    # ------------------------------------------------------------------ fit
    def _train_classifier(self, module, prior_counts, features, y, sample_weight, valid, generator):
        # the epoch of lowest validation loss, the first of equal ones (as skorch's EarlyStopping restores it)
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

    def _fit_net(self, X, y, sample_weight, generator):
        n_features, n_classes = X.shape[1], len(self.classes_)
        if self.validation_fraction > 0:
            split_seed = int(torch.randint(np.iinfo(np.int32).max, (1,), generator=generator))
            train, valid = tail_safe_validation_split(y, self.validation_fraction, random_state=split_seed)
        else:
            train, valid = np.arange(len(y)), np.arange(0)
        Xt, yt, wt = X[train], y[train], sample_weight[train]
        Xv, yv, wv = X[valid], y[valid], sample_weight[valid]
        train_counts = np.bincount(yt, minlength=n_classes).astype(np.float64)

        self.n_clusters_ = (
            auto_n_clusters(len(yt), n_classes) if isinstance(self.n_clusters, str) else int(self.n_clusters)
        )
        self.center_std_ = auto_center_std(n_features) if isinstance(self.center_std, str) else float(self.center_std)
        mean, scale = Xt.mean(0), Xt.std(0)
        scale[~(scale > 1e-12)] = 1.0

        self.flow_nets_, self.stage_nets_, thresholds = [], [], []
        self.cluster_priors_, self.cluster_sizes_, self.cluster_purity_ = [], [], []
        self.flow_epochs_, self.flow_lambda_mle_ = [], []
        stage_t = np.full(len(yt), -1)
        active_t, active_v = np.arange(len(yt)), np.arange(len(yv))
        for depth in range(self.n_filters):
            n_active = len(active_t)
            n_keep = int(n_active * (1.0 - self.filter_fraction))
            if len(np.unique(yt[active_t])) < 2 or n_keep in (0, n_active):
                break  # nothing to separate, nothing to route, or nothing left for the next stage
            weight_counts = (
                train_counts if self.flow_class_counts == "global" else np.bincount(yt[active_t], minlength=n_classes)
            )
            class_weights = flow_class_weights(weight_counts, self.q)
            lambda_mle = effective_lambda_mle(self.lambda_mle, n_features, np.count_nonzero(weight_counts))
            flow = GaussianMixtureFlow(n_features, self.n_clusters_, self.center_std_, mean=mean, scale=scale)
            criterion = DLSAFlowLoss(
                class_weights,
                n_features,
                lambda_mle=lambda_mle,
                lambda_bal=self.lambda_bal,
                lambda_pure=self.lambda_pure,
                eta=self.eta,
            )
            selection = _SelectFlowEpoch(
                self.flow_selection,
                Xt[active_t],
                yt[active_t],
                valid=(Xv[active_v], yv[active_v], wv[active_v]) if len(active_v) else None,
            )
            flow_net = train_module(
                flow,
                criterion,
                Xt[active_t],
                yt[active_t],
                sample_weight=wt[active_t],
                sampler=ClassPairSampler(yt[active_t], self.flow_batch_size, generator=generator),
                max_epochs=self.flow_max_epochs,
                optimizer="sgd",
                lr=self.flow_lr,
                lr_schedule="constant",
                callbacks=[("loss_terms", _RecordLossTerms()), ("select_epoch", selection)],
                device=self.device_,
                verbose=self.verbose,
            )
            self.flow_epochs_.append(selection.best_epoch_)
            self.flow_lambda_mle_.append(lambda_mle)
            llh_t, z_t, h_t = _flow_outputs(flow_net, Xt)
            if not np.all(np.isfinite(llh_t[active_t])):
                raise TrainingDivergedError(
                    f"DLSAClassifier: flow filter {depth} gives non-finite log-likelihoods: its training diverged. "
                    "Use a smaller flow_lr, and standardise the features if their scale is large."
                )
            threshold = np.sort(llh_t[active_t])[n_keep]
            routed_t = active_t[llh_t[active_t] >= threshold]
            if len(routed_t) in (0, n_active):
                # ties (e.g. constant features) leave nothing to one side: a stage would train on no sample
                warnings.warn(
                    f"DLSAClassifier: flow filter {depth} gives {len(np.unique(llh_t[active_t]))} distinct "
                    f"log-likelihood(s) for {n_active} samples, so its threshold routes all or none of them; the "
                    f"cascade stops with {depth} filter(s). Check that the features are not constant.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
                break

            counts = np.zeros((self.n_clusters_, n_classes))
            np.add.at(counts, (h_t, yt), wt)
            prior = _normalise_rows(counts)
            # a training sample's own label must not be in its cluster prior: at test time it is not
            loo = counts[h_t[routed_t]].copy()
            loo[np.arange(len(routed_t)), yt[routed_t]] -= wt[routed_t]
            features_t = np.hstack([Xt[routed_t], z_t[routed_t], _normalise_rows(np.clip(loo, 0, None))])

            valid_data = None
            if len(active_v):
                llh_v, z_v, h_v = _flow_outputs(flow_net, Xv[active_v])
                hit = llh_v >= threshold
                if hit.any():
                    valid_data = (np.hstack([Xv[active_v][hit], z_v[hit], prior[h_v[hit]]]), yv[active_v][hit])
                active_v = active_v[~hit]
            prior_counts = (
                train_counts if self.stage_prior == "global" else np.bincount(yt[routed_t], minlength=n_classes)
            )
            stage_net = self._train_classifier(
                ClusterAidedClassifier(n_features, n_features, n_classes),
                prior_counts,
                features_t.astype(np.float32),
                yt[routed_t],
                wt[routed_t],
                valid_data,
                generator,
            )
            self.flow_nets_.append(flow_net)
            self.stage_nets_.append(stage_net)
            thresholds.append(float(threshold))
            self.cluster_priors_.append(prior)
            sizes = np.bincount(h_t, minlength=self.n_clusters_)
            self.cluster_sizes_.append(sizes)
            with np.errstate(invalid="ignore", divide="ignore"):
                self.cluster_purity_.append(np.where(sizes > 0, prior.max(1), np.nan))
            stage_t[routed_t] = depth
            active_t = np.setdiff1d(active_t, routed_t)

        self.n_filters_ = len(self.flow_nets_)
        self.thresholds_ = np.asarray(thresholds, dtype=np.float64)
        stage_t[active_t] = self.n_filters_
        self.routing_shares_ = np.bincount(stage_t, minlength=self.n_filters_ + 1) / len(stage_t)
        self.separation_accuracy_ = _separation(stage_t, self.n_filters_, train_counts[yt] <= TAIL_THRESHOLD)[
            "balanced_accuracy"
        ]

        final = nn.Linear(n_features, n_classes)
        nn.init.zeros_(final.weight)
        nn.init.zeros_(final.bias)
        prior_counts = train_counts if self.stage_prior == "global" else np.bincount(yt[active_t], minlength=n_classes)
        valid = (Xv[active_v], yv[active_v]) if len(active_v) else None
        return self._train_classifier(final, prior_counts, Xt[active_t], yt[active_t], wt[active_t], valid, generator)

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
            llh, z, h = _flow_outputs(flow_net, X[active])
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
        return np.column_stack([_flow_outputs(net, X)[0] for net in self.flow_nets_] or [np.zeros((len(X), 0))])

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
        clusters = [_flow_outputs(net, X)[2] for net in self.flow_nets_]
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


def _flow_outputs(flow_net, X):
    """``(log p(x), z, cluster)`` of a fitted flow net on ``X``, in evaluation mode, as numpy."""

    def forward(module, batch):
        z, ladj = module.transform(batch)
        comp = module.component_log_likelihood(z, ladj)
        return (torch.logsumexp(comp, 1) - math.log(module.n_clusters)).double(), z, comp.argmax(1)

    llh, latent, cluster = batched_forward(flow_net.module_, X, device=flow_net.device, forward=forward)
    return llh.numpy(), latent.numpy(), cluster.numpy()
