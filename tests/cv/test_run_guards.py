"""Runs that cannot mean what the user meant are refused before anything is written; a run
says how long it has left; the demo's arithmetic is pinned."""

from __future__ import annotations

import logging

import pytest
from tests.synthetic import write_cache

from chmfl.cli.main import main
from chmfl.cv.experiment import MethodRun
from chmfl.cv.runner import RunOptions, fold_settings

TINY = {"widths": [4, 8, 16, 32, 64], "decoder_convs": [1, 1, 1, 1], "decoder_kernel": 3}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_cache(tmp_path_factory.mktemp("cache"), n=12)


def _cv(cache, out, *extra) -> list[str]:
    return ["cv", "--data", str(cache), "--out", str(out), "--methods", "suvmax-volume", "--no-progress", *extra]


def test_cv_into_a_train_output_is_refused(cache, tmp_path, capsys):
    out = tmp_path / "model_out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "config.json").write_text("{}")
    assert main(_cv(cache, out, "--folds", "2")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a results folder" in err and "model" in err
    assert sorted(p.name for p in out.iterdir()) == ["model"]  # nothing written into it


def test_cv_continues_in_a_results_folder(cache, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(_cv(cache, out, "--folds", "2")) == 0
    assert main(_cv(cache, out, "--folds", "2")) == 0  # the same run again: finished folds are kept


@pytest.mark.parametrize("folds, words", [
    ("1", ("folds = 1", "at least 2 folds")),
    ("100", ("folds = 100", "at most 6 folds fit these 12 patients (6 DM, 6 no DM")),
])
def test_fold_counts_that_do_not_fit(cache, tmp_path, capsys, folds, words):
    assert main(_cv(cache, tmp_path / "res", "--folds", folds)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(w in err for w in words), err
    assert "1 folds" not in err and not (tmp_path / "res").exists()


def test_prepare_given_a_file_says_so(tmp_path, capsys):
    (tmp_path / "ct.nii.gz").write_bytes(b"not a cohort")
    assert main(["data", "prepare", str(tmp_path / "ct.nii.gz"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "not found" not in err


def test_run_logs_the_time_left(cache, tmp_path, caplog):
    from chmfl.cv.experiment import Experiment
    from chmfl.cv.runner import run_experiment

    caplog.set_level(logging.INFO, logger="chmfl.cv")
    exp = Experiment("custom", "t", (MethodRun("suvmax-volume"), MethodRun("chmfl", model_kwargs=TINY)),
                     reference="chmfl", folds=2, train={"epochs": 1, "batch_size": 4, "precision": "32"})
    run_experiment(exp, cache, tmp_path / "res", RunOptions(seed=0, progress=False))
    assert "first epoch of chmfl[" in caplog.text
    starts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[")]
    assert [s.split("]")[0] for s in starts] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert "about" in starts[-1] and "left in the run (until" in starts[-1]  # every method timed by then


def test_demo_pins_fp32_and_two_threads_even_with_amx(monkeypatch):
    """precision 'auto' picked bf16 on CPUs with AMX: pooled AUC 0.720 instead of the README's 0.731."""
    from chmfl.demo import demo_experiment
    from chmfl.methods import runtime
    from chmfl.methods.runtime import resolve_precision

    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: True)
    exp = demo_experiment()
    _, settings = fold_settings(exp, exp.methods[-1], RunOptions())
    assert resolve_precision(settings.precision, "cpu") == "32-true" and settings.num_threads == 2
    assert resolve_precision("auto", "cpu") == "bf16-mixed"  # what the demo used to get there
