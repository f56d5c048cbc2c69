"""Full-batch L-BFGS for the convex heads: the whole training set per evaluation, chunked over rows.

The linear heads' losses (cross-entropy, balanced softmax, logit adjustment,
class weights) are convex in their parameters, so a quasi-Newton method on the
exact full-data objective reaches the optimum in tens of passes over the data,
where mini-batch training needs hundreds of small steps whose cost is mostly
per-step overhead on small problems. Each evaluation of the objective is one
pass over the rows in chunks (bounded memory); sample weights enter the
objective exactly, so integer weights equal repetition.

The minimiser is written here rather than taken from ``torch.optim.LBFGS``,
whose line search cannot be configured: it follows scipy's L-BFGS-B
(``LogisticRegression``'s solver) where torch's differs, in the first trial
step and in how far the line search extrapolates, and so needs as many
evaluations as scipy on the same objective.
"""

import math
import time
from collections import deque
from typing import NamedTuple

import numpy as np
import torch

from ._data import PREDICT_BATCH_ROWS, as_device_tensor
from ._net import LTNet

LBFGS_DTYPES = {"float32": torch.float32, "float64": torch.float64}
# gradient tolerance (max-abs of the mean loss's gradient) and history, as scikit-learn's lbfgs defaults
LBFGS_TOL = 1e-4
LBFGS_HISTORY = 10
# rows per chunk: about 2**23 logits (32 MiB in float32) whatever the number of classes
_CHUNK_LOGITS = 2**23
# sufficient decrease and curvature constants of the strong Wolfe conditions, as torch and scipy
_C1, _C2 = 1e-4, 0.9
# An extrapolated trial step lies 1.1 to 4 times the last step beyond it, as in scipy's line search
# (MINPACK-2's dcsrch). torch's bounds (up to tenfold) cost 19 evaluations where scipy needed 6 on the
# class-balanced objective at 115,846 x 512 x 1,000 (doc/user_guide/baselines.rst, "Solvers").
_EXTRAPOLATE_MIN, _EXTRAPOLATE_MAX = 1.1, 4.0
# a bracket narrower than this along the largest entry of the direction cannot be refined usefully
_MIN_BRACKET = 1e-9
# a curvature pair with y.s at most this would make the inverse Hessian indefinite or ill-conditioned
# (torch's threshold)
_MIN_CURVATURE = 1e-10


class _Trial(NamedTuple):
    """A point of the line search: step ``t``, loss ``f``, gradient ``g``, slope ``gtd`` along the direction."""

    t: float
    f: float
    g: torch.Tensor
    gtd: float


def _cubic_minimiser(a, b, low, high):
    """Minimiser of the cubic matching two trials' losses and slopes (Nocedal & Wright, 3.59), clipped to ``[low, high]``.

    The midpoint of ``[low, high]`` where the cubic has no minimiser or a loss is not finite.
    """
    if a.t > b.t:
        a, b = b, a
    d1 = a.gtd + b.gtd - 3 * (a.f - b.f) / (a.t - b.t)
    radicand = d1 * d1 - a.gtd * b.gtd
    if not radicand >= 0:  # NaN too
        return (low + high) / 2
    d2 = math.sqrt(radicand)
    denominator = b.gtd - a.gtd + 2 * d2
    t = b.t - (b.t - a.t) * (b.gtd + d2 - d1) / denominator if denominator != 0 else math.nan
    return min(max(t, low), high) if math.isfinite(t) else (low + high) / 2


def _strong_wolfe(objective, x, d, start, t, budget):
    """A step along ``d`` satisfying the strong Wolfe conditions (Nocedal & Wright, Alg. 3.5 and 3.6), and the evaluations used.

    ``start`` is the :class:`_Trial` at ``x`` (step 0), ``t`` the first trial
    step, ``budget`` (at least 1) the most evaluations. Where the budget runs
    out first, the lowest trial satisfying sufficient decrease is returned
    (``start`` if none).
    """

    def phi(step):
        f, g = objective(x.add(d, alpha=step))
        return _Trial(step, f, g, float(g.dot(d)))

    def decreases_enough(trial):  # written so that a NaN loss fails it
        return trial.f <= start.f + _C1 * trial.t * start.gtd

    def flat_enough(trial):
        return abs(trial.gtd) <= -_C2 * start.gtd

    # bracketing: extrapolate until a trial satisfies both conditions or an interval [lo, hi] holds one
    prev = start
    for evals in range(1, budget + 1):
        trial = phi(t)
        if not decreases_enough(trial) or (evals > 1 and trial.f >= prev.f):
            lo, hi = prev, trial
            break
        if flat_enough(trial):
            return trial, evals
        if trial.gtd >= 0:
            lo, hi = trial, prev
            break
        step = trial.t - prev.t
        t = _cubic_minimiser(prev, trial, trial.t + _EXTRAPOLATE_MIN * step, trial.t + _EXTRAPOLATE_MAX * step)
        prev = trial
    else:
        return prev, budget

    # zoom: lo is the lowest trial satisfying sufficient decrease, and a step satisfying both lies between lo and hi
    d_max = float(d.abs().max())
    near_end_before = False
    while evals < budget and abs(hi.t - lo.t) * d_max >= _MIN_BRACKET:
        low, high = sorted((lo.t, hi.t))
        t = _cubic_minimiser(lo, hi, low, high)
        # an interpolant at an end of the bracket, or near one twice in a row, would shrink the bracket
        # by little: move it a tenth of the width inside (torch's safeguard, from its lswolfe.lua)
        margin = 0.1 * (high - low)
        near_end = min(high - t, t - low) < margin
        if near_end and (near_end_before or t >= high or t <= low):
            t = high - margin if abs(t - high) < abs(t - low) else low + margin
            near_end = False
        near_end_before = near_end
        trial = phi(t)
        evals += 1
        if not decreases_enough(trial) or trial.f >= lo.f:
            hi = trial
            continue
        if flat_enough(trial):
            return trial, evals
        if trial.gtd * (hi.t - lo.t) >= 0:
            hi = lo
        lo = trial
    return lo, evals


