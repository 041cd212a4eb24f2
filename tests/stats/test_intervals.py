"""Bootstrap CIs over patients (stratified, seeded): one set of predictions, and the mean over
CV repeats of pooled metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chmfl.errors import ChmflError
from chmfl.stats import auc_score, bootstrap_ci, bootstrap_repeat_mean, classification_metrics


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


def test_bootstrap_repeat_mean_resamples_patients_once_for_every_repeat():
    y, p0 = _data(12, 12, seed=6)
    p1 = np.roll(p0, 1)
    probs = np.vstack([p0, p1])
    ci = bootstrap_repeat_mean(y, probs, n=400, seed=2)
    assert set(ci) == {"accuracy", "sensitivity", "specificity", "precision", "f1", "auc", "brier"}
    # the same indices as bootstrap_ci (same seed, same stratified draw): with R = 1 they agree
    assert bootstrap_repeat_mean(y, p0[None], n=400, seed=2)["auc"] == pytest.approx(
        bootstrap_ci(y, p0, "auc", n=400, seed=2), abs=1e-12)
    assert bootstrap_repeat_mean(y, p0[None], n=400, seed=2)["f1"] == pytest.approx(
        bootstrap_ci(y, p0, "f1", n=400, seed=2), abs=1e-12)
    mean_auc = np.mean([auc_score(y, p0), auc_score(y, p1)])
    assert ci["auc"][0] < mean_auc < ci["auc"][1]
    # identical repeats: the interval of their mean is the one-repeat interval (no 1/sqrt(R) shrinkage)
    same = bootstrap_repeat_mean(y, np.vstack([p0] * 10), n=400, seed=2)
    assert same["auc"] == pytest.approx(bootstrap_repeat_mean(y, p0[None], n=400, seed=2)["auc"])
    assert all(math.isnan(v) for v in bootstrap_repeat_mean([1, 1, 1], [[0.2, 0.5, 0.9]])["auc"])
