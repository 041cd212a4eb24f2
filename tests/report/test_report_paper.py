"""The paper's numbers: transcription sanity checks and the mapping of paper rows to methods."""

from __future__ import annotations

import pytest

from chmfl.methods.spec import MethodRun
from chmfl.report.paper import (
    PAPER_EXPERIMENTS,
    match_rows,
    paper_data,
    paper_order,
    paper_table,
    weight_of,
)


def test_every_paper_table_is_complete_and_in_range():
    for key in PAPER_EXPERIMENTS[:-1]:
        table = paper_table(key)
        assert table is not None and table.rows
        for row in table.rows:
            assert set(row.values) == set(table.metrics)
            assert all(0.0 < v <= 1.0 for v in row.values.values())
    assert paper_table("fig5") is None and paper_table(None) is None
    assert paper_data()["fig5"]["best_weight"] == 0.5


def test_chmfl_row_is_the_same_in_every_table_and_matches_its_confusion_counts():
    rows = [r for k in ("table1", "table2", "tableS2", "tableS3") for r in paper_table(k).rows if r.method == "chmfl"]
    assert len(rows) == 4 and all(r.values == rows[0].values for r in rows)
    counts = next(c for c in paper_data()["fig_s1"]["derived_counts"] if c["method"] == "chmfl")
    tp, fn, tn, fp = counts["tp"], counts["fn"], counts["tn"], counts["fp"]
    v = rows[0].values
    assert round((tp + tn) / 48, 3) == v["accuracy"] and round(tp / (tp + fn), 3) == v["sensitivity"]
    assert round(tp / (tp + fp), 3) == v["precision"] and round(2 * tp / (2 * tp + fp + fn), 3) == v["f1"]
    assert fp / 48 == pytest.approx(0.083, abs=5e-4)  # "8.3% out of 48 patients" (Fig S1 text)


def test_method_specs_and_variants():
    """Rows are matched by the stored run spec, not by parsing labels: a label that merely
    looks like a variant but has no spec matches nothing."""
    sweep = MethodRun("chmfl", {"seg_weight": 0.3})
    assert sweep.label == "chmfl[seg_weight=0.3]"
    assert weight_of(sweep) == ("chmfl", 0.3) and weight_of(MethodRun("chmfl")) is None
    assert weight_of(MethodRun("chmfl", {"seg_weight": 0.3}, size="demo")) is None
    s2 = paper_table("tableS2")
    runs = [MethodRun("chmfl"), MethodRun("resnet18-petct"), MethodRun("resnet18-petct", pretrained="imagenet")]
    specs = {r.label: r for r in runs}
    methods = [*specs, "resnet34-petct[pretrained=x]"]  # a label without a spec
    assert list(specs) == ["chmfl", "resnet18-petct", "resnet18-petct[pretrained=imagenet]"]
    matched = {row.paper: m for row, m in match_rows(s2, methods, specs)}
    assert matched["ResNet18-PET-CT"] == "resnet18-petct"
    assert matched["ResNet18-PET-CT (pretrained)"] == "resnet18-petct[pretrained=imagenet]"
    assert matched["ResNet34-PET-CT"] is None and matched["ResNet34-PET-CT (pretrained)"] is None
    s3 = {row.paper: row.method for row in paper_table("tableS3").rows}
    assert s3["CHMFL + GN_c4"] == "chmfl-gn4"
    t2 = {row.paper: row.method for row in paper_table("table2").rows}
    assert t2["3D-CNN-PET-CT"] == "cnn3d-petct" and t2["Mask + HMFL (Ours)"] == "mask-hmfl"
    s4 = {row.paper: row.method for row in paper_table("tableS4").rows}
    assert s4 == {"V-net": "vnet", "CFL (Ours)": "cfl", "CHMFL (Ours)": "chmfl"}


def test_paper_order_puts_extra_methods_last():
    specs = {m: MethodRun(m) for m in ("chmfl", "hc-rf")}
    assert paper_order("table1", ["chmfl", "extra", "hc-rf"], specs) == ["hc-rf", "chmfl", "extra"]
    assert paper_order("custom", ["b", "a"], {}) == ["b", "a"]


def test_segmentation_paper_table_side_by_side(full_results):
    from chmfl.report.load import load_results
    from chmfl.report.tables import comparison_table

    res = load_results(full_results)
    res.config["experiment"] = "tableS4"
    table = comparison_table(res, paper_table("tableS4"))
    row = table.data.set_index("paper_method").loc["CHMFL (Ours)"]
    assert row["method"] == "chmfl" and row["dsc_paper"] == 0.722 and 0 < row["dsc_ours"] < 1
    assert list(table.display.columns[:4]) == ["Paper method", "chmfl method", "DSC ours", "DSC paper"]
