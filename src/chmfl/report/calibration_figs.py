"""Reliability diagram and decision curve from the pooled out-of-fold predictions, shown beside
the ROC curves (same colours per method). Object API only, like ``report/figures.py``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from chmfl.report.figures import FigureOut, method_colors
from chmfl.report.load import Results
from chmfl.stats import (
    DECISION_THRESHOLDS,
    RELIABILITY_BINS,
    brier_score,
    calibration_intercept_slope,
    net_benefit,
    reliability_curve,
)


def _methods(res: Results) -> list[str]:
    have = set(res.predictions["method"])
    return [m for m in res.methods if m in have]


def _calibration_label(m: str, pm: pd.DataFrame) -> str:
    """Legend text: Brier, intercept and slope as means over the repeats' pooled predictions."""
    per_repeat = []
    for _, part in pm.groupby("repeat"):
        cal = calibration_intercept_slope(part["label"], part["probability"])
        per_repeat.append((brier_score(part["label"], part["probability"]), cal.intercept, cal.slope))
    cols = np.array(per_repeat, dtype=float).T  # (3, R)
    brier, intercept, slope = (float(c[~np.isnan(c)].mean()) if (~np.isnan(c)).any() else float("nan") for c in cols)
    return f"{m} (Brier {brier:.3f}, int. {intercept:+.2f}, slope {slope:.2f})"


def reliability_figure(res: Results) -> FigureOut | str:
    """Observed DM fraction against mean predicted P(DM) in quantile bins (Wilson 95% bars)."""
    if res.predictions is None:
        return "no predictions.csv: no reliability diagram"
    colors = method_colors(res.methods, res.reference)
    fig = Figure(figsize=(5.8, 5.6), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6", label="perfect calibration")
    for m in _methods(res):
        pm = res.predictions[res.predictions["method"] == m]
        if pm["label"].nunique() < 2:
            continue
        rel = reliability_curve(pm["label"], pm["probability"], RELIABILITY_BINS)
        err = np.vstack([rel["observed"] - rel["observed_low"], rel["observed_high"] - rel["observed"]])
        ax.errorbar(rel["predicted"], rel["observed"], yerr=err, marker="o", ms=4, capsize=2, elinewidth=0.7,
                    lw=2.0 if m == res.reference else 1.2, color=colors[m], label=_calibration_label(m, pm))
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="Mean predicted P(DM) in bin", ylabel="Observed DM fraction",
           aspect="equal", title="Reliability (pooled out-of-fold predictions)")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    reps = len(res.repeats)
    return FigureOut("reliability", "Reliability diagram", fig,
                     f"Per method, its pooled out-of-fold predictions{f' of all {reps} repeats' if reps > 1 else ''} in "
                     f"{RELIABILITY_BINS} bins of about equal size; bars: Wilson 95% interval of the observed fraction "
                     "(patients counted once per repeat). Legend: Brier score, calibration intercept (in the large) and "
                     "slope, means over repeats.")


def _mean_net_benefit(pm: pd.DataFrame) -> pd.DataFrame:
    curves = [net_benefit(part["label"], part["probability"], DECISION_THRESHOLDS) for _, part in pm.groupby("repeat")]
    return pd.concat(curves).groupby("threshold", sort=True).mean().reset_index()


def decision_curve_figure(res: Results) -> FigureOut | str:
    """Net benefit against threshold probability, with treat-all and treat-none."""
    if res.predictions is None:
        return "no predictions.csv: no decision curve"
    colors = method_colors(res.methods, res.reference)
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.subplots()
    drawn = 0
    for m in _methods(res):
        nb = _mean_net_benefit(res.predictions[res.predictions["method"] == m])
        ax.plot(nb["threshold"], nb["model"], color=colors[m], lw=2.0 if m == res.reference else 1.2, label=m)
        if drawn == 0:
            ax.plot(nb["threshold"], nb["treat_all"], color="0.45", ls="--", lw=1.0, label="treat all")
            ax.plot(nb["threshold"], nb["treat_none"], color="0.2", ls=":", lw=1.0, label="treat none")
        drawn += 1
    if not drawn:
        return "no method with predictions: no decision curve"
    top = max(0.05, float(res.predictions.drop_duplicates("patient_id")["label"].mean()))
    ax.set(xlim=(0, 1), ylim=(-0.1, top + 0.05), xlabel="Threshold probability pt (treat as DM when P(DM) ≥ pt)",
           ylabel="Net benefit", title="Decision curve")
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    return FigureOut("decision_curve", "Decision curve", fig,
                     "Net benefit = TP/n − FP/n · pt/(1 − pt) of each repeat's pooled out-of-fold predictions, "
                     "averaged over repeats (Vickers & Elkin 2006; values as the dcurves package computes them); "
                     "treat all: prevalence − (1 − prevalence) · pt/(1 − pt); treat none: 0. A model helps at pt only "
                     "where its curve lies above both.")
