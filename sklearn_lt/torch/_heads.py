"""Base of the classifier heads on features (linear, MLP): the training they share, written once."""

import numpy as np

from ..utils import _param_constraints as pc
from ..utils._split import split_off_validation
from ._base import BaseTorchClassifier
from ._losses import LogitAdjustedLoss
from ._net import has_batch_norm, make_train_sampler, train_module

LOSSES = ("cross_entropy", "balanced_softmax", "logit_adjusted")


def loss_tau(loss, tau):
    """The logit-adjustment strength a ``loss`` name stands for."""
    # ``loss`` and ``tau`` are checked by the estimators' parameter constraints
    if loss == "cross_entropy":
        return 0.0
    if loss == "balanced_softmax":
        return 1.0
    return float(tau)


class BaseHeadClassifier(BaseTorchClassifier):
    """Base of the heads trained on features by mini-batches (not used directly).

    As scikit-learn's ``BaseMultilayerPerceptron`` is for ``MLPClassifier``
    and ``MLPRegressor``, this class holds what
    :class:`~sklearn_lt.linear_model.LinearClassifier` and
    :class:`~sklearn_lt.neural_network.MLPHeadClassifier` share: the training
    parameters (``loss``, ``tau``, ``sampling``, ``max_epochs``,
    ``batch_size``, ``optimizer``, ``lr``, ``weight_decay``, ``momentum``,
    ``callbacks``, ``validation_fraction``, ``device``, ``random_state``,
    ``verbose``) and the training itself: the tail-safe validation split, the
    logit-adjusted loss, the sampler and the optimiser. A subclass declares
    these parameters in its own ``__init__`` (scikit-learn reads them from its
    signature), adds its own, and builds its module in
    ``_build_module(n_features, n_classes)``; it may override ``_train`` to
    train the module another way.
    """

    _parameter_constraints: dict = {**pc.HEAD_TRAINING, **pc.TORCH_COMMON}

    def _build_module(self, n_features, n_classes):
        """The untrained ``torch.nn.Module`` mapping features to one logit per class."""
        raise NotImplementedError

    def _optimizer_kwargs(self):
        kwargs = {"weight_decay": self.weight_decay}
        if self.optimizer == "sgd":
            kwargs["momentum"] = self.momentum
        return kwargs

    def _fit_net(self, X, y, sample_weight, generator):
        (X, y, sample_weight), valid_data = split_off_validation(
            X, y, sample_weight, self.validation_fraction, generator
        )
        n_classes = len(self.classes_)
        module = self._build_module(X.shape[1], n_classes)
        # the prior of the adjusted losses counts the weighted training samples, so that a weight equals a
        # repetition and held-out samples do not count
        prior = np.bincount(y, weights=sample_weight, minlength=n_classes)
        criterion = LogitAdjustedLoss(prior, tau=loss_tau(self.loss, self.tau))
        return self._train(module, criterion, X, y, sample_weight, valid_data, generator)

    def _train(self, module, criterion, X, y, sample_weight, valid_data, generator, **train_kwargs):
        """Train ``module`` by mini-batches drawn by ``sampling``; ``train_kwargs`` go to ``train_module``."""
        sampler = make_train_sampler(
            y,
            sampling=self.sampling,
            batch_size=self.batch_size,
            generator=generator,
            even_batches=has_batch_norm(module),
        )
        return train_module(
            module,
            criterion,
            X,
            y,
            sample_weight=sample_weight,
            sampler=sampler,
            max_epochs=self.max_epochs,
            optimizer=self.optimizer,
            lr=self.lr,
            optimizer_kwargs=self._optimizer_kwargs(),
            callbacks=self.callbacks,
            valid_data=valid_data,
            device=self.device_,
            verbose=self.verbose,
            **train_kwargs,
        )
