"""Descriptive summaries of ``metrics.csv`` (mean and SD over folds, as the paper reports) and
the paper's unpaired Student's t-test, kept only to set reproductions beside the paper's marks.

Inference for chmfl's own tables (corrected resampled t, Holm) is in ``stats/inference.py``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from chmfl.errors import ChmflError
from chmfl.stats.metrics import ALL_METRICS
from chmfl.stats.rows import METRICS_COLUMNS, POOLED_FOLD


def normalize_metrics(metrics_df: pd.DataFrame) -> pd.DataFrame:
    """Check the ``metrics.csv`` columns; fold as text ("0", "1", ..., "all"), value as float."""
    missing = [c for c in METRICS_COLUMNS if c not in metrics_df.columns]
    if missing:
        raise ChmflError(f"metrics table lacks column(s) {', '.join(missing)}")
    df = metrics_df.loc[:, list(METRICS_COLUMNS)].copy()
    df["method"] = df["method"].astype(str)
    df["metric"] = df["metric"].astype(str)
    df["fold"] = df["fold"].astype(str)
    df["repeat"] = pd.to_numeric(df["repeat"], errors="raise").astype(int)
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype(float)
    return df


def _ordered(df: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Sort ``frame`` by first appearance of its method in ``df`` and canonical metric order."""
    methods = list(dict.fromkeys(df["method"]))
    metrics = [m for m in ALL_METRICS if m in set(df["metric"])] + sorted(set(df["metric"]) - set(ALL_METRICS))
    frame = frame.assign(
        _m=frame["method"].map({m: i for i, m in enumerate(methods)}),
        _k=frame["metric"].map({m: i for i, m in enumerate(metrics)}),
    )
    return frame.sort_values(["_m", "_k"]).drop(columns=["_m", "_k"]).reset_index(drop=True)


def _folds(metrics_df: pd.DataFrame) -> pd.DataFrame:
    df = normalize_metrics(metrics_df)
    return df[df["fold"] != POOLED_FOLD]


def fold_table(metrics_df: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD (ddof=1) of each method's metric over its folds (every repeat's folds).

    Columns: method, metric, mean, sd, n (folds with a defined value; NaN folds are skipped).
    """
    df = _folds(metrics_df).dropna(subset=["value"])
    grouped = df.groupby(["method", "metric"], sort=False)["value"]
    out = grouped.agg(mean="mean", sd=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan, n="count")
    return _ordered(df, out.reset_index())


def ttest_vs_reference(metrics_df: pd.DataFrame, reference: str = "chmfl", repeat: int | None = None) -> pd.DataFrame:
    """The paper's test: unpaired Student's t-test (equal variances) of per-fold metrics, each
    method vs ``reference``, over the K folds of one CV run (``repeat``; None = every fold).

    As in the paper ("unpaired student's t-test" vs CHMFL). It treats the folds as independent
    samples and ignores that both methods were tested on the same folds, so it is only shown
    beside the paper's own marks; pooling the folds of several repeats (``repeat=None``) makes
    it ever surer as repeats are added. Columns: method, metric, t, p, n, n_reference; p is
    NaN with fewer than 2 folds on a side or zero variance in both. Empty when ``reference``
    has no rows.
    """
    df = _folds(metrics_df).dropna(subset=["value"])
    if repeat is not None:
        df = df[df["repeat"] == int(repeat)]
    cols = ["method", "metric", "t", "p", "n", "n_reference"]
    ref = df[df["method"] == reference]
    if ref.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (method, metric), group in df[df["method"] != reference].groupby(["method", "metric"], sort=False):
        a = group["value"].to_numpy()
        b = ref.loc[ref["metric"] == metric, "value"].to_numpy()
        t = p = float("nan")
        if a.size >= 2 and b.size >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # constant samples give NaN
                res = stats.ttest_ind(a, b, equal_var=True)
            t, p = float(res.statistic), float(res.pvalue)
        rows.append({"method": method, "metric": metric, "t": t, "p": p, "n": int(a.size), "n_reference": int(b.size)})
    return _ordered(df, pd.DataFrame(rows, columns=cols))
