"""The one skorch training core every torch estimator of the library goes through."""

import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import StrOptions, validate_params
from skorch import NeuralNet
from skorch.callbacks import GradientNormClipping, LRScheduler
from skorch.dataset import get_len, unpack_data
from torch.utils.data import DataLoader

from ..utils import _param_constraints as pc
from ._callbacks import StopOnDivergence
from ._data import (
    PREDICT_BATCH_ROWS,
    ArrayDataset,
    ClassBalancedSampler,
    SequentialBatchSampler,
    ShuffledBatchSampler,
    batched_forward,
)

_OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}
_fused_support = {}


def fused_supported(optimizer, device):
    """Whether ``optimizer`` (a class) has a fused kernel on ``device``'s type (checked once per pair)."""
    key = (optimizer, torch.device(device).type)
    if key not in _fused_support:
        try:
            param = torch.nn.Parameter(torch.zeros(1, device=device))
            optimizer([param], lr=0.0, fused=True)
            _fused_support[key] = True
        except (RuntimeError, TypeError, ValueError):
            _fused_support[key] = False
    return _fused_support[key]


def default_optimizer_kwargs(optimizer, optimizer_kwargs, device):
    """``optimizer_kwargs`` with ``fused=True`` added where torch has a fused kernel and the caller chose none.

    The fused step updates all parameters in one kernel instead of a chain of
    per-tensor operations: 1.4x faster epochs of a linear head on a CPU. It
    rounds differently from the per-tensor step (differences of the order of
    1e-6 in the learned coefficients), so a caller who needs the old
    arithmetic passes ``fused=False`` (or ``foreach=...``).
    """
    kwargs = dict(optimizer_kwargs or {})
    if (
        optimizer in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)
        and "fused" not in kwargs
        and "foreach" not in kwargs
        and fused_supported(optimizer, device)
    ):
        kwargs["fused"] = True
    return kwargs


