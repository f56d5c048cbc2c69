"""Linear classifiers on features trained through the library's torch core (the decoupling baselines)."""

from sklearn.utils._param_validation import HasMethods
from torch import nn

from ..torch._base import BaseTorchClassifier
from ..torch._losses import LogitAdjustedLoss
from ..torch._net import as_numpy, make_train_sampler, train_module
from ..utils import _param_constraints as pc
from ..utils._split import split_off_validation
from ..utils._validation import check_nonnegative_float, check_option

LOSSES = ("cross_entropy", "balanced_softmax", "logit_adjusted")


def loss_tau(loss, tau):
    """The logit-adjustment strength a ``loss`` name stands for."""
    check_option("loss", loss, LOSSES)
    if loss == "cross_entropy":
        return 0.0
    if loss == "balanced_softmax":
        return 1.0
    return check_nonnegative_float("tau", tau)


class LinearClassifier(BaseTorchClassifier):
    """Softmax linear classifier with long-tail losses and sampling, trained by mini-batches.

    One model covers the decoupling baselines of Kang et al. on fixed features:
    ``loss="cross_entropy", sampling="instance"`` is the plain (joint) linear
    head, ``sampling="class_balanced"`` is cRT (classifier re-training with
    class-balanced sampling), ``loss="balanced_softmax"`` is balanced softmax
    (Ren et al.), and ``loss="logit_adjusted"`` adds ``tau * log n_y`` to the
    training logits (Menon et al.). Prediction always uses the plain logits.

    Parameters
    ----------
    loss : {"cross_entropy", "balanced_softmax", "logit_adjusted"}, default="cross_entropy"
        Training loss.
    tau : float, default=1.0
        Logit-adjustment strength, used by ``loss="logit_adjusted"`` only.
    sampling : {"instance", "class_balanced"}, default="instance"
        How training batches are drawn: shuffled passes over the data, or
        each class equally likely per draw (with replacement).
    max_epochs : int, default=30
        Passes over the data (``len(y)`` draws each).
    batch_size : int, default=128
        Samples per training batch.
    optimizer : {"adamw", "adam", "sgd"}, default="adamw"
        Optimizer; ``sgd`` uses ``momentum``.
    lr : float, default=0.01
        Initial learning rate, annealed to 0 by a cosine schedule.
    weight_decay : float, default=1e-4
        L2 penalty of the optimizer.
    momentum : float, default=0.9
        SGD momentum in [0, 1) (ignored by Adam/AdamW).
    callbacks : list of skorch callbacks, default=None
        Extra callbacks for the skorch net (e.g. ``EarlyStopping``).
    validation_fraction : float, default=0.0
        Share of each class held out (tail-safe: a class keeps at least one
        training sample) and scored every epoch as skorch's ``valid_loss``,
        which callbacks such as ``EarlyStopping`` or ``Checkpoint`` monitor.
        ``0`` (the default) trains on all the data; such a callback then
        raises a clear error asking for a fraction.
    augmenter : object, default=None
        Online augmentation of every training batch, e.g.
        :class:`~sklearn_lt.augmentation.SMARTAugmenter` (training only;
        prediction is unchanged).
    device : str, default="auto"
        ``"auto"`` (CUDA if available, else CPU) or a torch device string.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and sampling; an int makes CPU fits bit-reproducible.
    verbose : int, default=0
        1 prints skorch's per-epoch table.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Training samples per class.
    coef_ : ndarray of shape (n_classes, n_features)
        Weight rows (read from the trained module).
    intercept_ : ndarray of shape (n_classes,)
        Biases.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.
    device_ : str
        Device the model was trained on.
    net_ : skorch.NeuralNet
        The fitted net; ``net_.module_`` is the ``torch.nn.Linear``.
    history_ : skorch.History
        Per-epoch training history.

    See Also
    --------
    TauNormalizedClassifier : post-hoc weight-norm correction of a linear classifier.
    LWSClassifier : learned per-class scales on a linear classifier.
    sklearn_lt.augmentation.SMARTAugmenter : online head-to-tail feature augmentation.

    Examples
    --------
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> from sklearn_lt.linear_model import LinearClassifier
    >>> X, X_test, y, y_test = make_long_tailed_classification(random_state=0)
    >>> clf = LinearClassifier(loss="balanced_softmax", random_state=0).fit(X, y)
    >>> clf.coef_.shape
    (10, 16)
    >>> round(clf.score(X_test, y_test), 1) >= 0.5
    True
    """

    _parameter_constraints: dict = {
        "loss": pc.LOSSES,
        "tau": pc.NONNEGATIVE_REAL,
        "sampling": pc.SAMPLINGS,
        "max_epochs": pc.EPOCHS,
        "batch_size": pc.POSITIVE_INT,
        "optimizer": pc.OPTIMIZERS,
        "lr": pc.NONNEGATIVE_REAL,
        "weight_decay": pc.NONNEGATIVE_REAL,
        "momentum": pc.MOMENTUM,
        "callbacks": pc.CALLBACKS,
        "validation_fraction": pc.FRACTION,
        "augmenter": [HasMethods(["make_train_batch_hook"]), None],
        **pc.TORCH_COMMON,
    }

    def __init__(
        self,
        *,
        loss="cross_entropy",
        tau=1.0,
        sampling="instance",
        max_epochs=30,
        batch_size=128,
        optimizer="adamw",
        lr=0.01,
        weight_decay=1e-4,
        momentum=0.9,
        callbacks=None,
        validation_fraction=0.0,
        augmenter=None,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.loss = loss
        self.tau = tau
        self.sampling = sampling
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.callbacks = callbacks
        self.validation_fraction = validation_fraction
        self.augmenter = augmenter
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        self._tau = loss_tau(self.loss, self.tau)

    def _optimizer_kwargs(self):
        kwargs = {"weight_decay": self.weight_decay}
        if self.optimizer == "sgd":
            kwargs["momentum"] = self.momentum
        return kwargs

    def _fit_net(self, X, y, sample_weight, generator):
        (X, y, sample_weight), valid_data = split_off_validation(
            X, y, sample_weight, self.validation_fraction, generator
        )
        module = nn.Linear(X.shape[1], len(self.classes_))
        # the loss is convex in (W, b): start at zero, like LogisticRegression, not at a random point
        nn.init.zeros_(module.weight)
        nn.init.zeros_(module.bias)
        return train_module(
            module,
            LogitAdjustedLoss(self.class_counts_, tau=self._tau),
            X,
            y,
            sample_weight=sample_weight,
            sampler=make_train_sampler(y, sampling=self.sampling, batch_size=self.batch_size, generator=generator),
            max_epochs=self.max_epochs,
            optimizer=self.optimizer,
            lr=self.lr,
            optimizer_kwargs=self._optimizer_kwargs(),
            callbacks=self.callbacks,
            valid_data=valid_data,
            augmenter=self.augmenter,
            device=self.device_,
            verbose=self.verbose,
        )

    @property
    def coef_(self):
        return as_numpy(self.net_.module_.weight)

    @property
    def intercept_(self):
        return as_numpy(self.net_.module_.bias)
