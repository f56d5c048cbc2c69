"""Training callbacks: the divergence check the core adds to every net, the end-of-fit check, and the
epoch selection (keep the best validation epoch) and gradient-value clipping that estimators opt into."""

import math
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback

from ..utils._validation import label_repr


class TrainingDivergedError(ValueError):
    """Training produced a non-finite loss or non-finite parameters (raised by :class:`StopOnDivergence`)."""


class StopOnDivergence(Callback):
    """Stop training with a clear error when the loss or a parameter becomes NaN or infinite.

    A diverging run otherwise ends "successfully" with NaN weights, and the
    model then predicts one class everywhere (``argmax`` of NaN logits). The
    check runs once per epoch (the epoch's mean training loss is non-finite as
    soon as one batch loss was, and a parameter that became NaN stays NaN), so
    it costs one device synchronisation per epoch, not one per batch.

    A loss that is still finite but has grown more than ``growth`` times
    beyond ``max(|first epoch's loss|, 1)`` counts as diverged too: such a
    run (e.g. SGD with a huge learning rate) has weights whose logits
    overflow float32 at prediction, although every number seen in training
    was finite.

    Parameters
    ----------
    estimator_name : str, default=None
        Named in the error message (the library's estimator that trains the net).
    growth : float, default=1e6
        Largest accepted factor of loss growth (see above).
    """

    def __init__(self, estimator_name=None, growth=1e6):
        self.estimator_name = estimator_name
        self.growth = growth

    def on_train_begin(self, net, **kwargs):
        self.first_loss_ = None

    def on_epoch_end(self, net, **kwargs):
        epoch = net.history[-1]
        loss = epoch.get("train_loss", None)
        bad = None
        if loss is not None and getattr(self, "first_loss_", None) is None and math.isfinite(loss):
            self.first_loss_ = loss
        if loss is not None and not math.isfinite(loss):
            bad = f"the training loss became {loss} in epoch {epoch['epoch']}"
        elif loss is not None and loss > self.growth * max(abs(self.first_loss_), 1.0):
            bad = f"the training loss grew from {self.first_loss_:.3g} to {loss:.3g} by epoch {epoch['epoch']}"
        else:
            module = getattr(net, "module_", None)
            params = [p for p in module.parameters()] if module is not None else []
            if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
                bad = f"the model's parameters became non-finite in epoch {epoch['epoch']}"
        if bad is not None:
            who = self.estimator_name or f"the torch module {type(net.module_).__name__}"
            raise TrainingDivergedError(
                f"Training of {who} diverged: {bad}. Use a smaller learning rate (lr), and standardise the "
                "features (e.g. sklearn.preprocessing.StandardScaler) if their scale is large; gradient "
                "clipping can also help."
            )


#: Rows of the training data the end-of-fit check predicts (evenly spaced; enough to see two classes).
DEGENERATE_CHECK_ROWS = 2048


def _nearest_mean_balanced_accuracy(X, y):
    """Balanced training accuracy of a nearest-class-mean rule: how plainly ``X`` separates ``y``."""
    X = np.asarray(X, dtype=np.float64)
    classes, y = np.unique(y, return_inverse=True)
    means = np.zeros((len(classes), X.shape[1]))
    np.add.at(means, y, X)
    means /= np.bincount(y)[:, None]
    # scale-free: the 1e30-scaled features of a saturated fit separate as well as the originals
    scale = np.max(np.abs(X)) or 1.0
    Xs, ms = X / scale, means / scale
    d2 = (Xs * Xs).sum(1)[:, None] - 2 * Xs @ ms.T + (ms * ms).sum(1)[None, :]
    predicted = np.argmin(d2, axis=1)
    return float(np.mean([np.mean(predicted[y == c] == c) for c in range(len(classes))]))


