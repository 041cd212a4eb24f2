"""Survival metrics for the DM-free survival endpoint (scikit-survival and lifelines; no torch).

Conventions: ``time`` in days from the PET scan, ``event`` True for an observed DM, ``risk``
higher = earlier DM. Harrell's C counts ties in risk as 1/2 (sksurv
``concordance_index_censored``, equal to lifelines' ``concordance_index`` on ``-risk``).
Uno's C, the time-dependent (cumulative/dynamic) AUC and the Brier score weight by the
inverse probability of censoring, the censoring distribution estimated by Kaplan-Meier on
``censoring`` (default: the patients scored). It is not a model parameter -- it changes no
prediction -- so the cross-validation estimates it on the whole cohort, which lets every test
fold be scored (sksurv refuses test times beyond the estimating data's follow-up).
Uno's C is truncated at ``TAU`` days, where the censoring distribution is still estimable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from chmfl.errors import ChmflError
from chmfl.stats.rows import POOLED_FOLD

YEAR_DAYS = 365.25
HORIZONS_DAYS = (365, 730, 1095)  # 1, 2 and 3 years for the time-dependent AUC and predict
TAU = 1095.0  # truncation of Uno's C (3 years)
BRIER_GRID = tuple(np.linspace(90.0, 1095.0, 24).round(1))  # days; the integrated Brier score's grid
SURVIVAL_METRICS = ("c_harrell", "c_uno", *(f"auc_{d}d" for d in HORIZONS_DAYS), "ibs")


def structured(time, event) -> np.ndarray:
    """sksurv's structured array ``(event, time)`` after validation."""
    from sksurv.util import Surv

    t = np.asarray(time, dtype=float).ravel()
    e = np.asarray(event).ravel()
    if t.size == 0 or t.shape != e.shape:
        raise ChmflError(f"survival data need equal, non-empty time ({t.size}) and event ({e.size}) arrays")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ChmflError("survival times must be finite and positive")
    if not np.all(np.isin(e.astype(float), (0.0, 1.0))):
        raise ChmflError("events must be 0 (censored) or 1 (DM)")
    return Surv.from_arrays(e.astype(bool), t)


def _risk(risk, n: int) -> np.ndarray:
    r = np.asarray(risk, dtype=float).ravel()
    if r.size != n:
        raise ChmflError(f"{r.size} risk scores for {n} patients")
    if not np.all(np.isfinite(r)):
        raise ChmflError("risk scores contain NaN or infinite values")
    return r


def harrell_c(time, event, risk) -> float:
    """Harrell's concordance index; NaN without a comparable pair."""
    from sksurv.metrics import concordance_index_censored

    y = structured(time, event)
    r = _risk(risk, len(y))
    if not y["event"].any():
        return float("nan")
    try:
        return float(concordance_index_censored(y["event"], y["time"], r)[0])
    except ZeroDivisionError:  # no comparable pair
        return float("nan")


def uno_c(time, event, risk, censoring: tuple | None = None, tau: float | None = TAU) -> float:
    """Uno's IPCW concordance truncated at ``tau``; censoring KM on ``censoring`` = (time, event)."""
    from sksurv.metrics import concordance_index_ipcw

    y = structured(time, event)
    train = y if censoring is None else structured(*censoring)
    r = _risk(risk, len(y))
    if not y["event"].any():
        return float("nan")
    tau = None if tau is None else min(float(tau), float(train["time"].max()) - 1e-9)
    try:
        return float(concordance_index_ipcw(train, y, r, tau=tau)[0])
    except (ValueError, ZeroDivisionError):
        return float("nan")


def time_dependent_auc(time, event, risk, horizons: Sequence[float] = HORIZONS_DAYS,
                       censoring: tuple | None = None) -> dict[float, float]:
    """Cumulative/dynamic AUC at each horizon (days); NaN where the horizon lies outside the
    follow-up of the patients scored or no patient has had or escaped the event by then."""
    from sksurv.metrics import cumulative_dynamic_auc

    y = structured(time, event)
    train = y if censoring is None else structured(*censoring)
    r = _risk(risk, len(y))
    out = {}
    for h in horizons:
        cases, controls = (y["time"] <= h) & y["event"], y["time"] > h
        if not cases.any() or not controls.any() or h >= train["time"].max():
            out[h] = float("nan")
            continue
        try:
            out[h] = float(cumulative_dynamic_auc(train, y, r, [h])[0][0])
        except ValueError:
            out[h] = float("nan")
    return out


