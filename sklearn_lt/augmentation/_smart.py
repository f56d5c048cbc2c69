"""SMART: semantic transfer from head to tail (Zhang et al., CVPR 2024) on feature matrices.

One set of numerics serves both routes of :class:`SMARTAugmenter`:

- ``fit_resample`` (imbalanced-learn's sampler API) adds augmented tail samples
  to a fixed feature matrix, with exact pooled class statistics;
- ``make_train_batch_hook`` augments every training batch of the library's torch
  estimators (the paper's online scheme), with count-weighted running statistics.

Memory. A class is always kept as its rows of ``X`` (indices into the caller's
array) with per-row weights, i.e. the factor ``Z_k = diag(sqrt(w / N_k)) (X_k -
mu_k)`` with ``Sigma_k = Z_k^T Z_k``. When the dense per-class d x d statistics
of every class fit the augmenter's ``memory_budget`` they are kept as well
(the running ones updated lazily: a class's pending rank-one terms are folded
in when its covariance is next needed), and ``S = Sigma_t^T Sigma_h`` is
``Z_t^T (Z_t Sigma_h)`` or ``Sigma_t Sigma_h``, whichever is cheaper. Beyond
the budget (e.g. d = 2048 x 1,000 classes: 16 GiB) ``S = Z_t^T ((Z_t Z_h^T)
Z_h)`` is formed from the factors only, for the (tail class, head class)
pairs a batch needs, a chunk of pairs at a time, so the memory is ``O(n d +
chunk d^2)`` whatever the number of classes. Both routes compute the same
numbers.
"""

import numbers
import warnings

import numpy as np
import torch
from imblearn.over_sampling.base import BaseOverSampler
from imblearn.utils import check_target_type
from scipy import sparse
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data
from torch.utils.data import Sampler

from ..torch._data import ClassBalancedSampler
from ..torch._net import batch_unpack
from ..utils._validation import label_repr

#: The paper's epsilon in ``sqrt(diag(Sigma_t) + eps)`` (Eq. 6), in units of ``feature_scale_**2``.
EPS = 1e-8
#: Bytes of d x d work arrays one chunk of pairs may hold (S and Sigma_th, 2 per pair).
_CHUNK_BYTES = 256 * 2**20
#: Default ``memory_budget``: bytes the dense per-class d x d statistics may take.
_DENSE_BUDGET = 2**30


# --------------------------------------------------------------------------------------
# The transfer: Eq. 4-6 and 11, batched over (tail class, head class) pairs
# --------------------------------------------------------------------------------------


def _transfer_matrix(S, tau):
    """``Sigma_th = softmax(tau * S) * S`` (Eq. 4-5), row-wise softmax, computed in the memory of ``S``.

    ``tau=0`` gives ``S / d``; ``tau=inf`` is the limit, which keeps each row's
    largest entries (shared equally between ties). Returns ``(M, c)`` with
    ``Sigma_th = c * M``: the scalar ``c`` is applied by the caller to the few
    quantities that need it, saving a pass over the d x d matrices.
    """
    d = S.shape[-1]
    if tau == 0:
        return S, 1.0 / d
    if np.isinf(tau):
        G = (S == S.amax(dim=-1, keepdim=True)).to(S.dtype)
        G.div_(G.sum(dim=-1, keepdim=True))
        return G.mul_(S), 1.0
    A = S if tau == 1 else S.mul_(tau)  # a pass over P d^2 numbers saved at the default
    return torch.softmax(A, dim=-1).mul_(A), 1.0 / tau


