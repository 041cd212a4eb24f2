"""Nadeau-Bengio corrected resampled t (hand-computed), Holm (hand and statsmodels), and the
minimum detectable difference (against the normal-approximation formula and a simulation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from chmfl.errors import ChmflError
from chmfl.stats import (
    corrected_paired_t,
    corrected_resampled_t,
    holm,
    kfold_test_train_ratio,
    min_detectable_difference,
)

# Six folds of 48 patients: 8 test and 40 training patients per fold (Nadeau & Bengio 2003's
# n2/n1), so n_test / n_train = 8 / 40 = 0.2 = 1 / (K - 1).
RATIO = 8 / 40
T_975_DF5 = 2.570582  # Student t quantile 0.975, 5 df (printed tables)
T_975_DF11 = 2.200985  # Student t quantile 0.975, 11 df


def test_ratio_of_k_fold_cv():
    assert kfold_test_train_ratio(6) == pytest.approx(RATIO)
    assert kfold_test_train_ratio(2) == 1.0
    with pytest.raises(ChmflError):
        kfold_test_train_ratio(1)


def test_one_method_six_folds_by_hand():
    # Fold AUCs 0.6 0.7 0.8 0.9 0.7 0.5: sum 4.2, mean 0.7; deviations -0.1 0 0.1 0.2 0 -0.2,
    # squares sum 0.10, s^2 = 0.10 / 5 = 0.02. Corrected variance of the mean:
    # (1/6 + 0.2) * 0.02 = 0.0073333, se = 0.0856349 (naive: sqrt(0.02/6) = 0.0577350).
    # 95% CI: 0.7 +- 2.570582 * 0.0856349 = 0.7 +- 0.220132 = [0.479868, 0.920132].
    # t vs 0.5: 0.2 / 0.0856349 = 2.335497, df 5.
    c = corrected_resampled_t([0.6, 0.7, 0.8, 0.9, 0.7, 0.5], RATIO, null=0.5)
    assert c.mean == pytest.approx(0.7, abs=1e-12)
    assert c.sd == pytest.approx(math.sqrt(0.02), abs=1e-12)
    assert c.se == pytest.approx(0.0856349, abs=1e-7)
    assert (c.low, c.high) == pytest.approx((0.479868, 0.920132), abs=2e-6)
    assert c.high - c.mean == pytest.approx(T_975_DF5 * 0.0856349, abs=2e-6)
    assert c.t == pytest.approx(2.335497, abs=1e-6) and c.df == 5 and c.n == 6
    assert c.p == pytest.approx(2 * stats.t.sf(2.335497, 5), abs=1e-6)  # ~0.0668
    naive = corrected_resampled_t([0.6, 0.7, 0.8, 0.9, 0.7, 0.5], 0.0, null=0.5)
    assert naive.se == pytest.approx(0.0577350, abs=1e-7)  # ratio 0 gives the naive t-test
    assert naive.p == pytest.approx(stats.ttest_1samp([0.6, 0.7, 0.8, 0.9, 0.7, 0.5], 0.5).pvalue)


# Two repeats x six folds (J = 12) of two methods on the same splits.
B = [0.70, 0.65, 0.80, 0.75, 0.60, 0.70, 0.75, 0.70, 0.65, 0.80, 0.70, 0.75]
D = [0.10, 0.05, 0.00, 0.05, -0.05, 0.10, 0.05, 0.10, 0.00, 0.05, 0.10, 0.05]
A = [b + d for b, d in zip(B, D)]


def test_paired_two_repeats_by_hand():
    # d = A - B: sum 0.60, mean 0.05; deviations 0.05 0 -0.05 0 -0.10 0.05 0 0.05 -0.05 0 0.05 0,
    # squares sum 6 * 0.0025 + 0.01 = 0.025, s^2 = 0.025 / 11 = 0.00227273.
    # (1/12 + 0.2) * s^2 = 0.28333 * 0.00227273 = 0.000643939, se = 0.0253760,
    # t = 0.05 / 0.0253760 = 1.970367 (df 11); the naive paired t would be 3.633 (se 0.0137620).
    # 95% CI: 0.05 +- 2.200985 * 0.0253760 = [-0.005852, 0.105852].
    c = corrected_paired_t(A, B, RATIO)
    assert c.mean == pytest.approx(0.05, abs=1e-12) and c.df == 11 and c.n == 12
    assert c.se == pytest.approx(0.0253760, abs=1e-7)
    assert c.t == pytest.approx(1.970367, abs=1e-5)
    assert (c.low, c.high) == pytest.approx((-0.005852, 0.105852), abs=2e-6)
    assert c.high - c.mean == pytest.approx(T_975_DF11 * 0.0253760, abs=2e-6)
    assert c.p == pytest.approx(2 * stats.t.sf(1.970367, 11), abs=1e-5) and c.p > 0.05
    naive = stats.ttest_rel(A, B)
    assert naive.pvalue < 0.01 and corrected_paired_t(A, B, 0.0).p == pytest.approx(naive.pvalue)


def test_more_repeats_do_not_shrink_the_corrected_interval_to_zero():
    rng = np.random.default_rng(0)
    widths = []
    for repeats in (5, 50, 500):
        v = rng.normal(0.7, 0.1, 6 * repeats)
        c = corrected_resampled_t(v, RATIO)
        widths.append(c.high - c.low)
    # the naive half-width shrinks as 1/sqrt(J); the corrected one tends to 2 * 1.96 * 0.1 * sqrt(0.2)
    assert widths[-1] == pytest.approx(2 * 1.96 * 0.1 * math.sqrt(RATIO), rel=0.06)
    assert min(widths) > 0.15  # a naive interval at J = 3000 would be 0.007 wide


def test_edge_cases():
    one = corrected_resampled_t([0.7, float("nan")], RATIO)
    assert one.mean == 0.7 and one.n == 1 and math.isnan(one.low) and math.isnan(one.p)
    assert math.isnan(corrected_resampled_t([], RATIO).mean)
    same = corrected_paired_t([0.7, 0.8], [0.7, 0.8], RATIO)
    assert same.p == 1.0 and same.t == 0.0
    shifted = corrected_paired_t([0.75, 0.875], [0.5, 0.625], RATIO)  # exact in binary
    assert shifted.p == 0.0 and math.isinf(shifted.t)
    with pytest.raises(ChmflError, match="length"):
        corrected_paired_t([0.1, 0.2], [0.1], RATIO)
    with pytest.raises(ChmflError, match="alpha"):
        corrected_resampled_t([0.1, 0.2], RATIO, alpha=1.5)


def test_holm_by_hand():
    # sorted 0.005 0.01 0.03 0.04 (m = 4): 4*0.005 = 0.02, 3*0.01 = 0.03, 2*0.03 = 0.06, 1*0.04 -> max 0.06
    got = holm([0.01, 0.04, 0.03, 0.005, float("nan")])
    assert got[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(got[4])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]).size == 0
    with pytest.raises(ChmflError):
        holm([1.2])


def test_holm_equals_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(3).uniform(0, 0.2, 40) ** 2
    p[[5, 17]] = p[3]  # ties
    want = multitest.multipletests(p, method="holm")[1]
    assert holm(p) == pytest.approx(want, abs=1e-15)


def test_mdd_close_to_normal_approximation_and_exact_by_simulation():
    sd, J = 0.12, 30
    se = sd * math.sqrt(1 / J + RATIO)
    approx = (stats.t.ppf(0.975, J - 1) + stats.t.ppf(0.8, J - 1)) * se
    mdd = min_detectable_difference(sd, J, RATIO)
    assert mdd == pytest.approx(approx, rel=0.01)
    # Exact under the model behind the correction: equicorrelated fold differences with
    # rho / (1 - rho) = n_test/n_train, SD of the independent part = sd. Rejection rate at delta = MDD:
    rho = RATIO / (1 + RATIO)
    rng = np.random.default_rng(1)
    n_sim = 40_000
    common = rng.normal(0, sd * math.sqrt(rho / (1 - rho)), (n_sim, 1))
    d = mdd + common + rng.normal(0, sd, (n_sim, J))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) * math.sqrt(1 / J + RATIO))
    power = np.mean(np.abs(t) > stats.t.ppf(0.975, J - 1))
    assert power == pytest.approx(0.8, abs=0.01)
    assert min_detectable_difference(sd, J, RATIO, alpha=0.05 / 20) > mdd
    assert math.isnan(min_detectable_difference(float("nan"), J, RATIO))
