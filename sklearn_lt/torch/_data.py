"""Tensor dataset and batch-index samplers: the data path that costs what a raw torch loop costs.

skorch's default path indexes numpy arrays sample by sample and collates the
rows again, which costs ~35 % of an epoch of a linear head (see
``benchmarks/bench_speed.py``). Here a sampler yields one index tensor per batch
and the dataset gathers the whole batch with one indexing operation; use them
with ``DataLoader(dataset, batch_size=None, sampler=...)`` (in skorch:
``iterator_train__sampler=..., iterator_train__batch_size=None``).
"""

import copy
import warnings

import numpy as np
import torch
from sklearn.utils._param_validation import StrOptions, validate_params
from torch.utils.data import Dataset, Sampler

from ..base import PREDICT_CHUNK_ROWS
from ..utils import _param_constraints as pc
from ..utils._class_stats import class_index_table


def as_device_tensor(array, dtype, device="cpu"):
    """``array`` as a C-contiguous tensor of ``dtype`` on ``device``, with as few copies as possible.

    A numpy array that already has the dtype and C order is wrapped without a
    copy (``torch.from_numpy``), then copied once if ``device`` is not the CPU;
    other input is converted once. Read-only arrays are wrapped too: the
    library never writes into its training data.
    """
    if isinstance(array, torch.Tensor):
        return array.to(device=device, dtype=dtype).contiguous()
    array = np.ascontiguousarray(array, dtype=torch.empty((), dtype=dtype).numpy().dtype)
    with warnings.catch_warnings():
        # torch warns that writing to a tensor made from a read-only array is undefined; nothing writes to it
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array).to(device)


class ArrayDataset(Dataset):
    """Features, labels and per-sample weights held as tensors, indexed a batch at a time.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Held as a float32 tensor. A float32 C-contiguous array on the CPU is
        shared, not copied (the dataset only reads it); anything else is
        converted once, straight to ``device``.
    y : array-like of shape (n_samples,), default=None
        Integer-encoded labels, converted to int64.
    sample_weight : array-like of shape (n_samples,), default=None
        Per-sample loss weights. When given, an item's target is ``(y, w)``.
    device : str or torch.device, default="cpu"
        Where the tensors live; on a GPU, keeping them there avoids a copy per batch.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_lt.torch import ArrayDataset
    >>> ds = ArrayDataset(np.eye(3), np.array([0, 1, 2]))
    >>> X, y = ds[torch.tensor([2, 0])]
    >>> X.dtype, y.tolist()
    (torch.float32, [2, 0])
    """

    def __init__(self, X, y=None, sample_weight=None, device="cpu"):
        self.X = as_device_tensor(X, torch.float32, device)
        self.y = None if y is None else as_device_tensor(y, torch.int64, device)
        self.sample_weight = None if sample_weight is None else as_device_tensor(sample_weight, torch.float32, device)
        for name, t in (("y", self.y), ("sample_weight", self.sample_weight)):
            if t is not None and len(t) != len(self.X):
                raise ValueError(f"{name} has {len(t)} entries but X has {len(self.X)} rows.")

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        if isinstance(index, torch.Tensor) and index.device != self.X.device:
            index = index.to(self.X.device)
        Xb = self.X[index]
        if self.y is None:
            # skorch's convention for "no target": a placeholder of the batch's length
            return Xb, torch.zeros(len(Xb) if Xb.ndim > 1 else 1, dtype=torch.int64)
        yb = self.y[index]
        if self.sample_weight is None:
            return Xb, yb
        return Xb, (yb, self.sample_weight[index])


