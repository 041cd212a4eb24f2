"""Confidence intervals: stratified patient bootstrap for one set of predictions, and a
Student-t interval for a value measured once per cross-validation repeat."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats

from chmfl.errors import ChmflError
from chmfl.stats.metrics import CLASSIFICATION_METRICS, as_labels_and_probs, classification_metrics

MetricFn = Callable[[np.ndarray, np.ndarray], float]


class Summary(NamedTuple):
    """Mean over repeats with its (1 - alpha) t-interval; low/high NaN with fewer than 2 values."""

    mean: float
    low: float
    high: float


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
    pos_idx, neg_idx = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if pos_idx.size == 0 or neg_idx.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = np.concatenate(
        [rng.choice(pos_idx, size=(n, pos_idx.size)), rng.choice(neg_idx, size=(n, neg_idx.size))], axis=1
    )  # (n, n_patients); the label pattern is the same in every row
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


def repeat_summary(values: Sequence[float], alpha: float = 0.05) -> Summary:
    """Mean over CV repeats and its Student-t (1 - alpha) interval: mean +- t * SD / sqrt(n).

    NaN values (an undefined metric in one repeat) are dropped; with one value the interval
    is (NaN, NaN), with none everything is NaN.
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return Summary(float("nan"), float("nan"), float("nan"))
    mean = float(v.mean())
    if v.size < 2:
        return Summary(mean, float("nan"), float("nan"))
    half = float(stats.t.ppf(1.0 - alpha / 2.0, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return Summary(mean, mean - half, mean + half)
