"""``summary.csv`` and ``comparisons.csv``: inference over repeated K-fold CV, from the rows of
``metrics.csv`` (and ``predictions.csv`` for bootstrap intervals) alone, so that anyone can
recompute them from a results folder.

Two levels, each with the interval that fits it:
- ``fold``: accuracy, sensitivity, specificity and AUC of each of the J = R x K test folds
  (defined in every stratified fold). Estimate: mean of the J values; interval: Nadeau &
  Bengio's corrected resampled t (stats/corrected.py) with n_test/n_train = 1/(K - 1).
- ``pooled``: every classification and calibration metric of each repeat's pooled test
  predictions (how the paper computes precision and F1; calibration needs more than one fold's
  8 patients). Estimate: mean over the R repeats; interval: stratified bootstrap over patients
  of that mean (``bootstrap_repeat_mean``) where it is defined, else none. ``min``/``max``
  give the spread over repeats, which is split noise, not a confidence interval.

Comparisons: each method vs the reference (all pairs without one), paired on the same
(repeat, fold), corrected resampled t-test of the fold-level metrics, Holm across every row of
the table (one family), and the smallest difference each comparison could detect.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from chmfl.stats.corrected import (
    corrected_paired_t,
    corrected_resampled_t,
    holm,
    kfold_test_train_ratio,
    min_detectable_difference,
)
from chmfl.stats.intervals import BOOTSTRAP_POOLED_METRICS, bootstrap_repeat_mean
from chmfl.stats.metrics import CALIBRATION_METRICS, CLASSIFICATION_METRICS
from chmfl.stats.rows import POOLED_FOLD
from chmfl.stats.summary import normalize_metrics

FOLD_LEVEL_METRICS = ("accuracy", "sensitivity", "specificity", "auc", "dsc")  # dsc: methods that segment
POOLED_LEVEL_METRICS = CLASSIFICATION_METRICS + CALIBRATION_METRICS
ALPHA, POWER, BOOTSTRAP_N, BOOTSTRAP_SEED = 0.05, 0.8, 2000, 0
SUMMARY_COLUMNS = ("method", "metric", "level", "estimate", "low", "high", "interval", "se", "sd", "n",
                   "min", "max", "n_folds", "n_repeats", "test_train_ratio")
COMPARISON_COLUMNS = ("method", "versus", "metric", "diff", "low", "high", "se", "t", "df", "p", "p_holm",
                      "n", "sd", "mdd", "mdd_bonferroni", "test_train_ratio")


def n_folds(metrics: pd.DataFrame) -> int:
    """K: the number of test folds per (method, repeat) in ``metrics.csv`` rows (the largest)."""
    folds = metrics[metrics["fold"] != POOLED_FOLD]
    return int(folds.groupby(["method", "repeat"])["fold"].nunique().max()) if len(folds) else 0


def _fold_rows(df: pd.DataFrame, method: str, metric: str, ratio: float, k: int, alpha: float) -> dict:
    part = df[(df["method"] == method) & (df["metric"] == metric) & (df["fold"] != POOLED_FOLD)]
    c = corrected_resampled_t(part["value"].to_numpy(), ratio, alpha=alpha)
    values = part["value"].dropna()
    return {"method": method, "metric": metric, "level": "fold", "estimate": c.mean, "low": c.low, "high": c.high,
            "interval": "nadeau-bengio", "se": c.se, "sd": c.sd, "n": c.n, "min": values.min(), "max": values.max(),
            "n_folds": k, "n_repeats": part["repeat"].nunique(), "test_train_ratio": ratio}


def _pooled_probs(predictions: pd.DataFrame | None, method: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Labels (n,) and each repeat's probabilities (R, n) of the same patients, or None."""
    if predictions is None:
        return None
    pm = predictions[predictions["method"] == method]
    if pm.empty or pm.duplicated(["repeat", "patient_id"]).any():
        return None
    wide = pm.pivot(index="patient_id", columns="repeat", values="probability")
    if wide.isna().any().any():
        return None  # repeats tested different patients: no common resampling unit
    labels = pm.drop_duplicates("patient_id").set_index("patient_id")["label"].loc[wide.index]
    return labels.to_numpy(int), wide.to_numpy(float).T


def _pooled_rows(df: pd.DataFrame, method: str, boot: dict, k: int) -> list[dict]:
    rows = []
    pooled = df[(df["method"] == method) & (df["fold"] == POOLED_FOLD)]
    for metric in POOLED_LEVEL_METRICS:
        values = pooled.loc[pooled["metric"] == metric, "value"]
        if values.empty:
            continue
        defined = values.dropna()
        low, high = boot.get(metric, (np.nan, np.nan))
        rows.append({"method": method, "metric": metric, "level": "pooled",
                     "estimate": defined.mean() if len(defined) else np.nan, "low": low, "high": high,
                     "interval": "bootstrap" if metric in boot else "none",
                     "se": np.nan, "sd": defined.std(ddof=1) if len(defined) > 1 else np.nan, "n": len(defined),
                     "min": defined.min(), "max": defined.max(), "n_folds": k,
                     "n_repeats": len(values), "test_train_ratio": np.nan})
    return rows


