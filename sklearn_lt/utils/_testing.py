"""Fast instances of every estimator for the common checks (read by tests/test_common.py).

Each estimator class may define ``_test_params`` (constructor arguments that
keep the scikit-learn checks fast without changing what is tested) and
``_expected_failed_checks`` (check name -> reason a maintainer would accept).
"""


from .discovery import all_estimators


def make_test_instances():
    """One instance per public estimator, built with its ``_test_params``."""
    instances = []
    for _, cls in all_estimators():
        params = dict(getattr(cls, "_test_params", {}))
        instances.append(cls(**params))
    return instances


def expected_failed_checks(estimator):
    checks = dict(getattr(type(estimator), "_expected_failed_checks", {}))
    if getattr(estimator, "_exact_sample_weight", False):  # e.g. a linear head with solver="lbfgs" in float64
        checks.pop("check_sample_weight_equivalence_on_dense_data", None)
    return checks


def fitted_nets(obj, _seen=None):
    """Every skorch net held by a fitted estimator, however deeply nested."""
    from skorch import NeuralNet

    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, NeuralNet):
        return [obj]
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, (list, tuple)):
        children = obj
    elif hasattr(obj, "get_params") and hasattr(obj, "__dict__"):
        children = vars(obj).values()
    else:
        return []
    return [net for child in children for net in fitted_nets(child, seen)]

