"""``--test-box contour|hotspot``: test patients' boxes placed without their contour, on tiny
synthetic caches whose stored hotspot boxes differ from the contour boxes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.synthetic import TINY, write_cache
from tests.synthetic import two_fold_experiment as _exp

from chmfl.cli.main import main
from chmfl.cv.experiment import MethodRun
from chmfl.cv.runner import RunOptions, run_experiment
from chmfl.data.cases import load_cases
from chmfl.errors import ChmflError
from chmfl.methods.registry import create, load_method
from chmfl.stats import whole_tumour_metrics


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_cache(tmp_path_factory.mktemp("cache"), n=12, hotspot=True, refused=(3,))


@pytest.fixture(scope="module")
def both(cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("res")
    exp = _exp(MethodRun("suvmax-volume"), MethodRun("suvmax-mtv"), MethodRun("chmfl", model_kwargs=TINY, name="chmfl"))
    run_experiment(exp, cache, out, RunOptions(seed=1, progress=False, test_box="contour,hotspot"))
    return out


def test_parallel_hotspot_jobs_reuse_the_contour_models(cache, tmp_path):
    """With fold jobs in parallel, every hotspot job evaluates its contour job's saved model
    (it runs after it) instead of refitting it beside it."""
    # per fold the jobs are [mtv, chmfl, mtv@hotspot, chmfl@hotspot]: the quick mtv frees a worker
    # for chmfl@hotspot while chmfl still trains
    exp = _exp(MethodRun("suvmax-mtv"), MethodRun("chmfl", model_kwargs=TINY, name="chmfl"))
    run_experiment(exp, cache, tmp_path, RunOptions(seed=1, progress=False, test_box="contour,hotspot",
                                                    parallel_folds=2))
    for fold in range(2):
        done = json.loads((tmp_path / "chmfl@hotspot" / "repeat_0" / f"fold_{fold}" / "done.json").read_text())
        assert done["model_from"] and done["model_from"].endswith(f"chmfl/repeat_0/fold_{fold}")


def test_a_hotspot_case_hides_its_contour_and_features(cache):
    case = load_cases(cache)[0]
    hot = case.in_box("hotspot")
    assert case.load().mask is not None and hot.load().mask is None and hot.features is None
    truth, outside = hot.truth()
    assert truth.sum() > 0 and outside == 0.0
    assert not np.array_equal(hot.load().pet_suv, case.load().pet_suv)


def test_both_regimes_on_the_same_splits(both):
    preds = pd.read_csv(both / "predictions.csv", dtype={"patient_id": str})
    assert set(preds["method"]) == {"suvmax-volume", "suvmax-mtv", "chmfl", "suvmax-mtv@hotspot", "chmfl@hotspot"}
    contour, hot = preds[preds.method == "suvmax-mtv"], preds[preds.method == "suvmax-mtv@hotspot"]
    assert len(contour) == 12 and len(hot) == 11 and "P003" not in set(hot.patient_id)  # refused: no probability
    merged = contour.merge(hot, on="patient_id")
    assert (merged.fold_x == merged.fold_y).all()  # same splits
    assert not np.allclose(merged.probability_x, merged.probability_y)  # the test input changed
    done = json.loads((both / "suvmax-mtv@hotspot" / "repeat_0" / "fold_0" / "done.json").read_text())
    assert done["test_box"] == "hotspot" and done["model_from"].endswith("suvmax-mtv/repeat_0/fold_0")
    cfg = yaml.safe_load((both / "config.yaml").read_text())
    rec = cfg["test_box"]
    assert rec["regimes"] == ["contour", "hotspot"] and rec["hotspot_n_refused"] == 1 and "P003" in rec["hotspot_refused"]
    assert "suvmax-volume@hotspot" in rec["hotspot_left_out"]
    assert any(s.startswith("suvmax-volume@hotspot: left out") for s in cfg["skipped"])
    boxes = pd.read_csv(both / "test_boxes.csv", dtype={"patient_id": str})
    assert set(boxes.test_box) == {"contour", "hotspot"}
    row = boxes[(boxes.test_box == "hotspot") & (boxes.patient_id == "P003")].iloc[0]
    assert row.decision == "refused" and pd.isna(row.tumour_in_box)


def test_hotspot_predictions_come_from_the_hotspot_box(both, cache):
    """The fold's saved model, given the test patient's hotspot box, returns the recorded probability."""
    fold = both / "suvmax-mtv@hotspot" / "repeat_0" / "fold_0"
    preds = pd.read_csv(fold / "predictions.csv", dtype={"patient_id": str})
    by_id = {c.patient_id: c for c in load_cases(cache)}
    model = load_method(fold / "model")
    again = model.predict_proba([by_id[p].in_box("hotspot") for p in preds.patient_id])
    np.testing.assert_allclose(again, preds.probability, rtol=1e-6)


def test_segmentation_against_the_whole_tumour(both):
    metrics = pd.read_csv(both / "metrics.csv", dtype={"fold": str})
    hot = metrics[(metrics.method == "chmfl@hotspot") & (metrics.fold == "all")].set_index("metric")["value"]
    assert {"dsc", "dsc_whole", "seg_sensitivity_whole", "tumour_in_box"} <= set(hot.index)
    assert hot["tumour_in_box"] < 1.0  # the shifted boxes cut some tumours
    seg = pd.read_csv(both / "chmfl@hotspot" / "repeat_0" / "fold_0" / "seg_metrics.csv")
    assert (seg.dsc_whole <= seg.dsc + 1e-9).all()


def test_whole_tumour_metrics():
    truth = np.zeros((4, 4, 4), np.uint8)
    truth[1:3, 1:3, 1:3] = 1  # 8 voxels in the box
    got = whole_tumour_metrics(truth, truth, outside_voxels=8.0)
    assert got["dsc_whole"] == pytest.approx(16 / 24) and got["seg_sensitivity_whole"] == 0.5
    assert got["tumour_in_box"] == 0.5
    assert whole_tumour_metrics(truth, truth, 0.0)["dsc_whole"] == 1.0


def test_methods_declare_whether_they_need_a_contour():
    assert create(MethodRun("hc-rf")).needs_contour() and create(MethodRun("suvmax-volume")).needs_contour()
    assert create(MethodRun("mor-3dcnn")).needs_contour() and create(MethodRun("3dmcl")).needs_contour()
    assert create(MethodRun("mask-hmfl")).needs_contour() and create(MethodRun("cnlpc")).needs_contour()
    for name in ("chmfl", "suvmax-mtv", "cnn3d-petct", "vnet", "clinical"):
        assert create(MethodRun(name)).needs_contour() is None, name


def test_only_contour_methods_in_a_hotspot_run_is_refused(cache, tmp_path):
    with pytest.raises(ChmflError, match="needs a contour at test time"):
        run_experiment(_exp(MethodRun("hc-rf")), cache, tmp_path, RunOptions(progress=False, test_box="hotspot"))


def test_a_cache_without_hotspot_boxes_is_a_one_line_error(tmp_path, capsys):
    old = write_cache(tmp_path / "old", n=8)
    code = main(["cv", "--data", str(old), "--out", str(tmp_path / "r"), "--methods", "suvmax-mtv",
                 "--folds", "2", "--test-box", "hotspot", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "no hotspot test box" in err[0]
    assert not (tmp_path / "r" / "predictions.csv").exists()


def test_bad_test_box_value(tmp_path):
    with pytest.raises(ChmflError, match="--test-box"):
        RunOptions(test_box="centroid")


def test_the_report_shows_both_regimes(both):
    from chmfl.report import build_report

    html = open(build_report(both).html, encoding="utf-8").read()
    for needle in ("Test boxes", "chmfl@hotspot", "suvmax-mtv@hotspot", "the paper&#x27;s placement",
                   "Segmentation against the whole tumour", "P003", "left out: suvmax-volume@hotspot"):
        assert needle in html or needle.replace("&#x27;", "'") in html, needle
