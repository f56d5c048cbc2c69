"""A multi-layer perceptron classifier head on feature matrices, trained through the library's torch core."""

import numbers

from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ..torch._heads import BaseHeadClassifier

# why sklearn's check_methods_subset_invariance fails for float32 networks with a hidden layer
FLOAT32_SUBSET_REASON = (
    "float32 network: a one-row batch runs torch's matrix-vector kernel, whose summation order differs "
    "from the matrix-matrix kernel's, so row-by-row and whole-batch outputs agree to float32 rounding "
    "(~1e-7 relative), not to the check's 1e-7 absolute; tests/test_mlp_head.py checks the invariance "
    "at float32 precision"
)

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
}


class MLPHead(nn.Module):
    """Hidden layers (``Linear -> [BatchNorm1d] -> activation -> [Dropout]``) then one ``Linear``.

    The hidden part is ``body`` and the final linear layer ``classifier``, so
    that decoupled methods (classifier re-training, BTM's post-training) can
    train the last layer on ``body(X)`` alone.

    Parameters
    ----------
    n_features : int
        Input dimension.
    n_classes : int
        Output dimension (one logit per class).
    hidden_layer_sizes : tuple of int, default=(256,)
        Width of each hidden layer; ``()`` makes the head linear.
    batch_norm : bool, default=True
        Batch normalisation after each hidden linear layer (whose bias is then dropped).
    activation : {"relu", "gelu", "leaky_relu", "tanh"}, default="relu"
        Non-linearity after each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> from sklearn_lt.neural_network import MLPHead
    >>> head = MLPHead(16, 4, hidden_layer_sizes=(32, 32))
    >>> head(torch.zeros(5, 16)).shape
    torch.Size([5, 4])
    >>> head.classifier
    Linear(in_features=32, out_features=4, bias=True)
    """

    def __init__(
        self, n_features, n_classes, hidden_layer_sizes=(256,), *, batch_norm=True, activation="relu", dropout=0.0
    ):
        super().__init__()
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers.append(nn.Linear(width, size, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(_ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, n_classes)

    def forward(self, X):
        return self.classifier(self.body(X))


def check_hidden_layer_sizes(hidden_layer_sizes):
    if isinstance(hidden_layer_sizes, numbers.Integral) and not isinstance(hidden_layer_sizes, bool):
        hidden_layer_sizes = (hidden_layer_sizes,)
    try:
        sizes = tuple(hidden_layer_sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in sizes
    ):
        raise ValueError(
            f"hidden_layer_sizes must be a tuple of positive integers (e.g. (256,) or (512, 256)), "
            f"got {hidden_layer_sizes!r}."
        )
    return tuple(int(s) for s in sizes)


class MLPHeadClassifier(BaseHeadClassifier):
    """Multi-layer perceptron classifier on features, with long-tail losses and sampling.

    A small non-linear "head" for features from a pretrained backbone (or any
    tabular features): hidden layers ``Linear -> BatchNorm1d -> ReLU``
    followed by a final linear layer. It is trained by mini-batches through
    the library's skorch core with the same losses and samplers as
    :class:`~sklearn_lt.linear_model.LinearClassifier` (cross-entropy,
    balanced softmax, logit adjustment; instance or class-balanced sampling),
    and is the natural "whole model" for methods that fine-tune or merge a
    network, such as :class:`~sklearn_lt.ensemble.BalancedUndersampleMerger`.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(256,)
        Width of each hidden layer. ``()`` gives a linear classifier.
    batch_norm : bool, default=True
        Batch normalisation after each hidden linear layer.
    activation : {"relu", "gelu", "leaky_relu", "tanh"}, default="relu"
        Hidden non-linearity.
    dropout : float, default=0.0
        Dropout probability after each hidden layer, in [0, 1).
    loss : {"cross_entropy", "balanced_softmax", "logit_adjusted"}, default="cross_entropy"
        Training loss; the adjustments act in training only, prediction uses
        the plain logits.
    tau : float, default=1.0
        Logit-adjustment strength, used by ``loss="logit_adjusted"`` only.
    sampling : {"instance", "class_balanced"}, default="instance"
        Shuffled passes over the data, or each class equally likely per draw.
    max_epochs : int, default=30
        Passes over the data (``len(y)`` draws each).
    batch_size : int, default=128
        Samples per training batch (at least 2 with ``batch_norm``).
    optimizer : {"adamw", "adam", "sgd"}, default="adamw"
        Optimizer; ``sgd`` uses ``momentum``.
    lr : float, default=1e-3
        Initial learning rate, annealed to 0 by a cosine schedule.
    weight_decay : float, default=1e-4
        Weight decay of the optimizer.
    momentum : float, default=0.9
        SGD momentum (ignored by Adam/AdamW).
    callbacks : list of skorch callbacks, default=None
        Extra callbacks for the skorch net.
    validation_fraction : float, default=0.0
        Share of each class held out (tail-safe: a class keeps at least one
        training sample) and scored every epoch as skorch's ``valid_loss``,
        which callbacks such as ``EarlyStopping`` or ``Checkpoint`` monitor.
        ``0`` (the default) trains on all the data; such a callback then
        raises a clear error asking for a fraction.
    device : str, default="auto"
        ``"auto"`` (CUDA if available, else CPU) or a torch device string.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, dropout and sampling; an int makes CPU fits
        bit-reproducible.
    verbose : int, default=0
        1 prints skorch's per-epoch table.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Training samples per class.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when ``X`` had string column names.
    device_ : str
        Device the model was trained on.
    net_ : skorch.NeuralNet
        The fitted net; ``net_.module_`` is the :class:`MLPHead` (``body``
        then ``classifier``).
    history_ : skorch.History
        Per-epoch training history.

    See Also
    --------
    sklearn_lt.linear_model.LinearClassifier : the same training on a linear model.
    sklearn_lt.ensemble.BalancedUndersampleMerger : balanced fine-tuning and merging of this head.
    sklearn.neural_network.MLPClassifier : scikit-learn's MLP (no long-tail losses or sampling).

    Examples
    --------
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> from sklearn_lt.neural_network import MLPHeadClassifier
    >>> X, X_test, y, y_test = make_long_tailed_classification(random_state=0)
    >>> clf = MLPHeadClassifier(hidden_layer_sizes=(64,), loss="balanced_softmax", random_state=0)
    >>> clf.fit(X, y).net_.module_.classifier
    Linear(in_features=64, out_features=10, bias=True)
    >>> clf.score(X_test, y_test) > 0.4  # 10 classes, chance is 0.1
    True
    """

    _expected_failed_checks = {
        **BaseHeadClassifier._expected_failed_checks,
        "check_methods_subset_invariance": FLOAT32_SUBSET_REASON,
    }

    _parameter_constraints: dict = {
        # tuple/list of positive ints, or one int; the elements are checked in ``fit``
        "hidden_layer_sizes": [tuple, list, Interval(numbers.Integral, 1, None, closed="left")],
        "batch_norm": ["boolean"],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        **BaseHeadClassifier._parameter_constraints,
    }

    def __init__(
        self,
        hidden_layer_sizes=(256,),
        *,
        batch_norm=True,
        activation="relu",
        dropout=0.0,
        loss="cross_entropy",
        tau=1.0,
        sampling="instance",
        max_epochs=30,
        batch_size=128,
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1e-4,
        momentum=0.9,
        callbacks=None,
        validation_fraction=0.0,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.batch_norm = batch_norm
        self.activation = activation
        self.dropout = dropout
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
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _validate_params(self):
        super()._validate_params()
        hidden = check_hidden_layer_sizes(self.hidden_layer_sizes)
        if self.batch_norm and hidden:
            # batch norm cannot train on a batch of one: a cross-parameter rule the constraints cannot state
            if self.batch_size < 2:
                raise ValueError(f"batch_size must be an integer >= 2 with batch_norm=True, got {self.batch_size!r}.")

    def _build_module(self, n_features, n_classes):
        return MLPHead(
            n_features,
            n_classes,
            check_hidden_layer_sizes(self.hidden_layer_sizes),
            batch_norm=bool(self.batch_norm),
            activation=self.activation,
            dropout=float(self.dropout),
        )
