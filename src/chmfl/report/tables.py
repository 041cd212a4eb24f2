"""The report's tables, each built from a ``Results`` record only.

Every builder returns a ``Table`` or a ``str``: the one-line reason the table is omitted.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from chmfl.report.load import Results
from chmfl.report.paper import PaperTable, match_rows, paper_table, weight_of
from chmfl.report.render import METRIC_LABELS, Table, fmt, fmt_p, mean_ci, mean_sd
from chmfl.report.statistics import holm_marks
from chmfl.stats import (
    CLASSIFICATION_METRICS,
    POOLED_FOLD,
    SEGMENTATION_METRICS,
    WHOLE_TUMOUR_METRICS,
    bootstrap_ci,
    classification_metrics,
    delong_ci,
    delong_test,
    fold_table,
    method_summary,
    ttest_vs_reference,
)

BOOTSTRAP_N = 2000
SIGNIFICANCE = 0.05


def _lookup(frame: pd.DataFrame, method: str, metric: str, column: str) -> float:
    hit = frame[(frame["method"] == method) & (frame["metric"] == metric)]
    return float(hit.iloc[0][column]) if len(hit) else float("nan")


def _mark(tt: pd.DataFrame, method: str, metric: str) -> str:
    p = _lookup(tt, method, metric, "p") if len(tt) else float("nan")
    return "*" if p < SIGNIFICANCE else ""


POOLED_COLUMNS = ("precision", "f1")  # from each repeat's pooled predictions, as the paper computes them


def pooled_means(res: Results) -> pd.DataFrame:
    """Per (method, metric): mean and SD over repeats of the pooled (fold "all") value,
    in ``fold_table``'s columns (method, metric, mean, sd, n)."""
    s = method_summary(res.metrics)
    s = s[s["level"] == "pooled"]
    return s.rename(columns={"estimate": "mean"})[["method", "metric", "mean", "sd", "n"]]


def paper_ttest(res: Results) -> pd.DataFrame:
    """The paper's unpaired t-test vs the reference over the folds of the first repeat (the
    paper's one CV run); shown only beside the paper's own marks."""
    if not res.reference:
        return pd.DataFrame(columns=["method", "metric", "p"])
    return ttest_vs_reference(res.metrics, res.reference, repeat=min(res.repeats))


def _folds_in(res: Results) -> int:
    folds = res.metrics[res.metrics["fold"] != POOLED_FOLD]
    return int(folds.groupby("repeat")["fold"].nunique().max())


def _fold_note(res: Results) -> str:
    folds = res.metrics[res.metrics["fold"] != POOLED_FOLD]
    n_folds = folds.groupby("repeat")["fold"].nunique().max()
    return f"{n_folds} folds × {len(res.repeats)} repeat(s)"


def _methods_with(res: Results, metrics: tuple[str, ...]) -> list[str]:
    have = set(res.metrics.loc[res.metrics["metric"].isin(metrics), "method"])
    return [m for m in res.methods if m in have]


def _summary_cell(ft: pd.DataFrame, m: str, k: str, mark: str) -> tuple[str, dict]:
    mean, sd = _lookup(ft, m, k, "mean"), _lookup(ft, m, k, "sd")
    return mean_sd(mean, sd, mark), {f"{k}_mean": mean, f"{k}_sd": sd, f"{k}_n": _lookup(ft, m, k, "n")}


