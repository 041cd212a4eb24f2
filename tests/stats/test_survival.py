"""Survival metrics against lifelines (an implementation chmfl does not use for them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import concordance_index

from chmfl.errors import ChmflError
from chmfl.stats.survival import (
    bootstrap_survival_ci,
    concordance_rows,
    harrell_c,
    integrated_brier,
    kaplan_meier,
    logrank_p,
    median_followup,
    survival_metrics,
    survival_statistics_tables,
    time_dependent_auc,
    uno_c,
    uno_weights,
)


def _data(n: int = 60, seed: int = 0, ties: bool = False):
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    t_event = rng.exponential(600.0 * np.exp(-0.8 * risk))
    t_cens = rng.uniform(200.0, 2000.0, n)
    time = np.minimum(t_event, t_cens).round(0) + 1.0
    event = t_event <= t_cens
    if ties:
        risk = risk.round(0)
    return time, event, risk


@pytest.mark.parametrize(("seed", "ties"), [(0, False), (1, True), (2, False)])
def test_harrell_c_equals_lifelines(seed, ties):
    time, event, risk = _data(seed=seed, ties=ties)
    # lifelines scores predicted survival times: higher = later event, so it takes -risk
    assert harrell_c(time, event, risk) == pytest.approx(concordance_index(time, -risk, event), abs=1e-12)


def test_harrell_c_on_a_hand_counted_example():
    # pairs comparable: (a,b) a has the event before b's time. times 1,2,3 events 1,1,0
    # risk 3,1,2: (1 vs 2) concordant, (1 vs 3) concordant, (2 vs 3) discordant -> 2/3
    assert harrell_c([1, 2, 3], [1, 1, 0], [3, 1, 2]) == pytest.approx(2 / 3)


def test_uno_c_close_to_harrell_without_censoring_and_bounds():
    time, event, risk = _data(seed=3)
    c = uno_c(time, event, risk)
    assert 0.5 < c < 1.0
    all_events = np.ones_like(event)
    assert uno_c(time, all_events, risk, tau=None) == pytest.approx(harrell_c(time, all_events, risk), abs=1e-9)


def test_kaplan_meier_equals_lifelines():
    time, event, _ = _data(seed=4)
    t, s = kaplan_meier(time, event)
    km = KaplanMeierFitter().fit(time, event)
    np.testing.assert_allclose(s, km.survival_function_at_times(t).to_numpy(), atol=1e-12)
    rev = KaplanMeierFitter().fit(time, ~event)
    assert median_followup(time, event) == pytest.approx(rev.median_survival_time_)


def test_logrank_equals_lifelines():
    time, event, risk = _data(seed=5)
    high = risk > np.median(risk)
    ref = logrank_test(time[high], time[~high], event[high], event[~high]).p_value
    assert logrank_p(time, event, high) == pytest.approx(ref, rel=1e-9)
    assert np.isnan(logrank_p(time, event, np.ones_like(high)))


def test_time_dependent_auc_and_brier():
    time, event, risk = _data(seed=6, n=120)
    auc = time_dependent_auc(time, event, risk)
    assert all(0.5 < v <= 1.0 for v in auc.values())
    assert np.isnan(time_dependent_auc(time, event, risk, horizons=[1e6])[1e6])
    grid = np.linspace(100, 900, 10)
    perfect_ignorance = np.full((len(time), len(grid)), 0.5)
    ibs = integrated_brier(time, event, perfect_ignorance, grid)
    assert ibs == pytest.approx(0.25, abs=1e-9)  # (0.5 - y)^2 = 0.25 whatever y, weights sum to 1


def test_survival_metrics_keys_and_bootstrap():
    time, event, risk = _data(seed=7)
    m = survival_metrics(time, event, risk)
    assert set(m) == {"c_harrell", "c_uno", "auc_365d", "auc_730d", "auc_1095d", "ibs"} and np.isnan(m["ibs"])
    low, high = bootstrap_survival_ci(time, event, risk, n=200)
    assert low < m["c_harrell"] < high
    low, high = bootstrap_survival_ci(time, event, risk, "c_uno", n=200)
    assert low < m["c_uno"] < high


@pytest.mark.parametrize("ties", [False, True])
def test_vectorised_concordance_equals_sksurv(ties):
    """The bootstrap's engine reproduces Harrell's and Uno's C of scikit-survival exactly."""
    time, event, risk = _data(seed=8, ties=ties)
    time = np.round(time / 40.0) * 40.0 + 1.0  # tied times, events and censorings among them
    c = concordance_rows(time, event, risk, np.ones_like(time))[0]
    assert c == pytest.approx(harrell_c(time, event, risk), abs=1e-12)
    assert c == pytest.approx(concordance_index(time, -risk, event), abs=1e-12)
    u = concordance_rows(time, event, risk, uno_weights(time, event))[0]
    assert u == pytest.approx(uno_c(time, event, risk), abs=1e-12)


def test_survival_summary_and_comparisons_use_the_corrected_t():
    from chmfl.stats.corrected import corrected_resampled_t

    rows = []
    for method, shift in (("a", 0.0), ("b", 0.05)):
        for rep in range(2):
            for fold in range(3):
                for metric in ("c_harrell", "c_uno"):
                    rows.append({"method": method, "repeat": rep, "fold": fold, "metric": metric,
                                 "value": 0.6 + shift + 0.01 * fold + 0.02 * rep})
            rows += [{"method": method, "repeat": rep, "fold": "all", "metric": m, "value": v}
                     for m, v in (("c_harrell", 0.62 + shift), ("c_harrell_ci_low", 0.5), ("c_harrell_ci_high", 0.7),
                                  ("ibs", 0.2))]
    metrics = pd.DataFrame(rows)
    tables = survival_statistics_tables(metrics, reference="a")
    s = tables["summary.csv"]
    fold = s[(s.method == "a") & (s.metric == "c_harrell") & (s.level == "fold")].iloc[0]
    want = corrected_resampled_t([0.6, 0.61, 0.62, 0.62, 0.63, 0.64], 0.5)
    assert (fold.estimate, fold.low, fold.high) == pytest.approx((want.mean, want.low, want.high))
    pooled = s[(s.method == "b") & (s.metric == "c_harrell") & (s.level == "pooled")].iloc[0]
    assert (pooled.estimate, pooled.low, pooled.high) == pytest.approx((0.67, 0.5, 0.7))
    c = tables["comparisons.csv"]
    assert set(c.metric) == {"c_harrell", "c_uno"} and (c.method == "b").all()
    assert c["diff"].to_numpy() == pytest.approx([0.05, 0.05])


def test_bad_survival_input():
    with pytest.raises(ChmflError):
        harrell_c([1, -2], [1, 0], [0.1, 0.2])
    with pytest.raises(ChmflError):
        harrell_c([1, 2], [1, 2], [0.1, 0.2])
