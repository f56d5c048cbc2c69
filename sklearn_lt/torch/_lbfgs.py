"""Full-batch L-BFGS for the convex heads: the whole training set per evaluation, chunked over rows.

The linear heads' losses (cross-entropy, balanced softmax, logit adjustment,
class weights) are convex in their parameters, so a quasi-Newton method on the
exact full-data objective reaches the optimum in tens of passes over the data,
where mini-batch training needs hundreds of small steps whose cost is mostly
per-step overhead on small problems. Each evaluation of the objective is one
pass over the rows in chunks (bounded memory); sample weights enter the
objective exactly, so integer weights equal repetition.
"""

import time

import numpy as np
import torch

from ._data import as_device_tensor
from ._net import LTNet

LBFGS_DTYPES = {"float32": torch.float32, "float64": torch.float64}
# gradient tolerance (max-abs of the mean loss's gradient) and history, as scikit-learn's lbfgs defaults
LBFGS_TOL = 1e-4
LBFGS_HISTORY = 10
# rows per chunk: about 2**23 logits (32 MiB in float32) whatever the number of classes
_CHUNK_LOGITS = 2**23


def chunk_rows(n_outputs):
    """Rows per chunk so that one chunk's logits hold about ``2**23`` numbers."""
    return int(max(256, _CHUNK_LOGITS // max(1, n_outputs)))


def _minimise(optimizer, objective, params, max_evals, n_evals):
    """Run ``optimizer`` (torch's L-BFGS) for at most ``max_evals`` evaluations, its first step scaled as scipy's.

    torch's first trial step is ``-g / ||g||_1``, scipy's L-BFGS-B (LogisticRegression's solver)
    ``-g / ||g||_2``. With many parameters (512 x 1,000) the L1 norm is hundreds of times the L2
    norm, and the line search, which grows a step at most tenfold per evaluation, spends several
    passes over the data reaching the right scale. So the first iteration runs on its own with its
    step scaled to ``1 / ||g||_2``; the rest continue from its state (directions, curvature pairs)
    with unit trial steps, as torch's own later iterations do. Evaluations at a point already
    evaluated are not repeated (``objective`` caches the last one), so the split costs none.
    """
    group = optimizer.param_groups[0]
    objective()
    grad = torch.cat([p.grad.reshape(-1) for p in params])
    l1, l2 = float(grad.abs().sum()), float(grad.norm())
    if l2 > 0:
        # torch's first trial step is min(1, 1 / ||g||_1) * lr; scipy's min(1 / ||g||_2, stpmax)
        group["lr"] = (1.0 / l2) / min(1.0, 1.0 / l1)
    group["max_iter"] = 1
    optimizer.step(objective)
    left = max_evals - n_evals()
    if left > 0:
        group.update(lr=1.0, max_iter=left, max_eval=left)
        optimizer.step(objective)


def train_full_batch(
    module,
    criterion,
    X,
    y,
    *,
    sample_weight=None,
    max_evals=100,
    l2=0.0,
    l2_params=(),
    dtype="float32",
    tol=None,
    device="cpu",
    verbose=0,
    predict_batch_size=4096,
):
    """Minimise the weighted mean of ``criterion`` over all of ``(X, y)`` by L-BFGS; return a fitted :class:`LTNet`.

    The net is built and initialised as :func:`train_module` builds it (so it
    predicts, pickles and maps devices the same way) but trained here: torch's
    ``LBFGS`` with a strong-Wolfe line search, in ``dtype``, one history row
    per evaluation of the objective (one pass over the data), whose loss is
    read once per evaluation.

    Parameters
    ----------
    module : torch.nn.Module
        Built by the caller; its parameters are the starting point.
    criterion : torch.nn.Module
        ``criterion(logits, y, sample_weight)`` returning a weighted mean.
    X, y : arrays
        Features (float) and int64-encoded labels.
    sample_weight : array-like, default=None
        Per-sample weights of the mean (exact, not in expectation).
    max_evals : int, default=100
        Most evaluations of the objective (passes over the data).
    l2 : float, default=0.0
        Adds ``0.5 * l2 * ||p||^2`` for every ``p`` named in ``l2_params``.
    l2_params : sequence of str, default=()
        Names of the penalised parameters (e.g. ``("weight",)``: not the bias).
    dtype : {"float32", "float64"}, default="float32"
        Arithmetic of the solver; the fitted module is float32 either way.
    tol : float, default=None
        Stop when the largest absolute gradient entry is at most ``tol``;
        None means ``LBFGS_TOL`` (1e-4, scikit-learn's ``LogisticRegression`` default).
    device : str, default="cpu"
    verbose : int, default=0
        1 prints the loss of every evaluation.
    predict_batch_size : int, default=4096
    """
    torch_dtype = LBFGS_DTYPES[dtype]
    net = LTNet(
        module,
        criterion,
        optimizer=torch.optim.LBFGS,
        lr=1.0,
        max_epochs=0,
        train_split=None,
        device=device,
        verbose=0,
        predict_batch_size=predict_batch_size,
    ).initialize()
    model, loss_fn = net.module_.to(torch_dtype), net.criterion_.to(torch_dtype)
    model.train()
    X_t = as_device_tensor(X, torch.float32, device)
    y_t = as_device_tensor(y, torch.int64, device)
    w_t = None if sample_weight is None else as_device_tensor(sample_weight, torch_dtype, device)
    n = len(y_t)
    total_weight = float(n) if w_t is None else float(np.sum(np.asarray(sample_weight, dtype=np.float64)))
    penalised = [p for name, p in model.named_parameters() if name in set(l2_params)]
    params = [p for p in model.parameters() if p.requires_grad]
    step = chunk_rows(model(X_t[:1].to(torch_dtype)).shape[1])
    chunks = [slice(lo, min(lo + step, n)) for lo in range(0, n, step)]
    # each chunk's share of the weighted mean, so that the chunk means add up to the full one
    shares = [
        (c.stop - c.start) / n if w_t is None else float(w_t[c].sum()) / total_weight for c in chunks
    ]
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=max(1, max_evals),
        max_eval=max(1, max_evals),
        tolerance_grad=LBFGS_TOL if tol is None else tol,
        tolerance_change=1e-9 if torch_dtype == torch.float64 else 1e-7,
        history_size=LBFGS_HISTORY,
        line_search_fn="strong_wolfe",
    )
    net.optimizer_ = optimizer

    evaluated = {}  # the last point evaluated, its loss; torch re-evaluates the point each step() starts from

    def objective():
        point = torch.cat([p.detach().reshape(-1) for p in params])
        if evaluated and torch.equal(point, evaluated["point"]):
            return evaluated["loss"]  # the gradients are still those of this point: nothing was zeroed since
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=False)
        total = torch.zeros((), dtype=torch_dtype, device=device)
        for rows, share in zip(chunks, shares):
            if share == 0:
                continue
            loss = loss_fn(model(X_t[rows].to(torch_dtype)), y_t[rows], None if w_t is None else w_t[rows]) * share
            loss.backward()
            total += loss.detach()
        if l2 and penalised:
            penalty = 0.5 * l2 * sum((p * p).sum() for p in penalised)
            penalty.backward()
            total += penalty.detach()
        value = float(total)  # the one host read of this pass
        net.history.new_epoch()
        net.history.record("epoch", len(net.history))
        net.history.record("train_loss", value)
        net.history.record("dur", time.perf_counter() - start)
        if verbose:
            print(f"lbfgs evaluation {len(net.history)}: loss {value:.6f}", flush=True)
        evaluated.update(point=point, loss=total)
        return total

    if max_evals > 0:
        _minimise(optimizer, objective, params, max_evals, lambda: len(net.history))
    model.to(torch.float32)
    loss_fn.to(torch.float32)
    model.eval()
    return net