def metric_summary_table(res: Results, metrics: tuple[str, ...], name: str, title: str, marks: bool) -> Table | str:
    """Methods x metrics, mean ± SD over folds (precision and F1 over the repeats' pooled
    predictions); with ``marks``, '*' where the Holm-adjusted corrected paired test vs the
    reference gives p < 0.05 (the ``comparisons`` table)."""
    methods = _methods_with(res, metrics)
    if not methods:
        return f"no {name} metrics in metrics.csv"
    ft, pooled = fold_table(res.metrics), pooled_means(res) if marks else None
    ref = res.reference if marks else None
    holm = holm_marks(res) if ref else {}
    display, data = [], []
    for m in methods:
        d_row, n_row = {"Method": m}, {"method": m}
        for k in metrics:
            use_pooled = pooled is not None and k in POOLED_COLUMNS
            mark = "*" if holm.get((m, k)) else ""
            d_row[METRIC_LABELS[k]], numbers = _summary_cell(pooled if use_pooled else ft, m, k, mark)
            n_row.update(numbers)
            if ref and not use_pooled:
                n_row[f"{k}_holm_significant_vs_{ref}"] = bool(holm.get((m, k))) if m != ref else None
        display.append(d_row)
        data.append(n_row)
    note = f"Mean ± SD over test folds ({_fold_note(res)})."
    if metrics == CLASSIFICATION_METRICS:
        note = (f"Acc., Sen., Spe., AUC: mean ± SD over test folds ({_fold_note(res)}); Pre., F1: from each repeat's "
                "pooled test predictions (as the paper), mean ± SD over repeats. DM predicted when P(DM) ≥ 0.5.")
    if marks:
        note += (f" * Holm-adjusted p < 0.05 vs {ref}: corrected resampled t-test paired on folds, Holm across the "
                 "comparisons table (Statistics section)." if ref
                 else " No reference method (chmfl) in this run, so no significance marks.")
    return Table(name, title, pd.DataFrame(display), pd.DataFrame(data), note)


def classification_table(res: Results) -> Table | str:
    return metric_summary_table(res, CLASSIFICATION_METRICS, "classification",
                                "Classification performance (mean ± SD)", marks=True)


def segmentation_table(res: Results) -> Table | str:
    return metric_summary_table(res, SEGMENTATION_METRICS, "segmentation",
                                "Segmentation performance (Table SIV layout, mean ± SD over folds)", marks=False)


def whole_tumour_table(res: Results) -> Table | str:
    """DSC and sensitivity against the whole tumour (the part outside the test box missed) and
    the fraction of the tumour the box holds: how the box placement (contour or hotspot) bounds
    the segmentation."""
    return metric_summary_table(res, WHOLE_TUMOUR_METRICS, "segmentation_whole_tumour",
                                "Segmentation against the whole tumour (outside the box counts as missed; "
                                "mean ± SD over folds)", marks=False)


def _pooled_row(method: str, repeat: int, part: pd.DataFrame) -> tuple[dict, dict]:
    y, p = part["label"].to_numpy(), part["probability"].to_numpy()
    met = classification_metrics(y, p)
    boot = bootstrap_ci(y, p, "auc", n=BOOTSTRAP_N, seed=repeat)
    dl = delong_ci(y, p)
    n_row = {"method": method, "repeat": repeat, "n": len(y), "n_dm": int(y.sum()), **met,
             "auc_boot_low": boot[0], "auc_boot_high": boot[1], "auc_delong_low": dl.low, "auc_delong_high": dl.high}
    d_row = {"Method": method, "Repeat": repeat, "N (DM)": f"{len(y)} ({int(y.sum())})",
             **{METRIC_LABELS[k]: fmt(met[k]) for k in CLASSIFICATION_METRICS},
             "AUC 95% CI (bootstrap)": f"[{fmt(boot[0])}, {fmt(boot[1])}]",
             "AUC 95% CI (DeLong)": f"[{fmt(dl.low)}, {fmt(dl.high)}]"}
    return d_row, n_row


def pooled_table(res: Results) -> Table | str:
    """Metrics over each repeat's concatenated test predictions, AUC with bootstrap and DeLong CIs."""
    if res.predictions is None:
        return "no predictions.csv: pooled metrics and their CIs need the per-patient predictions"
    display, data = [], []
    for m in res.methods:
        for r, part in res.predictions[res.predictions["method"] == m].groupby("repeat"):
            d_row, n_row = _pooled_row(m, int(r), part)
            display.append(d_row)
            data.append(n_row)
    note = (f"Pooled = all test patients of a repeat. AUC 95% CI: stratified bootstrap over patients "
            f"({BOOTSTRAP_N} resamples, seed = repeat) and DeLong; both treat the repeat's K fold models as one "
            "model and ignore training variability (supplementary; see the summary table).")
    return Table("pooled", "Pooled test predictions (per repeat)", pd.DataFrame(display), pd.DataFrame(data), note)