def integrated_brier(time, event, survival: np.ndarray, grid: Sequence[float] = BRIER_GRID,
                     censoring: tuple | None = None) -> float:
    """Integrated Brier score of predicted DM-free probabilities ``survival`` (n, len(grid))
    over ``grid`` (days); grid points outside the patients' follow-up are dropped."""
    from sksurv.metrics import integrated_brier_score

    y = structured(time, event)
    train = y if censoring is None else structured(*censoring)
    s = np.asarray(survival, dtype=float)
    g = np.asarray(grid, dtype=float)
    if s.shape != (len(y), len(g)):
        raise ChmflError(f"survival predictions of shape {s.shape}, expected {(len(y), len(g))}")
    keep = (g >= y["time"].min()) & (g < y["time"].max()) & (g < train["time"].max())
    if keep.sum() < 2 or not np.all(np.isfinite(s[:, keep])):
        return float("nan")
    return float(integrated_brier_score(train, y, s[:, keep], g[keep]))


def survival_metrics(time, event, risk, survival: np.ndarray | None = None,
                     censoring: tuple | None = None, pooled: bool = True) -> dict[str, float]:
    """Harrell's and Uno's C and, with ``pooled`` (a repeat's pooled test predictions), the
    time-dependent AUC at 1, 2, 3 years and the integrated Brier score (NaN without
    ``survival``, the probabilities on ``BRIER_GRID``). Keys follow ``SURVIVAL_METRICS``."""
    out = {"c_harrell": harrell_c(time, event, risk), "c_uno": uno_c(time, event, risk, censoring)}
    if pooled:
        auc = time_dependent_auc(time, event, risk, censoring=censoring)
        out.update({f"auc_{int(h)}d": v for h, v in auc.items()})
        out["ibs"] = (integrated_brier(time, event, survival, censoring=censoring)
                      if survival is not None else float("nan"))
    return out


def uno_weights(time, event, censoring: tuple | None = None, tau: float | None = TAU) -> np.ndarray:
    """Per-patient weights of Uno's C as scikit-survival computes them: 1 / G(t_i)^2 for events
    before ``tau`` (G: Kaplan-Meier of the censoring times of ``censoring``), else 0."""
    from sksurv.nonparametric import CensoringDistributionEstimator

    y = structured(time, event)
    train = y if censoring is None else structured(*censoring)
    tau = np.inf if tau is None else min(float(tau), float(train["time"].max()) - 1e-9)
    keep = y["time"] < tau
    w = np.zeros(len(y))
    if keep.any():
        w[keep] = CensoringDistributionEstimator().fit(train).predict_ipcw(y[keep]) ** 2
    return w


