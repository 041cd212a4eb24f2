"""The report says which protocol its numbers come from beside the paper's, marks runs that
stopped far from convergence, shows the demo beside the paper's Table I, windows CT for soft
tissue, gives saliency its own section and shows readers no 'None' and no raw YAML."""

from __future__ import annotations

import json
import re
from html import unescape

import numpy as np
import pandas as pd
import pytest
import yaml

from chmfl.report import build_report
from chmfl.report.protocol import FEW_EPOCHS, unconverged


@pytest.mark.parametrize("losses, max_epochs, reason", [
    ([1.0, 0.8, 0.7, 0.65], 10, ""),  # early stopping ended it: converged by the paper's criterion
    ([1.0] * 60 + list(np.linspace(0.9, 0.5, 10)), 70, "loss still falling"),
    ([1.0, 0.5] + [0.5] * 98, 100, ""),  # limit reached, loss flat for long: converged
    ([1.0, 0.9] + [0.8] * 10, 12, "after 12 epochs"),  # flat, but 12 << the paper's ~200
    ([1.0], 1, "still falling"),
])
def test_convergence_rule(losses, max_epochs, reason):
    got = unconverged(losses, max_epochs, 0.01)
    assert (reason in got) if reason else got == ""
    assert FEW_EPOCHS == 50


def _with_training_logs(root, method="chmfl", epochs=3):
    """Give every fold of ``method`` a log.csv and done.json as a neural fold has."""
    for done in (root / method).glob("repeat_*/fold_*/done.json"):
        done.write_text(json.dumps({"train": {"epochs": epochs, "min_delta": 0.01}}))
        pd.DataFrame({"epoch": range(1, epochs + 1), "loss": np.linspace(1.0, 0.5, epochs)}).to_csv(
            done.parent / "log.csv", index=False)


def _text(html: str) -> str:
    html = re.sub(r'src="data:[^"]*"', "", html)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_paper_tables_carry_the_protocol_line_and_marks(tmp_path, results_factory):
    root = results_factory(tmp_path / "run")
    _with_training_logs(root)
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    cfg["data"]["prepare"] = {"config": {"voxel_mm": 4.0, "center": "auto"}}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    html = (build_report(root).html).read_text()
    section = html[html.find('id="classification"'):html.find('id="statistics"')]
    line = ("Different protocols — this run: 4 mm, 2 epochs, fp32, box at the contour centroid (PET hotspot "
            "without one), 2 repeats × 2 folds; the paper: 1 mm, until the loss stopped changing (~200 epochs)")
    assert line in _text(section)
    assert section.find("Different protocols") < section.find('id="tab-paper_table1"')  # above the table
    paper = pd.read_csv(root / "tables" / "paper_table1.csv")  # numbers unchanged; the mark is display only
    assert "chmfl" in set(paper["method"])
    md = (root / "tables" / "paper_table1.md").read_text()
    assert "| chmfl † |" in md and "stopped far from convergence" in md and "hc-rf †" not in md


def test_demo_report_shows_table_i_beside_its_methods(tmp_path, results_factory):
    from chmfl.methods.spec import MethodRun

    demo = MethodRun("chmfl", size="demo")
    root = results_factory(tmp_path / "demo", methods=("suvmax-volume", "hc-rf", demo),
                           segmenting=(demo.label,), experiment="demo")
    html = build_report(root).html.read_text()
    table = pd.read_csv(root / "tables" / "paper_table1_reference.csv")
    assert list(table["source"]).count("this run") == 3 and list(table["source"]).count("paper") == 7
    assert table.loc[table["method"] == "CHMFL (Ours)", "auc"].item() == pytest.approx(0.873)
    text = _text(html)
    assert "The paper's Table I beside this run (different protocols)" in text
    assert "Different protocols — this run" in text


def test_report_shows_no_none_and_no_raw_yaml(full_report):
    root, paths = full_report
    html = paths.html.read_text()
    outside = re.sub(r"<details>.*?</details>", "", html, flags=re.S)
    assert "None" not in _text(outside)
    assert "chmfl_version: 0.1.0" not in outside and "<pre>" not in outside  # YAML only inside <details>
    assert "chmfl_version: 0.1.0" in html  # still there, collapsed


def test_saliency_has_its_own_section_and_link(full_report):
    _, paths = full_report
    html = paths.html.read_text()
    assert '<a href="#saliency">Saliency</a>' in html and '<section id="saliency"><h2>Saliency</h2>' in html
    features = html[html.find('<section id="features">'):html.find('<section id="saliency">')]
    assert 'id="fig-tsne"' in features and 'id="fig-saliency"' not in features


def test_tsne_says_what_marker_shape_means(full_report):
    _, paths = full_report
    html = paths.html.read_text()
    caption = _text(html[html.find('id="fig-tsne"'):])[:900]
    assert "Marker shape: the test fold" in caption


def test_ct_panels_use_a_soft_tissue_window(tmp_path, results_factory):
    """4 mm, float16, 16 HU steps between [-1000, 1000]: STS_001's CT panels were two-tone noise."""
    from matplotlib.figure import Figure

    from chmfl.report import images

    root = results_factory(tmp_path / "run")
    for f in root.glob("chmfl/repeat_*/fold_*/slices/*.npz"):
        arrays = dict(np.load(f))
        arrays["ct_hu"] = np.where(arrays["mask"] > 0, 60.0, -1000.0).astype(np.float32)
        np.savez(f, **arrays)
    from chmfl.report.load import load_results

    out = images.saliency_figure(load_results(root))
    assert "soft-tissue window (level 40, width 400" in out.caption
    ct_panel = out.figure.axes[0].images[0]
    assert ct_panel.get_clim() == images.SOFT_TISSUE_HU and isinstance(out.figure, Figure)
