"""Training of DLSA's flow filter: the class-pair stream, the loss, the epoch selection, the batch-norm statistics.

Everything :class:`~sklearn_lt.flows.DLSAClassifier` needs to train one
:class:`~sklearn_lt.flows.GaussianMixtureFlow` through the library's training
core (``train_module``) and to read its outputs; the estimator, which builds
the cascade from these, is in ``_dlsa.py``.
"""

import copy
import math

import numpy as np
import torch
from sklearn.utils._param_validation import validate_params
from skorch.callbacks import Callback
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Sampler

from ..torch._data import PREDICT_BATCH_ROWS, batched_forward, row_batches
from ..utils import _param_constraints as pc
from ..utils._class_stats import class_index_table

#: the authors' flow-epoch criterion (``train_dlsa.py``): count clusters purer than this ...
SELECTION_MIN_PURITY = 0.7
#: ... holding more than this many training samples ...
SELECTION_MIN_SIZE = 10
#: ... and reject an epoch whose largest cluster holds 5,000 samples or more, on ImageNet-LT's
#: 115,846 samples in 500 clusters: 21.6 times the mean cluster size, the scale-free form used here
SELECTION_MAX_CLUSTER_RATIO = 5000 / (115_846 / 500)


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

    @validate_params({"batch_size": pc.POSITIVE_INT}, prefer_skip_nested_validation=True)
    def __init__(self, y, batch_size, *, generator=None):
        table = class_index_table(y)
        if len(table.classes) < 2:
            raise ValueError("ClassPairSampler needs samples of at least two classes.")
        self.batch_size = int(batch_size)
        self.n_pairs = len(table.y_encoded)
        self.generator = generator
        self._order = torch.as_tensor(table.order, dtype=torch.int64)
        self._starts = torch.as_tensor(table.starts, dtype=torch.int64)
        self._counts = torch.as_tensor(table.counts, dtype=torch.int64)

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


class RecordLossTerms(Callback):
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
    >>> from sklearn_lt.flows._flow_training import count_pure_clusters
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


class SelectFlowEpoch(Callback):
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
            llh = flow_outputs(net, self.valid[0])[0]
            w = net.criterion_.class_weights.cpu().numpy()[self.valid[1]] * self.valid[2]
            valid_loss = float(-(w * llh).sum() / max(w.sum(), np.finfo(float).tiny) / module.n_features)
            net.history.record("valid_loss", valid_loss)
            if self.criterion == "likelihood":
                score = -valid_loss
        if self.criterion == "clusters":
            clusters = flow_outputs(net, self.X_train)[2]
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
    >>> from sklearn_lt.flows._flow_training import effective_lambda_mle
    >>> effective_lambda_mle("authors", 2048, 1000), effective_lambda_mle(0.5, 2048, 1000)
    (2.048, 0.5)
    """
    if isinstance(lambda_mle, str):
        return float(n_features) / max(int(n_classes), 1)
    return float(lambda_mle)


def flow_outputs(flow_net, X):
    """``(log p(x), z, cluster)`` of a fitted flow net on ``X``, in evaluation mode, as numpy."""

    def forward(module, batch):
        z, ladj = module.transform(batch)
        comp = module.component_log_likelihood(z, ladj)
        return (torch.logsumexp(comp, 1) - math.log(module.n_clusters)).double(), z, comp.argmax(1)

    llh, latent, cluster = batched_forward(flow_net.module_, X, device=flow_net.device, forward=forward)
    return llh.numpy(), latent.numpy(), cluster.numpy()
