"""The report's survival section (DM-free survival runs): the C-index table with its intervals,
the time-dependent AUC table, and Kaplan-Meier curves of the risk groups. Built from
``metrics.csv`` and ``predictions.csv`` only (cv.survival writes them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from chmfl.report.figures import FigureOut, method_colors
from chmfl.report.load import Results
from chmfl.report.render import Table, fmt, fmt_p, mean_ci
from chmfl.stats import POOLED_FOLD
from chmfl.stats.survival import (
    HORIZONS_DAYS,
    SURVIVAL_FOLD_METRICS,
    kaplan_meier,
    survival_summary,
)


def _values(res: Results, method: str, metric: str, pooled: bool) -> pd.DataFrame:
    m = res.metrics
    rows = m[(m["method"] == method) & (m["metric"] == metric)]
    return rows[(rows["fold"] == POOLED_FOLD) == pooled]


def _fold_matrix(res: Results, method: str, metric: str) -> np.ndarray:  # for the per-fold figure
    """Per-fold values as (repeats, folds)."""
    rows = _values(res, method, metric, pooled=False)
    return rows.pivot_table(index="repeat", columns="fold", values="value", dropna=False).to_numpy(float)


def _pooled_mean(res: Results, method: str, metric: str) -> float:
    v = _values(res, method, metric, pooled=True)["value"].to_numpy(float)
    return float(np.nanmean(v)) if v.size and not np.isnan(v).all() else float("nan")


def _n_folds(res: Results) -> int:
    folds = res.metrics[res.metrics["fold"] != POOLED_FOLD]
    return int(folds.groupby("repeat")["fold"].nunique().max())


def _methods(res: Results) -> list[str]:
    have = set(res.metrics.loc[res.metrics["metric"] == "c_harrell", "method"])
    return [m for m in res.methods if m in have]


def _cell(summary: pd.DataFrame, method: str, metric: str, level: str) -> tuple[float, float, float]:
    hit = summary[(summary["method"] == method) & (summary["metric"] == metric) & (summary["level"] == level)]
    return tuple(float(hit.iloc[0][c]) for c in ("estimate", "low", "high")) if len(hit) else (np.nan,) * 3


def cindex_table(res: Results) -> Table | str:
    """Harrell's and Uno's C per method: mean over folds and repeats with the Nadeau-Bengio
    corrected 95 % CI, and pooled per repeat with the stratified bootstrap CI (the numbers of
    the run's summary.csv, recomputed from metrics.csv)."""
    methods = _methods(res)
    if not methods:
        return "no C-index rows in metrics.csv (not a DM-free survival run)"
    summary = survival_summary(res.metrics)
    display, data = [], []
    for m in methods:
        d_row, n_row = {"Method": m}, {"method": m}
        for metric, label in (("c_harrell", "Harrell's C"), ("c_uno", "Uno's C")):
            fold, pooled = _cell(summary, m, metric, "fold"), _cell(summary, m, metric, "pooled")
            d_row[f"{label} (folds, corrected CI)"] = mean_ci(*fold)
            d_row[f"{label} (pooled, bootstrap CI)"] = mean_ci(*pooled)
            n_row.update({f"{metric}_mean": fold[0], f"{metric}_low": fold[1], f"{metric}_high": fold[2],
                          f"{metric}_pooled": pooled[0], f"{metric}_pooled_low": pooled[1],
                          f"{metric}_pooled_high": pooled[2]})
        p = _values(res, m, "logrank_p", pooled=True)["value"].to_numpy(float)
        n_row["logrank_p_median"] = float(np.nanmedian(p)) if p.size else float("nan")
        d_row["Log-rank p (median over repeats)"] = fmt_p(n_row["logrank_p_median"])
        display.append(d_row)
        data.append(n_row)
    note = (f"{_n_folds(res)} folds × {len(res.repeats)} repeat(s). Folds: mean of the per-fold C over all folds "
            "and repeats, 95% CI by the Nadeau-Bengio corrected resampled t (n_test/n_train = 1/(K-1), df = J-1). "
            "Pooled: C of each repeat's concatenated test predictions, averaged over repeats, with the per-repeat "
            "stratified bootstrap 95% CI (1000 resamples) averaged likewise. Uno's C truncated at 3 years; "
            "censoring weights from the cohort's Kaplan-Meier. Log-rank: test patients split at the training "
            "fold's median risk, pooled over the folds of a repeat.")
    return Table("survival_cindex", "DM-free survival: concordance", pd.DataFrame(display), pd.DataFrame(data), note)


def comparisons_table(res: Results) -> Table | str:
    """Each method vs the reference on the fold C-indices: paired corrected t-test, Holm."""
    from chmfl.stats.inference import paired_comparisons

    c = paired_comparisons(res.metrics, res.reference, metric_names=SURVIVAL_FOLD_METRICS)
    if c.empty:
        return "fewer than two methods or two folds: no paired C-index comparisons"
    names = {"c_harrell": "Harrell's C", "c_uno": "Uno's C"}
    display = [{"Method": r["method"], "vs": r["versus"], "Metric": names[r["metric"]],
                "Δ [95% CI]": mean_ci(r["diff"], r["low"], r["high"]), "t (df)": f"{fmt(r['t'], 2)} ({r['df']})",
                "p": fmt_p(r["p"]), "p (Holm)": fmt_p(r["p_holm"]), "MDD (80%)": fmt(r["mdd"])}
               for r in c.to_dict("records")]
    note = ("Each method minus the comparator on the same (repeat, fold) test sets: corrected resampled t-test "
            "of the fold differences (Nadeau & Bengio 2003), Holm across the table; MDD: the smallest true "
            "difference detectable with 80% power (as the classification comparisons).")
    return Table("survival_comparisons", "DM-free survival: paired C-index comparisons",
                 pd.DataFrame(display), c, note)


def td_auc_table(res: Results) -> Table | str:
    """Time-dependent AUC at 1, 2, 3 years and the integrated Brier score (pooled, mean over repeats)."""
    methods = _methods(res)
    if not methods:
        return "no time-dependent AUC rows in metrics.csv"
    metrics = [f"auc_{d}d" for d in HORIZONS_DAYS] + ["ibs"]
    labels = [f"AUC({d / 365:.0f} y)" for d in HORIZONS_DAYS] + ["IBS"]
    display, data = [], []
    for m in methods:
        vals = {k: _pooled_mean(res, m, k) for k in metrics}
        display.append({"Method": m, **{lab: fmt(vals[k]) for k, lab in zip(metrics, labels)}})
        data.append({"method": m, **vals})
    note = ("Cumulative/dynamic AUC at 365, 730 and 1095 days from the PET scan and the integrated Brier score "
            "over 90-1095 days (IPCW), each on a repeat's pooled test predictions, mean over repeats. IBS only "
            "for methods that predict DM-free probabilities (Cox models, the random survival forest, chmfl-surv); "
            "0.25 is an uninformative 0.5 everywhere.")
    return Table("survival_td_auc", "DM-free survival: time-dependent AUC and Brier score",
                 pd.DataFrame(display), pd.DataFrame(data), note)


def km_figure(res: Results) -> FigureOut | str:
    """Kaplan-Meier DM-free survival of the high- and low-risk test patients of the first
    repeat (training-median split, pooled over folds), one panel per method, log-rank p."""
    if res.predictions is None or "risk_group" not in res.predictions.columns:
        return "no risk groups in predictions.csv (not a DM-free survival run)"
    methods = [m for m in res.methods if m in set(res.predictions["method"])]
    rep = min(res.repeats)
    ncol = min(3, len(methods))
    nrow = -(-len(methods) // ncol)
    fig = Figure(figsize=(4.2 * ncol, 3.4 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    p_rows = res.metrics[(res.metrics["metric"] == "logrank_p") & (res.metrics["fold"] == POOLED_FOLD)]
    for ax, m in zip(axes, methods):
        part = res.predictions[(res.predictions["method"] == m) & (res.predictions["repeat"] == rep)]
        for group, color in (("low", "tab:blue"), ("high", "tab:red")):
            g = part[part["risk_group"] == group]
            if len(g):
                t, s = kaplan_meier(g["time_days"], g["event"])
                ax.step(np.r_[0.0, t] / 365.25, np.r_[1.0, s], where="post", color=color,
                        label=f"{group} risk (n={len(g)}, {int(g['event'].sum())} DM)")
        p = p_rows[(p_rows["method"] == m) & (p_rows["repeat"] == rep)]["value"]
        ax.set_title(f"{m}\nlog-rank p = {fmt_p(float(p.iloc[0]) if len(p) else float('nan'))}", fontsize=9)
        ax.set_xlabel("years from PET")
        ax.set_ylabel("DM-free survival")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7, loc="lower left")
    for ax in axes[len(methods):]:
        ax.set_axis_off()
    return FigureOut("km_risk_groups", "Kaplan-Meier by predicted risk", fig,
                     f"Repeat {rep}: each test patient grouped by the median risk of its training fold; curves "
                     "pooled over the repeat's folds.")


def c_index_figure(res: Results) -> FigureOut | str:
    """Per-fold Harrell's C of each method (all repeats), with the 0.5 line."""
    methods = _methods(res)
    if not methods:
        return "no C-index rows in metrics.csv"
    colors = method_colors(methods, res.reference)
    fig = Figure(figsize=(1.2 + 0.9 * len(methods), 3.2), layout="constrained")
    ax = fig.subplots()
    for i, m in enumerate(methods):
        v = _fold_matrix(res, m, "c_harrell").ravel()
        v = v[~np.isnan(v)]
        ax.scatter(np.full(v.size, i) + np.linspace(-0.2, 0.2, max(v.size, 1))[: v.size], v, s=10,
                   color=colors[m], alpha=0.7)
        ax.hlines(v.mean() if v.size else np.nan, i - 0.3, i + 0.3, color="k")
    ax.axhline(0.5, color="grey", ls=":")
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Harrell's C per fold")
    return FigureOut("survival_cindex_folds", "Harrell's C per fold", fig, "Dots: folds of every repeat; bar: mean.")
