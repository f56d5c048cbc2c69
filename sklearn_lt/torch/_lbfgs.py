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
import types

import numpy as np
import torch

try:  # a private helper of torch's L-BFGS: where a torch lacks it, its own line search is used as is
    from torch.optim.lbfgs import _cubic_interpolate
except ImportError:  # pragma: no cover - depends on the installed torch
    _cubic_interpolate = None

from ._data import PREDICT_BATCH_ROWS, as_device_tensor
from ._net import LTNet

LBFGS_DTYPES = {"float32": torch.float32, "float64": torch.float64}
# gradient tolerance (max-abs of the mean loss's gradient) and history, as scikit-learn's lbfgs defaults
LBFGS_TOL = 1e-4
LBFGS_HISTORY = 10
# rows per chunk: about 2**23 logits (32 MiB in float32) whatever the number of classes
_CHUNK_LOGITS = 2**23


# The strong-Wolfe line search of torch.optim.LBFGS (torch 2.13, BSD-3-Clause; copied because LBFGS
# calls it by its module-level name and takes no other), with one change: while bracketing, the next
# trial step is bounded as in the line search of scipy's L-BFGS-B (MINPACK-2's dcsrch, xtrapl = 1.1,
# xtrapu = 4), which is LogisticRegression's solver. torch's bounds let a step grow tenfold; on the
# class-balanced objective at 115,846 x 512 x 1,000 that long first step left curvature pairs that cost
# 19 evaluations where scipy needed 6 on the same objective (doc/user_guide/baselines.rst, "Solvers").
_XTRAPL, _XTRAPU = 1.1, 4.0


def _strong_wolfe_dcsrch_bounds(
    obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25
):
    # ported from https://github.com/torch/optim/blob/master/lswolfe.lua
    d_norm = d.abs().max()
    g = g.clone(memory_format=torch.contiguous_format)
    # evaluate objective and gradient using initial step
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)

    # bracket an interval containing a point satisfying the Wolfe criteria
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        # check conditions
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.clone(memory_format=torch.contiguous_format)]
            bracket_gtd = [gtd_prev, gtd_new]
            break

        if abs(gtd_new) <= -c2 * gtd:
            bracket = [t]
            bracket_f = [f_new]
            bracket_g = [g_new]
            done = True
            break

        if gtd_new >= 0:
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.clone(memory_format=torch.contiguous_format)]
            bracket_gtd = [gtd_prev, gtd_new]
            break

        # interpolate
        # scipy's dcsrch (MINPACK-2) extrapolates to between 1.1 and 4 times the last step beyond it;
        # torch's own bounds here are t + 0.01 (t - t_prev) and 10 t
        min_step = t + _XTRAPL * (t - t_prev)
        max_step = t + _XTRAPU * (t - t_prev)
        tmp = t
        t = _cubic_interpolate(
            t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step)
        )

        # next step
        t_prev = tmp
        f_prev = f_new
        g_prev = g_new.clone(memory_format=torch.contiguous_format)
        gtd_prev = gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

    # reached max number of iterations?
    if ls_iter == max_ls:
        bracket = [0, t]
        bracket_f = [f, f_new]
        bracket_g = [g, g_new]

    # zoom phase: we now have a point satisfying the criteria, or
    # a bracket around it. We refine the bracket until we find the
    # exact point satisfying the criteria
    insuf_progress = False
    # find high and low points in bracket
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        # line-search bracket is so small
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break

        # compute new trial value
        t = _cubic_interpolate(
            bracket[0],
            bracket_f[0],
            bracket_gtd[0],
            bracket[1],
            bracket_f[1],
            bracket_gtd[1],
        )

        # test that we are making sufficient progress:
        # in case `t` is so close to boundary, we mark that we are making
        # insufficient progress, and if
        #   + we have made insufficient progress in the last step, or
        #   + `t` is at one of the boundary,
        # we will move `t` to a position which is `0.1 * len(bracket)`
        # away from the nearest boundary point.
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            # interpolation close to boundary
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                # evaluate at 0.1 away from boundary
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        # Evaluate new point
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            # Armijo condition not satisfied or not lower than lowest point
            bracket[high_pos] = t
            bracket_f[high_pos] = f_new
            bracket_g[high_pos] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                # Wolfe conditions satisfied
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                # old high becomes new low
                bracket[high_pos] = bracket[low_pos]
                bracket_f[high_pos] = bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]

            # new point becomes new low
            bracket[low_pos] = t
            bracket_f[low_pos] = f_new
            bracket_g[low_pos] = g_new.clone(memory_format=torch.contiguous_format)
            bracket_gtd[low_pos] = gtd_new

    # return stuff
    t = bracket[low_pos]
    f_new = bracket_f[low_pos]
    g_new = bracket_g[low_pos]
    return f_new, g_new, t, ls_func_evals


def _lbfgs_step_with(line_search):
    """``torch.optim.LBFGS.step`` with ``line_search`` in place of torch's strong-Wolfe search, or None.

    None where this torch's ``step`` is not built as in torch 2.13 (a function under ``torch.no_grad``
    that calls ``_strong_wolfe`` by its module-level name): another torch version then trains with its
    own line search (more evaluations, same optimum) instead of failing.
    """
    step = getattr(torch.optim.LBFGS.step, "__wrapped__", None)
    if _cubic_interpolate is None or not isinstance(step, types.FunctionType):
        return None
    if "_strong_wolfe" not in step.__code__.co_names or "_strong_wolfe" not in step.__globals__:
        return None
    globals_ = {**step.__globals__, "_strong_wolfe": line_search}
    replaced = types.FunctionType(step.__code__, globals_, step.__name__, step.__defaults__, step.__closure__)
    return torch.no_grad()(replaced)


class _DcsrchBoundedLBFGS(torch.optim.LBFGS):
    """torch's L-BFGS whose strong-Wolfe line search extrapolates as scipy's L-BFGS-B does.

    With a torch whose ``step`` cannot take the replaced search, it is torch's L-BFGS unchanged.
    """

    _bounded_step = _lbfgs_step_with(_strong_wolfe_dcsrch_bounds)
    if _bounded_step is not None:
        step = _bounded_step


def chunk_rows(n_outputs):
    """Rows per chunk so that one chunk's logits hold about ``2**23`` numbers."""
    return int(max(256, _CHUNK_LOGITS // max(1, n_outputs)))


def _minimise(optimizer, objective, params, max_evals, n_evals):
    """Run ``optimizer`` (torch's L-BFGS) for at most ``max_evals`` evaluations, its first step scaled as scipy's.

    torch's first trial step is ``-g / ||g||_1``, scipy's L-BFGS-B (LogisticRegression's solver)
    ``-g / ||g||_2``. With many parameters (512 x 1,000) the L1 norm is hundreds of times the L2
    norm, and the line search, which grows a step at most fivefold per evaluation, would spend several
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
    predict_batch_size=PREDICT_BATCH_ROWS,
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
    optimizer = _DcsrchBoundedLBFGS(
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
