"""`chmfl cv --endpoint dm-free-survival` on the bundled real cohort: event-stratified shared
splits, the survival results files, C-indices that lifelines recomputes from predictions.csv,
and the report's survival section."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifelines.utils import concordance_index

from chmfl.cli.main import main
from chmfl.preprocess.bundle import demo_cache_dir

BUNDLE = demo_cache_dir()
pytestmark = pytest.mark.skipif(not (BUNDLE / "manifest.csv").is_file(), reason="no demo bundle")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("surv")
    assert main(["cv", "--data", str(BUNDLE), "--out", str(out), "--endpoint", "dm-free-survival",
                 "--methods", "cox-suvmax-volume,clinical", "--folds", "3", "--repeats", "1", "--seed", "1",
                 "--no-progress"]) == 0
    return out


def test_splits_are_shared_and_stratified_by_event(run):
    splits = json.loads((run / "splits.json").read_text())
    preds = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str})
    event = preds.drop_duplicates("patient_id").set_index("patient_id")["event"]
    assert len(event) == 51 and event.sum() == 24
    folds = splits["repeats"][0]["folds"]
    assert [sum(event[p] for p in f["test"]) for f in folds] == [8, 8, 8]
    for _, g in preds.groupby("method"):  # every method saw the same test folds
        assert sorted(zip(g["patient_id"], g["fold"])) == sorted(
            (p, f["fold"]) for f in folds for p in f["test"])


def test_predictions_and_metrics_recomputed_with_lifelines(run):
    preds = pd.read_csv(run / "predictions.csv", dtype={"patient_id": str})
    metrics = pd.read_csv(run / "metrics.csv", dtype={"fold": str})
    cox = preds[preds["method"] == "cox-suvmax-volume"]
    assert cox[["dmfs_365d", "dmfs_730d", "dmfs_1095d"]].notna().all().all()
    assert preds.loc[preds["method"] == "clinical", "dmfs_730d"].isna().all()  # a classifier has no curve
    for method, g in preds.groupby("method"):
        want = concordance_index(g["time_days"], -g["risk"], g["event"])
        got = metrics[(metrics.method == method) & (metrics.fold == "all") & (metrics.metric == "c_harrell")]
        assert float(got["value"].iloc[0]) == pytest.approx(want, abs=1e-12)
        for fold, f in g.groupby("fold"):
            row = metrics[(metrics.method == method) & (metrics.fold == str(fold)) & (metrics.metric == "c_harrell")]
            assert float(row["value"].iloc[0]) == pytest.approx(concordance_index(f["time_days"], -f["risk"], f["event"]))
        # risk groups split at the training fold's median risk
        assert set(g["risk_group"]) == {"high", "low"}
        assert ((g["risk"] > g["train_median_risk"]) == (g["risk_group"] == "high")).all()
    pooled = metrics[metrics.fold == "all"]
    assert {"c_uno", "auc_730d", "ibs", "logrank_p", "c_harrell_ci_low"} <= set(pooled["metric"])
    ibs = pooled[(pooled.method == "cox-suvmax-volume") & (pooled.metric == "ibs")]["value"].iloc[0]
    assert 0.0 < ibs < 0.25
    assert (run / "cox-suvmax-volume" / "repeat_0" / "fold_0" / "survival_grid.csv").is_file()


def test_report_has_the_survival_section(run):
    assert main(["report", str(run)]) == 0
    assert (run / "tables" / "survival_cindex.csv").is_file()
    assert (run / "figures" / "km_risk_groups.png").is_file()
    table = pd.read_csv(run / "tables" / "survival_cindex.csv")
    assert np.all((table["c_harrell_pooled_low"] < table["c_harrell_pooled"])
                  & (table["c_harrell_pooled"] < table["c_harrell_pooled_high"]))
    assert "Survival" in (run / "report.html").read_text()


def test_survival_methods_refused_on_the_binary_endpoint(tmp_path, capsys):
    assert main(["cv", "--data", str(BUNDLE), "--out", str(tmp_path / "x"), "--methods", "cox-clinical"]) != 0
    assert "dm-free-survival" in capsys.readouterr().err


def test_horizon_days_relabels_and_counts_the_unknowns(tmp_path, caplog):
    out = tmp_path / "h"
    assert main(["cv", "--data", str(BUNDLE), "--out", str(out), "--methods", "suvmax-volume", "--folds", "3", "--repeats", "1",
                 "--horizon-days", "730", "--no-progress"]) == 0
    import yaml

    counts = yaml.safe_load((out / "config.yaml").read_text())["horizon"]
    assert (counts["dm"], counts["no_dm"], counts["unknown"]) == (23, 16, 9)
    preds = pd.read_csv(out / "predictions.csv", dtype={"patient_id": str})
    assert len(preds) == 39 and not set(preds["patient_id"]) & set(counts["unknown_ids"])
    assert "9 patient(s) censored before it left out" in caplog.text
    assert main(["cv", "--data", str(BUNDLE), "--out", str(tmp_path / "bad"), "--methods", "cox-clinical",
                 "--endpoint", "dm-free-survival", "--horizon-days", "730"]) != 0
