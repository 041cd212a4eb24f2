"""Bootstrap CI over patients (stratified, seeded) and the t-interval over CV repeats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from chmfl.errors import ChmflError
from chmfl.stats import auc_score, bootstrap_ci, classification_metrics, repeat_summary


def _data(n_pos=24, n_neg=24, seed=0, shift=1.0):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    return y, 1 / (1 + np.exp(-rng.normal(shift * (y - 0.5), 1.0)))


def test_bootstrap_auc_is_seeded_and_brackets_the_estimate():
    y, p = _data()
    lo, hi = bootstrap_ci(y, p, "auc", n=500, seed=3)
    assert (lo, hi) == bootstrap_ci(y, p, "auc", n=500, seed=3)
    assert (lo, hi) != bootstrap_ci(y, p, "auc", n=500, seed=4)
    assert lo < auc_score(y, p) < hi
    assert 0.0 <= lo and hi <= 1.0 and hi - lo < 0.5


def test_bootstrap_vectorised_auc_equals_generic_path():
    y, p = _data(seed=1)
    fast = bootstrap_ci(y, p, "auc", n=300, seed=5)
    slow = bootstrap_ci(y, p, lambda yy, pp: auc_score(yy, pp), n=300, seed=5)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_bootstrap_is_stratified_and_narrows_with_more_patients():
    y, p = _data(10, 14, seed=2)
    seen = []

    def count_pos(yy, pp):
        seen.append(int(yy.sum()))
        return float(yy.mean())

    lo, hi = bootstrap_ci(y, p, count_pos, n=50, seed=0)
    assert set(seen) == {10} and lo == hi == pytest.approx(10 / 24)
    small = np.subtract(*reversed(bootstrap_ci(*_data(12, 12, seed=3), "accuracy", n=400)))
    large = np.subtract(*reversed(bootstrap_ci(*_data(200, 200, seed=3), "accuracy", n=400)))
    assert large < small
    acc = classification_metrics(*_data(12, 12, seed=3))["accuracy"]
    lo, hi = bootstrap_ci(*_data(12, 12, seed=3), "accuracy", n=400)
    assert lo <= acc <= hi


def test_bootstrap_edge_cases():
    assert all(math.isnan(v) for v in bootstrap_ci([1, 1, 1], [0.2, 0.5, 0.9]))
    with pytest.raises(ChmflError, match="unknown metric"):
        bootstrap_ci([0, 1], [0.2, 0.8], "kappa")


def test_repeat_summary_is_the_student_t_interval():
    values = [0.81, 0.77, 0.85, 0.79, 0.83]
    s = repeat_summary(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert s.mean == pytest.approx(np.mean(values))
    assert (s.low, s.high) == pytest.approx((lo, hi))
    one = repeat_summary([0.7, float("nan")])
    mean, low, high = one
    assert mean == 0.7 and math.isnan(low) and math.isnan(high)
    assert math.isnan(repeat_summary([]).mean)