def concordance_rows(time: np.ndarray, event: np.ndarray, risk: np.ndarray, weights: np.ndarray,
                     tied_tol: float = 1e-8) -> np.ndarray:
    """Weighted concordance of each row of (B, n) arrays, vectorised (the bootstrap's engine):
    pairs (i, j) are comparable when i has the event and t_j > t_i, or t_j = t_i with j
    censored (scikit-survival's rule); concordant when r_i > r_j, a risk tie counts 1/2; each
    pair weighs ``weights[i]`` (1: Harrell's C; ``uno_weights``: Uno's). NaN without pairs."""
    t, e, r, w = (np.atleast_2d(np.asarray(a)) for a in (time, event, risk, weights))
    later = t[:, None, :] > t[:, :, None]
    same_censored = (t[:, None, :] == t[:, :, None]) & ~e[:, None, :].astype(bool)
    comp = e[:, :, None].astype(bool) & (later | same_censored)  # (B, i, j)
    diff = r[:, :, None] - r[:, None, :]
    score = np.where(np.abs(diff) <= tied_tol, 0.5, (diff > 0).astype(float))
    num = (comp * score * w[:, :, None]).sum(axis=(1, 2))
    den = (comp * w[:, :, None]).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def bootstrap_survival_ci(time, event, risk, metric: str = "c_harrell", n: int = 1000, seed: int = 0,
                          alpha: float = 0.05, censoring: tuple | None = None) -> tuple[float, float]:
    """Percentile (1 - alpha) bootstrap interval of Harrell's (``metric="c_harrell"``) or Uno's
    (``"c_uno"``; censoring distribution from ``censoring``, default the data, held fixed as in
    the point estimate) C over patients, resampled within events and censored patients
    separately (each resample keeps the event count); resamples without pairs are ignored."""
    if metric not in ("c_harrell", "c_uno"):
        raise ChmflError(f"bootstrap CIs are for c_harrell or c_uno, not {metric!r}")
    y = structured(time, event)
    r = _risk(risk, len(y))
    w = np.ones(len(y)) if metric == "c_harrell" else uno_weights(y["time"], y["event"], censoring)
    ev, cens = np.flatnonzero(y["event"]), np.flatnonzero(~y["event"])
    if ev.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    parts = [rng.choice(ev, size=(n, ev.size))] + ([rng.choice(cens, size=(n, cens.size))] if cens.size else [])
    idx = np.concatenate(parts, axis=1)  # (n, n_patients)
    v = concordance_rows(y["time"][idx], y["event"][idx], r[idx], w[idx])
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(v, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def kaplan_meier(time, event) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate: the distinct times and S(t) just after each."""
    from sksurv.nonparametric import kaplan_meier_estimator

    y = structured(time, event)
    t, s = kaplan_meier_estimator(y["event"], y["time"])
    return np.asarray(t, float), np.asarray(s, float)


def median_followup(time, event) -> float:
    """Median follow-up by the reverse Kaplan-Meier method (censoring as the event); inf if
    the reverse curve never falls to one half."""
    t, s = kaplan_meier(time, ~np.asarray(event, dtype=bool))
    below = np.flatnonzero(s <= 0.5)
    return float(t[below[0]]) if below.size else math.inf


def logrank_p(time, event, group) -> float:
    """Two-sided log-rank p-value between the groups (two or more labels); NaN with one group."""
    from sksurv.compare import compare_survival

    y = structured(time, event)
    g = np.asarray(group).ravel()
    if len(np.unique(g)) < 2 or not y["event"].any():
        return float("nan")
    return float(compare_survival(y, g)[1])


SURVIVAL_FOLD_METRICS = ("c_harrell", "c_uno")  # defined in every fold: corrected t over folds
SURVIVAL_POOLED_METRICS = (*SURVIVAL_METRICS, "logrank_p")


def _pooled_summary(df: pd.DataFrame, method: str, metric: str, k: int) -> dict:
    """Mean over repeats of a pooled metric; for the C-indices the per-repeat bootstrap bounds
    averaged likewise, otherwise no interval (min/max: the spread over repeats)."""
    pooled = df[(df["method"] == method) & (df["fold"] == POOLED_FOLD)]
    values = pooled[pooled["metric"] == metric]["value"].dropna()
    bound = lambda b: pooled[pooled["metric"] == f"{metric}_ci_{b}"]["value"].mean()  # noqa: E731
    has_ci = metric in SURVIVAL_FOLD_METRICS
    nan = float("nan")
    return {"method": method, "metric": metric, "level": "pooled",
            "estimate": values.mean() if len(values) else nan,
            "low": bound("low") if has_ci else nan, "high": bound("high") if has_ci else nan,
            "interval": "bootstrap (per-repeat bounds averaged)" if has_ci else "none", "se": nan,
            "sd": values.std(ddof=1) if len(values) > 1 else nan, "n": len(values),
            "min": values.min() if len(values) else nan, "max": values.max() if len(values) else nan,
            "n_folds": k, "n_repeats": len(values), "test_train_ratio": nan}


def survival_summary(metrics: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """``summary.csv`` of a survival run (stats.inference's columns): Harrell's and Uno's C over
    all test folds with the Nadeau-Bengio corrected CI, and every pooled metric's mean over repeats."""
    from chmfl.stats.corrected import corrected_resampled_t, kfold_test_train_ratio
    from chmfl.stats.inference import SUMMARY_COLUMNS, n_folds
    from chmfl.stats.summary import normalize_metrics

    df = normalize_metrics(metrics)
    k = n_folds(df)
    rows = []
    for method in dict.fromkeys(df["method"]):
        for metric in SURVIVAL_FOLD_METRICS if k >= 2 else ():
            part = df[(df["method"] == method) & (df["metric"] == metric) & (df["fold"] != POOLED_FOLD)]
            c = corrected_resampled_t(part["value"].to_numpy(), kfold_test_train_ratio(k), alpha=alpha)
            v = part["value"].dropna()
            rows.append({"method": method, "metric": metric, "level": "fold", "estimate": c.mean, "low": c.low,
                         "high": c.high, "interval": "nadeau-bengio", "se": c.se, "sd": c.sd, "n": c.n,
                         "min": v.min(), "max": v.max(), "n_folds": k, "n_repeats": part["repeat"].nunique(),
                         "test_train_ratio": kfold_test_train_ratio(k)})
        rows += [_pooled_summary(df, method, m, k) for m in SURVIVAL_POOLED_METRICS]
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def survival_statistics_tables(metrics: pd.DataFrame, reference: str | None) -> dict[str, pd.DataFrame]:
    """{"summary.csv", "comparisons.csv"} of a survival run: the classification run's treatment
    (corrected intervals; paired corrected t-tests of the fold C-indices, Holm) for the C-indices."""
    from chmfl.stats.inference import paired_comparisons

    return {"summary.csv": survival_summary(metrics),
            "comparisons.csv": paired_comparisons(metrics, reference, metric_names=SURVIVAL_FOLD_METRICS)}