class LTNet(NeuralNet):
    """skorch ``NeuralNet`` with the library's data path and weighted losses.

    Differences from ``NeuralNet``, each because the default is wrong or slow
    for long-tailed feature matrices:

    - validation iterates an :class:`ArrayDataset` by index-tensor batches
      (``predict_batch_size`` rows each) instead of sample by sample, and
      :meth:`predict_logits` runs :func:`~sklearn_lt.torch._data.batched_forward`
      (no ``DataLoader``: predicting draws nothing from torch's global RNG);
    - a target may be ``(y, sample_weight)``; the criterion gets both;
    - ``train_batch_hook(batch) -> batch`` may rewrite each training batch
      (online augmentation) before the forward pass.

    The criterion is called as ``criterion(logits, y, sample_weight)``.
    """

    def __init__(self, *args, predict_batch_size=PREDICT_BATCH_ROWS, train_batch_hook=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.predict_batch_size = predict_batch_size
        self.train_batch_hook = train_batch_hook

    def __getstate__(self):
        # skorch maps to the loading machine's device only the attributes named in
        # ``cuda_dependent_attributes_`` (module_, criterion_, optimizer_). Others hold device
        # tensors too: the init parameters ``module``/``criterion`` (the library passes built
        # modules), the LR-scheduler callback (it references the optimizer and its state), a
        # predefined validation split. A GPU-trained net would then not load on a CPU-only
        # machine: route every attribute but ``device`` through skorch's device-mapped blob.
        own = self.cuda_dependent_attributes_
        self.cuda_dependent_attributes_ = [
            key for key in self.__dict__ if key not in ("device", "cuda_dependent_attributes_")
        ]
        try:
            state = super().__getstate__()
        finally:
            self.cuda_dependent_attributes_ = own
        state["cuda_dependent_attributes_"] = own
        return state

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch loop, with the batch losses read from the device once per epoch.

        skorch records every batch's loss with ``loss.item()``, which on a GPU
        makes the host wait for each step before queueing the next. Here the
        detached losses are kept on the device and copied to the history in one
        read after the last batch, before ``on_epoch_end`` (where skorch's
        ``train_loss``/``valid_loss`` scoring averages them), so the history is
        the same. A callback reading a batch's loss from the history inside
        ``on_batch_end`` no longer finds it; the loss tensor is still passed
        to ``on_batch_end`` as ``loss``.
        """
        if iterator is None:
            return
        losses, rows = [], []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach())
            rows.append(self.history[-1]["batches"][-1])
            batch_size = get_len(batch[0]) if isinstance(batch, (tuple, list)) else get_len(batch)
            self.history.record_batch(prefix + "_batch_size", batch_size)
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if losses:
            for row, value in zip(rows, read_losses(losses)):
                row[prefix + "_loss"] = value
        self.history.record(prefix + "_batch_count", len(losses))

    def get_iterator(self, dataset, training=False):
        if not training and isinstance(dataset, ArrayDataset) and "sampler" not in self.get_params_for(
            "iterator_valid"
        ):
            sampler = SequentialBatchSampler(len(dataset), self.predict_batch_size)
            return DataLoader(dataset, batch_size=None, sampler=sampler)
        return super().get_iterator(dataset, training=training)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        sample_weight = None
        if isinstance(y_true, (tuple, list)):
            y_true, sample_weight = y_true
        return self.criterion_(y_pred, y_true, sample_weight)

    def train_step_single(self, batch, **fit_params):
        if self.train_batch_hook is not None:
            batch = self.train_batch_hook(batch)
        return super().train_step_single(batch, **fit_params)

    def predict_logits(self, X):
        """Raw module outputs for a feature matrix, as a float32 CPU tensor.

        Not skorch's ``forward``: its ``DataLoader`` draws a seed from torch's
        global RNG, so every prediction would move the caller's random stream.
        """
        return batched_forward(self.module_, X, device=self.device, batch_size=self.predict_batch_size)


def read_losses(losses):
    """The host's one read of an epoch's batch losses (a list of 0-d tensors) as Python floats."""
    return torch.stack(losses).cpu().tolist()


def batch_norm_layers(module):
    """The batch-norm layers of ``module``, in ``module.modules()`` order."""
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def has_batch_norm(module):
    """Whether ``module`` holds a batch-norm layer (whose training mode rejects a batch of one)."""
    return bool(batch_norm_layers(module))


@validate_params(
    {"sampling": pc.SAMPLINGS, "batch_size": pc.POSITIVE_INT}, prefer_skip_nested_validation=False
)
def make_train_sampler(y, *, sampling, batch_size, generator, n_draws=None, even_batches=False):
    """The training sampler for ``sampling`` in {"instance", "class_balanced"}.

    ``even_batches`` is for modules with batch norm (see :func:`has_batch_norm`):
    in training mode a batch-norm layer normalises each batch by its own
    statistics and folds them into its running averages, so a small last batch
    (one sample is an error, two or three give wild statistics) harms it. An
    epoch of instance sampling is then cut into ``ceil(n / batch_size)`` batches
    of equal size up to one sample, and class-balanced sampling draws whole
    batches (at most ``batch_size - 1`` draws more per epoch).
    """
    n = len(y)
    n_batches = -(-n // batch_size)
    if sampling == "class_balanced":
        if n_draws is None and even_batches:
            n_draws = n_batches * batch_size
        return ClassBalancedSampler(y, batch_size, n_draws=n_draws, generator=generator)
    if even_batches:
        batch_size = -(-n // n_batches)
        # the evened size may leave a last batch smaller by up to n_batches - 1: drop it only if it is one sample
        return ShuffledBatchSampler(n, batch_size, generator=generator, drop_last=n % batch_size == 1)
    return ShuffledBatchSampler(n, batch_size, generator=generator)


@validate_params(
    {
        "max_epochs": pc.EPOCHS,
        "optimizer": [StrOptions(set(_OPTIMIZERS)), type],
        "predict_batch_size": pc.POSITIVE_INT,
    },
    prefer_skip_nested_validation=False,
)
def train_module(
    module,
    criterion,
    X,
    y,
    *,
    sample_weight=None,
    sampler,
    max_epochs,
    optimizer="sgd",
    lr=0.1,
    optimizer_kwargs=None,
    lr_schedule="cosine",
    grad_clip=None,
    callbacks=None,
    valid_data=None,
    device="cpu",
    verbose=0,
    train_batch_hook=None,
    augmenter=None,
    predict_batch_size=PREDICT_BATCH_ROWS,
):
    """Train ``module`` on ``(X, y)`` through skorch, as every estimator of the library does.

    The library's training core: one skorch net with its data path (index-tensor
    batches from ``sampler``, weighted losses, optional online augmentation),
    the optimizer, a learning-rate schedule, gradient clipping, per-epoch
    validation and a stop on a diverged loss. Use it to train your own torch
    module the way the estimators train theirs.

    Parameters
    ----------
    module : torch.nn.Module
        Built (and seeded) by the caller; returns logits.
    criterion : torch.nn.Module
        Called as ``criterion(logits, y, sample_weight)``.
    X, y, sample_weight : arrays
        Float features, int64-encoded labels, optional weights (all ones
        counts as none). A float32 C-contiguous ``X`` is used in place, not copied.
    sampler : torch.utils.data.Sampler
        Yields one index tensor per training batch, e.g.
        :class:`ClassBalancedSampler` or :class:`ShuffledBatchSampler`.
    max_epochs : int
        Training epochs (passes of ``sampler``).
    optimizer : {"sgd", "adam", "adamw"} or torch optimizer class, default="sgd"
    lr : float, default=0.1
        Initial learning rate.
    optimizer_kwargs : dict, default=None
        Extra arguments of the optimizer (``momentum``, ``weight_decay`` ...).
        SGD, Adam and AdamW get ``fused=True`` where torch supports it on the
        device, unless ``fused`` or ``foreach`` is given here.
    lr_schedule : {"cosine", "constant"} or (policy, kwargs), default="cosine"
        Per-epoch learning-rate schedule, run by skorch's ``LRScheduler``.
    grad_clip : float, default=None
        Clip the gradient norm (skorch's ``GradientNormClipping``).
    callbacks : list, default=None
        Extra skorch callbacks (``Callback`` or ``(name, Callback)``).
    valid_data : tuple (X, y), default=None
        A validation set, scored every epoch as ``valid_loss``.
    device : str, default="cpu"
        Torch device of the training (the data are moved there once).
    verbose : int, default=0
        1 prints skorch's per-epoch table.
    train_batch_hook : callable, default=None
        ``batch -> batch`` applied to every training batch (see :class:`LTNet`).
    augmenter : object, default=None
        Online augmentation of the training batches, e.g.
        :class:`sklearn_lt.augmentation.SMARTAugmenter`: anything with
        ``make_train_batch_hook(X, y, sample_weight=, sampler=, device=) -> (hook, sampler)``;
        a hook with an ``adapt_criterion(criterion) -> criterion`` method
        may replace the training loss (e.g. to move a logit adjustment to
        the class frequencies of the augmented stream).
        The hook is training-only state (it holds the training data) and is
        not kept in the returned net. An estimator opts in by passing its
        ``augmenter`` parameter here.
    predict_batch_size : int, default=4096
        Rows per batch of validation and prediction.

    Returns
    -------
    net : LTNet
        The fitted skorch ``NeuralNet``: ``net.module_`` is the trained
        module, ``net.history`` the per-epoch record (``train_loss``,
        ``valid_loss``, ``dur``), ``net.predict_logits(X)`` the logits.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn_lt.torch import ClassBalancedSampler, LogitAdjustedLoss, train_module
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 4)).astype(np.float32)
    >>> y = (X[:, 0] > 1).astype(np.int64)
    >>> sampler = ClassBalancedSampler(y, 64, generator=torch.Generator().manual_seed(0))
    >>> _ = torch.manual_seed(0)
    >>> net = train_module(
    ...     torch.nn.Linear(4, 2), LogitAdjustedLoss(np.bincount(y)), X, y, sampler=sampler, max_epochs=3
    ... )
    >>> len(net.history), tuple(net.predict_logits(X).shape)
    (3, (300, 2))
    """
    if sample_weight is not None and np.all(np.asarray(sample_weight) == 1):
        # all-ones weights are no weights: skip the per-step gather and weighted mean
        sample_weight = None
    if augmenter is not None:
        if not callable(getattr(augmenter, "make_train_batch_hook", None)):
            raise TypeError(
                f"augmenter must be an online augmenter such as sklearn_lt.augmentation.SMARTAugmenter "
                f"(an object with a make_train_batch_hook method), got {augmenter!r}."
            )
        if train_batch_hook is not None:
            raise ValueError("give either augmenter or train_batch_hook, not both.")
        train_batch_hook, sampler = augmenter.make_train_batch_hook(
            X, y, sample_weight=sample_weight, sampler=sampler, device=device
        )
        # an augmenter that changes the class frequencies trained on may adapt the loss to them
        criterion = getattr(train_batch_hook, "adapt_criterion", lambda c: c)(criterion)
    if augmenter is None and torch.device(device).type != "cpu" and callable(getattr(sampler, "to", None)):
        # draw the batch indices where the data are: no host-to-device copy per batch
        sampler = sampler.to(device)
    if isinstance(optimizer, str):
        optimizer = _OPTIMIZERS[optimizer]
    optimizer_kwargs = default_optimizer_kwargs(optimizer, optimizer_kwargs, device)
    net_callbacks = []
    if lr_schedule == "cosine":
        net_callbacks.append(
            ("lr_scheduler", LRScheduler(policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=max(1, max_epochs)))
        )
    elif isinstance(lr_schedule, tuple):
        policy, kwargs = lr_schedule
        net_callbacks.append(("lr_scheduler", LRScheduler(policy=policy, **kwargs)))
    elif lr_schedule != "constant":
        raise ValueError(f"lr_schedule={lr_schedule!r}: use 'cosine', 'constant' or (policy, kwargs).")
    if grad_clip is not None:
        if not isinstance(grad_clip, numbers.Real) or grad_clip <= 0:
            raise ValueError(f"grad_clip must be a positive number or None, got {grad_clip!r}.")
        net_callbacks.append(("grad_clip", GradientNormClipping(gradient_clip_value=float(grad_clip))))
    net_callbacks.extend(callbacks or [])
    # last, so that it sees the parameters after every other callback's end-of-epoch changes
    net_callbacks.append(("stop_on_divergence", StopOnDivergence()))

    if valid_data is None:
        _check_callbacks_need_no_validation(net_callbacks)
    train_split = None
    if valid_data is not None:
        from skorch.helper import predefined_split

        train_split = predefined_split(ArrayDataset(*valid_data, device=device))

    net = LTNet(
        module,
        criterion,
        optimizer=optimizer,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=getattr(sampler, "batch_size", 128),
        train_split=train_split,
        callbacks=net_callbacks,
        device=device,
        verbose=verbose,
        iterator_train__sampler=sampler,
        iterator_train__batch_size=None,
        predict_batch_size=predict_batch_size,
        train_batch_hook=train_batch_hook,
        **{f"optimizer__{k}": v for k, v in (optimizer_kwargs or {}).items()},
    )
    net.fit(ArrayDataset(X, y, sample_weight, device=device), y=None)
    if augmenter is not None:
        net.train_batch_hook = None  # it holds the training data: do not keep (or pickle) it
    return net


def _check_callbacks_need_no_validation(callbacks):
    """A callback that monitors a validation score cannot run without a validation split: say so up front."""
    for callback in callbacks:
        name, callback = callback if isinstance(callback, tuple) else (type(callback).__name__, callback)
        monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("valid"):
            raise ValueError(
                f"the callback {name} monitors {monitor!r}, but this fit has no validation split; set the "
                "estimator's validation_fraction (e.g. 0.1) so that a validation score is computed every epoch."
            )


def batch_unpack(batch):
    """``(X, y, sample_weight or None)`` from a batch of :class:`ArrayDataset`."""
    Xb, yb = unpack_data(batch)
    if isinstance(yb, (tuple, list)):
        return Xb, yb[0], yb[1]
    return Xb, yb, None


def as_numpy(tensor):
    return tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
