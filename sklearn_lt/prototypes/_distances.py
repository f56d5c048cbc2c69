"""Distance logits of the NCM classifiers: fused autograd functions, their torch modules, a float64 twin.

``-0.5 * ||x - mu_c||`` (and its minimum over Multi-NCM's displacements) as one
GEMM forward and one GEMM backward, the torch modules that
:class:`~sklearn_lt.prototypes.LearnedNCM` and
:class:`~sklearn_lt.prototypes.MultiNCM` train, and the float64 NumPy version
they predict with.
"""

import numpy as np
import torch
from torch import nn

# --------------------------------------------------------------------------------------
# distance logits: one GEMM forward, one GEMM backward (features need no gradient)
# --------------------------------------------------------------------------------------


class _HalfDistanceLogits(torch.autograd.Function):
    """``-0.5 * sqrt(max(||x_b||^2 - 2 x_b . m_c + ||m_c||^2, eps))`` with a fused backward.

    The expansion makes the forward pass one ``addmm``; the backward computes
    ``h = dlogit / d(d^2)`` in one pass over the ``B x C`` matrix and the
    centroid gradient with one more GEMM (and the feature gradient with a
    third one only when the features need it, e.g. learned temperatures).
    The clamp keeps a sample that sits on its centroid (e.g. the only sample
    of its class) at a finite ``1 / d``; there ``(m - x)`` is zero up to
    rounding, so its gradient is negligible instead of NaN.
    """

    @staticmethod
    def forward(ctx, x, m, eps):
        out = torch.addmm((m * m).sum(1).unsqueeze(0), x, m.T, beta=1.0, alpha=-2.0)
        out.add_((x * x).sum(1, keepdim=True)).clamp_(min=eps).sqrt_().mul_(-0.5)
        ctx.save_for_backward(x, m, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, m, out = ctx.saved_tensors
        # d(-0.5 sqrt(d2)) / d(d2) = -0.25 / sqrt(d2) = 0.125 / out; the 0.125 goes into the GEMMs.
        # Where the clamp is active, x and m coincide to rounding: the factor (2 m - 2 x) that h
        # multiplies is rounding error, so the gradient there is finite and negligible, never NaN.
        h = torch.div(grad, out)
        grad_x = grad_m = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.addmm(x * (0.25 * h.sum(1, keepdim=True)), h, m, alpha=-0.25)
        if ctx.needs_input_grad[1]:
            grad_m = torch.addmm(m * (0.25 * h.sum(0).unsqueeze(1)), h.T, x, alpha=-0.25)
        return grad_x, grad_m, None


def half_distance_logits(x, m, eps=1e-12):
    """NCM logits ``-0.5 * ||x_b - m_c||_2`` for a batch ``x`` (B, d) and centroids ``m`` (C, d).

    Stable at zero distance (the gradient there is 0, never NaN) and computed
    as one matrix product, so a training step costs two ``B x d x C`` GEMMs.
    ``eps`` is the floor of the squared distance.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.prototypes._distances import half_distance_logits
    >>> half_distance_logits(torch.tensor([[3.0, 4.0]]), torch.zeros(2, 2)).tolist()
    [[-2.5, -2.5]]
    """
    return _HalfDistanceLogits.apply(x, m, float(eps))


class _MinHalfDistanceLogits(torch.autograd.Function):
    """``-0.5 * sqrt(max(min_i ||x_b - m_c - e_i||^2, eps))``, differentiable in ``e`` only.

    ``||x - m - e||^2 = ||x - m||^2 + (||e||^2 - 2 x.e) + 2 e.m``: one
    ``B x d x C`` GEMM and two thin ones, a ``B x (K+1) x C`` sum reduced by
    its minimum, which is not kept for the backward: only the argmin is, and
    the gradient of each ``e_i``, ``sum h (2 e_i + 2 m_c - 2 x_b)`` over the
    pairs ``(b, c)`` whose minimum is ``i``, comes from two scatter-adds and
    two thin GEMMs.
    """

    @staticmethod
    def forward(ctx, x, m, e, eps):
        base = torch.addmm((m * m).sum(1).unsqueeze(0), x, m.T, alpha=-2.0).add_((x * x).sum(1, keepdim=True))
        per_sample = torch.addmm((e * e).sum(1).unsqueeze(0), x, e.T, alpha=-2.0)  # (B, K+1)
        per_class = 2.0 * (e @ m.T)  # (K+1, C)
        candidates = base.unsqueeze(1) + per_sample.unsqueeze(2)
        candidates += per_class.unsqueeze(0)
        d2, index = candidates.min(1)
        del candidates
        out = d2.clamp_(min=eps).sqrt_().mul_(-0.5)
        ctx.save_for_backward(x, m, e, out, index)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, m, e, out, index = ctx.saved_tensors
        h = torch.div(grad, out).mul_(0.125)  # d logit / d(d^2), see _HalfDistanceLogits
        n_disp = e.shape[0]
        if h.is_cuda:
            # CUDA's scatter_add_ adds with atomics, in a different order each run: the same seed would
            # not give the same model. A one-hot product is as cheap as the forward's B x (K+1) x C sum.
            onehot = torch.nn.functional.one_hot(index, n_disp).to(h.dtype)  # (B, C, K+1)
            per_sample = torch.einsum("bc,bck->bk", h, onehot)
            per_class = torch.einsum("bc,bck->kc", h, onehot)
        else:
            per_sample = torch.zeros(x.shape[0], n_disp, dtype=h.dtype, device=h.device).scatter_add_(1, index, h)
            per_class = torch.zeros(n_disp, m.shape[0], dtype=h.dtype, device=h.device).scatter_add_(0, index, h)
        grad_e = torch.addmm(e * (2.0 * per_sample.sum(0).unsqueeze(1)), per_class, m, alpha=2.0)
        grad_e.addmm_(per_sample.T, x, alpha=-2.0)
        return None, None, grad_e, None


class NCMModule(nn.Module):
    """Learned-NCM logits on raw features: ``-0.5 * ||(x / s - mu_c) / T||_2``.

    ``mu = empirical + shift``: the empirical class means (divided by ``s``)
    are a buffer and the learned part is the shift (zero at the start), so an
    untrained module reproduces nearest-class-mean exactly.

    Parameters
    ----------
    empirical_centroids : array of shape (n_classes, n_features)
        Class means in feature units.
    scale : float
        ``s``, the feature unit the model works in.
    eps : float
        Floor of the squared (scaled) distance.
    learn_temperature : bool
        Add a learnable per-feature temperature ``T`` (initialised to 1).
    """

    def __init__(self, empirical_centroids, scale, eps, learn_temperature=False):
        super().__init__()
        empirical = torch.as_tensor(np.asarray(empirical_centroids) / scale, dtype=torch.float32)
        self.register_buffer("empirical", empirical)
        self.register_buffer("inv_scale", torch.tensor(1.0 / scale, dtype=torch.float32))
        self.eps = float(eps)
        self.shift = nn.Parameter(torch.zeros_like(empirical))
        self.temperature = nn.Parameter(torch.ones(empirical.shape[1])) if learn_temperature else None

    def centroids(self):
        return self.empirical + self.shift

    def forward(self, X):
        x = X * self.inv_scale
        m = self.centroids()
        if self.temperature is not None:
            inv_t = 1.0 / self.temperature.clamp_min(1e-3)
            x, m = x * inv_t, m * inv_t
        return half_distance_logits(x, m, self.eps)


class MultiNCMModule(nn.Module):
    """Multi-NCM logits: ``-0.5 * min_i ||(x / s - mu_c - delta_i) / T||``, ``delta_0 = 0`` fixed.

    The centroids ``mu`` and temperatures ``T`` are frozen buffers; only the
    shared displacements ``delta_1..delta_K`` are learned (in the scaled
    space: ``x / (s T)``, ``mu / (s T)``, ``delta / (s T)``).
    """

    def __init__(self, centroids, displacements, scale, eps, temperature=None):
        super().__init__()
        t = np.ones(centroids.shape[1]) if temperature is None else np.asarray(temperature)
        self.register_buffer("m", torch.as_tensor(np.asarray(centroids) / (scale * t), dtype=torch.float32))
        self.register_buffer("x_factor", torch.as_tensor(1.0 / (scale * t), dtype=torch.float32))
        self.eps = float(eps)
        self.displacements = nn.Parameter(
            torch.as_tensor(np.asarray(displacements) / (scale * t), dtype=torch.float32)
        )

    def forward(self, X):
        e = torch.cat([self.displacements.new_zeros(1, X.shape[1]), self.displacements])  # (K+1, d)
        return _MinHalfDistanceLogits.apply(X * self.x_factor, self.m, e, self.eps)


# --------------------------------------------------------------------------------------
# float64 prediction
# --------------------------------------------------------------------------------------


def _min_half_distances(X, centroids, scale, temperature=None, displacements=None, chunk=4096):
    """``-0.5 * min_i ||(x - mu_c - delta_i) / T|| / s`` in float64, ``delta_0 = 0`` always included."""
    X = np.asarray(X, dtype=np.float64)
    inv = 1.0 / (scale * (1.0 if temperature is None else np.asarray(temperature, dtype=np.float64)))
    m = centroids * inv
    e = None if displacements is None or len(displacements) == 0 else np.asarray(displacements) * inv
    mm = np.einsum("ij,ij->i", m, m)
    out = np.empty((len(X), len(m)))
    for start in range(0, len(X), chunk):
        x = X[start : start + chunk] * inv
        d2 = out[start : start + chunk]
        np.matmul(x, m.T, out=d2)
        d2 *= -2.0
        d2 += np.einsum("ij,ij->i", x, x)[:, None]
        d2 += mm
        if e is not None:
            base = d2.copy()
            per_sample = np.einsum("ij,ij->i", e, e) - 2.0 * (x @ e.T)
            per_class = 2.0 * (e @ m.T)
            candidate = np.empty_like(base)
            for i in range(len(e)):
                np.add(base, per_sample[:, i, None], out=candidate)
                candidate += per_class[i]
                np.minimum(d2, candidate, out=d2)
        np.maximum(d2, 0.0, out=d2)
        np.sqrt(d2, out=d2)
        d2 *= -0.5
    return out
