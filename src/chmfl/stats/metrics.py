"""Classification and segmentation metrics, as the paper reports them (Tables I-SIV).

Conventions (the same everywhere in chmfl):
- DM is the positive class (label 1). A patient is predicted DM when its probability is
  ``>= threshold`` (0.5 by default, as in the results-format contract).
- A ratio whose denominator is zero is undefined and returned as NaN, never 0 and never an
  exception: sensitivity with no DM patient, specificity with no non-DM patient, precision
  with no patient predicted DM, F1 when there is neither a DM patient nor a DM prediction,
  AUC when only one class is present.
- AUC is the Mann-Whitney probability P(p_DM > p_noDM) with ties counted 1/2 (midranks):
  the trapezoidal area under the empirical ROC curve, equal to scikit-learn's
  ``roc_auc_score``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from chmfl.errors import ChmflError

CLASSIFICATION_METRICS = ("accuracy", "sensitivity", "specificity", "precision", "f1", "auc")
CALIBRATION_METRICS = ("brier", "calibration_intercept", "calibration_slope")  # stats/calibration.py
SEGMENTATION_METRICS = ("dsc", "jaccard", "seg_accuracy", "seg_sensitivity", "seg_specificity")
# against the whole tumour (the part outside the box missed), and how much of it the box holds
WHOLE_TUMOUR_METRICS = ("dsc_whole", "seg_sensitivity_whole", "tumour_in_box")
ALL_METRICS = CLASSIFICATION_METRICS + CALIBRATION_METRICS + SEGMENTATION_METRICS + WHOLE_TUMOUR_METRICS
DEFAULT_THRESHOLD = 0.5


def ratio(num: float, den: float) -> float:
    """``num / den`` as a float, NaN when ``den`` is 0 (an undefined metric)."""
    return float(num) / float(den) if den else float("nan")


def as_labels_and_probs(y_true, prob) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return (labels as int {0,1}, probabilities as float), both 1-D and aligned."""
    y = np.asarray(y_true).ravel()
    p = np.asarray(prob, dtype=float).ravel()
    if y.size == 0:
        raise ChmflError("metrics need at least one patient; got an empty label array")
    if y.shape != p.shape:
        raise ChmflError(f"labels ({y.size}) and probabilities ({p.size}) differ in length")
    try:
        yf = y.astype(float)
    except (TypeError, ValueError):
        raise ChmflError(f"labels must be 0/1, got values like {y[:3].tolist()}") from None
    if not np.all(np.isin(yf, (0.0, 1.0))):
        bad = sorted(set(yf[~np.isin(yf, (0.0, 1.0))].tolist()))[:3]
        raise ChmflError(f"labels must be 0 (no DM) or 1 (DM), got {bad}")
    if not np.all(np.isfinite(p)):
        raise ChmflError("probabilities contain NaN or infinite values")
    return yf.astype(int), p


def auc_score(y_true, prob) -> float:
    """Area under the ROC curve by midranks (ties = 1/2); NaN when only one class is present."""
    y, p = as_labels_and_probs(y_true, prob)
    pos = y == 1
    m, n = int(pos.sum()), int((~pos).sum())
    if m == 0 or n == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[pos].sum() - m * (m + 1) / 2.0) / (m * n))


def confusion_counts(y_true, prob, threshold: float = DEFAULT_THRESHOLD) -> dict[str, int]:
    """True/false positives/negatives with DM predicted when ``prob >= threshold``."""
    y, p = as_labels_and_probs(y_true, prob)
    pred = p >= threshold
    pos = y == 1
    return {
        "tp": int(np.sum(pred & pos)),
        "fp": int(np.sum(pred & ~pos)),
        "tn": int(np.sum(~pred & ~pos)),
        "fn": int(np.sum(~pred & pos)),
    }


def metrics_from_counts(tp: int, fp: int, tn: int, fn: int) -> dict[str, float]:
    """Accuracy, sensitivity, specificity, precision and F1 from a confusion matrix."""
    return {
        "accuracy": ratio(tp + tn, tp + fp + tn + fn),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "precision": ratio(tp, tp + fp),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
    }


def classification_metrics(y_true, prob, threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """Accuracy, sensitivity, specificity, precision, F1 (at ``threshold``) and AUC.

    ``y_true``: 1 = DM, 0 = no DM; ``prob``: P(DM). DM is predicted when ``prob >= threshold``.
    Undefined ratios are NaN (see the module docstring); keys follow ``CLASSIFICATION_METRICS``.
    """
    counts = confusion_counts(y_true, prob, threshold)
    out = metrics_from_counts(**counts)
    out["auc"] = auc_score(y_true, prob)
    return out


def segmentation_metrics(pred_mask, true_mask) -> dict[str, float]:
    """Voxel-wise DSC, Jaccard, accuracy, sensitivity and specificity (Table SIV).

    Both masks are binary arrays of one shape (any non-zero voxel is tumour). DSC and Jaccard
    are NaN when both masks are empty; sensitivity is NaN without tumour in ``true_mask``.
    """
    pred = np.asarray(pred_mask)
    true = np.asarray(true_mask)
    if pred.shape != true.shape:
        raise ChmflError(f"predicted mask {pred.shape} and ground truth {true.shape} differ in shape")
    if pred.size == 0:
        raise ChmflError("segmentation metrics need non-empty masks")
    pred, true = pred != 0, true != 0
    tp = int(np.count_nonzero(pred & true))
    fp = int(np.count_nonzero(pred & ~true))
    fn = int(np.count_nonzero(~pred & true))
    tn = int(pred.size - tp - fp - fn)
    return {
        "dsc": ratio(2 * tp, 2 * tp + fp + fn),
        "jaccard": ratio(tp, tp + fp + fn),
        "seg_accuracy": ratio(tp + tn, pred.size),
        "seg_sensitivity": ratio(tp, tp + fn),
        "seg_specificity": ratio(tn, tn + fp),
    }


def whole_tumour_metrics(pred_mask, true_mask, outside_voxels: float) -> dict[str, float]:
    """DSC and sensitivity against the whole tumour, of which ``outside_voxels`` (box-grid
    voxels) lie outside the box: that part counts as missed (false negatives), so a box that
    cuts the tumour cannot score well. ``tumour_in_box``: the fraction of the tumour the box holds."""
    pred = np.asarray(pred_mask) != 0
    true = np.asarray(true_mask) != 0
    if pred.shape != true.shape:
        raise ChmflError(f"predicted mask {pred.shape} and ground truth {true.shape} differ in shape")
    tp = int(np.count_nonzero(pred & true))
    fp = int(np.count_nonzero(pred & ~true))
    fn = float(np.count_nonzero(~pred & true)) + max(0.0, float(outside_voxels))
    whole = tp + fn
    return {
        "dsc_whole": ratio(2 * tp, 2 * tp + fp + fn),
        "seg_sensitivity_whole": ratio(tp, whole),
        "tumour_in_box": ratio(whole - float(outside_voxels), whole),
    }