def warn_if_degenerate(estimator, X, y_encoded, sample_weight=None, *, stacklevel=3):
    """Warn (``ConvergenceWarning``) when a fitted classifier predicts one class though the data separate.

    A fit that learned nothing (features of a huge scale that saturate the
    softmax, a learning rate far off ...) otherwise ends without a sign, like
    a good one. The check predicts at most ``DEGENERATE_CHECK_ROWS`` evenly
    spaced training rows (a small fraction of one epoch) and fires only when

    - those rows hold several classes (of positive weight),
    - the model predicts the same class for all of them, and
    - a nearest-class-mean rule on the same rows separates the classes
      clearly (balanced accuracy at least halfway from chance to 1).

    The last condition keeps silent where nothing could be learned: random
    labels (scikit-learn's checks use such tiny data sets), constant
    features, or weights that leave one class.

    Parameters
    ----------
    estimator : fitted classifier
        A :class:`~sklearn_lt.base.ClassifierOutputMixin` (``_predict_validated``, ``classes_``).
    X : ndarray of shape (n_samples, n_features)
        The (validated) training features.
    y_encoded : ndarray of shape (n_samples,)
        Training labels as indices into ``classes_``.
    sample_weight : ndarray of shape (n_samples,), default=None
        Rows of weight 0 are left out.
    stacklevel : int, default=3
        Passed to :func:`warnings.warn`.

    Returns
    -------
    degenerate : bool
        Whether the warning was issued.
    """
    n = len(y_encoded)
    rows = np.unique(np.linspace(0, n - 1, num=min(n, DEGENERATE_CHECK_ROWS)).astype(np.intp))
    if sample_weight is not None:
        rows = rows[np.asarray(sample_weight)[rows] > 0]
    n_classes = len(np.unique(y_encoded[rows]))
    if n_classes < 2:
        return False
    # torch's DataLoader draws a seed from the global RNG per iteration: keep the caller's stream intact
    # X is already validated by the fit: predicting through ``predict`` would validate it again, and a
    # model fitted on a DataFrame would warn that the array has no feature names
    with torch.random.fork_rng(devices=[]):
        predicted = np.unique(estimator._predict_validated(X[rows]))
    if len(predicted) > 1:
        return False
    separable = _nearest_mean_balanced_accuracy(X[rows], y_encoded[rows])
    if separable < 0.5 * (1.0 + 1.0 / n_classes):
        return False
    warnings.warn(
        f"{type(estimator).__name__} predicts one class ({label_repr(predicted[0])}) for every training sample, "
        f"although a nearest-class-mean rule separates the {n_classes} training classes (balanced accuracy "
        f"{separable:.2f}): training ended without learning. Standardise the features (e.g. with "
        "sklearn.preprocessing.StandardScaler) and check the learning rate and number of epochs.",
        ConvergenceWarning,
        stacklevel=stacklevel,
    )
    return True


# ---- epoch selection and clipping shared by the estimators that offer them


def _validation_score(net, X, y, *, balanced):
    """Accuracy (or mean per-class recall) of the cached validation logits."""
    y_pred = net.forward(X).detach().cpu().numpy().argmax(axis=1)
    y = np.asarray(y)
    if not balanced:
        return float(np.mean(y_pred == y))
    _, y_idx = np.unique(y, return_inverse=True)
    hits = np.bincount(y_idx, weights=(y_pred == y)) / np.bincount(y_idx)
    return float(hits.mean())


def validation_accuracy(net, X, y):
    return _validation_score(net, X, y, balanced=False)


def validation_balanced_accuracy(net, X, y):
    return _validation_score(net, X, y, balanced=True)


class KeepBestEpoch(Callback):
    """Restore, after training, the module state of the epoch with the best ``monitor`` score.

    Only epochs ``>= min_epochs`` (1-based) qualify, the first of equal
    scores wins (a NaN score never does); when ``max_epochs < min_epochs`` the
    last epoch qualifies. Records ``kept`` (True where the epoch became the
    best so far) in the history and the chosen epoch as ``best_epoch_``; the
    state copy is kept in memory only while training. No epoch, no restore.

    With ``min_epochs=1`` and ``lower_is_better=True`` it keeps the epoch
    skorch's ``EarlyStopping(monitor, patience=<more than max_epochs>,
    threshold=0, load_best=True)`` restores (strict improvement, the first of
    equal scores), without stopping early.

    Parameters
    ----------
    monitor : str, default="valid_score"
        History key of the epoch score.
    min_epochs : int, default=5
        First epoch (1-based) that may be kept.
    lower_is_better : bool, default=False
        Keep the lowest score (a loss) instead of the highest.
    """

    def __init__(self, monitor="valid_score", min_epochs=5, lower_is_better=False):
        self.monitor = monitor
        self.min_epochs = min_epochs
        self.lower_is_better = lower_is_better

    def on_train_begin(self, net, **kwargs):
        self.best_score_ = np.inf if self.lower_is_better else -np.inf
        self.best_epoch_ = None
        self._state = None

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        first = min(self.min_epochs, net.max_epochs)
        score = net.history[-1, self.monitor]
        better = score < self.best_score_ if self.lower_is_better else score > self.best_score_
        keep = epoch >= first and better
        if keep:
            self.best_score_, self.best_epoch_ = score, epoch
            self._state = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
        net.history.record("kept", bool(keep))

    def on_train_end(self, net, **kwargs):
        if self._state is not None:
            net.module_.load_state_dict(self._state)
        self._state = None


class GradientValueClipping(Callback):
    """Clamp every entry of the named parameters' gradients to ``[-clip_value, clip_value]``.

    ``torch.nn.utils.clip_grad_value_`` after each backward pass, as in the
    authors' code (``clip_grad_value_(centroids, 0.1)``). Only parameters whose
    name is in ``param_names`` are clipped (None: all of them).
    """

    def __init__(self, clip_value, param_names=None):
        self.clip_value = clip_value
        self.param_names = param_names

    def on_grad_computed(self, net, named_parameters, **kwargs):
        params = [p for name, p in named_parameters if self.param_names is None or name in self.param_names]
        torch.nn.utils.clip_grad_value_(params, self.clip_value)
