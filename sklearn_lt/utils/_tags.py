"""Estimator tags of a meta-estimator from those of the estimator it wraps."""

from sklearn.utils import get_tags


def inherit_tags(tags, estimator):
    """Combine a meta-estimator's own ``tags`` with those of its inner ``estimator``.

    The library's meta-estimators feed ``X`` to the inner estimator's ``fit``
    and build their model from it, so what the inner estimator requires the
    whole requires too, while what it accepts is accepted only if the
    meta-estimator's own validation accepts it as well:

    - ``input_tags.sparse`` and ``input_tags.allow_nan``: both must accept;
    - ``input_tags.positive_only``, ``non_deterministic`` and
      ``classifier_tags.poor_score``: either one suffices;
    - ``classifier_tags.multi_class``: both must handle more than two classes.

    Parameters
    ----------
    tags : sklearn.utils.Tags
        The meta-estimator's own tags (modified in place).
    estimator : estimator
        The inner estimator (unfitted, fitted, or in a ``FrozenEstimator``).

    Returns
    -------
    tags : sklearn.utils.Tags
        ``tags``, combined.
    """
    try:
        inner = get_tags(estimator)
    except (AttributeError, TypeError):
        # an invalid ``estimator`` parameter is reported by fit's validation, not by the tags
        return tags
    tags.input_tags.sparse = tags.input_tags.sparse and inner.input_tags.sparse
    tags.input_tags.allow_nan = tags.input_tags.allow_nan and inner.input_tags.allow_nan
    tags.input_tags.positive_only = tags.input_tags.positive_only or inner.input_tags.positive_only
    tags.non_deterministic = tags.non_deterministic or inner.non_deterministic
    if tags.classifier_tags is not None and inner.classifier_tags is not None:
        tags.classifier_tags.multi_class = tags.classifier_tags.multi_class and inner.classifier_tags.multi_class
        tags.classifier_tags.poor_score = tags.classifier_tags.poor_score or inner.classifier_tags.poor_score
    return tags