def device_generator(generator, device):
    """A generator on ``device`` seeded from ``generator`` (one draw from it), or a fresh one if it is None.

    Index generation then runs where the data are: a sampler on a GPU yields
    index tensors already there, so no batch waits on a host-to-device copy.
    Seeded from the caller's generator, so a fixed ``random_state`` still
    fixes every epoch (the stream differs from the CPU sampler's).
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator)) if generator is not None else None
    moved = torch.Generator(device=device)
    if seed is None:
        moved.seed()
    else:
        moved.manual_seed(seed)
    return moved


#: Rows per forward pass of every batched prediction in the library (the nets' ``predict_batch_size``,
#: the flow outputs of DLSA, BTM's logits): big enough to keep a GEMM busy, small enough that one
#: batch's activations stay a few MB. The same number as the output chunks of ``sklearn_lt.base``.
PREDICT_BATCH_ROWS = PREDICT_CHUNK_ROWS


def row_batches(X, device="cpu", batch_size=PREDICT_BATCH_ROWS):
    """Yield ``(rows, batch)``: consecutive ``batch_size``-row slices of ``X`` and them as float32 tensors on ``device``.

    Each batch is a fresh tensor (a copy), so a read-only input (a memmap) is
    fine and the caller may modify it; nothing is drawn from any random
    generator, unlike a ``DataLoader``, which draws a seed from torch's global
    RNG every time it is iterated.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lt.torch._data import row_batches
    >>> [(rows, tuple(b.shape)) for rows, b in row_batches(np.zeros((5, 2)), batch_size=2)]
    [(slice(0, 2, None), (2, 2)), (slice(2, 4, None), (2, 2)), (slice(4, 5, None), (1, 2))]
    """
    batch_size = int(batch_size)
    if batch_size < 1:  # an internal helper: the estimators' constraints have checked their own batch sizes
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    for start in range(0, len(X), batch_size):
        rows = slice(start, min(start + batch_size, len(X)))
        yield rows, torch.tensor(np.asarray(X[rows]), dtype=torch.float32, device=device)


def batched_forward(module, X, *, device="cpu", batch_size=PREDICT_BATCH_ROWS, forward=None):
    """Outputs of ``module`` on ``X`` in evaluation mode, ``batch_size`` rows at a time, as CPU tensors.

    The one batched prediction of the library: the module is put in
    evaluation mode (and left in it), autograd is off, and the outputs of the
    batches of :func:`row_batches` are moved to the CPU and concatenated.
    Nothing is drawn from torch's global RNG, so predicting leaves the
    caller's random stream as it was.

    Parameters
    ----------
    module : torch.nn.Module
    X : array-like of shape (n_samples, n_features)
    device : str or torch.device, default="cpu"
        Where ``module`` lives; each batch is copied there.
    batch_size : int, default=PREDICT_BATCH_ROWS
    forward : callable, default=None
        ``forward(module, batch) -> tensor or tuple of tensors``; None calls
        ``module(batch)``. A tuple gives a tuple of concatenated outputs.
        With no rows, it is called once on an empty batch, so that the
        outputs have their shapes and dtypes.

    Returns
    -------
    outputs : torch.Tensor or tuple of torch.Tensor
    """
    forward = forward or (lambda m, batch: m(batch))
    module.eval()
    outputs = []
    with torch.no_grad():
        batches = row_batches(X, device, batch_size)
        if len(X) == 0:
            batches = [(slice(0, 0), torch.zeros((0, *np.shape(X)[1:]), dtype=torch.float32, device=device))]
        for _, batch in batches:
            out = forward(module, batch)
            outputs.append(tuple(o.cpu() for o in out) if isinstance(out, tuple) else out.cpu())
    if isinstance(outputs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outputs))
    return torch.cat(outputs)


def _n_batches(n, batch_size):
    return (n + batch_size - 1) // batch_size


class SequentialBatchSampler(Sampler):
    """Yield ``arange(n)`` in consecutive index tensors of ``batch_size`` (for prediction).

    Parameters
    ----------
    n_samples : int
        Number of samples to cover.
    batch_size : int
        Largest batch; the last one may be smaller.

    Examples
    --------
    >>> from sklearn_lt.torch import SequentialBatchSampler
    >>> [b.tolist() for b in SequentialBatchSampler(5, 2)]
    [[0, 1], [2, 3], [4]]
    """

    @validate_params({"batch_size": pc.POSITIVE_INT}, prefer_skip_nested_validation=True)
    def __init__(self, n_samples, batch_size):
        self.n_samples = int(n_samples)
        self.batch_size = int(batch_size)

    def __len__(self):
        return _n_batches(self.n_samples, self.batch_size)

    def __iter__(self):
        for start in range(0, self.n_samples, self.batch_size):
            yield torch.arange(start, min(start + self.batch_size, self.n_samples))


class ShuffledBatchSampler(Sampler):
    """Instance sampling: a fresh permutation each epoch, cut into index-tensor batches.

    Parameters
    ----------
    n_samples : int
        Dataset length.
    batch_size : int
        Largest batch.
    generator : torch.Generator, default=None
        Source of randomness; seeding it makes the epochs reproducible.
    drop_last : bool, default=False
        Drop the last batch when it is smaller than ``batch_size``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.torch import ShuffledBatchSampler
    >>> s = ShuffledBatchSampler(5, 2, generator=torch.Generator().manual_seed(0))
    >>> sorted(torch.cat(list(s)).tolist())
    [0, 1, 2, 3, 4]
    """

    @validate_params({"batch_size": pc.POSITIVE_INT}, prefer_skip_nested_validation=True)
    def __init__(self, n_samples, batch_size, *, generator=None, drop_last=False):
        self.n_samples = int(n_samples)
        self.batch_size = int(batch_size)
        self.generator = generator
        self.drop_last = drop_last
        self.device = None

    def to(self, device):
        """A copy that draws its permutations on ``device`` (see :func:`device_generator`)."""
        moved = copy.copy(self)
        moved.generator, moved.device = device_generator(self.generator, device), torch.device(device)
        return moved

    def __len__(self):
        if self.drop_last:
            return self.n_samples // self.batch_size
        return _n_batches(self.n_samples, self.batch_size)

    def __iter__(self):
        if self.device is None:
            order = torch.randperm(self.n_samples, generator=self.generator)
        else:
            order = torch.randperm(self.n_samples, generator=self.generator, device=self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield order[start : start + self.batch_size]


class ClassBalancedSampler(Sampler):
    """Draw samples with replacement, choosing the class first and then a sample of it.

    With the default ``class_probs="balanced"`` every class is equally likely at
    each draw (the class-balanced / class-aware sampling of Kang et al.), which
    is the same as drawing each sample with weight ``1 / n_{y_i}``.
    ``"reversed"`` draws a class with probability proportional to ``1 / n_c``
    (the *class-reversed* sampler of SMART and H2T), ``"instance"`` proportional
    to ``n_c`` (plain sampling with replacement); an array gives the class
    probabilities directly.

    Yields index tensors of ``batch_size`` draws (the last batch may be smaller),
    so it plugs into ``DataLoader(dataset, batch_size=None, sampler=...)`` and
    skorch's ``iterator_train__sampler`` with ``iterator_train__batch_size=None``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels of the dataset the indices refer to (any hashable type).
    batch_size : int
        Draws per yielded index tensor.
    class_probs : {"balanced", "reversed", "instance"} or array-like, default="balanced"
        Probability of drawing each class (array: in ``np.unique(y)`` order).
    n_draws : int, default=None
        Draws per epoch; ``None`` means ``len(y)``.
    generator : torch.Generator, default=None
        Source of randomness.

    Attributes
    ----------
    classes_ : ndarray
        The classes found in ``y``.
    class_probs_ : ndarray of shape (n_classes,)
        Probability of drawing each class.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_lt.torch import ClassBalancedSampler
    >>> y = np.array([0] * 98 + [1, 2])
    >>> s = ClassBalancedSampler(y, batch_size=3000, n_draws=3000, generator=torch.Generator().manual_seed(0))
    >>> counts = np.bincount(y[next(iter(s)).numpy()])
    >>> bool(np.all(np.abs(counts / 3000 - 1 / 3) < 0.05))
    True
    """

    @validate_params(
        {
            "batch_size": pc.POSITIVE_INT,
            "class_probs": [StrOptions({"balanced", "reversed", "instance"}), "array-like"],
            "n_draws": pc.POSITIVE_INT + [None],
        },
        prefer_skip_nested_validation=True,
    )
    def __init__(self, y, batch_size, *, class_probs="balanced", n_draws=None, generator=None):
        y = np.asarray(y)
        if y.ndim != 1 or len(y) == 0:
            raise ValueError(f"y must be a non-empty 1-d array, got shape {y.shape}.")
        self.batch_size = int(batch_size)
        self.n_draws = len(y) if n_draws is None else int(n_draws)
        self.generator = generator
        table = class_index_table(y)
        self.classes_, counts = table.classes, table.counts
        if isinstance(class_probs, str):
            power = {"instance": 1.0, "balanced": 0.0, "reversed": -1.0}[class_probs]
            probs = counts.astype(np.float64) ** power
        else:
            probs = np.asarray(class_probs, dtype=np.float64)
            if probs.shape != counts.shape or np.any(probs < 0) or not probs.sum() > 0:
                raise ValueError(
                    f"class_probs must be {len(counts)} non-negative numbers (one per class in "
                    f"np.unique(y) order) with a positive sum, got {class_probs!r}."
                )
        self.class_probs_ = probs / probs.sum()
        self._order = torch.as_tensor(table.order, dtype=torch.int64)
        self._starts = torch.as_tensor(table.starts, dtype=torch.int64)
        self._counts = torch.as_tensor(counts, dtype=torch.int64)
        self._probs = torch.as_tensor(self.class_probs_, dtype=torch.float64)

    def __len__(self):
        return _n_batches(self.n_draws, self.batch_size)

    def to(self, device):
        """A copy that draws on ``device``, its tables there too (see :func:`device_generator`)."""
        moved = copy.copy(self)
        moved.generator = device_generator(self.generator, device)
        for name in ("_order", "_starts", "_counts", "_probs"):
            setattr(moved, name, getattr(self, name).to(device))
        return moved

    def draw(self, n):
        """Draw ``n`` sample indices at once (one index tensor)."""
        classes = torch.multinomial(self._probs, n, replacement=True, generator=self.generator)
        offset = torch.rand(n, generator=self.generator, dtype=torch.float64, device=self._probs.device)
        offset = (offset * self._counts[classes]).long()
        return self._order[self._starts[classes] + offset]

    def __iter__(self):
        drawn = self.draw(self.n_draws)
        for start in range(0, self.n_draws, self.batch_size):
            yield drawn[start : start + self.batch_size]
