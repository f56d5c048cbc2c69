"""Template shared by every torch classifier: validation, label encoding, seeding, prediction."""

import warnings

import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context

from ..base import ClassifierOutputMixin, validate_classification_data
from ._callbacks import warn_if_degenerate
from ._device import draw_seed, resolve_device, seeded

# reason shared by every estimator trained by stochastic mini-batches
STOCHASTIC_SAMPLE_WEIGHT_REASON = (
    "trained by stochastic mini-batches: repeating a sample changes which batches are drawn, so "
    "integer weights equal repetition only in expectation, not to the 1e-7 the check demands"
)


class BaseTorchClassifier(ClassifierOutputMixin, ClassifierMixin, BaseEstimator):
    """Base of the library's torch classifiers (not used directly).

    ``fit`` validates the data, resolves ``device`` into ``device_``, seeds torch
    from ``random_state`` without touching the caller's RNG, and delegates the
    training to ``_fit_net(X, y_encoded, sample_weight, generator)``, which
    returns the fitted skorch net stored as ``net_`` (its history as
    ``history_``). ``_after_fit()`` may then read learned pieces off the net.

    Subclasses define ``__init__`` with their parameters, among them ``device``,
    ``random_state`` and ``verbose``, and declare every one of them in
    ``_parameter_constraints`` (scikit-learn's ``InvalidParameterError`` at ``fit``).
    """

    _expected_failed_checks = {
        "check_sample_weight_equivalence_on_dense_data": STOCHASTIC_SAMPLE_WEIGHT_REASON,
    }

    def _check_params(self):
        """Checks ``_parameter_constraints`` cannot express, and derived values (called in ``fit``, after the data)."""

    def _fit_net(self, X, y, sample_weight, generator):
        raise NotImplementedError

    def _after_fit(self):
        """Read learned pieces off ``net_`` (optional)."""

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Class labels of any hashable type.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights of the training loss.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X, y_encoded, sample_weight = validate_classification_data(self, X, y, sample_weight)
        self._check_params()
        self.device_ = resolve_device(self.device)
        with seeded(draw_seed(self.random_state), self.device_) as generator:
            self.net_ = self._fit_net(X, y_encoded, sample_weight, generator)
        self.history_ = self.net_.history
        self._after_fit()
        if len(self.history_):  # after 0 epochs an untrained model is what was asked for
            warn_if_degenerate(self, X, y_encoded, sample_weight, stacklevel=4)
        return self

    def _logits(self, X):
        return self.net_.predict_logits(X).numpy()

    def __setstate__(self, state):
        super().__setstate__(state)
        # skorch maps a CUDA net to the CPU when loaded on a machine without CUDA; follow it
        net = state.get("net_")
        if net is not None and str(state.get("device_", "cpu")).startswith("cuda") and not torch.cuda.is_available():
            warnings.warn(
                f"{type(self).__name__} was trained on {state['device_']!r}; no CUDA device here, "
                "so it predicts on the CPU (same parameters, float32).",
                RuntimeWarning,
                stacklevel=2,
            )
            self.device_ = str(net.device)
