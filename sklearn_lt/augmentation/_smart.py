"""SMART: semantic transfer from head to tail (Zhang et al., CVPR 2024) on feature matrices.

:class:`SMARTAugmenter` works two ways:

- ``fit_resample`` (imbalanced-learn's sampler API) adds augmented tail samples
  to a fixed feature matrix, with exact pooled class statistics;
- ``make_train_batch_hook`` augments every training batch of the library's torch
  estimators (the paper's online scheme), with count-weighted running statistics.

The numerics both routes share (class statistics, the transfer, omega weights)
are in :mod:`._statistics`.
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
from ..utils._class_stats import class_indices
from ..utils._validation import label_repr
from ._statistics import _ClassStatistics, _feature_scale, _OmegaWeights, _PairTransferCache, _transfer

#: Default ``memory_budget``: bytes the dense per-class d x d statistics may take.
_DENSE_BUDGET = 2**30


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
        self.cache = None
        if not self.stats.running:  # fixed statistics: a pair's transfer is the same in every batch
            held = 0 if self.stats.dense is None else self.stats.dense.numel() * self.stats.dense.element_size()
            # odds of a (tail, head) pair: the tail stream's class, then a head class other than it by size
            pair_odds = np.outer(tail_probs / max(tail_probs.sum(), 1e-300), np.where(is_head, counts, 0.0))
            pair_odds[np.diag_indices(n_classes)] = 0.0
            self.cache = _PairTransferCache(n_classes, X.shape[1], X.dtype, X.device, augmenter.memory_budget - held, pair_odds)

    def adapt_criterion(self, criterion):
        """``criterion`` with ``prior_correction="logit_adjust"`` applied (called by ``train_module``)."""
        tau = float(getattr(criterion, "tau", 0.0) or 0.0)
        if self.logit_shift is None or tau == 0.0 or getattr(criterion, "adjustment", None) is None:
            return criterion
        return _PriorShiftedLoss(criterion, tau * self.logit_shift)

    def transfer(self, F, tail, head):
        """Tail features ``F`` of classes ``tail`` augmented with the covariance of classes ``head``.

        Returns ``(F_tilde, omega, degenerate)`` as ``_transfer`` does, with the current statistics.
        """
        return _transfer(self.stats, F, tail, head, self.tau, variance=self.augmented_variance, cache=self.cache)

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
        Xt, omega, degenerate = self.transfer(self.X[tail_idx], yt, partner)
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
        on. :meth:`fit_resample` always uses the exact ones. With fixed
        statistics a (tail, head) pair's transfer matrix never changes, so
        ``"exact"`` computes each once per fit and keeps it within
        ``memory_budget`` (same samples to float32 rounding; see
        ``memory_budget``).
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
        pair, memory ``O(n d)``). Both give the same numbers. With
        ``statistics="exact"``, what the budget leaves after the covariances
        holds the ``d x d`` transfer matrices of the (tail, head) pairs, the
        most likely ones first when not all fit (``4 d**2`` bytes each: 590 kB
        at d = 384); the other pairs are computed per batch.
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

        sources, partners = self._draw_sources_and_partners(classes, y_enc, counts, is_head, rng)
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
        X_res = self._append_rows(X_in, X, F_new.numpy().astype(X.dtype, copy=False))
        return X_res, np.concatenate([y, y[sources]])

    def _draw_sources_and_partners(self, classes, y_enc, counts, is_head, rng):
        """For each new sample of a class: a real sample of it (the source) and a head class (its partner).

        Sources are drawn uniformly within their class, partners among the other head classes in
        proportion to their sizes, class by class in ``sampling_strategy_`` order.
        """
        sources, partners = [], []
        members = class_indices(y_enc)
        position = {c: k for k, c in enumerate(classes)}
        for label, n_new in self.sampling_strategy_.items():
            if n_new == 0:
                continue
            k = position[label]
            candidates = np.flatnonzero(is_head & (np.arange(len(classes)) != k))
            if len(candidates) == 0:
                raise ValueError(
                    f"SMARTAugmenter has no head class to transfer to class {label_repr(label)}: no other class has more "
                    f"than head_threshold={self.head_threshold} samples (the largest other class has "
                    f"{int(np.delete(counts, k).max(initial=0))}). "
                    "Lower head_threshold."
                )
            sources.append(rng.choice(members[k], size=n_new, replace=True))
            probs = counts[candidates] / counts[candidates].sum()
            partners.append(candidates[rng.choice(len(candidates), size=n_new, p=probs)])
        if not sources:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        return np.concatenate(sources), np.concatenate(partners)

    def _append_rows(self, X_in, X, F_new):
        """The input followed by the new rows, in the input's format (sparse stays sparse)."""
        if sparse.issparse(X_in):
            return sparse.vstack([X_in, sparse.csr_matrix(F_new)], format=X_in.format)
        X_res = np.vstack([X, F_new])
        if getattr(self, "_output_dtype", None) is not None:
            X_res = X_res.astype(self._output_dtype)
        return X_res

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
