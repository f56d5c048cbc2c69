"""How BTM handles each kind of model: torch estimators, skorch nets, scikit-learn linear classifiers.

:class:`~sklearn_lt.ensemble.BalancedUndersampleMerger` fine-tunes copies of a
pre-trained model, averages their weights and re-trains the final linear
layer. Each kind of model exposes its weights differently; the adapters here
give BTM one interface (``logits``, ``check``, ``finetune``, ``merge``,
``recalibrate``, ``post_train``) and do the torch-module surgery behind it.
"""

import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model._base import LinearClassifierMixin
from torch import nn

from ..torch._base import BaseTorchClassifier, ClassifierOutputMixin
from ..torch._data import batched_forward, row_batches
from ..torch._device import seeded
from ..torch._losses import LogitAdjustedLoss
from ..torch._net import batch_norm_layers, has_batch_norm, make_train_sampler, train_module

# --------------------------------------------------------------------------------------------
# What BTM needs from a model, for the three kinds of model it accepts. A "model" is a fitted
# estimator (a copy of the pre-trained one); the methods never modify the model they are given.
# --------------------------------------------------------------------------------------------


def _forward(module, X, device, *, capture=None):
    """Logits of ``module`` on ``X`` in eval mode (and the input of layer ``capture`` if given)."""
    inputs = []
    handle = None
    if capture is not None:
        handle = capture.register_forward_hook(lambda layer, args, out: inputs.append(args[0].detach().cpu()))
    try:
        logits = batched_forward(module, X, device=device).float().numpy()
    finally:
        if handle is not None:
            handle.remove()
    if capture is None:
        return logits
    return logits, torch.cat(inputs).numpy()


def _final_linear(module, X_probe, device, n_classes):
    """The ``nn.Linear`` whose output is the module's output, or a TypeError saying why there is none."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    outputs = {}
    hooks = [
        layer.register_forward_hook(
            lambda layer, args, out: outputs.__setitem__(id(layer), out.detach().cpu().float())
        )
        for layer in linears
    ]
    try:
        logits = torch.as_tensor(_forward(module, X_probe, device))
    finally:
        for h in hooks:
            h.remove()
    if logits.ndim != 2 or logits.shape[1] != n_classes:
        raise TypeError(
            f"the module's output has shape {tuple(logits.shape)}; BTM needs one logit per class, i.e. "
            f"(n_samples, {n_classes})."
        )
    for layer in reversed(linears):
        out = outputs.get(id(layer))
        if out is not None and out.shape == logits.shape and torch.equal(out, logits):
            return layer
    raise TypeError(
        f"{type(module).__name__} does not end in a torch.nn.Linear layer (its output is not the output of "
        "any of its nn.Linear layers, e.g. it applies a softmax or a scaling after it). BTM post-trains the "
        "final linear layer: make the module return the logits of its last nn.Linear."
    )


class _MixupCrossEntropy(nn.Module):
    """Cross-entropy of mixed samples: ``lam * CE(y_a) + (1 - lam) * CE(y_b)`` (targets from :func:`_mixup_hook`)."""

    def forward(self, logits, y_pair, lam):
        log_p = torch.log_softmax(logits, dim=1)
        nll_a = -log_p.gather(1, y_pair[:, :1]).squeeze(1)
        nll_b = -log_p.gather(1, y_pair[:, 1:]).squeeze(1)
        return (lam * nll_a + (1 - lam) * nll_b).mean()


def _mixup_hook(alpha):
    """A ``train_batch_hook`` mixing each batch with a shuffled copy of itself (Zhang et al.'s mixup)."""
    beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))

    def hook(batch):
        Xb, yb = batch
        lam = beta.sample().to(Xb.device)
        perm = torch.randperm(len(Xb), device=Xb.device)
        return lam * Xb + (1 - lam) * Xb[perm], (torch.stack([yb, yb[perm]], dim=1), lam)

    return hook


def _train_sgd(module, criterion, X, y, sampler, *, device, epochs, lr, weight_decay, verbose, train_batch_hook=None):
    """The paper's optimisation for every BTM stage: SGD with momentum 0.9 and a cosine schedule."""
    return train_module(
        module,
        criterion,
        X,
        y,
        sampler=sampler,
        max_epochs=epochs,
        optimizer="sgd",
        lr=lr,
        optimizer_kwargs={"momentum": 0.9, "weight_decay": weight_decay},
        lr_schedule="cosine",
        device=device,
        verbose=verbose,
        train_batch_hook=train_batch_hook,
    )


