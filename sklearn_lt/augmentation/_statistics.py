"""SMART's numerics (Zhang et al., CVPR 2024): class statistics, the transfer, omega weights.

Shared by both routes of :class:`~sklearn_lt.augmentation.SMARTAugmenter`:
``fit_resample`` uses exact pooled class statistics, the online batch hook
count-weighted running ones.

Memory. A class is always kept as its rows of ``X`` (indices into the caller's
array) with per-row weights, i.e. the factor ``Z_k = diag(sqrt(w / N_k)) (X_k -
mu_k)`` with ``Sigma_k = Z_k^T Z_k``. When the dense per-class d x d statistics
of every class fit the augmenter's ``memory_budget`` they are kept as well
(the running ones as scatter matrices, updated lazily: a class's pending
rank-one terms are folded in when its covariance is next needed), and ``S =
Sigma_t^T Sigma_h`` is ``Z_t^T (Z_t Sigma_h)`` (``Z_t Sigma_h`` for all the
pairs of a batch in one product per head class) or ``Sigma_t Sigma_h``,
whichever is cheaper; the d x d arrays are then made, softmaxed and applied a
cache-sized chunk of pairs at a time. Beyond
the budget (e.g. d = 2048 x 1,000 classes: 16 GiB) ``S = Z_t^T ((Z_t Z_h^T)
Z_h)`` is formed from the factors only, for the (tail class, head class)
pairs a batch needs, a chunk of pairs at a time, so the memory is ``O(n d +
chunk d^2)`` whatever the number of classes. Both routes compute the same
numbers. With fixed (exact) statistics a pair's transfer never changes:
:class:`_PairTransferCache` keeps the pairs' ``d x d`` matrices across batches
within what the budget leaves.
"""

import numpy as np
import torch

