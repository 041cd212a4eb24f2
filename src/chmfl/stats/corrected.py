"""Inference over repeated K-fold cross-validation: Nadeau & Bengio's corrected resampled t,
Holm's step-down adjustment, and the smallest difference a design can detect.

Why a correction: the J = R x K test-fold values of R repeats of K-fold CV are not independent.
Any two training sets share (K - 2)/(K - 1) of their patients and every patient is tested in
every repeat, so the naive variance of the mean, s^2 / J, shrinks as repeats are added although
no information is: stars grow with ``--repeats``. Nadeau & Bengio (2003, Machine Learning
52:239-281, "corrected resampled t-test") replace 1/J by 1/J + n_test/n_train; Bouckaert &
Frank (2004, PAKDD, LNCS 3056:3-12) apply it to repeated K-fold CV with df = J - 1. The same
correction is what WORC (Starmans et al.) uses for its radiomics confidence intervals.

For K-fold CV the mean test-fold size is N/K and the mean training size N - N/K whatever the
rounding of the folds, so n_test/n_train = 1/(K - 1) (0.2 = 8/40 for 6 folds of 48 patients).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import optimize, stats

from chmfl.errors import ChmflError


class CorrectedT(NamedTuple):
    """Mean of J resampled values with its corrected (1 - alpha) CI and a two-sided t-test."""

    mean: float
    low: float
    high: float
    se: float  # corrected standard error: sqrt((1/J + n_test/n_train) * s^2)
    t: float  # (mean - null) / se
    df: int  # J - 1
    p: float  # two-sided p of mean == null
    n: int  # J: values used (NaN dropped)
    sd: float  # s, the sample SD (ddof = 1) of the values


def kfold_test_train_ratio(n_folds: int) -> float:
    """n_test / n_train of K-fold CV: (N/K) / (N - N/K) = 1 / (K - 1)."""
    if n_folds < 2:
        raise ChmflError(f"K-fold CV needs at least 2 folds, got {n_folds}")
    return 1.0 / (n_folds - 1)


def corrected_variance_factor(n_values: int, test_train_ratio: float) -> float:
    """Nadeau & Bengio's factor 1/J + n_test/n_train that multiplies the sample variance."""
    if test_train_ratio < 0:
        raise ChmflError(f"n_test/n_train must be >= 0, got {test_train_ratio}")
    return 1.0 / n_values + test_train_ratio


def _t_and_p(diff: float, se: float, df: int) -> tuple[float, float]:
    if se > 0:
        t = diff / se
        return t, float(2.0 * stats.t.sf(abs(t), df))
    if diff == 0:
        return 0.0, 1.0
    return math.copysign(math.inf, diff), 0.0


def corrected_resampled_t(values: Sequence[float], test_train_ratio: float, null: float = 0.0,
                          alpha: float = 0.05) -> CorrectedT:
    """Mean of resampled performance values (e.g. the AUC of every repeat x fold) with the
    Nadeau-Bengio corrected (1 - alpha) t-interval and the test of mean == ``null``.

    se = sqrt((1/J + n_test/n_train) * s^2), CI = mean +- t(1 - alpha/2, J - 1) * se.
    NaN values are dropped; with fewer than 2 values only the mean is given.
    """
    if not 0.0 < alpha < 1.0:
        raise ChmflError(f"alpha must lie in (0, 1), got {alpha}")
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)]
    nan = float("nan")
    if v.size == 0:
        return CorrectedT(nan, nan, nan, nan, nan, 0, nan, 0, nan)
    mean = float(v.mean())
    if v.size < 2:
        return CorrectedT(mean, nan, nan, nan, nan, 0, nan, 1, nan)
    df = int(v.size - 1)
    sd = float(v.std(ddof=1))
    se = math.sqrt(corrected_variance_factor(v.size, test_train_ratio)) * sd
    t, p = _t_and_p(mean - null, se, df)
    half = float(stats.t.ppf(1.0 - alpha / 2.0, df)) * se
    return CorrectedT(mean, mean - half, mean + half, se, t, df, p, int(v.size), sd)


def corrected_paired_t(a: Sequence[float], b: Sequence[float], test_train_ratio: float,
                       alpha: float = 0.05) -> CorrectedT:
    """Paired corrected resampled t-test of two methods scored on the same splits.

    ``a`` and ``b`` hold one value per (repeat, fold) in the same order; the test is the
    corrected resampled t of the differences a - b (pairs with a NaN are dropped).
    """
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise ChmflError(f"paired values differ in length ({x.size} vs {y.size})")
    return corrected_resampled_t(x - y, test_train_ratio, 0.0, alpha)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values for one family of tests.

    Sorted ascending, p_(i) becomes max over j <= i of min(1, (m - j + 1) p_(j)); m counts
    the tests with a p-value (NaN entries stay NaN and are not tests). Controls the
    family-wise error rate under any dependence between the tests.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if ok.size == 0:
        return out
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ChmflError("p-values must lie in [0, 1]")
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def min_detectable_difference(sd: float, n_values: int, test_train_ratio: float, alpha: float = 0.05,
                              power: float = 0.8) -> float:
    """Smallest true mean difference the two-sided corrected paired t-test detects with ``power``.

    With d the J paired fold differences of SD ``sd``, the test statistic under a true mean
    difference delta is noncentral t with df = J - 1 and noncentrality delta / se, where
    se = sd * sqrt(1/J + n_test/n_train). The MDD is delta = lambda * se for the lambda at
    which P(|T| > t(1 - alpha/2, J - 1)) = ``power`` (solved exactly with scipy's nct; close
    to (t(1 - alpha/2) + t(power)) * se). It is a property of the design and of the spread
    of the differences, not of the observed difference.
    """
    if not (0.0 < alpha < 1.0 and alpha / 2.0 < power < 1.0):
        raise ChmflError(f"need 0 < alpha < 1 and alpha/2 < power < 1, got alpha={alpha}, power={power}")
    if n_values < 2 or math.isnan(sd):
        return float("nan")
    df = n_values - 1
    se = sd * math.sqrt(corrected_variance_factor(n_values, test_train_ratio))
    crit = float(stats.t.ppf(1.0 - alpha / 2.0, df))

    def shortfall(ncp: float) -> float:
        lower = float(stats.nct.cdf(-crit, df, ncp))  # <= P(T < 0) = Phi(-ncp); scipy gives NaN far out
        return float(stats.nct.sf(crit, df, ncp)) + (lower if math.isfinite(lower) else 0.0) - power

    upper = 2.0 * (crit + float(stats.t.ppf(power, df)))  # twice the normal-style approximation
    ncp = optimize.brentq(shortfall, 0.0, upper, xtol=1e-12)
    return float(ncp * se)
