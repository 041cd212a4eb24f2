"""Calibration (Brier, intercept and slope vs statsmodels' logistic fits), reliability diagram
bins, and net benefit vs the dcurves package (or the formula by hand where it is missing)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from chmfl.errors import ChmflError
from chmfl.stats import (
    LOGIT_CLIP,
    brier_score,
    calibration_intercept_slope,
    calibration_metrics,
    net_benefit,
    reliability_curve,
)


def _cohort(n=48, seed=0, scale=1.0):
    """Labels and P(DM) from a logistic model, then distorted: lp * scale shifted by +0.4."""
    rng = np.random.default_rng(seed)
    lp = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    return y, 1 / (1 + np.exp(-(scale * lp + 0.4)))


def test_brier_by_hand():
    # (0.9-1)^2 + (0.2-0)^2 + (0.6-1)^2 + (0.5-0)^2 = 0.01 + 0.04 + 0.16 + 0.25 = 0.46; / 4
    assert brier_score([1, 0, 1, 0], [0.9, 0.2, 0.6, 0.5]) == pytest.approx(0.115)
    assert brier_score([1, 0], [0.5, 0.5]) == 0.25


@pytest.mark.parametrize("seed,scale", [(0, 1.0), (1, 2.5), (2, 0.4)])
def test_intercept_and_slope_equal_statsmodels_logistic_fits(seed, scale):
    sm = pytest.importorskip("statsmodels.api")
    y, p = _cohort(seed=seed, scale=scale)
    pc = np.clip(p, LOGIT_CLIP, 1 - LOGIT_CLIP)  # chmfl's documented clip, then the plain logit
    lp = np.log(pc / (1 - pc))
    slope_fit = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
    offset_fit = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit()
    cal = calibration_intercept_slope(y, p)
    assert cal.slope == pytest.approx(slope_fit.params[1], abs=1e-8)
    assert cal.intercept == pytest.approx(offset_fit.params[0], abs=1e-8)


def test_calibration_recovers_the_distortion_on_a_large_sample():
    y, p = _cohort(n=20_000, seed=4, scale=2.0)  # true recalibration: lp = (logit p - 0.4) / 2
    cal = calibration_intercept_slope(y, p)
    assert cal.slope == pytest.approx(0.5, abs=0.03)  # too extreme -> slope < 1
    perfect = calibration_intercept_slope(*_cohort(n=20_000, seed=5, scale=1.0))
    assert perfect.slope == pytest.approx(1.0, abs=0.05)


def test_clipping_separation_and_one_class():
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([1.0, 0.0, 0.7, 0.4, 0.3, 0.8])  # a forest's 0/1 votes are clipped, not infinite
    cal = calibration_intercept_slope(y, p)
    assert math.isfinite(cal.intercept) and math.isfinite(cal.slope)
    sep = calibration_intercept_slope([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9])  # AUC 1: slope infinite
    assert math.isnan(sep.slope) and math.isfinite(sep.intercept)
    assert all(math.isnan(v) for v in calibration_intercept_slope([1, 1], [0.2, 0.9]))
    got = calibration_metrics([1, 0, 1, 0], [0.9, 0.2, 0.6, 0.5])
    assert set(got) == {"brier", "calibration_intercept", "calibration_slope"}


def test_reliability_bins():
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 1])
    p = np.array([0.05, 0.1, 0.15, 0.2, 0.4, 0.45, 0.6, 0.7, 0.9, 0.95])
    rel = reliability_curve(y, p, n_bins=2)
    assert list(rel["n"]) == [5, 5] and list(rel["n_dm"]) == [2, 4]
    assert rel["predicted"].tolist() == pytest.approx([0.18, 0.72])
    assert rel["observed"].tolist() == pytest.approx([0.4, 0.8])
    assert (rel["observed_low"] < rel["observed"]).all() and (rel["observed"] < rel["observed_high"]).all()
    uni = reliability_curve(y, p, n_bins=4, strategy="uniform")
    assert uni["n"].sum() == 10 and list(uni["n"]) == [4, 2, 2, 2]
    tied = reliability_curve([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3], n_bins=5)
    assert len(tied) == 1 and tied["n"].iloc[0] == 4
    with pytest.raises(ChmflError, match="binning"):
        reliability_curve(y, p, strategy="kmeans")


def test_net_benefit_by_hand():
    # 10 patients, 4 DM. At pt = 0.25 (odds 1/3): treated = p >= 0.25 -> TP 3, FP 2;
    # NB = 3/10 - 2/10 * 1/3 = 0.233333; treat-all = 0.4 - 0.6/3 = 0.2.
    y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    p = [0.9, 0.5, 0.25, 0.1, 0.3, 0.25, 0.2, 0.1, 0.05, 0.0]
    nb = net_benefit(y, p, [0.25, 0.5]).set_index("threshold")
    assert nb.loc[0.25, "model"] == pytest.approx(0.3 - 0.2 / 3)
    assert nb.loc[0.25, "treat_all"] == pytest.approx(0.2)
    assert nb.loc[0.5, "model"] == pytest.approx(0.2)  # TP 2, FP 0
    assert (nb["treat_none"] == 0).all()
    with pytest.raises(ChmflError, match="threshold"):
        net_benefit(y, p, [1.0])


def test_net_benefit_equals_dcurves():
    dcurves = pytest.importorskip("dcurves")
    y, p = _cohort(n=48, seed=7, scale=1.5)
    p = np.round(p, 2)  # ties at the thresholds exercise the >= convention
    thresholds = np.round(np.arange(0.01, 1.0, 0.01), 2)
    ref = dcurves.dca(data=pd.DataFrame({"y": y, "p": p}), outcome="y", modelnames=["p"], thresholds=thresholds)
    ours = net_benefit(y, p, thresholds)
    for col, name in (("model", "p"), ("treat_all", "all"), ("treat_none", "none")):
        want = ref[ref["model"] == name].sort_values("threshold")["net_benefit"].to_numpy(float)
        assert ours[col].to_numpy() == pytest.approx(want, abs=1e-12), col