class _ClassStatistics:
    """Per-class mean and covariance factor of a fixed feature matrix, exact or count-weighted.

    ``X`` is held by reference (``torch.as_tensor``: no copy of a float32 CPU
    array). With ``running=False`` every row counts once (exact pooled
    statistics); with ``running=True`` a row counts as often as :meth:`update`
    has seen it, which makes the statistics the count-weighted running ones of
    Eq. 2-3 (``alpha_k = M_k / N_k``), between-batch term included.

    With ``dense_budget`` (bytes) and the ``n_classes`` d x d covariances
    within it, they are also kept dense: exact ones computed once, running
    ones updated lazily with the rank-one terms of Chan's update
    (:meth:`covariance_table` folds in the queued terms of the classes it is
    asked for), so that a covariance costs ``queued rows x d^2`` instead of
    ``n_k d^2``.
    """

    def __init__(self, X, y, n_classes, scale, *, running, dense_budget=None):
        self.X = X
        self.y = y
        self.n_classes = n_classes
        self.scale = float(scale)
        self.running = running
        counts = torch.bincount(y, minlength=n_classes)
        self.order = torch.argsort(y, stable=True)
        self.starts = torch.cumsum(counts, 0) - counts
        self.class_sizes = counts
        def zeros(*shape):
            return torch.zeros(*shape, dtype=X.dtype, device=X.device)
        if running:  # nothing seen yet
            self.row_counts = zeros(len(y))
            self.seen = zeros(n_classes)
            self.means = zeros(n_classes, X.shape[1])
            self.m2 = zeros(n_classes, X.shape[1])
            self.variances = zeros(n_classes, X.shape[1])
            self.distinct = torch.zeros(n_classes, dtype=torch.int64, device=X.device)
        else:  # two passes: exact also for features far from 0
            self.row_counts = None
            self.seen = counts.to(X.dtype)
            self.means, self.variances = _class_moments(X, y, n_classes)
            self.variances /= self.scale**2
            self.distinct = counts
        self.dense = None
        if dense_budget is not None and _dense_bytes(n_classes, X.shape[1], X.element_size()) <= dense_budget:
            self._init_dense()

    def update(self, indices):
        """Count the rows ``indices`` (with repetition) as seen, merging the batch into the running statistics.

        Eq. 2-3 with ``alpha_k = M_k / N_k``, plus the between-batch term
        ``alpha_k (1 - alpha_k) (mu_B - mu) (mu_B - mu)^T`` that makes the
        running covariance the exact covariance of every row seen (Chan et
        al.'s pairwise update, numerically stable).
        """
        if not self.running or len(indices) == 0:
            return
        labels = self.y[indices]
        rows = self.X[indices]
        ones = torch.ones(len(indices), dtype=self.X.dtype, device=self.X.device)
        first_time = torch.unique(indices[self.row_counts[indices] == 0])
        self.distinct.index_add_(0, self.y[first_time], torch.ones_like(first_time))
        self.row_counts.index_add_(0, indices, ones)
        touched, local = torch.unique(labels, return_inverse=True)
        m = torch.zeros(len(touched), dtype=self.X.dtype, device=self.X.device).index_add_(0, local, ones)
        mean_b = torch.zeros(len(touched), rows.shape[1], dtype=self.X.dtype, device=self.X.device)
        mean_b = mean_b.index_add_(0, local, rows) / m[:, None]
        centred = rows - mean_b[local]
        m2_b = torch.zeros_like(mean_b).index_add_(0, local, centred * centred)
        n = self.seen[touched]
        alpha = (m / (n + m))[:, None]  # alpha_k = M_k / N_k
        shift = mean_b - self.means[touched]
        self.means[touched] += alpha * shift
        self.m2[touched] += m2_b + (alpha * n[:, None]) * shift * shift
        if self.dense is not None:  # the same update, d x d: M2 += C_B^T C_B + alpha n shift shift^T
            self._add_pending(torch.cat([labels, touched]), torch.cat([centred, shift * (alpha * n[:, None]).sqrt()]))
        self.seen[touched] = n + m
        self.variances[touched] = self.m2[touched] / self.seen[touched, None] / self.scale**2

    def _init_dense(self):
        d = self.X.shape[1]
        # the covariances themselves (units of scale), current for a class as of its count _dense_seen
        self.dense = torch.zeros(self.n_classes, d, d, dtype=self.X.dtype, device=self.X.device)
        self._dense_seen = torch.zeros(self.n_classes, dtype=self.X.dtype, device=self.X.device)
        self._stale = torch.zeros(self.n_classes, dtype=torch.bool, device=self.X.device)
        self._pending_rows = self.X.new_zeros(0, d)
        self._pending_labels = torch.zeros(0, dtype=torch.int64, device=self.X.device)
        if not self.running:  # built once, in chunks of classes
            step = max(1, int(_CHUNK_BYTES // max(1, (int(self.class_sizes.max()) + d) * d * self.X.element_size())))
            for start in range(0, self.n_classes, step):
                classes = torch.arange(start, min(start + step, self.n_classes), device=self.X.device)
                Z = self.factors(classes)
                self.dense[classes] = Z.mT @ Z
            self._dense_seen = self.seen.clone()

    def _add_pending(self, labels, rows):
        """Queue rank-one terms ``rows[i] rows[i]^T`` of the scatter of class ``labels[i]``."""
        self._pending_rows = torch.cat([self._pending_rows, rows])
        self._pending_labels = torch.cat([self._pending_labels, labels])
        self._stale[labels] = True
        if len(self._pending_labels) > max(4096, len(self.y)):  # bound the queue: fold everything in
            self._refresh(torch.nonzero(self._stale).squeeze(1))

    def _refresh(self, classes):
        """Bring the dense covariances of ``classes`` (unique, stale) up to date with the running statistics.

        ``Sigma = M2 / N``: with ``M2`` grown by the queued rank-one terms ``D`` and ``N`` from ``N0`` to
        ``N1``, ``Sigma_1 = Sigma_0 N0 / N1 + D / N1`` (one pass over each d x d matrix).
        """
        seen = self.seen[classes]
        self.dense[classes] *= (self._dense_seen[classes] / seen.clamp_min(1.0))[:, None, None]
        self._dense_seen[classes] = seen
        self._stale[classes] = False
        take = torch.isin(self._pending_labels, classes)
        if not bool(take.any()):
            return
        labels, rows = self._pending_labels[take], self._pending_rows[take]
        self._pending_labels, self._pending_rows = self._pending_labels[~take], self._pending_rows[~take]
        order = torch.argsort(labels, stable=True)
        labels, rows = labels[order], rows[order]
        touched, counts = torch.unique_consecutive(labels, return_counts=True)
        slot = torch.arange(len(labels), device=labels.device) - (torch.cumsum(counts, 0) - counts).repeat_interleave(counts)
        local = torch.repeat_interleave(torch.arange(len(touched), device=labels.device), counts)
        padded = rows.new_zeros(len(touched), int(counts.max()), rows.shape[1])
        norm = (self.seen[touched].clamp_min(1.0) * self.scale**2).sqrt()
        padded[local, slot] = rows / norm[local, None]
        self.dense.index_add_(0, touched, padded.mT @ padded)

    def degenerate(self, classes):
        """Classes whose covariance is zero: one distinct sample (seen), or a total variance below ``EPS * d``."""
        return (self.distinct[classes] <= 1) | (self.variances[classes].sum(1) <= EPS * self.X.shape[1])

    def covariances(self, classes):
        """Dense covariances (K, d, d) of ``classes``, in units of ``scale``."""
        if self.dense is None:
            Z = self.factors(classes)
            return Z.mT @ Z
        return self.covariance_table(classes)[classes]

    def covariance_table(self, classes):
        """The (n_classes, d, d) table of dense covariances, current for ``classes`` (dense statistics only).

        Indexing it by class gives a view, which spares the copy of a gather.
        """
        need = classes[self._stale[classes]]
        if len(need):
            self._refresh(torch.unique(need))
        return self.dense

    def factors(self, classes):
        """Padded factors ``Z`` of shape (P, R, d), in units of ``scale``, with ``Sigma_k = Z^T Z``.

        Padding rows are zero, so they change no product.
        """
        sizes = self.class_sizes[classes]
        R = max(int(sizes.max()), 1) if len(classes) else 1
        offsets = torch.arange(R, device=self.X.device)
        valid = offsets[None, :] < sizes[:, None]
        slot = torch.where(valid, self.starts[classes][:, None] + offsets[None, :], 0)
        rows = self.order[slot]
        if self.running:
            weights = self.row_counts[rows] / self.seen[classes].clamp_min(1.0)[:, None]
        else:
            weights = 1.0 / sizes.clamp_min(1).to(self.X.dtype)[:, None].expand(-1, R)
        weights = torch.where(valid, weights, 0.0).sqrt_().div_(self.scale)
        Z = self.X[rows] - self.means[classes][:, None, :]
        return Z.mul_(weights[:, :, None])


def _times_head_covariance(stats, A, heads, *, batched=None, budget=_CHUNK_BYTES):
    """``A[k] @ Sigma_{heads[k]}`` for ``A`` of shape (K, w, d), as ``(A Z_h^T) Z_h``.

    Grouped by head class, so that each head factor is built once per call.
    ``batched=False`` loops over the head classes, one large product each
    (the CPU route: no padding, no extra arithmetic); ``batched=True`` pads
    head classes of similar size, and their pairs, into batched products of
    at most ``budget`` bytes (the GPU route, where a Python loop over hundreds
    of head classes is bound by kernel launches, not arithmetic). ``None``
    batches on a GPU. Both compute the same products.
    """
    batched = A.device.type != "cpu" if batched is None else batched
    out = torch.empty_like(A)
    K, w, d = A.shape
    if stats.dense is not None:  # the head covariances are at hand: one (w, d) x (d, d) product per pair
        table = stats.covariance_table(heads)
        if batched:
            return torch.bmm(A, table[heads])
        uniq, local = torch.unique(heads, return_inverse=True)
        for j, h in enumerate(uniq.tolist()):
            sel = torch.nonzero(local == j).squeeze(1)
            out[sel] = (A[sel].reshape(-1, d) @ table[h]).reshape(len(sel), w, d)
        return out
    if not batched:
        for h in torch.unique(heads).tolist():
            sel = torch.nonzero(heads == h).squeeze(1)
            Zh = stats.factors(torch.tensor([h], device=A.device))[0]
            stacked = A[sel].reshape(-1, d)
            out[sel] = ((stacked @ Zh.T) @ Zh).reshape(len(sel), -1, d)
        return out
    # the bookkeeping is a few hundred integers: on the host, with one transfer of heads
    heads_np = heads.cpu().numpy()
    uniq, local, per_head = np.unique(heads_np, return_inverse=True, return_counts=True)
    order = np.argsort(local, kind="stable")
    slot = np.empty(K, dtype=np.int64)
    slot[order] = np.arange(K) - (np.cumsum(per_head) - per_head)[local[order]]  # rank of a pair in its head
    sizes = stats.class_sizes[torch.as_tensor(uniq, device=A.device)].cpu().numpy()
    bucket = np.ceil(np.log2(np.maximum(sizes, 1)))
    element = A.element_size()
    for value in np.unique(bucket):
        members = np.flatnonzero(bucket == value)
        members = members[np.argsort(-per_head[members], kind="stable")]  # similar pair counts side by side
        start = 0
        while start < len(members):
            R, m = int(sizes[members[start:]].max()), int(per_head[members[start]])
            per_head_bytes = (R * d + 2 * m * w * d + m * w * R) * element
            stop = min(len(members), start + max(1, int(budget // per_head_bytes)))
            group = members[start:stop]
            start = stop
            position = np.full(len(uniq), -1, dtype=np.int64)
            position[group] = np.arange(len(group))
            pairs = np.flatnonzero(position[local] >= 0)
            def to(a):
                return torch.as_tensor(a, device=A.device)
            g, r, p = to(position[local[pairs]]), to(slot[pairs]), to(pairs)
            m = int(per_head[group].max())
            Zh = stats.factors(to(uniq[group]))  # (G, R, d), zero padding rows
            padded = A.new_zeros(len(group), m, w, d)
            padded[g, r] = A[p]
            result = ((padded.view(len(group), m * w, d) @ Zh.mT) @ Zh).view(len(group), m, w, d)
            out[p] = result[g, r]
    return out


def _pair_products(stats, chunk, route, Zt=None):
    """``S = Sigma_t^T Sigma_h`` (P, d, d) of a chunk of (tail, head) pairs, in units of ``stats.scale``."""
    if route == "dense":
        if stats.dense is not None:
            table = stats.covariance_table(chunk.reshape(-1))
            return torch.bmm(table[chunk[:, 0]].mT, table[chunk[:, 1]])
        classes, local = torch.unique(chunk, return_inverse=True)
        cov = stats.covariances(classes)
        return torch.bmm(cov[local[:, 0]].mT, cov[local[:, 1]])
    return Zt.mT @ _times_head_covariance(stats, Zt, chunk[:, 1])


def _chunks(pairs, sizes, route, d, element_size, chunk_bytes, square=True):
    """Split the pairs into chunks that fit ``chunk_bytes`` (``square``: two d x d arrays per pair).

    Tail factors are zero-padded to the largest tail class of a chunk, so factor
    chunks take pairs of tail classes of similar size (the next power of two:
    padding at most doubles the work); within such a group pairs are ordered by
    head class, so that a chunk builds each head factor once.
    """
    def per(rows):
        return max(1, int(chunk_bytes // ((2 * d * d * square + 3 * rows * d) * element_size)))
    if route == "dense":
        index = torch.arange(len(pairs), device=pairs.device)
        return [index[i : i + per(0)] for i in range(0, len(pairs), per(0))]
    bucket = torch.ceil(torch.log2(sizes[:, 0].clamp_min(1))).to(torch.int64)
    chunks = []
    for value in torch.unique(bucket).tolist():
        index = torch.nonzero(bucket == value).squeeze(1)
        index = index[torch.argsort(pairs[index, 1], stable=True)]
        step = per(2**value)
        chunks.extend(index[i : i + step] for i in range(0, len(index), step))
    return chunks


def _transfer(stats, F, tail, head, tau, *, variance=None, chunk_bytes=_CHUNK_BYTES):
    """Augment tail features ``F`` (m, d) of classes ``tail`` with the covariance of classes ``head``.

    Returns ``F_tilde`` (m, d), the paper's weight ``omega`` (m,) computed in
    units of ``stats.scale`` and a mask (m,) of *degenerate* pairs (a zero
    covariance on either side, e.g. a one-sample class), whose ``S`` is 0.

    ``variance="head"`` (``"tail"``) rescales each pair's ``Sigma_th`` so that
    the augmented tail class has the total variance of the head (tail) class:
    ``E ||F~ - mu_t||^2 = tr(Sigma_h)``; None is Eq. 6 as written.

    ``S`` comes from dense class covariances (``2 d^3`` per pair) when that is
    cheaper than the factor chain ``Z_t^T ((Z_t Z_h^T) Z_h)`` (``2 n_t n_h d +
    2 n_t d^2``) and the covariances fit in ``chunk_bytes``: small ``d``.
    """
    m, d = F.shape
    out = F.clone()
    omega = torch.zeros(m, dtype=F.dtype, device=F.device)
    degenerate = torch.zeros(m, dtype=torch.bool, device=F.device)
    if m == 0:
        return out, omega, degenerate
    pairs, pair_of = torch.unique(torch.stack([tail, head], 1), dim=0, return_inverse=True)
    sizes = stats.class_sizes[pairs].to(torch.float64)
    needed = torch.unique(pairs)
    if stats.dense is not None:  # covariances at hand: Sigma_t Sigma_h, or Z_t^T (Z_t Sigma_h) for small tails
        dense_cost = 2.0 * len(pairs) * d**3
        factor_cost = float((4 * sizes[:, 0] * d * d).sum())
        fits = True
    else:
        dense_cost = 2.0 * float(stats.class_sizes[needed].sum()) * d * d + 2.0 * len(pairs) * d**3
        factor_cost = float((2 * sizes[:, 0] * sizes[:, 1] * d + 2 * sizes[:, 0] * d * d).sum())
        fits = len(needed) * d * d * F.element_size() <= chunk_bytes
    route = "dense" if dense_cost <= factor_cost and fits else "factor"
    square = not (tau == 0 and route == "factor")  # tau = 0 never forms a d x d matrix
    for index in _chunks(pairs, sizes, route, d, F.element_size(), chunk_bytes, square):
        chunk = pairs[index]
        zero = stats.degenerate(chunk[:, 0]) | stats.degenerate(chunk[:, 1])
        Zt = None
        if route == "factor" or variance is not None:
            Zt = stats.factors(chunk[:, 0])
        if tau == 0 and route == "factor":
            # Sigma_th = Sigma_t Sigma_h / d: never form a d x d matrix, O((n_t + n_h) d) per sample
            ones = Zt.new_ones(len(chunk), 1, d)
            a = ((ones @ Zt.mT) @ Zt).squeeze(1)  # 1^T Sigma_t
            b = _times_head_covariance(stats, ones, chunk[:, 1]).squeeze(1)  # 1^T Sigma_h
            omega_pair = (a * b).sum(1) / d**2  # Eq. 11

            def apply(z_groups, ids, Zt=Zt, heads=chunk[:, 1]):
                Zt, heads = (Zt, heads) if ids is None else (Zt[ids], heads[ids])
                return _times_head_covariance(stats, (z_groups @ Zt.mT) @ Zt, heads)

            factor = 1.0 / d
        else:
            sigma_th, factor = _transfer_matrix(_pair_products(stats, chunk, route, Zt), tau)  # Eq. 4-5
            omega_pair = None if variance is not None else sigma_th.sum((1, 2)) * (factor / d)  # Eq. 11

            def apply(z_groups, ids, sigma_th=sigma_th):
                return torch.bmm(z_groups, sigma_th if ids is None else sigma_th[ids])

        gain = torch.ones(len(chunk), dtype=F.dtype, device=F.device)
        if variance is not None:
            # E ||z Sigma_th||^2 over the tail class = tr(Sigma_th^T R_t Sigma_th), R_t its correlation
            standardised = Zt / (stats.variances[chunk[:, 0]] + EPS).sqrt()[:, None, :]
            if omega_pair is None:  # one pass over Sigma_th for both: 1^T Sigma_th is the last row
                ones = standardised.new_ones(len(chunk), 1, d)
                product = apply(torch.cat([standardised, ones], 1), None)
                omega_pair = product[:, -1].sum(1) * (factor / d)  # Eq. 11
                spread = product[:, :-1].square().sum((1, 2)) * factor**2
            else:
                spread = apply(standardised, None).square().sum((1, 2)) * factor**2
            target = stats.variances[chunk[:, 1 if variance == "head" else 0]].sum(1)
            gain = torch.where(spread > 0, target / spread.clamp_min(torch.finfo(F.dtype).tiny), 0.0).sqrt()
        gain[zero] = 0.0  # a zero covariance transfers nothing (and rounding must not be amplified)
        position = torch.full((len(pairs),), -1, dtype=torch.int64, device=F.device)
        position[index] = torch.arange(len(index), device=F.device)
        local_all = position[pair_of]
        samples = torch.nonzero(local_all >= 0).squeeze(1)
        local = local_all[samples]
        mu_t = stats.means[chunk[local, 0]]
        var_t = stats.variances[chunk[local, 0]]  # diag(Sigma_t)
        z = (F[samples] - mu_t) / stats.scale / (var_t + EPS).sqrt()  # Eq. 6, standardised
        delta = _apply_per_pair(z, local, len(chunk), apply)
        transferred = delta.mul_(gain[local, None] * (stats.scale * factor)).add_(mu_t)
        out[samples] = torch.where(zero[local, None], F[samples], transferred)  # nothing to transfer
        omega[samples] = omega_pair[local]
        degenerate[samples] = zero[local]
    return out, omega, degenerate


def _apply_per_pair(z, pair_index, n_pairs, apply):
    """Row ``i`` of the result is row ``i`` of ``apply`` on the rows of its pair.

    ``apply(groups, ids)`` maps rows grouped by pair, ``groups`` of shape
    (K, w, d) (zero-padded), to (K, w, d); ``ids`` are the K pairs (None: all,
    in order). Groups are padded into one batched call unless that wastes more
    than it saves; then the pairs are looped over.
    """
    counts = torch.bincount(pair_index, minlength=n_pairs)
    width = int(counts.max())
    if n_pairs * width > 4 * len(z) + 64:
        out = torch.empty_like(z)
        for p in torch.unique(pair_index).tolist():
            rows = torch.nonzero(pair_index == p).squeeze(1)
            out[rows] = apply(z[rows][None], torch.tensor([p], device=z.device))[0]
        return out
    order = torch.argsort(pair_index, stable=True)
    sorted_pairs = pair_index[order]
    slot = torch.arange(len(z), device=z.device) - (torch.cumsum(counts, 0) - counts)[sorted_pairs]
    groups = z.new_zeros(n_pairs, width, z.shape[1])
    groups[sorted_pairs, slot] = z[order]
    out = torch.empty_like(z)
    out[order] = apply(groups, None)[sorted_pairs, slot]
    return out


def _dense_bytes(n_classes, d, element_size=4):
    """Bytes of the dense per-class covariances (one d x d matrix per class, float32 by default)."""
    return n_classes * d * d * element_size


def _class_moments(X, y, n_classes, block=8192):
    """Class means and (biased) variances, two passes over blocks of rows (no n x d temporary)."""
    counts = torch.bincount(y, minlength=n_classes).to(X.dtype).clamp_min(1.0)[:, None]
    means = torch.zeros(n_classes, X.shape[1], dtype=X.dtype, device=X.device).index_add_(0, y, X) / counts
    variances = torch.zeros_like(means)
    for start in range(0, len(y), block):
        labels = y[start : start + block]
        centred = X[start : start + block] - means[labels]
        variances.index_add_(0, labels, centred.mul_(centred))
    return means, variances / counts


def _feature_scale(X, y, n_classes, feature_scale):
    """The unit the formula works in: root mean within-class variance for ``"auto"``."""
    if feature_scale is None:
        return 1.0
    if feature_scale != "auto":
        return float(feature_scale)
    counts = torch.bincount(y, minlength=n_classes).to(X.dtype)
    within = float((_class_moments(X, y, n_classes)[1] * counts[:, None]).sum() / X.numel())
    return float(np.sqrt(within)) if within > 0 else 1.0


# --------------------------------------------------------------------------------------
# Loss weights
# --------------------------------------------------------------------------------------


class _OmegaWeights:
    """Turn the paper's ``omega`` into loss weights following the augmenter's parameters.

    ``relative`` divides by the mean ``omega`` of all non-degenerate augmented
    samples seen so far (the whole set in ``fit_resample``, the training so far
    online), so tail samples weigh 1 on average like head samples.
    """

    def __init__(self, mode, bounds, zero_covariance_weight):
        self.mode = mode
        self.low, self.high = bounds
        self.zero_covariance_weight = zero_covariance_weight
        self.total = 0.0
        self.count = 0

    def __call__(self, omega, degenerate):
        if self.mode == "none":
            weights = torch.ones_like(omega)
        else:
            weights = omega.clone()
            if self.mode == "relative":
                valid = omega[~degenerate]
                self.total += float(valid.sum())
                self.count += len(valid)
                mean = self.total / self.count if self.count else 1.0
                if mean <= 0:  # omega mostly negative: keep the signs, fix the scale
                    mean = float(valid.abs().mean()) if len(valid) else 1.0
                weights /= mean if mean > 0 else 1.0
            if self.low is not None or self.high is not None:
                weights.clamp_(min=self.low, max=self.high)
        if self.zero_covariance_weight is not None:
            weights[degenerate] = float(self.zero_covariance_weight)
        return weights


# --------------------------------------------------------------------------------------
# Online route: the training-batch hook
# --------------------------------------------------------------------------------------


class _IndexRecorder(Sampler):
    """Wrap a batch-index sampler and remember the last index tensor it yielded.

    The library's training loop fetches one batch per yielded index tensor, in
    the main process, so ``last`` is the index tensor of the batch being trained.
    """

    def __init__(self, sampler):
        self.sampler = sampler
        self.batch_size = getattr(sampler, "batch_size", 128)
        self.last = None

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        for indices in self.sampler:
            self.last = indices
            yield indices


class _SMARTBatchHook:
    """``train_batch_hook`` of the online route (see ``SMARTAugmenter.make_train_batch_hook``)."""

    def __init__(self, augmenter, X, y, sample_weight, recorder, generator, n_classes, is_head, is_tail, head_probs):
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.tau = float(augmenter.tau)
        self.augmented_variance = augmenter.augmented_variance
        self.transfer = _transfer  # replaceable, for ablations (e.g. the tail stream without the transform)
        self.recorder = recorder
        self.generator = generator
        self.is_head = torch.as_tensor(is_head, device=X.device)
        counts = np.bincount(y.cpu().numpy(), minlength=n_classes).astype(np.float64)
        # the tail stream (an inference: the paper's sampler T is not defined, see the user guide)
        drawn = is_tail if augmenter.tail_classes == "tail" else counts > 0
        per_class = 1.0 / np.maximum(counts, 1) if augmenter.tail_sampling == "reversed" else np.ones(n_classes)
        tail_probs = np.where(drawn, per_class, 0.0)
        self.tail_sampler = ClassBalancedSampler(y.cpu().numpy(), 1, class_probs=tail_probs, generator=generator)
        self.head_probs = torch.as_tensor(np.where(is_head, counts, 0.0))
        mixed = (head_probs + self.tail_sampler.class_probs_) / 2  # class frequencies of the two streams together
        self.class_factor = None
        self.logit_shift = None
        if augmenter.prior_correction == "reweight":
            # weight both streams so that each class keeps its share of the head stream (in expectation)
            factor = np.divide(head_probs, mixed, out=np.ones_like(mixed), where=mixed > 0)
            self.class_factor = torch.as_tensor(factor, dtype=X.dtype, device=X.device)
        elif augmenter.prior_correction == "logit_adjust":
            # the loss's logit adjustment, moved from the head stream's class frequencies to the mixed stream's
            ratio = np.divide(mixed, head_probs, out=np.ones_like(mixed), where=(mixed > 0) & (head_probs > 0))
            self.logit_shift = torch.as_tensor(np.log(ratio), dtype=X.dtype, device=X.device)
        scale = _feature_scale(X, y, n_classes, augmenter.feature_scale)
        self.stats = _ClassStatistics(
            X, y, n_classes, scale, running=augmenter.statistics == "running", dense_budget=augmenter.memory_budget
        )
        self.weights = _OmegaWeights(augmenter.omega, _bounds(augmenter.omega_bounds), augmenter.zero_covariance_weight)

    def adapt_criterion(self, criterion):
        """``criterion`` with ``prior_correction="logit_adjust"`` applied (called by ``train_module``)."""
        tau = float(getattr(criterion, "tau", 0.0) or 0.0)
        if self.logit_shift is None or tau == 0.0 or getattr(criterion, "adjustment", None) is None:
            return criterion
        return _PriorShiftedLoss(criterion, tau * self.logit_shift)

    def __call__(self, batch):
        Xh, yh, wh = batch_unpack(batch)
        n = len(yh)
        device = Xh.device
        tail_idx = self.tail_sampler.draw(n).to(device)
        if self.stats.running:
            head_idx = self.recorder.last
            if head_idx is None or len(head_idx) != n:
                raise RuntimeError(
                    "SMARTAugmenter(statistics='running') could not tell which rows the training batch holds; "
                    "the training DataLoader must run in the main process (num_workers=0)."
                )
            self.stats.update(head_idx.to(device))
            self.stats.update(tail_idx)
        yt = self.y[tail_idx]
        # tail sample i takes the class of head sample i; when that is no head class or the sample's own class,
        # a head class other than its own, drawn in proportion to its size (the paper: "a head class k_h")
        partner = yh.clone()
        redo = ~self.is_head[partner] | (partner == yt)
        if bool(redo.any()):
            probs = self.head_probs.to(device)[None, :].repeat(int(redo.sum()), 1)
            own = yt[redo]
            probs[torch.arange(len(own), device=device), own] = 0.0
            alone = probs.sum(1) == 0  # its own class is the only head class: borrow from itself
            probs[alone] = self.head_probs.to(device)
            redraw = torch.multinomial(probs.cpu(), 1, replacement=True, generator=self.generator).squeeze(1)
            partner[redo] = redraw.to(device)
        Xt, omega, degenerate = self.transfer(
            self.stats, self.X[tail_idx], yt, partner, self.tau, variance=self.augmented_variance
        )
        wt = self.weights(omega, degenerate)
        if self.sample_weight is not None:
            wt = wt * self.sample_weight[tail_idx]
        if wh is None:
            wh = torch.ones(n, dtype=Xt.dtype, device=device)
        y_out, w_out = torch.cat([yh, yt]), torch.cat([wh, wt])
        if self.class_factor is not None:
            w_out = w_out * self.class_factor[y_out]
        return torch.cat([Xh, Xt]), (y_out, w_out)


class _PriorShiftedLoss(torch.nn.Module):
    """The estimator's loss on ``logits + shift``: its logit adjustment, moved to the mixed stream's prior.

    A logit-adjusted loss adds ``tau * log(p_c)`` for the class frequencies
    ``p`` it was built with; adding ``tau * log(p_mixed / p)`` makes it adjust
    for the frequencies the two streams train on instead. ``tau = 0`` (plain
    cross-entropy) is left as it is.
    """

    def __init__(self, base, shift):
        super().__init__()
        self.base = base
        self.register_buffer("shift", shift)

    def forward(self, logits, y, sample_weight=None):
        return self.base(logits + self.shift, y, sample_weight)


def _bounds(omega_bounds):
    low, high = omega_bounds
    return (None if low is None else float(low), None if high is None else float(high))


def _check_omega_bounds(omega_bounds):
    ok = isinstance(omega_bounds, (tuple, list)) and len(omega_bounds) == 2
    if ok:
        low, high = omega_bounds
        for v in (low, high):
            ok &= v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool) and not np.isnan(v))
        ok &= not (ok and low is not None and high is not None and low > high)
    if not ok:
        raise ValueError(
            f"omega_bounds must be a pair (low, high) of numbers or None with low <= high, e.g. (0.0, 5.0), "
            f"or (None, None) for the paper's unbounded weights; got {omega_bounds!r}."
        )


# --------------------------------------------------------------------------------------
# The public estimator
# --------------------------------------------------------------------------------------


class SMARTAugmenter(BaseOverSampler):
    """SMART: augment tail-class features with the covariance of head classes.

    SMART (SeMAntic tRansfer from head to Tail, Zhang et al., CVPR 2024)
    enlarges the margin of rare classes by transferring the diversity of
    frequent ones. For a tail sample ``F`` of class ``t`` and a head class
    ``h`` it computes ``S = Sigma_t^T Sigma_h``, ``Gamma = softmax(tau * S)``
    row-wise, ``Sigma_th = Gamma * S`` (element-wise) and the augmented feature
    ``F~ = (F - mu_t) / sqrt(diag(Sigma_t) + 1e-8) @ Sigma_th + mu_t``, whose
    loss is weighted by ``omega = sum(Sigma_th) / d``.

    It works two ways:

    - **as an imbalanced-learn sampler**: :meth:`fit_resample` returns the data
      plus augmented tail samples (as many as ``sampling_strategy`` asks, each
      from a tail sample drawn uniformly in its class and a head class drawn
      in proportion to its size), so it composes in
      :class:`imblearn.pipeline.Pipeline` and does nothing at predict time. The
      augmented samples' loss weights are in ``sample_weight_`` (a Pipeline
      passes only ``X, y`` on: fit the classifier yourself to use them);
    - **online, as in the paper**: give it to a torch estimator of the library
      (``LinearClassifier(augmenter=SMARTAugmenter())``). Every training batch
      (the *head stream*) is joined by as many samples drawn by the *tail
      stream* (``tail_sampling``, ``tail_classes``: by default uniform over
      the tail classes, i.e. the class-uniform minority sampler of CMO, which
      the paper follows, restricted to the classes it augments); tail
      sample ``i`` is augmented with the class of head sample ``i`` (or
      another head class, see ``head_threshold``) and its loss weighted by
      ``omega``. The estimator's loss is the weighted mean ``sum(w l) /
      sum(w)`` over both streams (the paper's Eq. 10 divides by the number of
      samples ``n``; the two differ by the factor ``mean(w)``, which an
      adaptive optimiser such as AdamW largely ignores).

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        How many augmented samples :meth:`fit_resample` adds to each class,
        as in every imbalanced-learn over-sampler (``"auto"``: bring every
        class but the largest to the size of the largest). Not used online.
    tau : float, default=1.0
        Sharpness of ``Gamma = softmax(tau * S)``; it multiplies (a larger
        ``tau`` concentrates each row on the most similar head dimension, as the
        paper says). ``0`` gives ``Sigma_th = S / d``; ``np.inf`` keeps only
        each row's largest entry of ``S``. The paper gives no value; the
        default was chosen on validation data (see the user guide).
    head_threshold : int or None, default=100
        Classes with more than ``head_threshold`` training samples are *head*
        classes, whose covariance is transferred; the others are *tail*
        classes, which are augmented (online: the tail stream draws only tail
        classes, and a tail sample whose paired head-stream sample is of a tail
        class, or of its own class, is paired with another head class drawn in
        proportion to its size). ``None`` makes every class both, so that a
        sample may borrow from a class as rare as its own (not the paper,
        which pairs with "a head class"). In
        :meth:`fit_resample` the classes to augment come from
        ``sampling_strategy`` and their partners are the head classes other
        than themselves.
    augmented_variance : {"head", "tail"} or None, default="head"
        Rescale each pair's ``Sigma_th`` so that the augmented tail class
        has the total variance (``E ||F~ - mu_t||^2``) of the head class
        (``"head"``: the paper's stated aim, a covariance "akin to the head
        class's") or of the tail class itself (``"tail"``: only the
        directions change). ``None`` is Eq. 6 as written, whose spread grows
        with ``tau`` (``Sigma_th`` keeps the largest entries of ``S``) and
        with the scale of ``X``: at ``tau >= 1`` most augmented samples leave
        their class (see the user guide).
    feature_scale : "auto", float or None, default="auto"
        Unit in which the formula is applied (``X / feature_scale``, mapped
        back afterwards). ``S`` scales like ``||x||^4``, and so does the
        augmented deviation (``||x||^3`` relative to the class radius), so on
        raw features the paper's formula
        depends on the units of ``X``. ``"auto"`` uses the root mean
        within-class variance, which makes SMART invariant to rescaling ``X``
        (and close to the paper on standardised features); ``None`` is the
        paper's formula on ``X`` as given.
    omega : {"relative", "paper", "none"}, default="relative"
        Loss weight of an augmented tail sample. ``"paper"``:
        ``omega = sum(Sigma_th) / d`` (Eq. 11, in units of ``feature_scale``);
        ``"relative"``: that divided by its mean over the augmented samples
        (so tail samples weigh 1 on average, like head samples, and only the
        paper's relative emphasis remains); ``"none"``: 1. ``omega`` is
        computed from ``Sigma_th`` as Eq. 11 defines it, i.e. before the
        rescaling of ``augmented_variance`` (which is not in the paper), so
        the rescaling changes the augmented features but not their weights.
    omega_bounds : tuple (low, high), default=(0.0, 5.0)
        Clip the weights into ``[low, high]`` (``None``: no bound). ``omega``
        can be negative (``S`` is not positive semi-definite) and is unbounded;
        a negative loss weight would train the sample away from its class.
        ``(None, None)`` keeps the paper's weights as they are.
    zero_covariance_weight : float or None, default=1.0
        Loss weight of tail samples paired through a zero covariance (a
        one-sample class, or a class not yet seen twice by the running
        statistics). The formula gives them ``omega = 0`` and no augmentation
        (a one-sample class's sample is its mean), which would silently drop
        the rarest classes from the tail stream; ``None`` keeps the formula's 0.
    statistics : {"running", "exact"}, default="running"
        Online only. ``"running"``: class means and covariances are the
        count-weighted running statistics of the samples both streams have
        delivered so far (Eq. 2-3, ``alpha_k = M_k / N_k``); ``"exact"``: the
        pooled statistics of the whole training matrix from the first batch
        on. :meth:`fit_resample` always uses the exact ones.
    prior_correction : {"logit_adjust", "reweight"} or None, default="logit_adjust"
        Online only. The tail stream over-represents rare classes; balanced
        softmax and logit adjustment already correct for the training class
        frequencies, so with no correction (``None``, the paper's plain
        two-stream loss) the correction is applied twice and frequent classes
        collapse (see the user guide). ``"logit_adjust"``: the estimator's
        logit adjustment uses the class frequencies of the two streams
        together (``(p_head + p_tail) / 2``) instead of the training ones, and
        every sample keeps its weight (real samples 1, augmented ones their
        ``omega``): the augmented samples are *added*, as in the paper.
        ``"reweight"``: weight both streams so that every class keeps, in
        expectation, its share of the training loss under the estimator's own
        sampling; for the rarest classes this makes the real samples weigh
        little (0.02-0.08 on icd10cm) and the loss come mostly from their
        transforms. Both are no-ops for the plain cross-entropy loss
        (``"logit_adjust"``) or change only its weights (``"reweight"``).
    tail_sampling : {"balanced", "reversed"}, default="balanced"
        Online only. How the tail stream draws classes: ``"balanced"``
        uniformly (CMO's minority sampler at its default, which the paper says
        it follows), ``"reversed"`` with probability proportional to ``1 /
        n_c`` (H2T's "reverse" sampler; the former default). The paper does
        not define its tail sampler ``T``: both are inferences (see the user
        guide).
    tail_classes : {"tail", "all"}, default="tail"
        Online only. Which classes the tail stream draws from: the tail
        classes (at most ``head_threshold`` samples; the paper augments "a
        given tail class" with "a head class"), or every class (as CMO's
        minority sampler does; a head-class sample of the tail stream is then
        augmented with another head class). With ``"all"`` a data set without
        tail classes is still augmented throughout.
    memory_budget : int, default=2**30
        Bytes the dense per-class d x d covariances may take (``4 * n_classes
        * d**2`` in float32: 87 MB at d = 384 with 147 classes, 16.8 GB at d =
        2048 with 1,000). Within it, class covariances are kept dense and
        updated with the running statistics, and ``S = Sigma_t^T Sigma_h``
        costs ``O(n_t d^2)`` per pair; beyond it (or with 0) they are rebuilt
        from the class's rows for each batch (``O((n_t n_h + n_t d) d)`` per
        pair, memory ``O(n d)``). Both give the same numbers.
    random_state : int, RandomState instance or None, default=None
        Draws of :meth:`fit_resample` (online, the estimator's ``random_state``
        drives the draws).

    Attributes
    ----------
    sampling_strategy_ : dict
        Number of augmented samples added to each class.
    sample_weight_ : ndarray of shape (n_samples_resampled,)
        Loss weights of the rows :meth:`fit_resample` returned: 1 for the
        original rows, the processed ``omega`` for the augmented ones.
    omega_ : ndarray of shape (n_augmented,)
        The paper's ``omega`` of each augmented row (before ``omega`` and
        ``omega_bounds`` processing), in units of ``feature_scale_``.
    sample_indices_ : ndarray of shape (n_samples_resampled,)
        Row of ``X`` each returned row comes from (for an augmented row: its
        tail sample).
    partner_classes_ : ndarray of shape (n_augmented,)
        Head class whose covariance augmented each added row.
    head_classes_ : ndarray
        Classes with more than ``head_threshold`` samples.
    class_means_ : ndarray of shape (n_classes, n_features)
        Class means (the augmented samples keep them in expectation).
    feature_scale_ : float
        The unit the formula was applied in.
    n_features_in_ : int
        Number of features seen in :meth:`fit_resample`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.

    See Also
    --------
    imblearn.over_sampling.RandomOverSampler : over-sampling by repetition.
    imblearn.over_sampling.SMOTE : over-sampling by interpolation between neighbours.
    sklearn_lt.linear_model.LinearClassifier : torch estimator taking ``augmenter=``.

    Notes
    -----
    Departures from the paper, each a parameter (see the user guide's table
    "Departures and what is not implemented" for the measurements):
    ``augmented_variance``, ``feature_scale``, ``omega``, ``omega_bounds``,
    ``zero_covariance_weight`` and ``prior_correction`` above; the tail
    stream (``tail_sampling``, ``tail_classes``) and the head partner of a tail
    sample are inferences, since the paper does not define its samplers. The
    running covariance includes the between-batch term of the pooled
    covariance, which Eq. 3 leaves out (with fixed features Eq. 3 alone
    underestimates a covariance by the factor ``(M_k - 1) / M_k`` of a class's
    per-batch count, and keeps it at 0 for a class drawn once per batch).
    ``omega`` is computed before the ``augmented_variance`` rescaling, and the
    estimator's loss divides by ``sum(w)``, not ``n`` (Eq. 10). Dense class
    covariances are kept only within ``memory_budget``, so 1,000 classes at
    d = 2048 fit in the memory of the data.

    References
    ----------
    .. [1] S. Zhang, Y. Ni, J. Du, Y. Liu and P. Koniusz, "Semantic Transfer from
       Head to Tail: Enlarging Tail Margin for Long-Tailed Visual Recognition",
       CVPR 2024 (WACV 2024 preprint).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.augmentation import SMARTAugmenter
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> X, X_test, y, y_test = make_long_tailed_classification(random_state=0)
    >>> smart = SMARTAugmenter(head_threshold=50, random_state=0)
    >>> X_res, y_res = smart.fit_resample(X, y)
    >>> bool(X_res.shape[0] - X.shape[0] == sum(smart.sampling_strategy_.values()))
    True
    >>> smart.sample_weight_.shape == (X_res.shape[0],)
    True

    Online, inside a torch estimator:

    >>> from sklearn_lt.linear_model import LinearClassifier
    >>> clf = LinearClassifier(loss="balanced_softmax", augmenter=SMARTAugmenter(head_threshold=50),
    ...                        max_epochs=5, random_state=0).fit(X, y)
    >>> round(clf.score(X_test, y_test), 1) >= 0.5
    True
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "tau": [Interval(numbers.Real, 0, None, closed="left")],
        "head_threshold": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "augmented_variance": [StrOptions({"head", "tail"}), None],
        "feature_scale": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither"), None],
        "omega": [StrOptions({"relative", "paper", "none"})],
        "omega_bounds": [tuple, list],
        "zero_covariance_weight": [Interval(numbers.Real, 0, None, closed="left"), None],
        "statistics": [StrOptions({"running", "exact"})],
        "prior_correction": [StrOptions({"logit_adjust", "reweight"}), None],
        "tail_sampling": [StrOptions({"reversed", "balanced"})],
        "tail_classes": [StrOptions({"tail", "all"})],
        "memory_budget": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        tau=1.0,
        head_threshold=100,
        augmented_variance="head",
        feature_scale="auto",
        omega="relative",
        omega_bounds=(0.0, 5.0),
        zero_covariance_weight=1.0,
        statistics="running",
        prior_correction="logit_adjust",
        tail_sampling="balanced",
        tail_classes="tail",
        memory_budget=_DENSE_BUDGET,
        random_state=None,
    ):
        super().__init__(sampling_strategy=sampling_strategy)
        self.tau = tau
        self.head_threshold = head_threshold
        self.augmented_variance = augmented_variance
        self.feature_scale = feature_scale
        self.omega = omega
        self.omega_bounds = omega_bounds
        self.zero_covariance_weight = zero_covariance_weight
        self.statistics = statistics
        self.prior_correction = prior_correction
        self.tail_sampling = tail_sampling
        self.tail_classes = tail_classes
        self.memory_budget = memory_budget
        self.random_state = random_state

    # fast instance for the common checks: the checks' small data sets have no class above 100
    _test_params = {"head_threshold": 5, "random_state": 0}

    def _check_X_y(self, X, y, accept_sparse=None):
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        # statistics are computed in float32/64; the output returns to a narrower float input's dtype (float16)
        dtype = getattr(X, "dtype", None)
        self._output_dtype = dtype if dtype is not None and dtype.kind == "f" and dtype.itemsize < 4 else None
        X, y = validate_data(self, X=X, y=y, reset=True, dtype=[np.float64, np.float32], accept_sparse=["csr", "csc"])
        return X, y, binarize_y

    def _validate_more(self):
        _check_omega_bounds(self.omega_bounds)
        if isinstance(self.feature_scale, numbers.Real) and not np.isfinite(self.feature_scale):
            raise ValueError(f"feature_scale must be a finite positive number, 'auto' or None; got {self.feature_scale!r}.")

    def _head_mask(self, counts):
        if self.head_threshold is None:
            return np.ones(len(counts), dtype=bool)
        return counts > self.head_threshold

    def _fit_resample(self, X, y):
        self._validate_more()
        rng = check_random_state(self.random_state)
        X_in, X = X, (X.toarray() if sparse.issparse(X) else X)  # covariances need dense features
        classes, y_enc, counts = np.unique(y, return_inverse=True, return_counts=True)
        is_head = self._head_mask(counts)
        self.head_classes_ = classes[is_head]
        # never written to; read-only arrays (memmaps, pandas) are copied since torch wants writable memory
        Xt = torch.from_numpy(X if X.flags.writeable else X.copy())
        yt = torch.as_tensor(y_enc, dtype=torch.int64)
        self.feature_scale_ = _feature_scale(Xt, yt, len(classes), self.feature_scale)
        stats = _ClassStatistics(Xt, yt, len(classes), self.feature_scale_, running=False, dense_budget=self.memory_budget)
        self.class_means_ = stats.means.numpy().astype(X.dtype)

        sources, partners = [], []
        position = {c: k for k, c in enumerate(classes)}
        for label, n_new in self.sampling_strategy_.items():
            if n_new == 0:
                continue
            k = position[label]
            candidates = np.flatnonzero(is_head & (np.arange(len(classes)) != k))
            if len(candidates) == 0:
                raise ValueError(
                    f"SMARTAugmenter has no head class to transfer to class {label_repr(label)}: no other class has more "
                    f"than head_threshold={self.head_threshold} samples (class sizes: {dict(zip(classes, counts))}). "
                    "Lower head_threshold."
                )
            sources.append(rng.choice(np.flatnonzero(y_enc == k), size=n_new, replace=True))
            probs = counts[candidates] / counts[candidates].sum()
            partners.append(candidates[rng.choice(len(candidates), size=n_new, p=probs)])
        sources = np.concatenate(sources) if sources else np.zeros(0, dtype=np.intp)
        partners = np.concatenate(partners) if partners else np.zeros(0, dtype=np.intp)

        F_new, omega, degenerate = _transfer(
            stats,
            Xt[sources],
            yt[sources],
            torch.as_tensor(partners, dtype=torch.int64),
            float(self.tau),
            variance=self.augmented_variance,
        )
        weights = _OmegaWeights(self.omega, _bounds(self.omega_bounds), self.zero_covariance_weight)(omega, degenerate)
        self.omega_ = omega.numpy().astype(np.float64)
        self.partner_classes_ = classes[partners]
        self.sample_indices_ = np.concatenate([np.arange(len(y)), sources])
        self.sample_weight_ = np.concatenate([np.ones(len(y)), weights.numpy().astype(np.float64)])
        F_new = F_new.numpy().astype(X.dtype, copy=False)
        if sparse.issparse(X_in):
            X_res = sparse.vstack([X_in, sparse.csr_matrix(F_new)], format=X_in.format)
        else:
            X_res = np.vstack([X, F_new])
            if getattr(self, "_output_dtype", None) is not None:
                X_res = X_res.astype(self._output_dtype)
        y_res = np.concatenate([y, y[sources]])
        return X_res, y_res

    def make_train_batch_hook(self, X, y, *, sample_weight=None, sampler, device="cpu"):
        """Bind the online augmentation to a training set (used by ``train_module``).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), float32
            Training features (held by reference, not copied on the CPU).
        y : ndarray of shape (n_samples,)
            Labels encoded as 0..n_classes-1.
        sample_weight : ndarray of shape (n_samples,), default=None
            Training weights; a tail sample's loss weight is its own times ``omega``.
        sampler : torch.utils.data.Sampler
            The training (head-stream) sampler, yielding one index tensor per batch.
        device : str, default="cpu"
            Where the training batches live.

        Returns
        -------
        hook : callable or None
            ``batch -> batch`` for ``LTNet.train_batch_hook``: the head batch
            followed by the augmented tail batch, targets ``(y, weights)``.
            None (with a warning) when there is no tail or no head class.
        sampler : torch.utils.data.Sampler
            The sampler to train with (it also tells the hook the batch's rows).
        """
        self._validate_params()
        self._validate_more()
        y = np.asarray(y)
        n_classes = int(y.max()) + 1
        counts = np.bincount(y, minlength=n_classes)
        is_head = self._head_mask(counts)
        is_tail = ~is_head if self.head_threshold is not None else np.ones(n_classes, dtype=bool)
        if self.tail_classes == "all":
            is_tail = counts > 0
        if not is_head.any() or not is_tail.any():
            which = "head" if not is_head.any() else "tail"
            warnings.warn(
                f"SMARTAugmenter(head_threshold={self.head_threshold}) finds no {which} class in these training "
                f"data (class sizes {counts.min()}-{counts.max()}), so nothing is augmented; set head_threshold "
                "between the sizes of the classes to augment and of those to borrow covariance from.",
                UserWarning,
                stacklevel=3,
            )
            return None, sampler
        generator = torch.Generator()
        base = getattr(sampler, "generator", None)
        # a stream of its own: the head stream draws the same batches with or without augmentation
        generator.manual_seed((base.initial_seed() + 1) if base is not None else int(torch.randint(2**62, (1,))))
        recorder = _IndexRecorder(sampler) if self.statistics == "running" else None
        X_t = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
        y_t = torch.as_tensor(y, dtype=torch.int64, device=device)
        w_t = None
        if sample_weight is not None and not np.all(np.asarray(sample_weight) == 1):
            w_t = torch.as_tensor(np.asarray(sample_weight, dtype=np.float32), device=device)
        head_probs = getattr(sampler, "class_probs_", None)
        if head_probs is None or len(head_probs) != n_classes:  # instance sampling
            weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
            head_probs = np.bincount(y, weights=weights, minlength=n_classes)
        head_probs = np.asarray(head_probs, dtype=np.float64) / np.sum(head_probs)
        hook = _SMARTBatchHook(
            self, X_t, y_t, w_t, recorder, generator, n_classes, is_head, is_tail, head_probs
        )
        return hook, (recorder if recorder is not None else sampler)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.sampler_tags.sample_indices = True
        return tags