def _finetune_module(module, X, y, *, device, epochs, lr, batch_size, weight_decay, mixup, seed, verbose):
    """Fine-tune all of ``module`` (a copy) on ``(X, y)``: SGD with momentum 0.9, cosine schedule, cross-entropy."""
    with seeded(seed, device) as generator:
        sampler = make_train_sampler(
            y, sampling="instance", batch_size=batch_size, generator=generator, even_batches=has_batch_norm(module)
        )
        return _train_sgd(
            copy.deepcopy(module),
            _MixupCrossEntropy() if mixup else LogitAdjustedLoss(tau=0.0),
            X,
            y,
            sampler,
            device=device,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            verbose=verbose,
            train_batch_hook=_mixup_hook(mixup) if mixup else None,
        )


def _train_linear(layer, features, y, *, device, class_counts, loss_tau, sampling, epochs, lr, batch_size,
                  weight_decay, seed, verbose):
    """Train a copy of the ``nn.Linear`` ``layer`` on fixed ``features``, starting from its weights."""
    with seeded(seed, device) as generator:
        # built inside ``seeded``: its (overwritten) random initialisation must not draw from the caller's RNG
        head = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
        head.load_state_dict(layer.state_dict())
        sampler = make_train_sampler(y, sampling=sampling, batch_size=batch_size, generator=generator)
        return _train_sgd(
            head,
            LogitAdjustedLoss(class_counts, tau=loss_tau),
            features,
            y,
            sampler,
            device=device,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            verbose=verbose,
        )


class _TorchKind:
    """Models holding a torch module: the library's torch estimators and skorch nets."""

    def __init__(self, skorch_net):
        self.skorch_net = skorch_net
        # skorch's classifier with a cross-entropy criterion needs targets 0..C-1
        self.encoded_targets = skorch_net

    def owner(self, model):
        return model if self.skorch_net else model.net_

    def module(self, model):
        return self.owner(model).module_

    def device(self, model):
        return str(self.owner(model).device)

    def with_module(self, model, module):
        """A copy of ``model`` whose module is ``module``."""
        # skorch nets deep-copy through pickling (their __getstate__), so a memo cannot
        # substitute the module: copy, then swap the module in
        new = copy.deepcopy(model)
        owner = self.owner(new)
        owner.module_ = module
        if isinstance(owner.module, nn.Module):
            owner.module = module
        return new

    def logits(self, model, X):
        return _forward(self.module(model), X, self.device(model))

    def check(self, model, X, n_classes):
        _final_linear(self.module(model), X[:8], self.device(model), n_classes)

    def finetune(self, model, X, y, y_labels, *, epochs, lr, batch_size, weight_decay, mixup, seed, verbose):
        net = _finetune_module(
            self.module(model), X, y, device=self.device(model), epochs=epochs, lr=lr, batch_size=batch_size,
            weight_decay=weight_decay, mixup=mixup, seed=seed, verbose=verbose,
        )
        return self.with_module(model, net.module_), net.history

    def merge(self, models):
        states = [self.module(m).state_dict() for m in models]
        merged = {}
        for key, value in states[0].items():
            stacked = torch.stack([s[key].to(torch.float64) for s in states])
            mean = stacked.mean(dim=0)
            merged[key] = (mean.round() if not value.is_floating_point() else mean).to(value.dtype)
        module = copy.deepcopy(self.module(models[0]))
        module.load_state_dict(merged)
        return self.with_module(models[0], module)

    def recalibrate(self, model, X):
        module = copy.deepcopy(self.module(model))
        norms = batch_norm_layers(module)
        if not norms:
            return model
        device = self.device(model)
        momenta = [m.momentum for m in norms]
        module.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches: the statistics of the whole data
            m.train()
        with torch.no_grad():
            for _, batch in row_batches(X, device):
                if len(batch) > 1:  # a batch of one has no variance to average in
                    module(batch)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        module.eval()
        return self.with_module(model, module)

    def post_train(self, model, X, y, *, class_counts, loss_tau, sampling, epochs, lr, batch_size, weight_decay,
                   seed, verbose, **_):
        module = copy.deepcopy(self.module(model))
        device = self.device(model)
        final = _final_linear(module, X[:8], device, len(class_counts))
        _, features = _forward(module, X, device, capture=final)
        net = _train_linear(
            final, features, y, device=device, class_counts=class_counts, loss_tau=loss_tau, sampling=sampling,
            epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, seed=seed, verbose=verbose,
        )
        final.load_state_dict(net.module_.state_dict())
        return self.with_module(model, module), net.history


