"""Confidence intervals by a stratified bootstrap over patients: for one set of predictions,
and for the mean over CV repeats of metrics of each repeat's pooled predictions.

(An interval over repeats alone, mean +- t * SD / sqrt(R), is not a confidence interval for
performance: it is the Monte-Carlo error of the random split and shrinks as 1/sqrt(R) however
few patients there are. chmfl does not compute one; see stats/corrected.py.)"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from chmfl.errors import ChmflError
from chmfl.stats.metrics import (
    CLASSIFICATION_METRICS,
    DEFAULT_THRESHOLD,
    as_labels_and_probs,
    classification_metrics,
)

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def _metric_fn(metric: str | MetricFn, threshold: float) -> MetricFn:
    if callable(metric):
        return metric
    if metric not in CLASSIFICATION_METRICS:
        raise ChmflError(f"unknown metric {metric!r}; use one of {', '.join(CLASSIFICATION_METRICS)} or a function")
    return lambda y, p: classification_metrics(y, p, threshold)[metric]


def _auc_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """AUC of every row of ``p`` (n_boot, n) against the same labels ``y`` (n,), by midranks."""
    pos = y == 1
    m, n = int(pos.sum()), int((~pos).sum())
    ranks = stats.rankdata(p, axis=1)
    return (ranks[:, pos].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)


def bootstrap_ci(
    y_true,
    prob,
    metric: str | MetricFn = "auc",
    n: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    threshold: float = 0.5,
) -> tuple[float, float]:
    """Percentile (1 - alpha) bootstrap interval of ``metric`` over patients.

    Each resample draws DM and non-DM patients separately with replacement (stratified, so
    each resample keeps the class counts and the AUC stays defined). ``metric`` is a name
    from ``CLASSIFICATION_METRICS`` or a function ``f(labels, probs) -> float``; NaN
    resamples are ignored. Returns (NaN, NaN) when a class is absent.
    """
    y, p = as_labels_and_probs(y_true, prob)
    if n < 1:
        raise ChmflError(f"bootstrap needs n >= 1 resamples, got {n}")
    idx = _stratified_indices(y, n, seed)  # (n, n_patients); the label pattern is the same in every row
    if idx is None:
        return float("nan"), float("nan")
    if metric == "auc":
        values = _auc_rows(y[idx[0]], p[idx])
    else:
        fn = _metric_fn(metric, threshold)
        values = np.array([fn(y[row], p[row]) for row in idx], dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


BOOTSTRAP_POOLED_METRICS = CLASSIFICATION_METRICS + ("brier",)


def _stratified_indices(y: np.ndarray, n: int, seed: int) -> np.ndarray | None:
    """(n, n_patients) resampled indices, DM patients first then non-DM, each drawn with
    replacement within its class; None when a class is absent."""
    pos_idx, neg_idx = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if pos_idx.size == 0 or neg_idx.size == 0:
        return None
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(pos_idx, size=(n, pos_idx.size)), rng.choice(neg_idx, size=(n, neg_idx.size))],
                          axis=1)


def _ratio_rows(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _pooled_metric_rows(y_row: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Every metric of BOOTSTRAP_POOLED_METRICS for each row of ``p`` (n_boot, n) with labels ``y_row``."""
    pred, pos = p >= threshold, y_row == 1
    tp, fp = (pred & pos).sum(axis=1), (pred & ~pos).sum(axis=1)
    fn, tn = (~pred & pos).sum(axis=1), (~pred & ~pos).sum(axis=1)
    return {"accuracy": (tp + tn) / y_row.size, "sensitivity": _ratio_rows(tp, tp + fn),
            "specificity": _ratio_rows(tn, tn + fp), "precision": _ratio_rows(tp, tp + fp),
            "f1": _ratio_rows(2 * tp, 2 * tp + fp + fn), "auc": _auc_rows(y_row, p),
            "brier": ((p - y_row) ** 2).mean(axis=1)}


def bootstrap_repeat_mean(y_true, probs, n: int = 2000, seed: int = 0, alpha: float = 0.05,
                          threshold: float = DEFAULT_THRESHOLD) -> dict[str, tuple[float, float]]:
    """Percentile (1 - alpha) interval of the mean over CV repeats of each pooled metric.

    ``probs`` (R, n_patients): each repeat's pooled test prediction of the same patients
    (every repeat of K-fold CV tests every patient once), ``y_true`` their labels. A resample
    draws patients (stratified by label, as ``bootstrap_ci``) and uses the same patients in
    every repeat, so the interval reflects which patients were sampled, the uncertainty an
    interval over repeats alone leaves out. Metrics: BOOTSTRAP_POOLED_METRICS; a repeat where
    a metric is undefined in a resample is skipped in that resample's mean.
    """
    p_all = np.atleast_2d(np.asarray(probs, dtype=float))
    y, _ = as_labels_and_probs(y_true, p_all[0])
    for row in p_all[1:]:
        as_labels_and_probs(y, row)
    if n < 1:
        raise ChmflError(f"bootstrap needs n >= 1 resamples, got {n}")
    idx = _stratified_indices(y, n, seed)
    nan = (float("nan"), float("nan"))
    if idx is None:
        return dict.fromkeys(BOOTSTRAP_POOLED_METRICS, nan)
    y_row = y[idx[0]]  # the label pattern is the same in every resample
    per_repeat = [_pooled_metric_rows(y_row, p[idx], threshold) for p in p_all]
    out = {}
    for metric in BOOTSTRAP_POOLED_METRICS:
        values = np.vstack([r[metric] for r in per_repeat])  # (R, n)
        with np.errstate(invalid="ignore"):
            defined = ~np.isnan(values)
            means = np.where(defined.any(axis=0), np.nansum(values, axis=0) / np.maximum(defined.sum(axis=0), 1), np.nan)
        means = means[~np.isnan(means)]
        out[metric] = tuple(float(q) for q in np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])) if means.size else nan
    return out
