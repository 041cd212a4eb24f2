"""The flagship table (issue 16) from a finished results folder, as Markdown.

Reads only the files ``chmfl reproduce benchmarks/flagship/flagship.yaml`` writes:
``summary.csv`` (mean fold AUC, Nadeau-Bengio corrected 95 % CI; pooled Brier and
calibration), ``comparisons.csv`` (paired corrected resampled t vs suvmax-volume, Holm across
the table), ``metrics.csv`` (DSC) and ``timing.csv`` (fit CPU seconds per fold).

Usage: python benchmarks/flagship/table.py OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def _cell(est: float, low: float, high: float, digits: int = 3) -> str:
    return f"{est:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def table(out: Path) -> str:
    summary = pd.read_csv(out / "summary.csv")
    comp = pd.read_csv(out / "comparisons.csv")
    metrics = pd.read_csv(out / "metrics.csv", dtype={"fold": str})
    timing = pd.read_csv(out / "timing.csv")
    rows = ["| method | AUC mean fold [corrected 95 % CI] | AUC diff vs floor [CI] | p | p Holm | "
            "Brier | cal. intercept | cal. slope | DSC | fit CPU s/fold (median) | folds |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(summary["method"]):
        mine = summary[summary["method"] == method]
        auc = mine[(mine["metric"] == "auc") & (mine["level"] == "fold")].iloc[0]
        s = mine[mine["level"] == "pooled"].set_index("metric")
        c = comp[(comp["method"] == method) & (comp["metric"] == "auc")]
        diff = (_cell(c["diff"].iloc[0], c["low"].iloc[0], c["high"].iloc[0]), f"{c['p'].iloc[0]:.3f}",
                f"{c['p_holm'].iloc[0]:.3f}") if len(c) else ("reference", "", "")
        pooled = [f"{s.loc[m, 'estimate']:.3f}" if m in s.index else "" for m in
                  ("brier", "calibration_intercept", "calibration_slope")]
        dsc = metrics.loc[(metrics["method"] == method) & (metrics["metric"] == "dsc")
                          & (metrics["fold"] != "all"), "value"]
        cpu = timing.loc[timing["method"] == method, "fit_cpu_s"] if "fit_cpu_s" in timing else pd.Series()
        cells = [method, _cell(auc["estimate"], auc["low"], auc["high"]), *diff, *pooled,
                 f"{dsc.mean():.3f}" if len(dsc) else "-",
                 f"{cpu.median():.0f}" if cpu.notna().any() else "-", str(int(auc["n"]))]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(Path(sys.argv[1])))
