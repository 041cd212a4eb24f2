"""DeLong's test / CI against published values: the pROC R package's test suite on its aSAH data.

Expected numbers: pROC (Robin et al. 2011, BMC Bioinformatics 12:77), github.com/xrobin/pROC,
tests/testthat/test-roc.test.R (roc.test, DeLong, paired: Z and p for wfns vs s100b, wfns vs
ndka, ndka vs s100b, and the 95% CI of the AUC difference), test-var.R (DeLong variances) and
test-ci.auc.R (ci.auc of ndka). pROC's documented ?roc.test basic example,
roc.test(roc(aSAH$outcome, aSAH$s100b), roc(aSAH$outcome, aSAH$wfns)), is the first pair
with the curves swapped (same p, Z negated).

Data: pROC's aSAH data set (Turck et al. 2010, Intensive Care Med 36:107), 113 patients,
as (outcome G = Good / P = Poor, wfns, s100b, ndka) in the data set's row order, transcribed
in a public test file of another project (opendose, tests of methodcomp). The transcription is
checked here by reproducing pROC's AUCs (0.8237, 0.7314, 0.6120) and 41 Poor / 72 Good.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from chmfl.stats import auc_score, delong_ci, delong_covariance, delong_test

ASAH = """
G,1,0.13,3.01 G,1,0.14,8.54 G,1,0.1,8.09 G,1,0.04,10.42 P,3,0.13,17.4
P,2,0.1,12.75 G,5,0.47,6.0 P,4,0.16,13.2 G,1,0.18,15.54 G,2,0.1,6.01
P,5,0.12,15.96 G,2,0.1,17.86 P,5,0.44,5.18 P,5,0.71,8.9 G,1,0.04,13.41
G,2,0.08,20.75 P,5,0.49,11.6 G,2,0.04,16.11 P,2,0.07,32.37 P,5,0.33,54.82
P,2,0.09,32.41 G,1,0.09,49.94 P,1,0.07,40.34 G,1,0.11,9.47 G,1,0.07,6.29
G,2,0.17,12.53 G,1,0.07,6.54 G,2,0.11,6.3 G,1,0.13,80.3 G,1,0.19,12.8
G,3,0.05,9.8 G,4,0.16,9.81 P,2,0.41,9.85 G,1,0.14,18.21 G,4,0.34,5.03
P,5,0.35,14.04 P,4,0.48,21.93 G,1,0.09,8.02 P,4,0.96,7.42 P,2,0.25,8.38
G,5,0.5,6.59 G,5,0.46,9.63 G,1,0.16,13.12 G,1,0.07,7.96 G,2,0.43,14.34
G,4,0.45,41.43 G,1,0.11,7.63 G,1,0.08,7.06 G,2,0.09,12.59 P,5,0.86,13.56
P,5,0.52,3.87 G,2,0.08,9.44 G,1,0.06,7.66 G,2,0.13,12.98 P,5,2.07,419.19
G,1,0.1,27.19 G,2,0.14,22.27 G,2,0.15,9.95 P,2,0.07,21.22 G,1,0.06,11.73
P,5,0.77,10.4 G,1,0.05,58.83 G,1,0.09,6.39 P,2,0.3,11.09 P,5,0.03,12.22
P,2,0.09,13.67 G,1,0.04,17.21 P,4,0.23,22.63 P,5,0.7,12.9 G,2,0.09,9.7
P,4,0.27,21.57 P,4,0.71,8.23 P,1,0.08,72.57 P,4,0.26,15.54 G,1,0.08,10.51
G,2,0.16,10.6 G,1,0.09,14.57 P,4,0.13,5.19 P,2,0.1,9.63 G,1,0.08,4.61
P,2,0.11,21.48 G,3,0.33,17.3 G,2,0.11,12.71 G,4,0.28,9.44 G,2,0.07,11.07
G,1,0.1,19.46 G,4,0.32,10.83 P,5,0.22,5.37 G,1,0.07,11.97 G,1,0.05,7.75
G,5,0.24,9.83 G,4,0.38,10.55 G,2,0.1,28.49 G,2,0.15,8.53 G,1,0.08,12.57
G,1,0.14,12.9 G,1,0.1,46.83 G,3,0.07,11.68 G,1,0.04,12.67 G,2,0.19,9.01
P,5,0.56,9.57 P,2,0.14,34.06 P,2,0.58,11.72 P,5,0.32,14.26 P,5,0.82,47.61
P,5,0.74,11.67 G,2,0.15,24.58 G,4,0.47,10.33 G,4,0.17,13.87 P,5,0.44,15.89
G,1,0.15,22.43 G,1,0.5,6.79 G,1,0.48,13.45
"""
_ROWS = [r.split(",") for r in ASAH.split()]
OUTCOME = np.array([r[0] == "P" for r in _ROWS], dtype=int)  # Poor outcome = positive class
MARKER = {name: np.array([float(r[i]) for r in _ROWS]) for i, name in enumerate(("wfns", "s100b", "ndka"), 1)}


def test_asah_transcription_reproduces_proc_aucs():
    assert len(OUTCOME) == 113 and OUTCOME.sum() == 41
    assert auc_score(OUTCOME, MARKER["wfns"]) == pytest.approx(0.823678861788618, rel=1e-12)
    assert auc_score(OUTCOME, MARKER["s100b"]) == pytest.approx(0.731368563685637, rel=1e-12)
    assert auc_score(OUTCOME, MARKER["ndka"]) == pytest.approx(0.611957994579946, rel=1e-12)


@pytest.mark.parametrize(
    "a,b,z,p,lo,hi",
    [  # pROC tests/testthat/test-roc.test.R, "roc.test statistic and p are as expected with defaults"
        ("wfns", "s100b", 2.20898359144091, 0.0271757822291882, 0.0104061769564846, 0.174214419249478),
        ("wfns", "ndka", 2.79777591868904, 0.00514557970691098, 0.0634011709339876, 0.3600405634833566),
        ("ndka", "s100b", -1.39077002573558, 0.164295175223054, -0.2876917446341914, 0.0488706064228094),
    ],
)
def test_delong_test_matches_proc(a, b, z, p, lo, hi):
    res = delong_test(OUTCOME, MARKER[a], MARKER[b])
    assert res.z == pytest.approx(z, rel=1e-9)
    assert res.p == pytest.approx(p, rel=1e-9)
    assert (res.ci_low, res.ci_high) == pytest.approx((lo, hi), rel=1e-9)
    swapped = delong_test(OUTCOME, MARKER[b], MARKER[a])
    assert swapped.z == pytest.approx(-z, rel=1e-9) and swapped.p == pytest.approx(p, rel=1e-9)


def test_proc_documented_example_order():
    # pROC ?roc.test basic example: roc1 = s100b, roc2 = wfns (test-suite values, curves swapped)
    res = delong_test(OUTCOME, MARKER["s100b"], MARKER["wfns"])
    assert round(res.z, 3) == -2.209 and round(res.p, 5) == 0.02718


def test_variances_and_ci_match_proc():
    # pROC tests/testthat/test-var.R and test-ci.auc.R
    for name, var in (("wfns", 0.00146991470882363), ("ndka", 0.0031908105493913), ("s100b", 0.00266868245717244)):
        _, cov = delong_covariance(OUTCOME, MARKER[name][None, :])
        assert cov[0, 0] == pytest.approx(var, rel=1e-9)
    ci = delong_ci(OUTCOME, MARKER["ndka"])
    assert (ci.low, ci.auc, ci.high) == pytest.approx((0.501244999271703, 0.611957994579946, 0.722670989888189), rel=1e-9)


def test_identical_scores_and_one_class():
    same = delong_test(OUTCOME, MARKER["wfns"], MARKER["wfns"])
    assert same.z == 0.0 and same.p == 1.0
    one_class = delong_test(np.ones(5, int), np.arange(5.0), np.arange(5.0)[::-1])
    assert math.isnan(one_class.p) and math.isnan(one_class.auc1)
    assert math.isnan(delong_ci(np.zeros(4, int), np.arange(4.0)).low)


def test_fast_algorithm_equals_direct_structural_components():
    """DeLong 1988's structural components written out as explicit pairwise comparisons."""
    rng = np.random.default_rng(7)
    y = np.r_[np.ones(15, int), np.zeros(20, int)]
    s1 = np.round(rng.normal(y * 1.0, 1.0), 1)  # ties on purpose
    s2 = np.round(0.5 * s1 + rng.normal(0.3 * y, 1.0), 1)
    comps = []
    for s in (s1, s2):
        x, w = s[y == 1], s[y == 0]
        psi = (x[:, None] > w[None, :]) + 0.5 * (x[:, None] == w[None, :])
        comps.append((psi.mean(axis=1), psi.mean(axis=0)))
    s10 = np.cov([comps[0][0], comps[1][0]])
    s01 = np.cov([comps[0][1], comps[1][1]])
    cov = s10 / 15 + s01 / 20
    z = (comps[0][0].mean() - comps[1][0].mean()) / math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert delong_test(y, s1, s2).z == pytest.approx(z, rel=1e-12)
