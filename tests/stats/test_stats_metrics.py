"""Classification / segmentation metrics: equal to scikit-learn's, NaN (not a crash) when undefined."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from chmfl.errors import ChmflError
from chmfl.stats import (
    CLASSIFICATION_METRICS,
    auc_score,
    classification_metrics,
    confusion_counts,
    fold_rows,
    mean_metrics,
    metrics_rows,
    pooled_rows,
    segmentation_metrics,
)


@pytest.mark.parametrize("seed", range(6))
def test_classification_metrics_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 60))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]  # both classes present
    prob = rng.random(n)
    if seed % 2:
        prob = np.round(prob, 1)  # many ties, incl. values exactly at the threshold
    got = classification_metrics(y, prob, threshold=0.5)
    pred = (prob >= 0.5).astype(int)
    want = {
        "accuracy": skm.accuracy_score(y, pred),
        "sensitivity": skm.recall_score(y, pred, zero_division=np.nan),
        "specificity": skm.recall_score(y, pred, pos_label=0, zero_division=np.nan),
        "precision": skm.precision_score(y, pred, zero_division=np.nan),
        "f1": skm.f1_score(y, pred, zero_division=np.nan),
        "auc": skm.roc_auc_score(y, prob),
    }
    assert list(got) == list(CLASSIFICATION_METRICS)
    for key, value in want.items():
        if math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, abs=1e-12), key


def test_threshold_is_inclusive_and_configurable():
    y = [1, 1, 0, 0]
    prob = [0.5, 0.7, 0.49, 0.6]
    assert confusion_counts(y, prob) == {"tp": 2, "fp": 1, "tn": 1, "fn": 0}
    assert confusion_counts(y, prob, threshold=0.65) == {"tp": 1, "fp": 0, "tn": 2, "fn": 1}


def test_undefined_metrics_are_nan_not_errors():
    only_neg = classification_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    assert math.isnan(only_neg["sensitivity"]) and math.isnan(only_neg["auc"])
    assert math.isnan(only_neg["precision"])  # nobody predicted DM
    assert math.isnan(only_neg["f1"])  # no DM patient and no DM prediction
    assert only_neg["specificity"] == 1.0 and only_neg["accuracy"] == 1.0
    only_pos = classification_metrics([1, 1], [0.9, 0.2])
    assert math.isnan(only_pos["specificity"]) and math.isnan(only_pos["auc"])
    assert only_pos["sensitivity"] == 0.5 and only_pos["precision"] == 1.0
    none_predicted = classification_metrics([1, 0, 1], [0.1, 0.2, 0.3])
    assert math.isnan(none_predicted["precision"]) and none_predicted["f1"] == 0.0


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(ChmflError, match="differ in length"):
        classification_metrics([0, 1], [0.5])
    with pytest.raises(ChmflError, match="0 .no DM. or 1"):
        classification_metrics([0, 2], [0.5, 0.5])
    with pytest.raises(ChmflError, match="NaN"):
        classification_metrics([0, 1], [0.5, np.nan])
    with pytest.raises(ChmflError, match="empty"):
        auc_score([], [])


@pytest.mark.parametrize("seed", range(3))
def test_segmentation_metrics_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    true = (rng.random((12, 16, 16)) > 0.7).astype(np.uint8)
    pred = (rng.random((12, 16, 16)) > 0.6).astype(np.uint8)
    got = segmentation_metrics(pred, true)
    t, p = true.ravel(), pred.ravel()
    assert got["dsc"] == pytest.approx(skm.f1_score(t, p))
    assert got["jaccard"] == pytest.approx(skm.jaccard_score(t, p))
    assert got["seg_accuracy"] == pytest.approx(skm.accuracy_score(t, p))
    assert got["seg_sensitivity"] == pytest.approx(skm.recall_score(t, p))
    assert got["seg_specificity"] == pytest.approx(skm.recall_score(t, p, pos_label=0))


def test_segmentation_edge_cases():
    empty = np.zeros((4, 4, 4), np.uint8)
    res = segmentation_metrics(empty, empty)
    assert math.isnan(res["dsc"]) and math.isnan(res["seg_sensitivity"]) and res["seg_accuracy"] == 1.0
    full = np.ones((4, 4, 4), np.uint8)
    assert segmentation_metrics(full, full)["dsc"] == 1.0
    with pytest.raises(ChmflError, match="shape"):
        segmentation_metrics(empty, np.zeros((4, 4, 3)))


def test_rows_follow_the_metrics_csv_contract():
    rows = metrics_rows("chmfl", 0, 3, {"auc": 0.7, "accuracy": 0.5, "dsc": 0.6})
    assert [r["metric"] for r in rows] == ["accuracy", "auc", "dsc"]
    assert all(set(r) == {"method", "repeat", "fold", "metric", "value"} for r in rows)
    assert rows[0]["fold"] == 3
    seg = [{"dsc": 0.5, "jaccard": 0.3}, {"dsc": float("nan"), "jaccard": 0.5}]
    assert mean_metrics(seg) == {"dsc": 0.5, "jaccard": 0.4}
    pred = pd.DataFrame({"label": [1, 0, 1, 0], "probability": [0.8, 0.3, 0.4, 0.6]})
    fr = {r["metric"]: r["value"] for r in fold_rows("m", 1, 0, pred, seg)}
    assert fr["accuracy"] == 0.5 and fr["auc"] == 0.75 and fr["dsc"] == 0.5
    pr = pooled_rows("m", 1, pred)
    assert {r["fold"] for r in pr} == {"all"} and len(pr) == 9  # 6 classification + 3 calibration
    assert {r["metric"] for r in pr} >= {"precision", "f1", "brier", "calibration_intercept", "calibration_slope"}
    assert "brier" not in {r["metric"] for r in fold_rows("m", 1, 0, pred)}  # calibration only pooled
    with pytest.raises(ChmflError, match="probability"):
        pooled_rows("m", 1, pred[["label"]])