def _pairs(res: Results) -> list[tuple[str, str]]:
    methods = [m for m in res.methods if m in set(res.predictions["method"])]
    ref = res.reference
    if ref in methods:
        return [(m, ref) for m in methods if m != ref]
    return list(itertools.combinations(methods, 2))


def delong_table(res: Results) -> Table | str:
    """DeLong's paired test of pooled AUCs: each method vs the reference (all pairs without one)."""
    if res.predictions is None:
        return "no predictions.csv: DeLong tests need the per-patient predictions"
    pairs = _pairs(res)
    if not pairs:
        return "fewer than two methods with predictions: nothing to compare"
    pred = res.predictions
    display, data = [], []
    for (a, b), r in itertools.product(pairs, sorted(set(pred["repeat"]))):
        pa = pred[(pred["method"] == a) & (pred["repeat"] == r)].set_index("patient_id")
        pb = pred[(pred["method"] == b) & (pred["repeat"] == r)].set_index("patient_id")
        ids = pa.index.intersection(pb.index)
        if len(ids) == 0:
            continue
        t = delong_test(pa.loc[ids, "label"], pa.loc[ids, "probability"], pb.loc[ids, "probability"])
        data.append({"method": a, "versus": b, "repeat": int(r), "n": len(ids), "auc": t.auc1, "auc_versus": t.auc2,
                     "diff": t.diff, "diff_low": t.ci_low, "diff_high": t.ci_high, "z": t.z, "p": t.p})
        display.append({"Method": a, "vs": b, "Repeat": int(r), "N": len(ids), "AUC": fmt(t.auc1),
                        "AUC (vs)": fmt(t.auc2), "Δ AUC [95% CI]": mean_ci(t.diff, t.ci_low, t.ci_high),
                        "Z": fmt(t.z, 2), "p": fmt_p(t.p)})
    if not data:
        return "no patients shared by the compared methods"
    return Table("delong", "DeLong's test of pooled AUCs (paired, same patients)", pd.DataFrame(display),
                 pd.DataFrame(data), "Two-sided DeLong test (fast algorithm of Sun & Xu 2014) per repeat; supplementary, not adjusted for "
                 "multiplicity and blind to training variability (the comparisons table is the primary test).")


def comparison_table(res: Results, table: PaperTable) -> Table | str:
    """Ours (mean over folds, as the paper states it reports) beside the paper's printed numbers."""
    ft, pooled = fold_table(res.metrics), pooled_means(res)
    ref = res.reference
    tt = paper_ttest(res)
    display, data = [], []
    for row, m in match_rows(table, res.methods, res.runs):
        d_row = {"Paper method": row.paper, "chmfl method": m or "(not run)"}
        n_row = {"paper_method": row.paper, "method": m or ""}
        for k in table.metrics:
            mean = _lookup(pooled if k in POOLED_COLUMNS else ft, m, k, "mean") if m else float("nan")
            mark = _mark(tt, m, k) if m and m != ref and k in CLASSIFICATION_METRICS else ""
            d_row[f"{METRIC_LABELS[k]} ours"] = fmt(mean) + mark
            d_row[f"{METRIC_LABELS[k]} paper"] = fmt(row.values[k]) + ("*" if row.marked else "")
            n_row.update({f"{k}_ours": mean, f"{k}_paper": row.values[k]})
        n_row["paper_marked"] = row.marked
        n_row["paper_note"] = row.note
        display.append(d_row)
        data.append(n_row)
    notes = "; ".join(f"{row.paper}: {row.note}" for row in table.rows if row.note)
    note = ("Ours: mean over folds (precision, F1: pooled test predictions of each repeat, mean over repeats, as the "
            f"paper computes them); paper: as printed. * p < 0.05 vs {ref or 'the reference'} by the paper's test "
            f"(unpaired Student's t over the {_folds_in(res)} folds of repeat {min(res.repeats)}, as the paper states it "
            "tested), on both sides: it treats folds as independent, so it is shown only here; the Statistics section "
            "holds chmfl's corrected, Holm-adjusted tests." + (f" Paper notes: {notes}." if notes else ""))
    return Table(f"paper_{table.key}", f"Ours vs the paper — {table.title}", pd.DataFrame(display),
                 pd.DataFrame(data), note)


