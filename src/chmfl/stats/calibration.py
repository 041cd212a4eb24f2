"""Calibration and clinical usefulness of predicted probabilities (pooled out-of-fold predictions).

- Brier score: mean squared difference between P(DM) and the 0/1 outcome (0 is perfect; a
  constant 0.5 scores 0.25).
- Calibration intercept and slope by logistic recalibration of lp = logit(P(DM))
  (Cox 1958; Van Calster et al. 2016, J Clin Epidemiol 74:167): the slope b of
  logit P(y = 1) = a + b * lp (1 ideal; < 1 means predictions too extreme, i.e. overfitting)
  and the intercept a of logit P(y = 1) = a + lp with the slope fixed at 1 (calibration in the
  large, 0 ideal; > 0 means risks underestimated on average).
- Reliability diagram: observed DM fraction against mean predicted P(DM) in bins.
- Decision curve (Vickers & Elkin 2006, Med Decis Making 26:565): net benefit of treating the
  patients with P(DM) >= pt, TP/n - FP/n * pt / (1 - pt), against treat-all and treat-none,
  computed as the ``dcurves`` package does.

Probabilities are clipped to [LOGIT_CLIP, 1 - LOGIT_CLIP] before the logit: a random forest's
0 or 1 is a vote count (0.002 apart with 500 trees), not certainty, and would otherwise give
an infinite linear predictor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import expit

from chmfl.errors import ChmflError
from chmfl.stats.metrics import as_labels_and_probs, auc_score

LOGIT_CLIP = 1e-3
RELIABILITY_BINS = 5  # about 10 patients per bin for 48 patients
DECISION_THRESHOLDS = np.round(np.arange(0.01, 1.0, 0.01), 2)


class Calibration(NamedTuple):
    intercept: float  # calibration in the large (slope fixed at 1); 0 is ideal
    slope: float  # logistic recalibration slope; 1 is ideal


def brier_score(y_true, prob) -> float:
    """Mean of (P(DM) - label)^2 over patients."""
    y, p = as_labels_and_probs(y_true, prob)
    return float(np.mean((p - y) ** 2))


def logit(prob, clip: float = LOGIT_CLIP) -> np.ndarray:
    """log(p / (1 - p)) of ``prob`` clipped to [clip, 1 - clip]."""
    p = np.clip(np.asarray(prob, dtype=float), clip, 1.0 - clip)
    return np.log(p) - np.log1p(-p)


def _intercept_in_the_large(y: np.ndarray, lp: np.ndarray) -> float:
    """a solving sum(y) = sum(expit(a + lp)): the offset model's maximum likelihood estimate."""
    return float(optimize.brentq(lambda a: float(expit(a + lp).sum() - y.sum()), -50.0, 50.0, xtol=1e-12))


def _logistic_fit(y: np.ndarray, lp: np.ndarray, max_iter: int = 100) -> tuple[float, float] | None:
    """(a, b) of logit P(y) = a + b * lp by Newton-Raphson (the IRLS every GLM library runs);
    None when it does not converge (quasi-separation: the estimate runs off to infinity)."""
    x = np.column_stack([np.ones_like(lp), lp])  # (n, 2)
    beta = np.zeros(2)
    for _ in range(max_iter):
        mu = expit(x @ beta)
        w = mu * (1.0 - mu)
        hess = x.T @ (x * w[:, None])
        try:
            step = np.linalg.solve(hess, x.T @ (y - mu))
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if not np.all(np.isfinite(beta)) or abs(beta[1]) > 1e4:
            return None
        if np.max(np.abs(step)) < 1e-10:
            return float(beta[0]), float(beta[1])
    return None


