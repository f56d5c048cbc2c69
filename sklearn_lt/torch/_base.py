"""Template shared by every torch classifier: validation, label encoding, seeding, prediction."""

import warnings

import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state

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

    ``fit`` is a template in stages:

    1. validate the data (``_validate_fit_params(**fit_params)`` then checks
       the extra arguments of a subclass's ``fit``, e.g. validation data) and
       resolve ``device`` into ``device_``;
    2. ``_prepare_training(X, y_encoded, sample_weight, rng, **fit_params)``:
       whatever comes before the torch training (none by default; e.g.
       fitting a base model), drawing its seeds from ``rng``, the
       ``RandomState`` of ``random_state``. It returns the arguments of the
       training, or None when there is nothing to train (``net_`` and
       ``history_`` are then None);
    3. seed torch from one more draw of ``rng``, without touching the caller's
       torch RNG, and train: ``_fit_net(X, y, sample_weight, generator,
       **net_kwargs)`` returns the fitted skorch net stored as ``net_`` (its
       history as ``history_``);
    4. ``_after_fit()`` may read learned pieces off the net; then a warning if
       the trained model predicts a single class.

    Subclasses define ``__init__`` with their parameters, among them ``device``,
    ``random_state`` and ``verbose``, and declare every one of them in
    ``_parameter_constraints`` (scikit-learn's ``InvalidParameterError`` at
    ``fit``); rules across parameters that the constraints cannot state go in
    an override of ``_validate_params``, which ``fit`` runs first.
    """

    _expected_failed_checks = {
        "check_sample_weight_equivalence_on_dense_data": STOCHASTIC_SAMPLE_WEIGHT_REASON,
    }

    def _validate_fit_params(self):
        """Validate the extra arguments of a subclass's ``fit`` (the data is validated); return them as a dict."""
        return {}

    def _prepare_training(self, X, y, sample_weight, rng, **fit_params):
        """Stages before the torch training: ``(X, y, sample_weight, net_kwargs)`` to train on, or None."""
        return X, y, sample_weight, {}

    def _fit_net(self, X, y, sample_weight, generator, **net_kwargs):
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
        return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight=None, **fit_params):
        """The template ``fit`` (see the class docstring); a subclass's ``fit`` passes its extra arguments."""
        X, y_encoded, sample_weight = validate_classification_data(self, X, y, sample_weight)
        fit_params = self._validate_fit_params(**fit_params)
        self.device_ = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        training = self._prepare_training(X, y_encoded, sample_weight, rng, **fit_params)
        self.net_ = self.history_ = None
        if training is None:
            return self
        X_train, y_train, w_train, net_kwargs = training
        with seeded(draw_seed(rng), self.device_) as generator:
            self.net_ = self._fit_net(X_train, y_train, w_train, generator, **net_kwargs)
        self.history_ = self.net_.history
        self._after_fit()
        if len(self.history_):  # after 0 epochs an untrained model is what was asked for
            warn_if_degenerate(self, X, y_encoded, sample_weight, stacklevel=5)
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
