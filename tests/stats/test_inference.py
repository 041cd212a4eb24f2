"""summary.csv / comparisons.csv from metrics rows and predictions, recomputed independently
(scikit-learn metrics, statsmodels' Holm), and the fault they remove: p-values that shrink as
identical repeats are added."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_score, roc_auc_score

from chmfl.stats import (
    COMPARISON_COLUMNS,
    SUMMARY_COLUMNS,
    corrected_paired_t,
    corrected_resampled_t,
    fold_rows,
    method_summary,
    min_detectable_difference,
    paired_comparisons,
    pooled_rows,
    statistics_tables,
)

N, K = 24, 3


def _predictions(methods=("floor", "hc-rf", "chmfl"), repeats=2, seed=0, copies=1) -> pd.DataFrame:
    """Stratified K folds per repeat; better methods get more signal. ``copies`` repeats the
    same split and predictions (what pseudo-replication rewards)."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:02d}" for i in range(N)]
    y = np.array([i % 2 for i in range(N)])
    frames = []
    for r in range(repeats):
        order = rng.permutation(N)
        fold = np.empty(N, int)
        for cls in (0, 1):
            members = [i for i in order if y[i] == cls]
            fold[members] = np.arange(len(members)) % K
        for strength, m in enumerate(methods):
            prob = 1 / (1 + np.exp(-(rng.normal(0, 1, N) + 0.8 * strength * (y - 0.5))))
            for c in range(copies):
                frames.append(pd.DataFrame({"method": m, "repeat": r * copies + c, "fold": fold, "patient_id": ids,
                                            "label": y, "probability": prob}))
    return pd.concat(frames, ignore_index=True)


def _metrics(pred: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (m, r), rep in pred.groupby(["method", "repeat"], sort=False):
        for k, part in rep.groupby("fold"):
            rows += fold_rows(m, r, k, part)
        rows += pooled_rows(m, r, rep)
    return pd.DataFrame(rows)


def test_summary_recomputed_independently():
    pred = _predictions()
    s = method_summary(_metrics(pred), pred, n_boot=300)
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    row = s[(s.method == "chmfl") & (s.metric == "auc") & (s.level == "fold")].iloc[0]
    fold_aucs = [roc_auc_score(g.label, g.probability) for _, g in pred[pred.method == "chmfl"].groupby(["repeat", "fold"])]
    want = corrected_resampled_t(fold_aucs, 1 / (K - 1))
    assert row["n"] == 2 * K and row["interval"] == "nadeau-bengio" and row["test_train_ratio"] == 0.5
    assert (row["estimate"], row["low"], row["high"]) == pytest.approx((np.mean(fold_aucs), want.low, want.high))
    for metric, fn in (("precision", precision_score), ("f1", f1_score)):
        row = s[(s.method == "hc-rf") & (s.metric == metric) & (s.level == "pooled")].iloc[0]
        per_repeat = [fn(g.label, g.probability >= 0.5, zero_division=np.nan) for _, g in
                      pred[pred.method == "hc-rf"].groupby("repeat")]
        assert row["estimate"] == pytest.approx(np.mean(per_repeat)) and row["n_repeats"] == 2
        assert row["interval"] == "bootstrap" and row["low"] <= row["estimate"] <= row["high"]
    slope = s[(s.metric == "calibration_slope")].iloc[0]
    assert slope["interval"] == "none" and math.isnan(slope["low"])
    no_pred = method_summary(_metrics(pred))
    assert (no_pred.loc[no_pred.level == "pooled", "interval"] == "none").all()


def test_comparisons_are_paired_corrected_and_holm_adjusted():
    sm = pytest.importorskip("statsmodels.stats.multitest")
    pred = _predictions()
    metrics = _metrics(pred)
    c = paired_comparisons(metrics, "chmfl")
    assert list(c.columns) == list(COMPARISON_COLUMNS)
    assert set(c["versus"]) == {"chmfl"} and len(c) == 2 * 4  # 2 methods x 4 fold-level metrics
    row = c[(c.method == "floor") & (c.metric == "auc")].iloc[0]
    auc = {m: [roc_auc_score(g.label, g.probability) for _, g in pred[pred.method == m].groupby(["repeat", "fold"])]
           for m in ("floor", "chmfl")}
    want = corrected_paired_t(auc["floor"], auc["chmfl"], 0.5)
    assert (row["diff"], row["p"], row["t"]) == pytest.approx((want.mean, want.p, want.t))
    assert row["mdd"] == pytest.approx(min_detectable_difference(want.sd, 2 * K, 0.5))
    assert row["mdd_bonferroni"] > row["mdd"]
    assert c["p_holm"].to_numpy() == pytest.approx(sm.multipletests(c["p"], method="holm")[1])
    pairs = paired_comparisons(metrics, None)  # no reference: every pair
    assert len(pairs) == 3 * 4


def test_identical_repeats_do_not_buy_significance():
    one = paired_comparisons(_metrics(_predictions(repeats=1, seed=3)), "chmfl")
    many = paired_comparisons(_metrics(_predictions(repeats=1, seed=3, copies=20)), "chmfl")
    p1 = one[(one.method == "floor") & (one.metric == "auc")].iloc[0]["p"]
    p20 = many[(many.method == "floor") & (many.metric == "auc")].iloc[0]["p"]
    # 20 copies of the same 3 folds carry no new information; the naive t would divide the SE by
    # about sqrt(20) while the corrected SE keeps the n_test/n_train floor
    naive = corrected_paired_t(*[np.tile(v, 20) for v in _fold_values(_predictions(repeats=1, seed=3))], 0.0).p
    assert p20 > naive * 100
    assert p20 > p1 / 20


def _fold_values(pred):
    return [[roc_auc_score(g.label, g.probability) for _, g in pred[pred.method == m].groupby(["repeat", "fold"])]
            for m in ("floor", "chmfl")]


def test_statistics_tables_names():
    pred = _predictions(repeats=1)
    tables = statistics_tables(_metrics(pred), pred, "chmfl")
    assert set(tables) == {"summary.csv", "comparisons.csv"}
    single = statistics_tables(_metrics(pred[pred.method == "chmfl"]), None, "chmfl")
    assert single["comparisons.csv"].empty and not single["summary.csv"].empty


def test_design_folds_given_when_only_some_folds_finished():
    """Two of K = 3 folds finished: with k=K the ratio stays the design's n_test/n_train."""
    pred = _predictions(repeats=1)
    part = pred[pred["fold"] < 2]
    metrics = _metrics(part)
    detected = method_summary(metrics)
    design = method_summary(metrics, k=K)
    auc = lambda s: s[(s.method == "chmfl") & (s.metric == "auc") & (s.level == "fold")].iloc[0]  # noqa: E731
    assert auc(detected)["test_train_ratio"] == 1.0 and auc(design)["test_train_ratio"] == 0.5
    fold_aucs = [roc_auc_score(g.label, g.probability) for _, g in part[part.method == "chmfl"].groupby("fold")]
    assert auc(design)["high"] == pytest.approx(corrected_resampled_t(fold_aucs, 0.5).high)
    c = statistics_tables(metrics, part, "chmfl", k=K)["comparisons.csv"]
    assert (c["test_train_ratio"] == 0.5).all() and (c["n"] == 2).all()
