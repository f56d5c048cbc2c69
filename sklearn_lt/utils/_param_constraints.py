"""Parameter constraints shared by the estimators' ``_parameter_constraints`` (scikit-learn's validation)."""

import numbers

import numpy as np
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

#: ``device``: "auto" or any torch device string (``resolve_device`` checks the string itself).
DEVICE = [str]
#: skorch callbacks (instances or ``(name, callback)`` pairs).
CALLBACKS = [list, tuple, None]
#: a base classifier to clone and fit.
BASE_ESTIMATOR = [HasMethods(["fit", "predict"]), None]
EPOCHS = [Interval(numbers.Integral, 0, None, closed="left")]
POSITIVE_INT = [Interval(numbers.Integral, 1, None, closed="left")]
# bounded by inf (open) so that an infinite learning rate or penalty is refused too
NONNEGATIVE_REAL = [Interval(numbers.Real, 0, np.inf, closed="left")]
POSITIVE_REAL = [Interval(numbers.Real, 0, np.inf, closed="neither")]
#: a fraction in [0, 1) (0 switches the feature off).
FRACTION = [Interval(numbers.Real, 0, 1, closed="left")]
MOMENTUM = [Interval(numbers.Real, 0, 1, closed="left")]
OPTIMIZERS = [StrOptions({"adamw", "adam", "sgd"})]
SAMPLINGS = [StrOptions({"instance", "class_balanced"})]
LOSSES = [StrOptions({"cross_entropy", "balanced_softmax", "logit_adjusted"})]

TORCH_COMMON = {"device": DEVICE, "random_state": ["random_state"], "verbose": ["verbose"]}

#: the training parameters the linear and MLP heads share (loss, sampling, optimiser, validation split).
HEAD_TRAINING = {
    "loss": LOSSES,
    "tau": NONNEGATIVE_REAL,
    "sampling": SAMPLINGS,
    "max_epochs": EPOCHS,
    "batch_size": POSITIVE_INT,
    "optimizer": OPTIMIZERS,
    "lr": NONNEGATIVE_REAL,
    "weight_decay": NONNEGATIVE_REAL,
    "momentum": MOMENTUM,
    "callbacks": CALLBACKS,
    "validation_fraction": FRACTION,
}
