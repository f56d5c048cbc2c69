"""The torch pieces of DLSA as plain ``nn.Module``s: the Gaussian-mixture flow filter and the
cluster-aided classifier.

The flow maps features ``x`` to a latent ``z`` through two masked autoregressive
(MAF) blocks, each followed by a batch-norm bijection, and scores ``z`` under a
uniform mixture of ``K`` unit-covariance Gaussians with fixed centres. The MAF
blocks are zuko's :class:`zuko.flows.MaskedAutoregressiveTransform`; zuko has no
batch-norm bijection, so :class:`BatchNormBijection` is written here.
"""

import math

import numpy as np
import torch
from torch import nn
from zuko.flows import MaskedAutoregressiveTransform

# zuko's affine MAF keeps log-scales within +-|log(1e-3)|; the batch-norm scale gets the same bound
_LOG_SCALE_BOUND = -math.log(1e-3)


def soft_clamp(log_scale, bound=_LOG_SCALE_BOUND):
    """Smoothly map ``log_scale`` into ``(-bound, bound)`` (zuko's ``MonotonicAffineTransform`` rule)."""
    return log_scale / (1 + (log_scale / bound).abs())


class BatchNormBijection(nn.Module):
    """Batch normalisation as an invertible map with a log-determinant (Dinh et al., RealNVP).

    ``y = exp(log_gamma) * (x - mean) / sqrt(var + eps) + beta``. In training mode
    ``mean`` and ``var`` (unbiased) come from the batch and update running
    averages (``running = (1 - momentum) * running + momentum * batch``); a
    batch of one sample has no variance, so it uses the running statistics
    instead of producing NaN. ``log_gamma`` is soft-clamped to
    ``(-6.9, 6.9)``, so the map can neither explode nor collapse.

    Parameters
    ----------
    n_features : int
    momentum : float, default=0.1
    eps : float, default=1e-5

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.flows import BatchNormBijection
    >>> bn = BatchNormBijection(3)
    >>> y, log_det = bn(torch.randn(8, 3) * 5 + 2)
    >>> y.shape, log_det.shape
    (torch.Size([8, 3]), torch.Size([8]))
    >>> bool(torch.isfinite(bn(torch.randn(1, 3))[0]).all())  # a batch of one: running statistics
    True
    """

    def __init__(self, n_features, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.log_gamma = nn.Parameter(torch.zeros(n_features))
        self.beta = nn.Parameter(torch.zeros(n_features))
        self.register_buffer("running_mean", torch.zeros(n_features))
        self.register_buffer("running_var", torch.ones(n_features))

    def forward(self, x):
        """Return ``(y, log|det J|)``, the latter of shape ``(n_samples,)``."""
        if self.training and x.shape[0] > 1:
            mean = x.mean(0)
            var = x.var(0, unbiased=True)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        log_gamma = soft_clamp(self.log_gamma)
        inv_std = torch.rsqrt(var + self.eps)
        y = (x - mean) * (inv_std * log_gamma.exp()) + self.beta
        ladj = (log_gamma + inv_std.log()).sum()
        return y, ladj.expand(x.shape[0])


class GaussianMixtureFlow(nn.Module):
    """DLSA's flow filter: features to a latent space scored by a fixed uniform Gaussian mixture.

    ``z = g^{-1}(x)`` is a fixed standardisation, then ``n_blocks`` pairs of
    (MAF block, batch-norm bijection), MAF orders flipped between blocks. The
    latent density is ``p(z) = 1/K sum_k N(z; mu_k, I)`` with centres ``mu_k``
    drawn once from ``N(0, center_std^2)`` and never trained, so

    ``log p(x | k) = log N(z; mu_k, I) + log|det dz/dx|``,
    ``log p(x) = logsumexp_k log p(x | k) - log K``,

    the cluster posterior is ``softmax_k log p(x | k)`` and a sample's cluster
    the nearest centre. All ``K`` component log-densities come from one matrix
    product: ``log N(z; mu_k, I) = z.mu_k - |z|^2/2 - |mu_k|^2/2 - d/2 log 2 pi``
    (no ``n x K x d`` tensor).

    Parameters
    ----------
    n_features : int
        ``d``. With ``d == 1`` zuko replaces the MAF block by an element-wise affine map.
    n_clusters : int
        ``K``.
    center_std : float
        Standard deviation of the centre coordinates.
    hidden_features : int or sequence of int, default=None
        Hidden layers of each MADE; ``None`` means two layers of width ``d``
        (the authors' ``d -> d -> d -> 2d`` MADE).
    n_blocks : int, default=2
    mean, scale : array-like of shape (n_features,), default=None
        Standardisation ``(x - mean) / scale`` applied first (counted in the
        log-determinant); ``None`` means zeros and ones.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.flows import GaussianMixtureFlow
    >>> _ = torch.manual_seed(0)
    >>> flow = GaussianMixtureFlow(n_features=4, n_clusters=10, center_std=0.5)
    >>> flow(torch.randn(8, 4)).shape  # log p(x | k), one column per cluster
    torch.Size([8, 10])
    >>> flow.log_likelihood(torch.randn(8, 4)).shape
    torch.Size([8])
    """

    def __init__(self, n_features, n_clusters, center_std, *, hidden_features=None, n_blocks=2, mean=None, scale=None):
        super().__init__()
        d = int(n_features)
        self.n_features = d
        self.n_clusters = int(n_clusters)
        hidden = (d, d) if hidden_features is None else tuple(np.atleast_1d(hidden_features).astype(int).tolist())
        mean = torch.zeros(d) if mean is None else torch.as_tensor(np.asarray(mean), dtype=torch.float32)
        scale = torch.ones(d) if scale is None else torch.as_tensor(np.asarray(scale), dtype=torch.float32)
        self.register_buffer("input_mean", mean.reshape(d))
        self.register_buffer("input_scale", scale.reshape(d))
        orders = [torch.arange(d), torch.arange(d).flip(0)]
        self.mafs = nn.ModuleList(
            MaskedAutoregressiveTransform(features=d, order=orders[i % 2], hidden_features=hidden)
            for i in range(n_blocks)
        )
        self.norms = nn.ModuleList(BatchNormBijection(d) for _ in range(n_blocks))
        self.register_buffer("centers", torch.randn(self.n_clusters, d) * float(center_std))

    def transform(self, x):
        """Latent ``z`` and ``log|det dz/dx|`` of a batch ``x``."""
        z = (x - self.input_mean) / self.input_scale
        ladj = -self.input_scale.log().sum().expand(x.shape[0])
        for maf, norm in zip(self.mafs, self.norms):
            z, maf_ladj = maf().call_and_ladj(z)
            z, norm_ladj = norm(z)
            ladj = ladj + maf_ladj + norm_ladj
        return z, ladj

    def component_log_likelihood(self, z, ladj):
        """``log p(x | k)`` of shape ``(n_samples, K)`` from the latent, as one ``addmm``."""
        d = z.shape[1]
        half_center_sq = 0.5 * (self.centers * self.centers).sum(1)
        per_sample = ladj - 0.5 * (z * z).sum(1) - 0.5 * d * math.log(2 * math.pi)
        return torch.addmm(per_sample[:, None], z, self.centers.T) - half_center_sq

    def forward(self, x):
        """``log p(x | k)``, shape ``(n_samples, n_clusters)``: the cluster "logits"."""
        return self.component_log_likelihood(*self.transform(x))

    def log_likelihood(self, x):
        """``log p(x)`` under the uniform mixture, shape ``(n_samples,)``."""
        return torch.logsumexp(self(x), dim=1) - math.log(self.n_clusters)


class ClusterAidedClassifier(nn.Module):
    """DLSA's cluster-aided classifier: ``logits = FC[x] + FC[z, P(y | h)]``.

    The input is the concatenation ``[x, z, P(y | h(x))]`` of the features, the
    flow latent and the class frequencies of the sample's cluster; since both
    layers are linear this is the paper's ``FC[x, z] + FC[P(y | h)]``. Both
    layers start at zero (the loss is convex in them).

    Parameters
    ----------
    n_features, n_latent, n_classes : int

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.flows import ClusterAidedClassifier
    >>> clf = ClusterAidedClassifier(n_features=4, n_latent=4, n_classes=3)
    >>> clf(torch.randn(5, 4 + 4 + 3)).shape
    torch.Size([5, 3])
    """

    def __init__(self, n_features, n_latent, n_classes):
        super().__init__()
        self.n_features = int(n_features)
        self.fc_x = nn.Linear(n_features, n_classes)
        self.fc_zp = nn.Linear(n_latent + n_classes, n_classes, bias=False)
        for layer in (self.fc_x, self.fc_zp):
            nn.init.zeros_(layer.weight)
        nn.init.zeros_(self.fc_x.bias)

    def forward(self, inputs):
        return self.fc_x(inputs[:, : self.n_features]) + self.fc_zp(inputs[:, self.n_features :])