class _LinearKind:
    """scikit-learn linear classifiers (``coef_``, ``intercept_``), trained from their weights by the torch core.

    Fine-tuning and post-training run a bounded number of SGD steps on an
    ``nn.Linear`` holding ``coef_`` and ``intercept_``, as the paper does for a
    network's layers. A warm-started ``fit`` would instead converge to the
    optimum of the subset (then of all the data) whatever the start, and BTM
    would return the baseline model.
    """

    encoded_targets = False
    device = "cpu"

    def logits(self, model, X):
        scores = np.asarray(model.decision_function(X), dtype=np.float64)
        if scores.ndim == 1:
            return np.column_stack([-scores / 2, scores / 2])
        return scores

    def check(self, model, X, n_classes):
        missing = [a for a in ("coef_", "intercept_") if not hasattr(model, a)]
        if missing:
            raise TypeError(
                f"{type(model).__name__} has no {', '.join(missing)} after fitting: BTM averages the weights of "
                "a linear classifier, so it needs coef_ and intercept_."
            )

    @staticmethod
    def _to_linear(model):
        """An ``nn.Linear`` whose logits are :meth:`logits` (a binary model's score split in two halves)."""
        coef = np.asarray(model.coef_, dtype=np.float32)
        intercept = np.array(np.broadcast_to(np.asarray(model.intercept_, dtype=np.float32), (coef.shape[0],)))
        if coef.shape[0] == 1:  # binary: softmax of (-s/2, s/2) is the logistic of s
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        fit_intercept = bool(getattr(model, "fit_intercept", True))
        layer = nn.Linear(coef.shape[1], coef.shape[0], bias=fit_intercept)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(coef))
            if fit_intercept:
                layer.bias.copy_(torch.from_numpy(intercept))
        return layer

    @staticmethod
    def _from_linear(model, layer):
        """A copy of ``model`` holding the weights of ``layer``."""
        new = copy.deepcopy(model)
        coef = layer.weight.detach().cpu().double().numpy()
        bias = layer.bias.detach().cpu().double().numpy() if layer.bias is not None else np.zeros(len(coef))
        if np.asarray(model.coef_).shape[0] == 1:
            coef, bias = coef[1:] - coef[:1], bias[1:] - bias[:1]
        dtype = np.asarray(model.coef_).dtype
        new.coef_ = coef.astype(dtype)
        if layer.bias is not None:
            new.intercept_ = bias.astype(np.asarray(model.intercept_).dtype)
        return new

    def finetune(self, model, X, y, y_labels, *, epochs, lr, batch_size, weight_decay, mixup, seed, verbose):
        net = _finetune_module(
            self._to_linear(model), X, y, device=self.device, epochs=epochs, lr=lr, batch_size=batch_size,
            weight_decay=weight_decay, mixup=mixup, seed=seed, verbose=verbose,
        )
        return self._from_linear(model, net.module_), net.history

    def merge(self, models):
        merged = copy.deepcopy(models[0])
        merged.coef_ = np.mean([np.asarray(m.coef_) for m in models], axis=0).astype(np.asarray(models[0].coef_).dtype)
        merged.intercept_ = np.mean([np.asarray(m.intercept_) for m in models], axis=0).astype(
            np.asarray(models[0].intercept_).dtype
        )
        return merged

    def recalibrate(self, model, X):
        return model

    def post_train(self, model, X, y, *, class_counts, loss_tau, sampling, epochs, lr, batch_size, weight_decay,
                   seed, verbose, **_):
        net = _train_linear(
            self._to_linear(model), X, y, device=self.device, class_counts=class_counts, loss_tau=loss_tau,
            sampling=sampling, epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, seed=seed,
            verbose=verbose,
        )
        return self._from_linear(model, net.module_), net.history


def _kind_of(estimator):
    """The kind of an (unfitted or fitted) estimator, or a TypeError listing the accepted kinds."""
    from skorch import NeuralNet

    inner = estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator
    if isinstance(inner, NeuralNet):
        return _TorchKind(skorch_net=True)
    if isinstance(inner, BaseTorchClassifier):
        return _TorchKind(skorch_net=False)
    if isinstance(inner, LinearClassifierMixin):
        return _LinearKind()
    raise TypeError(
        f"BalancedUndersampleMerger cannot fine-tune and merge a {type(inner).__name__}: it needs a model "
        "with parameters to average, i.e. one of the library's torch estimators (e.g. "
        "sklearn_lt.neural_network.MLPHeadClassifier), a skorch NeuralNetClassifier whose module ends in a "
        "linear layer, or a scikit-learn linear classifier (a LinearClassifierMixin with coef_ and intercept_, "
        "e.g. LogisticRegression, SGDClassifier, RidgeClassifier)."
    )


class _FittedLogits(ClassifierOutputMixin, ClassifierMixin, BaseEstimator):
    """A fitted classifier made of one model snapshot (used to score soups with any scorer)."""

    def __init__(self, kind=None, model=None, classes=None, n_features=None):
        self.kind = kind
        self.model = model
        self.classes = classes
        self.n_features = n_features

    def _prepare(self):
        self.classes_ = self.classes
        self.n_features_in_ = self.n_features
        return self

    def fit(self, X, y):
        raise NotImplementedError("a snapshot of a fitted model; it is not fitted again")

    def _logits(self, X):
        return self.kind.logits(self.model, X)
