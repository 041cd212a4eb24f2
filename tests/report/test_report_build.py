"""build_report on synthetic results folders: every file written, self-contained HTML,
numbers equal to the stats functions, graceful omissions, one-line errors, no torch."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from chmfl.cli.main import main
from chmfl.errors import ChmflError
from chmfl.report import build_report
from chmfl.report.load import load_results
from chmfl.stats import auc_score, delong_test, fold_table

FULL_TABLES = ("classification", "paper_table1", "summary", "comparisons", "pooled", "delong", "segmentation", "timing")
FULL_FIGURES = ("roc", "reliability", "decision_curve", "confusion", "tsne", "saliency", "segmentation")


def _external_refs(html: str) -> list[str]:
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html)
    return [r for r in refs if not (r.startswith("data:") or r.startswith("#"))]


def test_full_report_writes_every_table_and_figure(full_report):
    root, paths = full_report
    assert paths.html == root / "report.html" and paths.html.is_file()
    for name in FULL_TABLES:
        for suffix in (".md", ".csv", ".tex"):
            assert (root / "tables" / f"{name}{suffix}").is_file(), name + suffix
    for name in FULL_FIGURES:
        for suffix in (".png", ".svg"):
            path = root / "figures" / f"{name}{suffix}"
            assert path.is_file() and path.stat().st_size > 1000, name + suffix
    assert set(paths.figures) == {root / "figures" / f"{n}{s}" for n in FULL_FIGURES for s in (".png", ".svg")}
    assert all(p.is_file() for p in paths.tables)
    assert any("weight sweep" in line for line in paths.omitted)  # no seg_weight variants in this folder
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_html_is_self_contained(full_report):
    root, _ = full_report
    html = (root / "report.html").read_text(encoding="utf-8")
    assert _external_refs(html) == []
    assert "http://" not in html and "https://" not in html
    assert html.count('src="data:image/png;base64,') == len(FULL_FIGURES)
    for section in ("Classification", "Statistics", "ROC curves", "Segmentation", "Configuration", "Data", "Versions", "Run time"):
        assert f">{section}</h2>" in html
    assert "local recurrence" in html and "abc1234" in html  # data summary and git commit from config.yaml
    assert "2024-01-01T01:00:00" in html and "Skipped by the run: resnet18-petct" in html


def test_table_numbers_equal_the_stats_functions(full_report):
    root, _ = full_report
    metrics = pd.read_csv(root / "metrics.csv", dtype={"fold": str})
    cls = pd.read_csv(root / "tables" / "classification.csv").set_index("method")
    ft = fold_table(metrics)
    want = ft[(ft.method == "hc-rf") & (ft.metric == "auc")].iloc[0]
    assert cls.loc["hc-rf", "auc_mean"] == pytest.approx(want["mean"])
    assert cls.loc["hc-rf", "auc_sd"] == pytest.approx(want["sd"])
    pred = pd.read_csv(root / "predictions.csv", dtype={"patient_id": str})
    pooled = pd.read_csv(root / "tables" / "pooled.csv")
    for (m, r), part in pred.groupby(["method", "repeat"]):
        row = pooled[(pooled.method == m) & (pooled.repeat == r)].iloc[0]
        assert row["auc"] == pytest.approx(auc_score(part.label, part.probability))
        assert row["auc_boot_low"] <= row["auc"] <= row["auc_boot_high"]
    dl = pd.read_csv(root / "tables" / "delong.csv").iloc[0]
    a = pred[(pred.method == dl["method"]) & (pred.repeat == dl["repeat"])].set_index("patient_id").sort_index()
    b = pred[(pred.method == dl["versus"]) & (pred.repeat == dl["repeat"])].set_index("patient_id").sort_index()
    assert dl["p"] == pytest.approx(delong_test(a.label, a.probability, b.probability).p)


def test_paper_numbers_side_by_side(full_report):
    root, _ = full_report
    paper = pd.read_csv(root / "tables" / "paper_table1.csv", keep_default_na=False).set_index("paper_method")
    assert paper.loc["CHMFL (Ours)", "method"] == "chmfl"
    assert paper.loc["CHMFL (Ours)", "auc_paper"] == pytest.approx(0.873)
    assert paper.loc["HC + RF", "method"] == "hc-rf" and paper.loc["CFL (Ours)", "method"] == ""
    md = (root / "tables" / "paper_table1.md").read_text()
    assert "(not run)" in md and "0.873" in md
    assert r"\begin{tabular}" in (root / "tables" / "paper_table1.tex").read_text()


def test_minimal_folder_still_gives_a_report(tmp_path, results_factory):
    root = results_factory(tmp_path / "run", minimal=True, experiment="custom")
    assert sorted(p.name for p in root.iterdir()) == ["config.yaml", "metrics.csv", "predictions.csv", "splits.json"]
    paths = build_report(root)
    html = paths.html.read_text(encoding="utf-8")
    assert (root / "figures" / "roc.svg").is_file() and (root / "figures" / "confusion.png").is_file()
    for absent in ("tsne", "saliency"):
        assert not (root / "figures" / f"{absent}.png").exists()
    assert not (root / "tables" / "segmentation.csv").exists()  # no segmenting method: no seg metrics
    assert (root / "tables" / "classification.csv").is_file() and (root / "tables" / "delong.tex").is_file()
    assert "Omitted: no embeddings.csv" in html and "no timing.csv" in html and "no segmentation metrics" in html
    assert not (root / "tables" / "paper_custom.csv").exists()
    assert _external_refs(html) == []


def test_weight_sweep_and_rebuild(tmp_path, results_factory):
    from chmfl.methods.spec import MethodRun

    methods = tuple(MethodRun("chmfl", {"seg_weight": w}) for w in (0.3, 0.5, 0.7))
    root = results_factory(tmp_path / "run", methods=methods, segmenting=(), minimal=True, experiment="fig5")
    (root / "tables").mkdir()
    (root / "tables" / "stale.md").write_text("old")
    paths = build_report(root)
    assert (root / "figures" / "weight_sweep.png").is_file() and (root / "figures" / "weight_sweep.svg").is_file()
    sweep = pd.read_csv(root / "tables" / "weight_sweep.csv")
    assert sorted(set(sweep["w"])) == [0.3, 0.5, 0.7]
    assert not (root / "tables" / "stale.md").exists()  # tables/ is rebuilt as a whole
    assert "best performance was achieved when the weight was 0.5" in paths.html.read_text(encoding="utf-8")


def test_predictions_only_recomputes_metrics(tmp_path, results_factory):
    root = results_factory(tmp_path / "run", minimal=True)
    before = load_results(root).metrics
    (root / "metrics.csv").unlink()
    res = load_results(root)
    assert any("recomputed" in n for n in res.notes)
    cls = before[before.metric.isin(["accuracy", "auc"])].sort_values(["method", "repeat", "fold", "metric"])
    now = res.metrics[res.metrics.metric.isin(["accuracy", "auc"])].sort_values(["method", "repeat", "fold", "metric"])
    assert np.allclose(cls["value"].to_numpy(), now["value"].to_numpy())


def test_bad_folder_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(ChmflError, match="not found"):
        build_report(tmp_path / "missing")
    with pytest.raises(ChmflError, match="neither predictions.csv nor metrics.csv"):
        build_report(tmp_path)
    (tmp_path / "predictions.csv").write_text("method,repeat\nx,0\n")
    with pytest.raises(ChmflError, match="missing column"):
        build_report(tmp_path)
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chmfl: error:") and "\n" not in err


def test_cli_and_no_torch_import(tmp_path, results_factory):
    root = results_factory(tmp_path / "run", methods=("hc-rf",), segmenting=(), minimal=True)
    code = ("import sys; from chmfl.cli.main import main; rc = main(['report', sys.argv[1]]); "
            "assert rc == 0, rc; assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("report.html")
    assert (root / "report.html").is_file()


def test_a_broken_input_file_costs_only_its_figure(tmp_path, results_factory):
    root = results_factory(tmp_path / "run", methods=("chmfl",), segmenting=("chmfl",))
    for npz in (root / "chmfl").glob("repeat_*/fold_*/slices/*.npz"):
        npz.write_bytes(b"not an npz")
    paths = build_report(root)
    assert any("saliency_figure failed" in line for line in paths.omitted)
    assert (root / "figures" / "roc.png").is_file() and (root / "figures" / "tsne.svg").is_file()
    assert not (root / "figures" / "saliency.png").exists()


def test_latex_and_markdown_escaping():
    from chmfl.report.render import Table, tex_escape, to_markdown

    assert tex_escape("chmfl[seg_weight=0.5] 50% ± 0.1 × 2 < 0.05") == (
        r"chmfl[seg\_weight=0.5] 50\% $\pm$ 0.1 $\times$ 2 $<$ 0.05")
    table = Table("t", "T", pd.DataFrame({"a|b": ["x|y"]}), pd.DataFrame())
    assert "| a\\|b |" in to_markdown(table) and "| x\\|y |" in to_markdown(table)
