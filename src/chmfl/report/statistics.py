"""The report's inference over repeated CV: per-method summary with corrected intervals, paired
comparisons with Holm-adjusted p, the minimum detectable difference, and the label counts.

Numbers come from ``chmfl.stats.inference`` applied to ``metrics.csv`` and ``predictions.csv``,
the same functions that wrote the run's ``summary.csv`` and ``comparisons.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pandas as pd

from chmfl.report.html import KeyValues, Note
from chmfl.report.load import Results
from chmfl.report.render import METRIC_LABELS, Table, fmt, fmt_p, mean_ci
from chmfl.stats import (
    CALIBRATION_METRICS,
    FOLD_LEVEL_METRICS,
    method_summary,
    n_folds,
    paired_comparisons,
)
from chmfl.stats.inference import ALPHA, BOOTSTRAP_N, POWER

LABELS = {**METRIC_LABELS, "brier": "Brier", "calibration_intercept": "Cal. intercept",
          "calibration_slope": "Cal. slope"}
SUMMARY_FOLD = ("auc", "accuracy", "sensitivity", "specificity")
SUMMARY_POOLED = ("precision", "f1", *CALIBRATION_METRICS)


def _design(res: Results) -> str:
    k = n_folds(res.metrics)
    return f"{len(res.repeats)} repeat(s) × {k} folds (J = {len(res.repeats) * k}, n_test/n_train = 1/{k - 1})"


def _cell(s: pd.DataFrame, method: str, metric: str, level: str) -> tuple[str, dict]:
    hit = s[(s["method"] == method) & (s["metric"] == metric) & (s["level"] == level)]
    if hit.empty:
        return "–", {}
    r = hit.iloc[0]
    text = mean_ci(r["estimate"], r["low"], r["high"])
    if r["interval"] == "none" and r["n"] > 1:
        text += f" (range {fmt(r['min'])}, {fmt(r['max'])})"
    return text, r.to_dict()


def summary_table(res: Results) -> Table | str:
    """Per method: fold-level metrics with the Nadeau-Bengio corrected 95% CI, pooled precision,
    F1 and calibration as means over repeats (bootstrap CI where defined)."""
    s = method_summary(res.metrics, res.predictions)
    if s.empty:
        return "no classification metrics in metrics.csv"
    display = []
    for m in [m for m in res.methods if m in set(s["method"])]:
        row = {"Method": m}
        for metric in SUMMARY_FOLD:
            row[f"{LABELS[metric]} [95% CI]"] = _cell(s, m, metric, "fold")[0]
        for metric in SUMMARY_POOLED:
            suffix = " [95% CI]" if metric in ("precision", "f1", "brier") else ""
            row[LABELS[metric] + suffix] = _cell(s, m, metric, "pooled")[0]
        display.append(row)
    note = (f"{_design(res)}. AUC, Acc., Sen., Spe.: mean over the J test folds with the Nadeau-Bengio corrected "
            "resampled-t 95% CI (variance × (1/J + n_test/n_train), df = J − 1). Pre., F1, Brier: from each repeat's "
            f"pooled test predictions (as the paper computes precision and F1), mean over repeats with a stratified "
            f"bootstrap 95% CI over patients ({BOOTSTRAP_N} resamples). Calibration intercept (in the large; 0 ideal) "
            "and slope (logistic recalibration; 1 ideal): mean over repeats (range over repeats), no interval. "
            "DM predicted when P(DM) ≥ 0.5.")
    return Table("summary", "Performance with corrected confidence intervals", pd.DataFrame(display), s, note)


def _comparisons(res: Results) -> pd.DataFrame:
    return paired_comparisons(res.metrics, res.reference)


def comparisons_table(res: Results) -> Table | str:
    """Paired corrected resampled t-tests vs the reference, Holm across the table, and the MDD."""
    c = _comparisons(res)
    if c.empty:
        return "fewer than two methods or two folds: no paired comparisons"
    display = [{"Method": r["method"], "vs": r["versus"], "Metric": LABELS[r["metric"]],
                "Δ [95% CI]": mean_ci(r["diff"], r["low"], r["high"]),
                "t (df)": f"{fmt(r['t'], 2)} ({r['df']})", "p": fmt_p(r["p"]), "p (Holm)": fmt_p(r["p_holm"]),
                "MDD (80%)": fmt(r["mdd"])} for r in c.to_dict("records")]
    note = (f"{_design(res)}. Each method minus the comparator on the same (repeat, fold) test sets; corrected "
            "resampled t-test of the fold differences (Nadeau & Bengio 2003), two-sided. p (Holm): Holm's step-down "
            f"adjustment across all {int(c['p'].notna().sum())} comparisons of this table. MDD: the smallest true "
            f"difference this design detects with {POWER:.0%} power at α = {ALPHA} given the spread of the fold "
            "differences (docs/report.md).")
    return Table("comparisons", "Paired comparisons (corrected resampled t-test, Holm-adjusted)",
                 pd.DataFrame(display), c, note)


def mdd_note(res: Results) -> Note | str:
    """One line: the smallest AUC difference the design could detect with 80% power."""
    c = _comparisons(res)
    auc = c[(c["metric"] == "auc") & c["mdd"].notna()] if not c.empty else c
    if auc.empty:
        return "no paired AUC comparison: no minimum detectable difference"
    parts = ", ".join(f"{r['method']} vs {r['versus']} {fmt(r['mdd'])}" for r in auc.to_dict("records"))
    strict = ", ".join(fmt(v) for v in auc["mdd_bonferroni"])
    return Note(f"Smallest AUC difference this design ({_design(res)}) could detect with {POWER:.0%} power "
                f"(two-sided α = {ALPHA}, corrected paired t-test, from the SD of the paired fold differences): "
                f"{parts}. At α/m, the level of Holm's first step: {strict}. A true difference smaller than this "
                "would usually be missed: a non-significant comparison is not evidence that methods are equivalent.")


def label_counts(res: Results) -> KeyValues | str:
    """Patients and labels the statistics rest on (from predictions.csv)."""
    if res.predictions is None:
        return "no predictions.csv: label counts not shown"
    labels = res.predictions.drop_duplicates("patient_id").set_index("patient_id")["label"]
    pairs = [("patients tested", str(len(labels))), ("DM", str(int(labels.sum()))),
             ("no DM", str(int((labels == 0).sum())))]
    data = res.config.get("data") if isinstance(res.config.get("data"), dict) else {}
    excluded = data.get("excluded") if data else None
    if isinstance(excluded, dict):
        pairs.append(("excluded before the split", str(len(excluded))))
    horizon = res.config.get("horizon")
    if isinstance(horizon, dict):  # chmfl cv --horizon-days N
        pairs.append((f"censored before {horizon.get('horizon_days', 0):g} days, left out", str(horizon.get("unknown"))))
    return KeyValues("Label counts", tuple(pairs))


def section(res: Results, safe: Callable) -> Iterator:
    """The statistics section: label counts, summary, comparisons, MDD line."""
    if res.survival:
        yield Note("DM-free survival run: corrected intervals and paired C-index comparisons are in the "
                   "Survival section.")
        return
    yield safe(label_counts, res)
    yield safe(summary_table, res)
    table = safe(comparisons_table, res)
    yield table
    if not isinstance(table, str):
        yield safe(mdd_note, res)


def holm_marks(res: Results, alpha: float = ALPHA) -> dict[tuple[str, str], bool]:
    """(method, metric) -> Holm-adjusted p < alpha vs the reference, for the fold-level metrics."""
    c = _comparisons(res)
    return {(r["method"], r["metric"]): (not math.isnan(r["p_holm"]) and r["p_holm"] < alpha)
            for r in c.to_dict("records") if r["metric"] in FOLD_LEVEL_METRICS and r["versus"] == res.reference}


def _seeds(res: Results) -> str:
    seeds = [r.get("seed") for r in (res.splits or {}).get("repeats", [])]
    return f"; split seeds {', '.join(map(str, seeds))}" if seeds else ""


def summary_lines(res: Results, digits: int = 3) -> list[str]:
    """The headline as text (what ``chmfl demo`` prints): per method the mean fold AUC with its
    corrected 95% CI, each comparison's AUC difference with its corrected CI, p and
    Holm-adjusted p, the mean Dice of the methods that segment, and the minimum detectable AUC
    difference, with ``digits`` decimals."""
    s = method_summary(res.metrics, res.predictions)
    auc = s[(s["metric"] == "auc") & (s["level"] == "fold")].set_index("method")
    c = _comparisons(res)
    c_auc = c[c["metric"] == "auc"].set_index("method") if not c.empty else c
    ref = res.reference
    lines = [f"{_design(res)}{_seeds(res)}",
             "AUC: mean over the test folds [Nadeau-Bengio corrected 95% CI]"
             + (f"; vs {ref}: paired corrected resampled t-test, p (Holm across all {int(c['p'].notna().sum())} "
                "comparisons of comparisons.csv)" if ref and not c.empty else "")]
    width = max(len(m) for m in res.methods)
    for m in [m for m in res.methods if m in auc.index]:
        r = auc.loc[m]
        text = f"  {m:<{width}}  {mean_ci(r['estimate'], r['low'], r['high'], digits)}"
        if m == ref:
            text += "  (reference)"
        elif m in c_auc.index and c_auc.loc[m, "versus"] == ref:
            d = c_auc.loc[m]
            text += (f"  Δ {mean_ci(d['diff'], d['low'], d['high'], digits)}  p {fmt_p(d['p'], digits)}  "
                     f"p(Holm) {fmt_p(d['p_holm'], digits)}")
        lines.append(text)
    dsc = s[(s["metric"] == "dsc") & (s["level"] == "fold")].set_index("method")
    for m in [m for m in res.methods if m in dsc.index]:
        r = dsc.loc[m]
        lines.append(f"Dice of {m}'s mask (no contour input; mean over the test folds) "
                     f"{mean_ci(r['estimate'], r['low'], r['high'], digits)}")
    mdd = c[(c["metric"] == "auc") & c["mdd"].notna()] if not c.empty else c
    if len(mdd):
        parts = ", ".join(f"{r['method']} vs {r['versus']} {fmt(r['mdd'], digits)}" for r in mdd.to_dict("records"))
        lines.append(f"Smallest AUC difference this design detects with {POWER:.0%} power (α = {ALPHA}): {parts}")
    return lines