#: The paper's epsilon in ``sqrt(diag(Sigma_t) + eps)`` (Eq. 6), in units of ``feature_scale_**2``.
EPS = 1e-8
#: Bytes of d x d work arrays one chunk of pairs may hold (S and Sigma_th, 2 per pair).
_CHUNK_BYTES = 256 * 2**20
#: With dense statistics, the d x d arrays of a chunk are made, softmaxed and applied within this many bytes,
#: so that their several passes stay in the CPU's cache instead of streaming P d^2 numbers through memory.
_CACHED_CHUNK_BYTES = 8 * 2**20


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
    ones as scatter matrices ``M2_k = N_k Sigma_k`` updated lazily with the
    rank-one terms of Chan's update (:meth:`covariance_table` folds in the
    queued terms of the classes it is asked for, and the division by ``N_k``
    is left to the products that use them), so that a covariance costs
    ``queued rows x d^2`` instead of ``n_k d^2``, with no pass over the
    d x d matrix.
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
        # running: the scatter M2 (units of scale), Sigma_k = dense[k] / seen[k]; exact: Sigma_k itself
        self.dense = torch.zeros(self.n_classes, d, d, dtype=self.X.dtype, device=self.X.device)
        self._stale = torch.zeros(self.n_classes, dtype=torch.bool, device=self.X.device)
        self._pending_rows = self.X.new_zeros(0, d)
        self._pending_labels = torch.zeros(0, dtype=torch.int64, device=self.X.device)
        if not self.running:  # built once, in chunks of classes
            step = max(1, int(_CHUNK_BYTES // max(1, (int(self.class_sizes.max()) + d) * d * self.X.element_size())))
            for start in range(0, self.n_classes, step):
                classes = torch.arange(start, min(start + step, self.n_classes), device=self.X.device)
                Z = self.factors(classes)
                self.dense[classes] = Z.mT @ Z

    def _add_pending(self, labels, rows):
        """Queue rank-one terms ``rows[i] rows[i]^T`` of the scatter of class ``labels[i]``."""
        self._pending_rows = torch.cat([self._pending_rows, rows])
        self._pending_labels = torch.cat([self._pending_labels, labels])
        self._stale[labels] = True
        if len(self._pending_labels) > max(4096, len(self.y)):  # bound the queue: fold everything in
            self._refresh(torch.nonzero(self._stale).squeeze(1))

    def _refresh(self, classes):
        """Fold the queued rank-one terms of ``classes`` (unique, stale) into their scatter matrices."""
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
        padded[local, slot] = rows / self.scale
        self.dense.index_add_(0, touched, padded.mT @ padded)

    def degenerate(self, classes):
        """Classes whose covariance is zero: one distinct sample (seen), or a total variance below ``EPS * d``."""
        return (self.distinct[classes] <= 1) | (self.variances[classes].sum(1) <= EPS * self.X.shape[1])

    def covariances(self, classes):
        """Dense covariances (K, d, d) of ``classes``, in units of ``scale``."""
        if self.dense is None:
            Z = self.factors(classes)
            return Z.mT @ Z
        table, divisor = self.covariance_table(classes)
        return table[classes] / divisor[classes][:, None, None]

    def covariance_table(self, classes):
        """``(table, divisor)``, current for ``classes``: ``Sigma_k = table[k] / divisor[k]`` (dense statistics only).

        ``table`` is the (n_classes, d, d) table itself: indexing it by class
        gives a view, which spares the copy of a gather.
        """
        need = classes[self._stale[classes]]
        if len(need):
            self._refresh(torch.unique(need))
        return self.dense, (self.seen.clamp_min(1.0) if self.running else torch.ones_like(self.seen))

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

    def stacked_factors(self, classes):
        """The factors of :meth:`factors` without padding, stacked: (sum of the class sizes, d).

        Returns ``(Z, first)``: the rows of ``classes[k]`` are ``Z[first[k] : first[k] + size_k]``.
        """
        sizes = self.class_sizes[classes]
        first = torch.cumsum(sizes, 0) - sizes
        owner = torch.repeat_interleave(torch.arange(len(classes), device=self.X.device), sizes)
        rows = self.order[self.starts[classes][owner] + torch.arange(len(owner), device=self.X.device) - first[owner]]
        if self.running:
            weights = self.row_counts[rows] / self.seen[classes].clamp_min(1.0)[owner]
        else:
            weights = 1.0 / sizes.clamp_min(1).to(self.X.dtype)[owner]
        Z = self.X[rows] - self.means[classes][owner]
        return Z.mul_(weights.sqrt_().div_(self.scale)[:, None]), first


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
        table, divisor = stats.covariance_table(heads)
        if batched:
            return torch.bmm(A, table[heads]).div_(divisor[heads][:, None, None])
        uniq, local = torch.unique(heads, return_inverse=True)
        for j, h in enumerate(uniq.tolist()):
            sel = torch.nonzero(local == j).squeeze(1)
            out[sel] = (A[sel].reshape(-1, d) @ table[h]).div_(divisor[h]).reshape(len(sel), w, d)
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


class _TimesHeadCovariance:
    """``Z_t Sigma_h`` of every (tail, head) pair of a batch, one product per head class (dense statistics).

    The pairs' tail factors are stacked by head class, so each head covariance
    multiplies all its pairs' rows in one contiguous product, once per batch
    rather than once per chunk of pairs; :meth:`padded` hands a chunk its
    rows, zero-padded like :meth:`_ClassStatistics.factors`.
    """

    def __init__(self, stats, pairs):
        by_head = torch.argsort(pairs[:, 1], stable=True)
        Z, first = stats.stacked_factors(pairs[by_head, 0])
        # a last row of zeros, which padding rows point at
        self.Z = torch.cat([Z, Z.new_zeros(1, Z.shape[1])])
        self.W = torch.zeros_like(self.Z)
        table, divisor = stats.covariance_table(torch.unique(pairs[:, 1]))
        heads, per_head = torch.unique_consecutive(pairs[by_head, 1], return_counts=True)
        bounds = torch.cat([first, first.new_tensor([len(Z)])])[torch.cumsum(per_head, 0)].tolist()
        start = 0
        for h, stop in zip(heads.tolist(), bounds):
            torch.mm(self.Z[start:stop], table[h], out=self.W[start:stop]).div_(divisor[h])
            start = stop
        self.first = torch.empty_like(first)
        self.first[by_head] = first
        self.sizes = stats.class_sizes[pairs[:, 0]]

    def padded(self, index):
        """``(Z_t, Z_t Sigma_h)`` of the pairs ``index``, each (len(index), R, d) with zero padding rows."""
        sizes = self.sizes[index]
        R = max(int(sizes.max()), 1)
        offsets = torch.arange(R, device=sizes.device)
        rows = torch.where(offsets[None, :] < sizes[:, None], self.first[index][:, None] + offsets[None, :], -1)
        return self.Z[rows], self.W[rows]


def _pair_products(stats, chunk, route, Zt=None):
    """``S = Sigma_t^T Sigma_h`` (P, d, d) of a chunk of (tail, head) pairs, in units of ``stats.scale``."""
    if route == "dense":
        if stats.dense is not None:
            table, divisor = stats.covariance_table(chunk.reshape(-1))
            scale = divisor[chunk[:, 0]] * divisor[chunk[:, 1]]
            return torch.bmm(table[chunk[:, 0]].mT, table[chunk[:, 1]]).div_(scale[:, None, None])
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


def _transfer(stats, F, tail, head, tau, *, variance=None, chunk_bytes=_CHUNK_BYTES, cache=None):
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

    ``cache`` (a :class:`_PairTransferCache`, fixed statistics only) holds the
    transfer of pairs seen in earlier calls: their samples cost one ``d x d``
    product each, and new pairs are added while it has room.
    """
    m, d = F.shape
    if m == 0:
        return F.clone(), F.new_zeros(0), torch.zeros(0, dtype=torch.bool, device=F.device)
    pairs, pair_of = torch.unique(torch.stack([tail, head], 1), dim=0, return_inverse=True)
    # per sample and per pair once, not per chunk: Eq. 6's standardised deviation
    zero = stats.degenerate(pairs[:, 0]) | stats.degenerate(pairs[:, 1])
    mu_t = stats.means[tail]
    z = (F - mu_t) / stats.scale / (stats.variances[tail] + EPS).sqrt()  # Eq. 6, standardised
    if cache is None or not cache.applies(stats):
        delta, omega_pairs = _transfer_pairs(stats, pairs, zero, z, pair_of, tau, variance, chunk_bytes)
    else:
        slots = cache.slots(pairs)
        delta = torch.empty_like(z)
        omega_pairs = torch.empty(len(pairs), dtype=F.dtype, device=F.device)
        new = torch.nonzero(slots < 0).squeeze(1)
        if len(new):
            position = torch.full((len(pairs),), -1, dtype=torch.int64, device=F.device)
            position[new] = torch.arange(len(new), device=F.device)
            samples = torch.nonzero(position[pair_of] >= 0).squeeze(1)
            delta[samples], omega_pairs[new] = _transfer_pairs(
                stats, pairs[new], zero[new], z[samples], position[pair_of[samples]], tau, variance, chunk_bytes,
                keep=lambda index, matrices, omega: cache.store(pairs[new[index]], matrices, omega),
            )
        known = torch.nonzero(slots >= 0).squeeze(1)
        if len(known):
            omega_pairs[known] = cache.omega[slots[known]]
            position = torch.full((len(pairs),), -1, dtype=torch.int64, device=F.device)
            position[known] = torch.arange(len(known), device=F.device)
            samples = torch.nonzero(position[pair_of] >= 0).squeeze(1)
            delta[samples] = cache.apply(z[samples], slots[pair_of[samples]])
    transferred = delta.add_(mu_t)
    out = torch.where(zero[pair_of, None], F, transferred)  # nothing to transfer
    return out, omega_pairs[pair_of], zero[pair_of]


def _transfer_pairs(stats, pairs, zero, z, pair_of, tau, variance, chunk_bytes, keep=None):
    """``(F_tilde - mu_t, omega of each pair)`` of the standardised samples ``z`` of pair ``pair_of``.

    ``keep(index, matrices, omega)``, if given, receives each chunk's pairs
    ``index`` with their effective transfer matrices (``F_tilde - mu_t = z @
    matrices[k]``, gain and units included) when they are formed (not at
    ``tau = 0`` on the factor route, where no ``d x d`` matrix is).
    """
    m, d = z.shape
    sizes = stats.class_sizes[pairs].to(torch.float64)
    needed = torch.unique(pairs)
    if stats.dense is not None:  # covariances at hand: Sigma_t Sigma_h, or Z_t^T (Z_t Sigma_h) for small tails
        dense_cost = 2.0 * len(pairs) * d**3
        factor_cost = float((4 * sizes[:, 0] * d * d).sum())
        fits = True
    else:
        dense_cost = 2.0 * float(stats.class_sizes[needed].sum()) * d * d + 2.0 * len(pairs) * d**3
        factor_cost = float((2 * sizes[:, 0] * sizes[:, 1] * d + 2 * sizes[:, 0] * d * d).sum())
        fits = len(needed) * d * d * z.element_size() <= chunk_bytes
    route = "dense" if dense_cost <= factor_cost and fits else "factor"
    square = not (tau == 0 and route == "factor")  # tau = 0 never forms a d x d matrix
    head_products = None
    if stats.dense is not None:
        chunk_bytes = min(chunk_bytes, _CACHED_CHUNK_BYTES)
        if route == "factor" and square:
            head_products = _TimesHeadCovariance(stats, pairs)
    grouped = _grouped_by_pair(z, pair_of, len(pairs))
    omega_pairs = torch.empty(len(pairs), dtype=z.dtype, device=z.device)
    gain = torch.ones(len(pairs), dtype=z.dtype, device=z.device)
    delta = torch.empty_like(z if grouped is None else grouped[0])
    for index in _chunks(pairs, sizes, route, d, z.element_size(), chunk_bytes, square):
        chunk = pairs[index]
        sigma_th = None
        if head_products is not None:
            Zt, W = head_products.padded(index)
            omega_pair, factor, apply, sigma_th = _sigma_transfer(Zt.mT @ W, tau, variance)  # S = Z_t^T (Z_t Sigma_h)
        else:
            Zt = stats.factors(chunk[:, 0]) if route == "factor" or variance is not None else None
            if square:
                S = _pair_products(stats, chunk, route, Zt)
                omega_pair, factor, apply, sigma_th = _sigma_transfer(S, tau, variance)
            else:
                omega_pair, factor, apply = _linear_transfer(stats, chunk, Zt)
        rows = [] if grouped is None else [grouped[0][index]]
        if variance is not None:
            # E ||z Sigma_th||^2 over the tail class = tr(Sigma_th^T R_t Sigma_th), R_t its correlation
            standardised = Zt / (stats.variances[chunk[:, 0]] + EPS).sqrt()[:, None, :]
            R = standardised.shape[1]
            with_ones = omega_pair is None  # 1^T Sigma_th gives omega
            # the samples ride along: one pass over each Sigma_th for the spread, omega and the samples
            rows = [standardised] + [standardised.new_ones(len(chunk), 1, d)] * with_ones + rows
            product = apply(torch.cat(rows, 1), None)
            if with_ones:
                omega_pair = product[:, R].sum(1) * (factor / d)  # Eq. 11
            spread = product[:, :R].square().sum((1, 2)) * factor**2
            target = stats.variances[chunk[:, 1 if variance == "head" else 0]].sum(1)
            gain[index] = torch.where(spread > 0, target / spread.clamp_min(torch.finfo(z.dtype).tiny), 0.0).sqrt()
            if grouped is not None:
                delta[index] = product[:, R + with_ones :]
        elif grouped is not None:
            delta[index] = apply(rows[0], None)
        if grouped is None:  # a few pairs with many samples: each pair's samples through its own product
            position = torch.full((len(pairs),), -1, dtype=torch.int64, device=z.device)
            position[index] = torch.arange(len(index), device=z.device)
            local = position[pair_of]
            samples = torch.nonzero(local >= 0).squeeze(1)
            delta[samples] = _apply_per_pair(z[samples], local[samples], len(chunk), apply)
        omega_pairs[index] = omega_pair
        if keep is not None and sigma_th is not None:
            units = torch.where(zero[index], 0.0, gain[index]) * (stats.scale * factor)
            keep(index, sigma_th * units[:, None, None], omega_pair)
    if grouped is not None:
        delta = delta[grouped[1]]
    gain[zero] = 0.0  # a zero covariance transfers nothing (and rounding must not be amplified)
    return delta.mul_(gain[pair_of, None] * (stats.scale * factor)), omega_pairs


class _PairTransferCache:
    """Effective transfer matrices of (tail, head) pairs under fixed statistics, kept across calls of ``_transfer``.

    With fixed (exact) class statistics a pair's ``Sigma_th``, its gain and
    ``omega`` never change, so each is computed once per fit instead of once
    per batch. At most ``budget`` bytes of ``d x d`` matrices are kept, for at
    most the pairs that can occur (``pair_odds`` > 0). When they do not all
    fit, only the ``capacity`` most likely ones are kept (by ``pair_odds``,
    the (n_classes, n_classes) relative odds of drawing each (tail, head)
    pair), the others are computed per call, as without the cache. No
    eviction: the odds do not change over the fit, so evicting one pair for
    another would only trade which one is recomputed.
    """

    def __init__(self, n_classes, d, dtype, device, budget, pair_odds):
        element = torch.empty(0, dtype=dtype).element_size()
        odds = torch.as_tensor(pair_odds, dtype=torch.float64).reshape(-1)
        possible = int(torch.count_nonzero(odds))
        self.capacity = int(max(0, min(possible, budget // (d * d * element))))
        self.n_classes = n_classes
        self.admitted = torch.zeros(n_classes * n_classes, dtype=torch.bool, device=device)
        self.admitted[torch.argsort(odds, descending=True, stable=True)[: self.capacity].to(device)] = True
        self.matrices = torch.empty(self.capacity, d, d, dtype=dtype, device=device)
        self.omega = torch.empty(self.capacity, dtype=dtype, device=device)
        self.slot_of = torch.full((n_classes * n_classes,), -1, dtype=torch.int64, device=device)
        self.size = 0

    @property
    def nbytes(self):
        return self.matrices.numel() * self.matrices.element_size()

    def applies(self, stats):
        """Whether to use the cache: fixed statistics and room for at least one pair."""
        return self.capacity > 0 and not stats.running

    def slots(self, pairs):
        """Slot of each pair, -1 for pairs not kept."""
        return self.slot_of[pairs[:, 0] * self.n_classes + pairs[:, 1]]

    def store(self, pairs, matrices, omega):
        """Keep the admitted pairs among ``pairs`` (the others are computed per call)."""
        ids = pairs[:, 0] * self.n_classes + pairs[:, 1]
        keep = torch.nonzero(self.admitted[ids]).squeeze(1)[: self.capacity - self.size]
        if len(keep) == 0:
            return
        slots = torch.arange(self.size, self.size + len(keep), device=self.matrices.device)
        self.matrices[slots] = matrices[keep]
        self.omega[slots] = omega[keep]
        self.slot_of[ids[keep]] = slots
        self.size += len(keep)

    def apply(self, z, slots):
        """Row ``i`` is ``z[i] @ matrices[slots[i]]``: one product per pair, on views (no gather of d x d matrices)."""
        order = torch.argsort(slots, stable=True)
        kept, counts = torch.unique_consecutive(slots[order], return_counts=True)
        grouped = z[order]
        out = torch.empty_like(grouped)
        start = 0
        for slot, stop in zip(kept.tolist(), torch.cumsum(counts, 0).tolist()):
            torch.mm(grouped[start:stop], self.matrices[slot], out=out[start:stop])
            start = stop
        result = torch.empty_like(out)
        result[order] = out
        return result


def _sigma_transfer(S, tau, variance):
    """``(omega, c, apply, M)`` of a chunk from its ``S``: Eq. 4-5 and 11 (``omega`` None when ``variance`` gives it).

    ``Sigma_th = c * M``.
    """
    sigma_th, factor = _transfer_matrix(S, tau)  # Eq. 4-5
    omega_pair = None if variance is not None else sigma_th.sum((1, 2)) * (factor / S.shape[-1])  # Eq. 11

    def apply(z_groups, ids):
        return torch.bmm(z_groups, sigma_th if ids is None else sigma_th[ids])

    return omega_pair, factor, apply, sigma_th


def _linear_transfer(stats, chunk, Zt):
    """``(omega, c, apply)`` at ``tau = 0`` on the factor route: ``Sigma_th = Sigma_t Sigma_h / d`` never formed.

    ``O((n_t + n_h) d)`` per sample instead of a d x d matrix per pair.
    """
    d = Zt.shape[-1]
    ones = Zt.new_ones(len(chunk), 1, d)
    a = ((ones @ Zt.mT) @ Zt).squeeze(1)  # 1^T Sigma_t
    b = _times_head_covariance(stats, ones, chunk[:, 1]).squeeze(1)  # 1^T Sigma_h
    omega_pair = (a * b).sum(1) / d**2  # Eq. 11

    def apply(z_groups, ids, heads=chunk[:, 1]):
        Z, heads = (Zt, heads) if ids is None else (Zt[ids], heads[ids])
        return _times_head_covariance(stats, (z_groups @ Z.mT) @ Z, heads)

    return omega_pair, 1.0 / d, apply


def _grouped_by_pair(z, pair_index, n_pairs):
    """``(groups, where)``: rows of ``z`` zero-padded into (n_pairs, width, d) by pair, ``groups[where]`` is ``z``.

    None when the padding would waste more than it saves (a few pairs with many rows).
    """
    counts = torch.bincount(pair_index, minlength=n_pairs)
    width = int(counts.max())
    if n_pairs * width > 4 * len(z) + 64:
        return None
    order = torch.argsort(pair_index, stable=True)
    sorted_pairs = pair_index[order]
    slot = torch.arange(len(z), device=z.device) - (torch.cumsum(counts, 0) - counts)[sorted_pairs]
    groups = z.new_zeros(n_pairs, width, z.shape[1])
    groups[sorted_pairs, slot] = z[order]
    where = (torch.empty_like(pair_index), torch.empty_like(pair_index))
    where[0][order], where[1][order] = sorted_pairs, slot
    return groups, where


def _apply_per_pair(z, pair_index, n_pairs, apply):
    """Row ``i`` of the result is row ``i`` of ``apply`` on the rows of its pair.

    ``apply(groups, ids)`` maps rows grouped by pair, ``groups`` of shape
    (K, w, d) (zero-padded), to (K, w, d); ``ids`` are the K pairs (None: all,
    in order). Groups are padded into one batched call unless that wastes more
    than it saves; then the pairs are looped over.
    """
    grouped = _grouped_by_pair(z, pair_index, n_pairs)
    if grouped is not None:
        groups, where = grouped
        return apply(groups, None)[where]
    out = torch.empty_like(z)
    for p in torch.unique(pair_index).tolist():
        rows = torch.nonzero(pair_index == p).squeeze(1)
        out[rows] = apply(z[rows][None], torch.tensor([p], device=z.device))[0]
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
