"""End to end on real patients at 4 mm (the bundled copy of the paper's cohort): 2 folds x
1 epoch through the runner, then the report from the results folder alone."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from chmfl.cv.experiment import Experiment, MethodRun
from chmfl.cv.runner import RunOptions, run_experiment
from chmfl.preprocess.bundle import demo_cache_dir

TINY = {"widths": [4, 8, 16, 32, 64], "decoder_convs": [1, 1, 1, 1], "decoder_kernel": 3}


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    """12 labelled real patients (6 DM, 6 no DM) and one excluded, from the bundled cache."""
    src, root = demo_cache_dir(), tmp_path_factory.mktemp("real")
    m = pd.read_csv(src / "manifest.csv", dtype={"patient_id": str})
    pick = pd.concat([m[m["dm"] == 1].head(6), m[m["dm"] == 0].head(6), m[m["dm"].isna()].head(1)])
    for rel in pick["path"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, root / rel)
    pick.to_csv(root / "manifest.csv", index=False)
    shutil.copy(src / "prepare_config.yaml", root / "prepare_config.yaml")
    for name in ("features.csv", "features.params.yaml"):  # the full-contour feature table
        shutil.copy(src / name, root / name)
    return root


def test_two_folds_one_epoch_then_report(real_cache, tmp_path):
    exp = Experiment("custom", "real e2e", (
        MethodRun("suvmax-volume"), MethodRun("hc-rf"),
        MethodRun("chmfl", model_kwargs=TINY, name="chmfl[tiny]"),
    ), reference="chmfl[tiny]", folds=2, train={"epochs": 1, "batch_size": 2, "precision": "32"})
    out = run_experiment(exp, real_cache, tmp_path / "res", RunOptions(seed=0, progress=False))
    preds = pd.read_csv(out / "predictions.csv", dtype={"patient_id": str})
    assert len(preds) == 3 * 12 and preds["probability"].between(0, 1).all()
    assert set(preds["patient_id"]) == set(pd.read_csv(real_cache / "manifest.csv").dropna(subset=["dm"])["patient_id"])
    metrics = pd.read_csv(out / "metrics.csv", dtype={"fold": str})
    pooled = metrics[(metrics["fold"] == "all") & (metrics["metric"] == "auc")].set_index("method")["value"]
    assert pooled["suvmax-volume"] > 0.5  # SUVmax and volume carry signal on the real patients
    # hc-rf and the floor read the full-contour table, and the results say so
    source = yaml.safe_load((out / "config.yaml").read_text())["data"]["features"]
    assert len(source) == 1 and source[0].startswith("contour:")
    for method in ("hc-rf", "suvmax-volume"):
        cfg = json.loads((out / method / "repeat_0" / "fold_0" / "model" / "config.json").read_text())
        assert cfg["state"]["transform"]["source"] == source[0]
    assert {"dsc", "jaccard"} <= set(metrics.loc[metrics["method"] == "chmfl[tiny]", "metric"])

    from chmfl.report import build_report

    paths = build_report(out)
    html = paths.html.read_text()
    assert "chmfl[tiny]" in html and "suvmax-volume" in html and "http://" not in html
    assert list((out / "figures").glob("*.png")) and list((out / "tables").glob("*.tex"))
