"""Rows of ``metrics.csv`` (method, repeat, fold, metric, value), built one way for every method.

The cross-validation runner calls ``fold_rows`` after each fold and ``pooled_rows`` after
each repeat, so every results folder computes its metrics identically:
- fold k: classification metrics over the fold's test patients; segmentation metrics are
  the mean over those patients' per-patient values;
- fold "all" (pooled): classification metrics over the concatenated test predictions of
  the repeat (precision and F1 as the paper computes them, never a mean of fold values that
  drops folds without a DM prediction), the calibration metrics of those pooled predictions
  (Brier score, calibration intercept and slope; too few patients per fold for them), and
  segmentation metrics as the mean over all patients of the repeat.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from chmfl.errors import ChmflError
from chmfl.stats.calibration import calibration_metrics
from chmfl.stats.metrics import ALL_METRICS, DEFAULT_THRESHOLD, classification_metrics

METRICS_COLUMNS = ("method", "repeat", "fold", "metric", "value")
POOLED_FOLD = "all"


def metrics_rows(method: str, repeat: int, fold: int | str, metrics: Mapping[str, float]) -> list[dict]:
    """One ``metrics.csv`` row per metric; known metrics first in the canonical order."""
    known = [m for m in ALL_METRICS if m in metrics]
    extra = [m for m in metrics if m not in ALL_METRICS]
    fold_value: int | str = fold if fold == POOLED_FOLD else int(fold)
    return [
        {"method": method, "repeat": int(repeat), "fold": fold_value, "metric": m, "value": float(metrics[m])}
        for m in known + extra
    ]


def mean_metrics(per_patient: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over patients, ignoring NaN (NaN when every value is NaN)."""
    values: dict[str, list[float]] = {}
    for record in per_patient:
        for key, value in record.items():
            values.setdefault(key, []).append(float(value))
    out = {}
    for key, vals in values.items():
        finite = [v for v in vals if not math.isnan(v)]
        out[key] = float(np.mean(finite)) if finite else float("nan")
    return out


def _rows(method, repeat, fold, predictions, seg_per_patient, threshold) -> list[dict]:
    missing = [c for c in ("label", "probability") if c not in predictions.columns]
    if missing:
        raise ChmflError(f"predictions for {method} lack column(s) {', '.join(missing)}")
    y, p = predictions["label"].to_numpy(), predictions["probability"].to_numpy()
    metrics = classification_metrics(y, p, threshold)
    if fold == POOLED_FOLD:
        metrics.update(calibration_metrics(y, p))
    metrics.update(mean_metrics(seg_per_patient))
    return metrics_rows(method, repeat, fold, metrics)


def fold_rows(
    method: str,
    repeat: int,
    fold: int,
    predictions: pd.DataFrame,
    seg_per_patient: Iterable[Mapping[str, float]] = (),
    threshold: float = DEFAULT_THRESHOLD,
) -> list[dict]:
    """Rows for one fold from its test predictions (columns ``label``, ``probability``) and,
    for segmenting methods, the per-patient segmentation metrics (averaged over patients)."""
    return _rows(method, repeat, fold, predictions, seg_per_patient, threshold)


def pooled_rows(
    method: str,
    repeat: int,
    predictions: pd.DataFrame,
    seg_per_patient: Iterable[Mapping[str, float]] = (),
    threshold: float = DEFAULT_THRESHOLD,
) -> list[dict]:
    """Rows with fold "all": classification and calibration metrics over all of a repeat's test
    predictions (columns ``label``, ``probability``); segmentation metrics averaged over all of
    the repeat's patients."""
    return _rows(method, repeat, POOLED_FOLD, predictions, seg_per_patient, threshold)