def calibration_intercept_slope(y_true, prob) -> Calibration:
    """Calibration intercept (in the large) and slope of P(DM) against the 0/1 outcome.

    NaN when a class is absent; the slope is NaN when P(DM) separates the classes perfectly
    (AUC 0 or 1) or the fit does not converge, since the maximum likelihood slope is then
    infinite. The intercept stays defined whenever both classes are present.
    """
    y, p = as_labels_and_probs(y_true, prob)
    nan = float("nan")
    if y.min() == y.max():
        return Calibration(nan, nan)
    lp = logit(p)
    intercept = _intercept_in_the_large(y, lp)
    if np.ptp(lp) == 0 or auc_score(y, lp) in (0.0, 1.0):
        return Calibration(intercept, nan)
    fit = _logistic_fit(y.astype(float), lp)
    return Calibration(intercept, nan if fit is None else fit[1])


def calibration_metrics(y_true, prob) -> dict[str, float]:
    """``brier``, ``calibration_intercept`` and ``calibration_slope`` (CALIBRATION_METRICS)."""
    cal = calibration_intercept_slope(y_true, prob)
    return {"brier": brier_score(y_true, prob), "calibration_intercept": cal.intercept,
            "calibration_slope": cal.slope}


def _bin_edges(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":
        inner = np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
        return np.unique(np.concatenate([[0.0], inner, [1.0]]))
    raise ChmflError(f"unknown binning {strategy!r}: use quantile or uniform")


def reliability_curve(y_true, prob, n_bins: int = RELIABILITY_BINS, strategy: str = "quantile",
                      alpha: float = 0.05) -> pd.DataFrame:
    """Reliability-diagram points: per bin of P(DM), the mean predicted probability, the
    observed DM fraction with its Wilson (1 - alpha) interval, and the patient count.

    ``quantile`` bins hold about equal numbers of patients (tied probabilities stay in one
    bin); ``uniform`` bins split [0, 1] evenly. Empty bins are left out. Columns: bin, low_edge,
    high_edge, n, n_dm, predicted, observed, observed_low, observed_high.
    """
    y, p = as_labels_and_probs(y_true, prob)
    if n_bins < 1:
        raise ChmflError(f"a reliability diagram needs at least 1 bin, got {n_bins}")
    edges = _bin_edges(p, n_bins, strategy)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        sel = which == b
        n = int(sel.sum())
        if n == 0:
            continue
        k = int(y[sel].sum())
        ci = stats.binomtest(k, n).proportion_ci(1.0 - alpha, method="wilson")
        rows.append({"bin": b, "low_edge": float(edges[b]), "high_edge": float(edges[b + 1]), "n": n, "n_dm": k,
                     "predicted": float(p[sel].mean()), "observed": k / n,
                     "observed_low": float(ci.low), "observed_high": float(ci.high)})
    return pd.DataFrame(rows, columns=["bin", "low_edge", "high_edge", "n", "n_dm", "predicted", "observed",
                                       "observed_low", "observed_high"])


def net_benefit(y_true, prob, thresholds: Sequence[float] = DECISION_THRESHOLDS) -> pd.DataFrame:
    """Decision curve: net benefit of the model, of treating all and of treating none per
    threshold probability pt (a patient is treated as DM when P(DM) >= pt, as in dcurves).

    NB = TP/n - FP/n * pt/(1 - pt); treat-all: prevalence - (1 - prevalence) * pt/(1 - pt);
    treat-none: 0. Columns: threshold, model, treat_all, treat_none.
    """
    y, p = as_labels_and_probs(y_true, prob)
    pt = np.asarray(thresholds, dtype=float).ravel()
    if pt.size == 0 or np.any((pt < 0) | (pt >= 1)):
        raise ChmflError("threshold probabilities must lie in [0, 1)")
    odds = pt / (1.0 - pt)
    treated = p[None, :] >= pt[:, None]  # (n_thresholds, n_patients)
    n = y.size
    tp = (treated & (y == 1)).sum(axis=1) / n
    fp = (treated & (y == 0)).sum(axis=1) / n
    prevalence = float(y.mean())
    return pd.DataFrame({"threshold": pt, "model": tp - fp * odds,
                         "treat_all": prevalence - (1.0 - prevalence) * odds, "treat_none": np.zeros_like(pt)})
