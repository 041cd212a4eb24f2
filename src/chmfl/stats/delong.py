"""DeLong's test and confidence interval for AUCs (DeLong et al. 1988), fast algorithm.

The AUC of each score is estimated by midranks and its (co)variance from the structural
components ("placements") of DeLong et al. (1988), computed in O(N log N) with the
algorithm of Sun & Xu (2014, IEEE Signal Process. Lett. 21:1389). Higher scores mean DM
(label 1); there is no automatic direction flip. Checked against the pROC R package's own
test values on its aSAH data (tests/stats/test_delong.py).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.stats import norm, rankdata

from chmfl.errors import ChmflError
from chmfl.stats.metrics import as_labels_and_probs


class DeLongResult(NamedTuple):
    """Paired comparison of two AUCs on the same patients (two-sided test of auc1 == auc2)."""

    auc1: float
    auc2: float
    diff: float  # auc1 - auc2
    se: float  # standard error of diff
    z: float
    p: float
    ci_low: float  # confidence interval of diff
    ci_high: float


class AucCI(NamedTuple):
    auc: float
    low: float
    high: float
    se: float


def delong_covariance(y_true, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and their DeLong covariance matrix (k, k) for ``scores`` of shape (k, n).

    NaN where a class has fewer than 2 patients (AUC NaN with one class only).
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    y, _ = as_labels_and_probs(y_true, scores[0])
    for row in scores[1:]:
        as_labels_and_probs(y, row)
    k = scores.shape[0]
    pos = y == 1
    m, n = int(pos.sum()), int((~pos).sum())
    if m == 0 or n == 0:
        return np.full(k, np.nan), np.full((k, k), np.nan)
    ordered = np.concatenate([scores[:, pos], scores[:, ~pos]], axis=1)  # (k, m + n), DM first
    tx = rankdata(ordered[:, :m], axis=1)  # midranks within DM patients
    ty = rankdata(ordered[:, m:], axis=1)  # midranks within non-DM patients
    tz = rankdata(ordered, axis=1)  # midranks over everyone
    aucs = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2.0) / n
    if m < 2 or n < 2:
        return aucs, np.full((k, k), np.nan)
    v10 = (tz[:, :m] - tx) / n  # per DM patient: share of non-DM scores below it
    v01 = 1.0 - (tz[:, m:] - ty) / m  # per non-DM patient: share of DM scores above it
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


def delong_test(y_true, prob1, prob2, alpha: float = 0.05) -> DeLongResult:
    """DeLong's test for two correlated AUCs (two methods scored on the same patients).

    Returns the AUCs, their difference with its (1 - alpha) confidence interval, Z and the
    two-sided p-value. Identical scores give Z = 0, p = 1; NaN when a class has < 2 patients.
    """
    aucs, cov = delong_covariance(y_true, np.vstack([np.asarray(prob1, float), np.asarray(prob2, float)]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    if math.isnan(var) or math.isnan(diff):
        z = p = se = float("nan")
    elif var <= 0.0:
        se = 0.0
        z = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
        p = 1.0 if diff == 0.0 else 0.0
    else:
        se = math.sqrt(var)
        z = diff / se
        p = float(2.0 * norm.sf(abs(z)))
    half = float(norm.ppf(1.0 - alpha / 2.0)) * se
    return DeLongResult(float(aucs[0]), float(aucs[1]), diff, se, z, p, diff - half, diff + half)


def delong_ci(y_true, prob, alpha: float = 0.05) -> AucCI:
    """AUC with its DeLong (1 - alpha) confidence interval, clipped to [0, 1] (as pROC does)."""
    if not 0.0 < alpha < 1.0:
        raise ChmflError(f"alpha must lie in (0, 1), got {alpha}")
    aucs, cov = delong_covariance(y_true, np.asarray(prob, float)[None, :])
    auc, var = float(aucs[0]), float(cov[0, 0])
    if math.isnan(var):
        return AucCI(auc, float("nan"), float("nan"), float("nan"))
    se = math.sqrt(max(var, 0.0))
    half = float(norm.ppf(1.0 - alpha / 2.0)) * se
    return AucCI(auc, max(0.0, auc - half), min(1.0, auc + half), se)
