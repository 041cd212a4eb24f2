"""FeatureTransform and the selection functions: training statistics only, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from chmfl.errors import ChmflError
from chmfl.radiomics.selection import (
    drop_correlated,
    gain_forward_selection,
    near_constant,
    spearman_matrix,
    univariate_auc,
)
from chmfl.radiomics.transform import FeatureTransform, fit_feature_transform


def _table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    signal = y + rng.normal(0, 0.5, n)
    df = pd.DataFrame({
        "signal": signal,
        "signal_copy": 3 * signal + 1 + rng.normal(0, 0.01, n),  # nearly identical ranks
        "weak": 0.3 * y + rng.normal(0, 1, n),
        "noise": rng.normal(0, 1, n),
        "constant": np.full(n, 7.0),
        "empty": np.full(n, np.nan),
    }, index=[f"P{i}" for i in range(n)])
    df.loc["P0", "noise"] = np.nan
    df.loc["P1", "weak"] = np.inf
    return df, y


def test_univariate_auc_matches_sklearn():
    rng = np.random.default_rng(1)
    X = np.round(rng.normal(size=(30, 4)), 1)  # ties on purpose
    y = rng.integers(0, 2, 30)
    expected = [roc_auc_score(y, X[:, j]) for j in range(4)]
    np.testing.assert_allclose(univariate_auc(X, y), expected)


def test_spearman_and_filters():
    df, y = _table()
    X = df[["signal", "signal_copy", "noise"]].fillna(0).to_numpy()
    rho = spearman_matrix(X)
    assert rho[0, 1] > 0.99 and abs(rho[0, 2]) < 0.5 and np.allclose(np.diag(rho), 1)
    assert drop_correlated(X, np.array([0, 1, 2]), 0.9).tolist() == [0, 2]
    assert near_constant(np.column_stack([np.ones(40), np.r_[np.ones(39), 2.0], np.arange(40.0)])).tolist() == [True, True, False]


def test_transform_uses_training_statistics():
    df, y = _table()
    ft = fit_feature_transform(df)
    assert set(ft.kept) == {"signal", "signal_copy", "weak", "noise"}  # constant and empty dropped
    X = ft.apply(df)
    assert np.isfinite(X).all()
    np.testing.assert_allclose(X.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(X.std(0), 1, atol=1e-12)
    i = ft.kept.index("noise")
    assert X[0, i] == pytest.approx((ft.medians[i] - ft.means[i]) / ft.stds[i])  # P0 imputed by the median
    new = df.iloc[:3].copy() * 0 + 100.0  # a "test" table: the training scaling is applied as is
    Xn = ft.apply(new.drop(columns=["weak"]))
    j = ft.kept.index("signal")
    assert Xn[0, j] == pytest.approx((100.0 - ft.means[j]) / ft.stds[j])
    assert Xn[0, ft.kept.index("weak")] == pytest.approx((ft.medians[ft.kept.index("weak")] - ft.means[ft.kept.index("weak")]) / ft.stds[ft.kept.index("weak")])


def test_selection_and_json_round_trip():
    df, y = _table()
    top = fit_feature_transform(df, y, k=2, max_corr=0.9)
    assert top.kept[0] in ("signal", "signal_copy") and len(top.kept) == 2
    assert not {"signal", "signal_copy"} <= set(top.kept)  # the near-duplicate is filtered out
    gain = fit_feature_transform(df, y, k=2, max_corr=0.95, selector="gain")
    assert gain.kept[0] in ("signal", "signal_copy")
    back = FeatureTransform.from_dict(json.loads(json.dumps(top.to_dict())))
    assert back == top and back.n_out == 2
    np.testing.assert_array_equal(back.apply(df), top.apply(df))


def test_gain_selection_prefers_relevant_non_redundant():
    rng = np.random.default_rng(3)
    y = np.arange(60) % 2
    a = y + rng.normal(0, 0.6, 60)
    b = y + rng.normal(0, 0.6, 60)  # relevant, independent of a
    X = np.column_stack([a, a + rng.normal(0, 0.05, 60), b, rng.normal(size=60)])
    chosen = gain_forward_selection(X, y, 2, seed=0)
    assert set(chosen.tolist()) in ({0, 2}, {1, 2})


def test_errors():
    df, y = _table()
    with pytest.raises(ChmflError):
        fit_feature_transform(df, k=3)  # selection without labels
    with pytest.raises(ChmflError):
        fit_feature_transform(df[["constant", "empty"]])
    with pytest.raises(ChmflError):
        fit_feature_transform(df, y, k=2, selector="lasso")
    with pytest.raises(ChmflError):
        FeatureTransform.from_dict({"kept": []})