def _two_loop(g, pairs, gamma):
    """The L-BFGS direction ``-H g``, ``H`` built from the curvature pairs on ``gamma * I`` (Nocedal & Wright, Alg. 7.4).

    The scalars stay 0-d tensors on ``g``'s device: no host read per pair.
    """
    q = g.neg()
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * s.dot(q)
        q.addcmul_(y, alpha, value=-1)
        alphas.append(alpha)
    r = q.mul_(gamma)
    for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
        r.addcmul_(s, alpha - rho * y.dot(r))
    return r


def minimize_lbfgs(objective, x, *, max_evals, tol, tolerance_change=1e-9, history_size=LBFGS_HISTORY):
    """Minimise a smooth function by L-BFGS with a strong Wolfe line search.

    The first trial step is ``1 / ||g||_2`` along ``-g``, as in scipy's L-BFGS-B,
    later ones are unit steps along the L-BFGS direction. Every evaluation
    counts against ``max_evals``, those of the line search included, and no
    point is evaluated twice.

    Parameters
    ----------
    objective : callable
        ``objective(x) -> (loss, gradient)``: a float and a tensor shaped as ``x``.
    x : torch.Tensor
        The starting point, 1-d; not modified.
    max_evals : int
        Most evaluations of ``objective``.
    tol : float
        Stop when the largest absolute gradient entry is at most ``tol``.
    tolerance_change : float, default=1e-9
        Stop when a step moves no entry, or changes the loss, by more than this.
    history_size : int, default=10
        Curvature pairs kept.

    Returns
    -------
    x : torch.Tensor
        The last point accepted by the line search.
    """
    if max_evals < 1:
        return x
    loss, g = objective(x)
    evals = 1
    pairs = deque(maxlen=history_size)  # (s, y, 1 / y.s), oldest first
    gamma = 1.0  # the initial inverse Hessian's scale, y.s / y.y of the newest pair (N&W 7.20)
    d, t = g.neg(), 1.0 / float(torch.linalg.vector_norm(g))
    while evals < max_evals and float(g.abs().max()) > tol:
        gtd = float(g.dot(d))
        if gtd > -tolerance_change:  # rounding has made d no descent direction
            break
        trial, used = _strong_wolfe(objective, x, d, _Trial(0.0, loss, g, gtd), t, max_evals - evals)
        evals += used
        s, y = d.mul(trial.t), trial.g - g
        x, prev_loss, loss, g = x.add(d, alpha=trial.t), loss, trial.f, trial.g
        if float(s.abs().max()) <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
            break
        ys = y.dot(s)
        if ys > _MIN_CURVATURE:
            pairs.append((s, y, 1.0 / ys))
            gamma = ys / y.dot(y)
        d, t = _two_loop(g, pairs, gamma), 1.0
    return x


def _write_flat(params, x):
    """Copy the 1-d ``x`` into ``params``, in order."""
    with torch.no_grad():
        for p, values in zip(params, x.split([p.numel() for p in params])):
            p.copy_(values.view_as(p))


def chunk_rows(n_outputs):
    """Rows per chunk so that one chunk's logits hold about ``2**23`` numbers."""
    return int(max(256, _CHUNK_LOGITS // max(1, n_outputs)))


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
    predict_batch_size=PREDICT_BATCH_ROWS,
):
    """Minimise the weighted mean of ``criterion`` over all of ``(X, y)`` by L-BFGS; return a fitted :class:`LTNet`.

    The net is built and initialised as :func:`train_module` builds it (so it
    predicts, pickles and maps devices the same way) but trained here by
    :func:`minimize_lbfgs`, in ``dtype``, one history row per evaluation of the
    objective (one pass over the data).

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

    Returns
    -------
    net : LTNet
        Its module in float32 and in eval mode, its history one row per evaluation.
    """
    torch_dtype = LBFGS_DTYPES[dtype]
    net = LTNet(
        module,
        criterion,
        optimizer=torch.optim.LBFGS,  # what skorch records as the method; its step is never called
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
    for p in params:
        p.grad = torch.zeros_like(p)

    def objective(x):
        start = time.perf_counter()
        _write_flat(params, x)
        for p in params:
            p.grad.zero_()
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
        return value, torch.cat([p.grad.reshape(-1) for p in params])

    x = minimize_lbfgs(
        objective,
        torch.cat([p.detach().reshape(-1) for p in params]),
        max_evals=max_evals,
        tol=LBFGS_TOL if tol is None else tol,
        tolerance_change=1e-9 if torch_dtype == torch.float64 else 1e-7,
    )
    _write_flat(params, x)  # the objective's last evaluation may have been a rejected trial
    for p in params:
        p.grad = None
    model.to(torch.float32)
    loss_fn.to(torch.float32)
    model.eval()
    return net