def method_summary(metrics: pd.DataFrame, predictions: pd.DataFrame | None = None, alpha: float = ALPHA,
                   n_boot: int = BOOTSTRAP_N, seed: int = BOOTSTRAP_SEED, k: int | None = None) -> pd.DataFrame:
    """Per method: fold-level metrics with the corrected CI, pooled metrics with the bootstrap
    CI of their mean over repeats (needs ``predictions``). Columns: SUMMARY_COLUMNS.
    ``k``: the design's folds per repeat (default: read from the rows; give it when only some
    folds of a run finished, so that n_test/n_train stays the design's)."""
    df = normalize_metrics(metrics)
    k = k or n_folds(df)
    ratio = kfold_test_train_ratio(k) if k >= 2 else np.nan
    rows = []
    for method in dict.fromkeys(df["method"]):
        have = set(df.loc[df["method"] == method, "metric"])
        if k >= 2:
            rows += [_fold_rows(df, method, m, ratio, k, alpha) for m in FOLD_LEVEL_METRICS if m in have]
        probs = _pooled_probs(predictions, method)
        boot = {}
        if probs is not None:
            found = bootstrap_repeat_mean(*probs, n=n_boot, seed=seed, alpha=alpha)
            boot = {m: found[m] for m in BOOTSTRAP_POOLED_METRICS}
        rows += _pooled_rows(df, method, boot, k)
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _pairs(methods: list[str], reference: str | None) -> list[tuple[str, str]]:
    if reference in methods:
        return [(m, reference) for m in methods if m != reference]
    return list(itertools.combinations(methods, 2))


def _comparison(folds: pd.DataFrame, a: str, b: str, metric: str, ratio: float, alpha: float,
                power: float) -> dict:
    key = ["repeat", "fold"]
    va = folds[(folds["method"] == a) & (folds["metric"] == metric)].set_index(key)["value"]
    vb = folds[(folds["method"] == b) & (folds["metric"] == metric)].set_index(key)["value"]
    both = pd.concat([va.rename("a"), vb.rename("b")], axis=1, join="inner").dropna()
    c = corrected_paired_t(both["a"].to_numpy(), both["b"].to_numpy(), ratio, alpha)
    return {"method": a, "versus": b, "metric": metric, "diff": c.mean, "low": c.low, "high": c.high, "se": c.se,
            "t": c.t, "df": c.df, "p": c.p, "n": c.n, "sd": c.sd,
            "mdd": min_detectable_difference(c.sd, c.n, ratio, alpha, power), "test_train_ratio": ratio}


def paired_comparisons(metrics: pd.DataFrame, reference: str | None = None,
                       metric_names: tuple[str, ...] = FOLD_LEVEL_METRICS, alpha: float = ALPHA,
                       power: float = POWER, k: int | None = None) -> pd.DataFrame:
    """Each method vs ``reference`` (all pairs when it did not run) on every fold-level metric:
    corrected paired resampled t-test on the shared (repeat, fold) values, Holm-adjusted p
    across all rows (``p_holm``), and the minimum detectable difference at ``power`` with
    two-sided ``alpha`` (``mdd``) and at alpha/m, Holm's first step (``mdd_bonferroni``).
    Columns: COMPARISON_COLUMNS; empty with fewer than two methods or two folds. ``k`` as
    for ``method_summary``."""
    df = normalize_metrics(metrics)
    folds = df[df["fold"] != POOLED_FOLD]
    k = k or n_folds(df)
    methods = list(dict.fromkeys(df["method"]))
    rows = []
    if k >= 2:
        ratio = kfold_test_train_ratio(k)
        rows = [_comparison(folds, a, b, m, ratio, alpha, power)
                for a, b in _pairs(methods, reference) for m in metric_names
                if m in set(folds.loc[folds["method"] == a, "metric"])]
    out = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if c not in ("p_holm", "mdd_bonferroni")])
    out.insert(out.columns.get_loc("p") + 1, "p_holm", holm(out["p"].to_numpy()))
    m = max(int(out["p"].notna().sum()), 1)
    out["mdd_bonferroni"] = [min_detectable_difference(sd, n, r, alpha / m, power)
                             for sd, n, r in zip(out["sd"], out["n"], out["test_train_ratio"])]
    return out[list(COMPARISON_COLUMNS)]


def statistics_tables(metrics: pd.DataFrame, predictions: pd.DataFrame | None,
                      reference: str | None, k: int | None = None) -> dict[str, pd.DataFrame]:
    """{"summary.csv": ..., "comparisons.csv": ...} for a results folder (docs/results-format.md);
    ``k`` the design's folds per repeat where not every fold is in ``metrics``."""
    return {"summary.csv": method_summary(metrics, predictions, k=k),
            "comparisons.csv": paired_comparisons(metrics, reference, k=k)}
