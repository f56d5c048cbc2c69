"""``compare``: every method on the user's own features, paired over seeds."""

from ..utils._long_tail import FEW_SHOT_THRESHOLD, MANY_SHOT_THRESHOLD
from ._data import check_data
from ._report import choose_score, format_table, recommend, summarize
from ._runner import (
    COLUMNS,
    SCORES,
    ResultStore,
    data_header,
    run_benchmark,
    user_split_source,
)

_TABLE_KEYS = [key for key, _ in COLUMNS] + ["n_many", "n_medium", "n_few", "n_test_classes", "n_zero_recall"]


class Comparison:
    """What :func:`compare` returns: per-seed rows, a summary per method, and a recommendation.

    Attributes
    ----------
    per_seed : pandas.DataFrame or list of dict
        One row per method, seed and fold: the scores, fit/predict seconds,
        warnings raised during the fit (``notes``) and what the method acted on.
    summary : pandas.DataFrame or list of dict
        One row per method: mean and std (ddof=1) over seeds of each score,
        and for methods with a baseline the paired differences
        (``delta_<score>``, ``delta_<score>_std``, ``delta_<score>_improved``,
        ``n_paired``) against ``vs``.
    score : str
        The score the recommendation ranks by.
    score_notice : str or None
        Why the default score was replaced, if it was.
    recommendation : str
    rows : list of dict
        The raw rows (with predictions), e.g. for :func:`~sklearn_lt.bench.plot_all`.
    """

    def __init__(self, rows, summary, *, score, score_notice, recommendation, seeds, dataset, n_folds, thresholds):
        self.rows = rows
        self._summary = summary
        self.score = score
        self.score_notice = score_notice
        self.recommendation = recommendation
        self._seeds = list(seeds)
        self._dataset = dataset
        self._n_folds = n_folds
        self._thresholds = thresholds
        self.per_seed = _table(
            [
                {
                    "method": r["method"],
                    "vs": r["baseline"],
                    "seed": r["seed"],
                    "fold": r["fold"],
                    **{k: r.get(k) for k in _TABLE_KEYS},
                    "acted_on": None if r.get("acted_on") is None else f"{r['acted_on'][0]}/{r['acted_on'][1]} {r['acted_on'][2]}",
                    "notes": "; ".join(r["notes"]),
                }
                for r in rows
            ]
        )
        self.summary = _table([_flat_summary(e) for e in summary])

    def to_text(self):
        """The table printed by the command line."""
        return format_table(
            self._summary,
            dataset=self._dataset,
            seeds=self._seeds,
            score=self.score,
            recommendation=self.recommendation,
            notice=self.score_notice,
            n_folds=self._n_folds,
            many_threshold=self._thresholds[0],
            few_threshold=self._thresholds[1],
        )

    def __str__(self):
        return self.to_text()

    def __repr__(self):
        return f"<Comparison of {len(self._summary)} methods over seeds {self._seeds}; ranked by {self.score}>"


def _flat_summary(entry):
    flat = {"method": entry["method"], "vs": entry["vs"], "n_seeds": entry["n_seeds"]}
    for key, _ in COLUMNS:
        flat[key] = entry[key]
        flat[key + "_std"] = entry[key + "_std"]
    for key, d in (entry["paired"] or {}).items():
        flat[f"delta_{key}"] = d["mean"]
        flat[f"delta_{key}_std"] = d["std"]
        flat[f"delta_{key}_improved"] = d["improved"]
        flat["n_paired"] = d["n"]
    flat["did_nothing"] = entry["did_nothing"]
    flat["notes"] = "; ".join(entry["notes"])
    return flat


def _table(records):
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is an optional extra
        return records
    return pd.DataFrame.from_records(records)