def paper_tables(res: Results) -> list[Table | str]:
    """Side-by-side tables for a paper experiment (fig5 is shown in the sweep figure instead)."""
    table = paper_table(res.experiment)
    return [comparison_table(res, table)] if table else []


def sweep_data(res: Results) -> pd.DataFrame:
    """Mean and SD over folds per CFL weight w for methods named ``base[seg_weight=w]``."""
    ft = fold_table(res.metrics)
    rows, runs = [], res.runs
    for m in res.methods:
        bw = weight_of(runs.get(m))
        if bw is None:
            continue
        for k in ("accuracy", "sensitivity", "specificity", "auc"):
            rows.append({"base": bw[0], "w": bw[1], "method": m, "metric": k,
                         "mean": _lookup(ft, m, k, "mean"), "sd": _lookup(ft, m, k, "sd")})
    return pd.DataFrame(rows, columns=["base", "w", "method", "metric", "mean", "sd"]).sort_values(["base", "w"])


def sweep_table(res: Results) -> Table | str:
    data = sweep_data(res)
    if data["w"].nunique() < 2:
        return "fewer than two methods named <method>[seg_weight=w]: no weight sweep (Fig 5)"
    display = []
    for (base, w), g in data.groupby(["base", "w"], sort=True):
        row = {"Method": base, "w": f"{w:g}"}
        for k in ("accuracy", "sensitivity", "specificity", "auc"):
            hit = g[g["metric"] == k]
            row[METRIC_LABELS[k]] = mean_sd(float(hit["mean"].iloc[0]), float(hit["sd"].iloc[0])) if len(hit) else "–"
        display.append(row)
    return Table("weight_sweep", "CFL weight w sweep (Fig 5; mean ± SD over folds)", pd.DataFrame(display), data,
                 "Methods named <method>[seg_weight=w]; the paper reports its best performance at w = 0.5.")


def _num(g: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(g[column], errors="coerce") if column in g else pd.Series([np.nan] * len(g), dtype=float)


def _text(g: pd.DataFrame, column: str) -> str:
    return ", ".join(sorted(set(map(str, g[column].dropna())))) if column in g else ""


def _timing_rows(m: str, g: pd.DataFrame) -> tuple[dict, dict]:
    fit = _num(g, "fit_s")
    n_row = {"method": m, "folds": len(g), "fit_s_mean": fit.mean(), "fit_s_sd": fit.std(ddof=1),
             "fit_s_total": fit.sum(min_count=1), "predict_s_mean": _num(g, "predict_s").mean(),
             "peak_rss_gb_max": _num(g, "peak_rss_gb").max(), "epochs_mean": _num(g, "epochs").mean(),
             "device": _text(g, "device"), "precision": _text(g, "precision")}
    d_row = {"Method": m, "Folds": len(g), "Fit s/fold": mean_sd(n_row["fit_s_mean"], n_row["fit_s_sd"]),
             "Fit total h": fmt(n_row["fit_s_total"] / 3600.0, 2), "Predict s/fold": fmt(n_row["predict_s_mean"], 2),
             "Peak RSS GB": fmt(n_row["peak_rss_gb_max"], 2), "Epochs": fmt(n_row["epochs_mean"], 0),
             "Device": n_row["device"] or "–", "Precision": n_row["precision"] or "–"}
    return d_row, n_row


def timing_table(res: Results) -> Table | str:
    """Per method: fit and predict time per fold, peak memory, epochs, device and precision."""
    t = res.timing
    if t is None or t.empty:
        return "no timing.csv: run time not shown"
    order = {m: i for i, m in enumerate(res.methods)}
    groups = sorted(t.groupby("method", sort=False), key=lambda mg: order.get(mg[0], len(order)))
    rows = [_timing_rows(str(m), g) for m, g in groups]
    return Table("timing", "Run time per method", pd.DataFrame([d for d, _ in rows]),
                 pd.DataFrame([n for _, n in rows]), "From timing.csv: one row per fit (repeat × fold); peak RSS is the maximum.")
