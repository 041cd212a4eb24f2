"""``--parallel-folds N``: fold jobs in N worker processes give the same results folder as
running them one after another (each fold is self-contained and seeded)."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.synthetic import write_cache

from chmfl.cv.experiment import Experiment, MethodRun
from chmfl.cv.runner import RunOptions, run_experiment

TINY = {"widths": [4, 8, 16, 32, 64], "decoder_convs": [1, 1, 1, 1], "decoder_kernel": 3}


def _compare(tmp_path, runs, n_rows):
    cache = write_cache(tmp_path / "cache", n=8, shape=(16, 16, 32))
    exp = Experiment("custom", "test", runs, reference=runs[-1].label, folds=2,
                     train={"epochs": 1, "batch_size": 2, "precision": "32", "num_threads": 1})
    seq = run_experiment(exp, cache, tmp_path / "seq", RunOptions(seed=1, progress=False))
    par = run_experiment(exp, cache, tmp_path / "par", RunOptions(seed=1, progress=False, parallel_folds=2))
    key = ["method", "repeat", "fold", "patient_id"]
    a = pd.read_csv(seq / "predictions.csv").sort_values(key).reset_index(drop=True)
    b = pd.read_csv(par / "predictions.csv").sort_values(key).reset_index(drop=True)
    assert len(a) == n_rows and a[key].equals(b[key])
    pd.testing.assert_series_equal(a["probability"], b["probability"], atol=1e-6)
    assert len(pd.read_csv(par / "timing.csv")) == len(runs) * 2  # every fold job recorded


def test_parallel_folds_match_sequential(tmp_path):
    _compare(tmp_path, (MethodRun("suvmax-volume"),), 8)


@pytest.mark.slow
def test_parallel_neural_folds_match_sequential(tmp_path):
    _compare(tmp_path, (MethodRun("suvmax-volume"), MethodRun("chmfl", model_kwargs=TINY)), 16)
