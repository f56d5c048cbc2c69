"""Linear classifiers on features trained through the library's torch core (the decoupling baselines)."""

import numpy as np
from sklearn.utils._param_validation import HasMethods, StrOptions
from torch import nn

from ..torch._heads import BaseHeadClassifier
from ..torch._lbfgs import LBFGS_DTYPES, train_full_batch
from ..torch._net import as_numpy

SOLVERS = ("minibatch", "lbfgs")


def exact_sample_weight(estimator):
    """Whether a fit weights samples exactly enough for scikit-learn's weight-equals-repetition check.

    Full-batch L-BFGS weights the objective exactly, so integer weights equal
    repetition; in float64 the two fits then agree to the check's 1e-7.
    """
    return estimator.solver == "lbfgs" and estimator.solver_dtype == "float64"


def balanced_sample_weight(y, sample_weight, n_classes):
    """Per-sample weights whose class totals are equal: class-balanced sampling as exact weights.

    Drawing a class uniformly and then one of its samples weights sample ``i``
    by ``w_i / W_{y_i}`` in expectation, ``W_c`` the total weight of class
    ``c`` (its count when unweighted); rescaled so the weights sum to ``n``.
    """
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    totals = np.bincount(y, weights=w, minlength=n_classes)
    balanced = w / np.where(totals > 0, totals, 1.0)[y]
    return balanced * (len(y) / balanced.sum())


class LinearClassifier(BaseHeadClassifier):
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
    solver : {"minibatch", "lbfgs"}, default="minibatch"
        ``"minibatch"`` trains by ``optimizer`` on batches drawn by
        ``sampling``. ``"lbfgs"`` minimises the same loss over the whole
        training set by L-BFGS (strong-Wolfe line search; one pass over the
        data per evaluation, chunked over rows): ``max_epochs`` then caps the
        evaluations, ``weight_decay`` is an L2 penalty ``0.5 * weight_decay *
        ||W||^2`` (bias not penalised), ``sampling="class_balanced"`` becomes
        the class weights it gives in expectation (every class's weights sum
        to the same total), sample weights are exact, and ``batch_size``,
        ``optimizer``, ``lr``, ``momentum`` and ``augmenter`` are unused.
    solver_dtype : {"float32", "float64"}, default="float32"
        Arithmetic of ``solver="lbfgs"`` (the fitted model is float32 either
        way). float64 makes weighted and repeated samples agree to 1e-7.
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
        **BaseHeadClassifier._parameter_constraints,
        "solver": [StrOptions(set(SOLVERS))],
        "solver_dtype": [StrOptions(set(LBFGS_DTYPES))],
        "augmenter": [HasMethods(["make_train_batch_hook"]), None],
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
        solver="minibatch",
        solver_dtype="float32",
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
        self.solver = solver
        self.solver_dtype = solver_dtype
        self.callbacks = callbacks
        self.validation_fraction = validation_fraction
        self.augmenter = augmenter
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _validate_params(self):
        super()._validate_params()
        # a rule across two parameters, beyond what the constraints can state
        if self.solver == "lbfgs" and self.augmenter is not None:
            raise ValueError("augmenter needs solver='minibatch': online augmentation rewrites mini-batches.")

    @property
    def _exact_sample_weight(self):
        return exact_sample_weight(self)

    def _build_module(self, n_features, n_classes):
        module = nn.Linear(n_features, n_classes)
        # the loss is convex in (W, b): start at zero, like LogisticRegression, not at a random point
        nn.init.zeros_(module.weight)
        nn.init.zeros_(module.bias)
        return module

    def _train(self, module, criterion, X, y, sample_weight, valid_data, generator):
        """Mini-batches as every head (with the augmenter), or full-batch L-BFGS for ``solver="lbfgs"``."""
        if self.solver == "minibatch":
            return super()._train(
                module, criterion, X, y, sample_weight, valid_data, generator, augmenter=self.augmenter
            )
        if self.sampling == "class_balanced":
            sample_weight = balanced_sample_weight(y, sample_weight, len(self.classes_))
        return train_full_batch(
            module,
            criterion,
            X,
            y,
            sample_weight=sample_weight,
            max_evals=self.max_epochs,
            l2=float(self.weight_decay),
            l2_params=("weight",),
            dtype=self.solver_dtype,
            device=self.device_,
            verbose=self.verbose,
        )

    @property
    def coef_(self):
        return as_numpy(self.net_.module_.weight)

    @property
    def intercept_(self):
        return as_numpy(self.net_.module_.bias)
