"""Fold table (mean, SD over folds) and the paper's unpaired t-test."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from chmfl.errors import ChmflError
from chmfl.stats import fold_table, metrics_rows, ttest_vs_reference


def _metrics(values: dict[str, dict[int, list[float]]], metric="auc") -> pd.DataFrame:
    """values[method][repeat] = per-fold values; adds a pooled "all" row that must be ignored."""
    rows = []
    for method, reps in values.items():
        for r, folds in reps.items():
            for k, v in enumerate(folds):
                rows += metrics_rows(method, r, k, {metric: v, "accuracy": v / 2})
            rows += metrics_rows(method, r, "all", {metric: 99.0, "accuracy": 99.0})
    return pd.DataFrame(rows)


def test_fold_table_mean_and_sd_over_folds():
    df = _metrics({"hc-rf": {0: [0.6, 0.7, 0.8]}, "chmfl": {0: [0.9, 0.8, float("nan")]}})
    t = fold_table(df)
    assert list(t["method"]) == ["hc-rf", "hc-rf", "chmfl", "chmfl"]
    assert list(t["metric"]) == ["accuracy", "auc"] * 2
    row = t[(t.method == "hc-rf") & (t.metric == "auc")].iloc[0]
    assert row["mean"] == pytest.approx(0.7) and row["sd"] == pytest.approx(0.1) and row["n"] == 3
    row = t[(t.method == "chmfl") & (t.metric == "auc")].iloc[0]
    assert row["mean"] == pytest.approx(0.85) and row["n"] == 2  # NaN fold skipped


def test_ttest_vs_reference_is_scipy_student():
    a, b = [0.6, 0.7, 0.65, 0.72], [0.85, 0.9, 0.8, 0.88]
    df = _metrics({"hc-rf": {0: a}, "chmfl": {0: b}})
    t = ttest_vs_reference(df, "chmfl")
    row = t[t.metric == "auc"].iloc[0]
    want = stats.ttest_ind(a, b, equal_var=True)
    assert row["method"] == "hc-rf" and row["p"] == pytest.approx(want.pvalue) and row["t"] == pytest.approx(want.statistic)
    assert row["p"] != pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert ttest_vs_reference(df, "absent").empty


def test_ttest_constant_samples_give_nan_not_error():
    df = _metrics({"a": {0: [1.0, 1.0]}, "chmfl": {0: [1.0, 1.0]}})
    assert math.isnan(ttest_vs_reference(df).iloc[0]["p"])


def test_paper_ttest_on_one_repeat_does_not_grow_surer_with_repeats():
    a, b = [0.6, 0.7, 0.65, 0.72], [0.85, 0.9, 0.8, 0.88]
    df = _metrics({"hc-rf": {r: a for r in range(5)}, "chmfl": {r: b for r in range(5)}})
    one = ttest_vs_reference(df, "chmfl", repeat=0)
    row = one[one.metric == "auc"].iloc[0]
    assert row["p"] == pytest.approx(stats.ttest_ind(a, b).pvalue) and row["n"] == 4
    pooled = ttest_vs_reference(df, "chmfl")  # every repeat's folds as if independent: the fault
    assert pooled[pooled.metric == "auc"].iloc[0]["p"] < row["p"] / 100


def test_missing_columns_is_a_one_line_error():
    with pytest.raises(ChmflError, match="column"):
        fold_table(pd.DataFrame({"method": ["a"], "value": [1.0]}))
