"""The report's statistics: corrected summary and comparisons equal the stats functions (and the
files the runner writes), precision/F1 from pooled predictions, the paper's t-test only beside
the paper's table (on one repeat), calibration and decision-curve figures, label counts."""

from __future__ import annotations

import pandas as pd
import pytest

from chmfl.report import build_report
from chmfl.stats import method_summary, paired_comparisons, statistics_tables, ttest_vs_reference


def test_summary_and_comparisons_equal_the_stats_functions(full_report):
    root, _ = full_report
    metrics = pd.read_csv(root / "metrics.csv", dtype={"fold": str})
    pred = pd.read_csv(root / "predictions.csv", dtype={"patient_id": str})
    written = statistics_tables(metrics, pred, "chmfl")  # what the runner writes next to metrics.csv
    summary = pd.read_csv(root / "tables" / "summary.csv")
    pd.testing.assert_frame_equal(summary, written["summary.csv"].reset_index(drop=True), check_dtype=False)
    comparisons = pd.read_csv(root / "tables" / "comparisons.csv")
    want = paired_comparisons(metrics, "chmfl")
    assert comparisons["p_holm"].to_numpy() == pytest.approx(want["p_holm"].to_numpy(), nan_ok=True)
    auc = summary[(summary.metric == "auc") & (summary.level == "fold")].set_index("method")
    assert auc.loc["chmfl", "interval"] == "nadeau-bengio" and auc.loc["chmfl", "n"] == 4  # 2 repeats x 2 folds
    assert (auc["low"] < auc["estimate"]).all()


def test_precision_and_f1_come_from_pooled_predictions(full_report):
    root, _ = full_report
    metrics = pd.read_csv(root / "metrics.csv", dtype={"fold": str})
    cls = pd.read_csv(root / "tables" / "classification.csv").set_index("method")
    pooled = metrics[(metrics.fold == "all") & (metrics.metric == "precision") & (metrics.method == "hc-rf")]
    assert cls.loc["hc-rf", "precision_mean"] == pytest.approx(pooled["value"].mean())
    assert cls.loc["hc-rf", "precision_n"] == 2  # repeats, not folds
    s = method_summary(metrics)
    f1 = s[(s.method == "hc-rf") & (s.metric == "f1") & (s.level == "pooled")].iloc[0]
    assert cls.loc["hc-rf", "f1_mean"] == pytest.approx(f1["estimate"])


def _md_rows(path) -> list[dict[str, str]]:
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    return [dict(zip(cells[0], row)) for row in cells[2:]]


def test_paper_ttest_only_beside_the_paper_and_on_one_repeat(full_report, tmp_path, results_factory):
    root, _ = full_report
    paper_md = (root / "tables" / "paper_table1.md").read_text()
    assert "by the paper's test" in paper_md and "repeat 0" in paper_md
    cls_note = (root / "tables" / "classification.md").read_text()
    assert "unpaired" not in cls_note and "Holm" in cls_note
    metrics = pd.read_csv(root / "metrics.csv", dtype={"fold": str})
    tt = ttest_vs_reference(metrics, "chmfl", repeat=0)
    rows = {r["chmfl method"]: r for r in _md_rows(root / "tables" / "paper_table1.md")}
    for metric, column in (("auc", "AUC ours"), ("accuracy", "Acc. ours"), ("sensitivity", "Sen. ours")):
        p = tt[(tt.method == "hc-rf") & (tt.metric == metric)].iloc[0]["p"]
        assert rows["hc-rf"][column].endswith("*") == (p < 0.05), metric
    custom = build_report(results_factory(tmp_path / "custom", minimal=True, experiment="custom"))
    text = custom.html.read_text(encoding="utf-8")
    assert "paper&#x27;s test" not in text and "unpaired" not in text


def test_statistics_section_and_calibration_figures(full_report):
    root, _ = full_report
    html = (root / "report.html").read_text(encoding="utf-8")
    assert "Smallest AUC difference this design" in html and "80% power" in html
    assert "Label counts" in html and "patients tested" in html
    for name in ("reliability", "decision_curve"):
        assert (root / "figures" / f"{name}.png").stat().st_size > 1000
    assert "Nadeau-Bengio" in (root / "tables" / "summary.md").read_text()


def test_summary_lines_quote_the_corrected_numbers(full_report):
    """What ``chmfl demo`` prints: per method the corrected mean AUC and CI, against the
    reference the paired Δ, p and Holm p of comparisons.csv, and the MDD line."""
    from chmfl.report.load import load_results
    from chmfl.report.render import fmt, fmt_p, mean_ci
    from chmfl.report.statistics import summary_lines

    root, _ = full_report
    lines = summary_lines(load_results(root))
    metrics = pd.read_csv(root / "metrics.csv", dtype={"fold": str})
    s = method_summary(metrics)
    c = paired_comparisons(metrics, "chmfl")
    assert lines[0].startswith("2 repeat(s) × 2 folds") and "split seeds" in lines[0]
    hc = next(ln for ln in lines if ln.strip().startswith("hc-rf"))
    auc = s[(s.method == "hc-rf") & (s.metric == "auc") & (s.level == "fold")].iloc[0]
    d = c[(c.method == "hc-rf") & (c.metric == "auc")].iloc[0]
    assert mean_ci(auc["estimate"], auc["low"], auc["high"]) in hc
    assert f"Δ {mean_ci(d['diff'], d['low'], d['high'])}" in hc and f"p(Holm) {fmt_p(d['p_holm'])}" in hc
    assert any(ln.strip().startswith("chmfl") and ln.endswith("(reference)") for ln in lines)
    if "dsc" in set(metrics["metric"]):
        dsc = s[(s.method == "chmfl") & (s.metric == "dsc") & (s.level == "fold")].iloc[0]
        assert f"Dice of chmfl's mask (no contour input; mean over the test folds) " \
               f"{mean_ci(dsc['estimate'], dsc['low'], dsc['high'])}" in lines
    assert lines[-1].startswith("Smallest AUC difference") and f"hc-rf vs chmfl {fmt(d['mdd'])}" in lines[-1]


def test_summary_lines_with_two_decimals(full_report):
    """The demo prints two decimals (CHMFL's third varies with the CPU's vector instructions)."""
    import re

    from chmfl.report.load import load_results
    from chmfl.report.statistics import summary_lines

    root, _ = full_report
    lines = summary_lines(load_results(root), digits=2)
    hc = next(ln for ln in lines if ln.strip().startswith("hc-rf"))
    numbers = re.findall(r"-?\d+\.\d+", hc)
    assert numbers and all(len(n.split(".")[1]) == 2 for n in numbers), hc