def compare(
    estimators_or_method_names,
    X_train,
    y_train,
    X_test=None,
    y_test=None,
    *,
    cv=None,
    seeds=(0, 1, 2),
    scoring=None,
    device="auto",
    many_threshold=MANY_SHOT_THRESHOLD,
    few_threshold=FEW_SHOT_THRESHOLD,
    max_fit_seconds=None,
    results_file=None,
    resume=False,
    progress=False,
    dataset="user data",
):
    """Fit every method on the same splits and seeds and compare them, paired.

    Parameters
    ----------
    estimators_or_method_names : list or dict
        Names from :data:`~sklearn_lt.bench.METHODS` (see
        ``python -m sklearn_lt.bench --list``), unfitted scikit-learn
        estimators (each ``random_state`` parameter is set to the seed), or a
        dict ``name -> Method or estimator``. ``None`` means every registered method.
    X_train : array-like of shape (n_samples, n_features)
    y_train : array-like of shape (n_samples,)
        Labels of any type.
    X_test, y_test : array-like, default=None
        A fixed test set, used for every seed (seeds then vary the models only).
        Without one, each seed draws its own stratified split that keeps every
        class in training (see ``cv``).
    cv : None, float, int or splitter, default=None
        Without a test set: ``None`` holds out 25 % of each class per seed, a
        float that fraction, an int ``k`` gives ``k`` stratified folds per seed
        (a class with fewer samples than folds is tested in as many folds as it
        has samples; a class of one sample is never tested). See
        :func:`~sklearn_lt.bench.long_tail_splits`.
    seeds : sequence of int, default=(0, 1, 2)
        Split and model seeds.
    scoring : str, default=None
        The score to rank by, one of ``accuracy``, ``balanced_accuracy``,
        ``harmonic_mean_recall``, ``geometric_mean_recall``, ``few``... ``None``
        means harmonic-mean recall, unless its 1e-3 floor for zero-recall
        classes makes it uninformative on this data; balanced accuracy then
        (``score_notice`` says so).
    device : str, default="auto"
        Torch device of the torch estimators.
    many_threshold, few_threshold : int, default=100, 20
        Many-shot: more than ``many_threshold`` training samples; few-shot:
        fewer than ``few_threshold``.
    max_fit_seconds : float, default=None
        Skip the other seeds of a method whose first fit takes longer.
    results_file : str, default=None
        Append each result as a JSON line as soon as it is done.
    resume : bool, default=False
        Reuse the results already in ``results_file`` (same data and settings)
        and fit only the missing ones.
    progress : bool, default=False
        Progress lines with elapsed time and ETA on stderr.
    dataset : str, default="user data"
        Name shown in the table.

    Returns
    -------
    result : Comparison
        ``result.per_seed`` and ``result.summary`` are pandas DataFrames when
        pandas is installed (lists of dicts otherwise); ``print(result)``
        shows the table and the recommendation.

    Examples
    --------
    >>> from sklearn_lt.bench import compare
    >>> from sklearn_lt.datasets import make_long_tailed_classification
    >>> X, _, y, _ = make_long_tailed_classification(n_classes=6, n_max=100, random_state=0)
    >>> result = compare(["LogisticRegression(balanced)", "NearestCentroid"], X, y, seeds=(0, 1))
    >>> sorted(result.summary["method"])
    ['LogisticRegression(balanced)', 'NearestCentroid']
    """
    X_train, y_train, X_test, y_test = check_data(X_train, y_train, X_test, y_test)
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty.")
    if scoring is not None and scoring not in SCORES:
        raise ValueError(f"unknown scoring {scoring!r}; choose one of {SCORES}.")
    source = user_split_source(X_train, y_train, X_test, y_test, cv=cv)
    store = None
    if results_file is not None:
        header = data_header(
            X_train, y_train, X_test, y_test, cv=cv, many_threshold=many_threshold, few_threshold=few_threshold,
            device=device,
        )
        store = ResultStore(results_file, header, resume=resume)
    elif resume:
        raise ValueError("resume=True needs results_file.")
    rows = run_benchmark(
        estimators_or_method_names,
        source,
        seeds,
        device=device,
        many_threshold=many_threshold,
        few_threshold=few_threshold,
        max_fit_seconds=max_fit_seconds,
        store=store,
        progress=progress,
        dataset=dataset,
    )
    return _conclude(rows, seeds, scoring, dataset, many_threshold, few_threshold)


def _conclude(rows, seeds, scoring, dataset, many_threshold, few_threshold):
    score, notice = choose_score(rows, scoring)
    summary = summarize(rows, score=score)
    n_folds = max((r["fold"] for r in rows), default=0) + 1
    return Comparison(
        rows,
        summary,
        score=score,
        score_notice=notice,
        recommendation=recommend(rows, summary, score),
        seeds=seeds,
        dataset=dataset,
        n_folds=n_folds,
        thresholds=(many_threshold, few_threshold),
    )


__all__ = ["Comparison", "compare"]
