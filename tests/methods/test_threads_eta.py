"""The thread rule and the run's time-left estimate, as pure functions."""

from __future__ import annotations

import pytest

from chmfl.cv.eta import MethodTimes, RunClock, describe, parallel_left, seconds_left
from chmfl.errors import ChmflError
from chmfl.methods import threads
from chmfl.methods.threads import resolve_threads, threads_for


@pytest.mark.parametrize("cores, load, expected", [
    (2, 0.0, 2), (2, 0.48, 2), (2, 1.0, 1), (2, 1.6, 1), (2, 17.0, 1),  # never below one
    (16, 3.2, 13), (16, 0.0, 16), (1, 0.0, 1), (4, -1.0, 4),
])
def test_one_thread_per_free_core(cores, load, expected):
    assert threads_for(cores, load) == expected


def test_auto_threads_reads_this_machine(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.9, 0.0, 0.0))
    assert resolve_threads("auto") == 1  # two 2-thread processes on 2 cores ran ~7x slower per epoch
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert resolve_threads("auto") == 2
    assert resolve_threads(3) == 3 and resolve_threads("4") == 4 and resolve_threads(0) == 0
    for bad in (-1, "many"):
        with pytest.raises(ChmflError, match="threads"):
            resolve_threads(bad)


def test_seconds_left_from_epochs_and_whole_folds():
    times = {"rf": MethodTimes(fold_s=[2.0, 4.0]),
             "net": MethodTimes(epoch_s=[10.0, 10.0], max_epochs=12)}
    # two pending folds of each: 2 x 3 s + 2 x 12 x 10 s
    assert seconds_left(times, ["rf", "net", "rf", "net"]) == (246.0, True)
    # the net's fold under way has done 2 of 12 epochs: 100 s of it left
    assert seconds_left(times, ["rf"], current="net", current_epochs=2) == (103.0, True)
    # a finished net fold stopped early after 6 epochs and spent 5 s predicting
    times["net"].fold_epochs, times["net"].outside_s = [6], [5.0]
    assert seconds_left(times, ["net"]) == (65.0, True)
    assert seconds_left(times, ["net", "unseen"]) == (65.0, False)  # 'at least'


def test_run_clock_announces_from_the_first_epoch(caplog):
    caplog.set_level("INFO", logger="chmfl.cv.eta")
    clock = RunClock(["rf", "net", "rf", "net"])
    clock.start(0)
    clock.done(3.0)
    clock.start(1)
    clock.epoch(1, 10, 20.0)
    assert "first epoch of net took 20 s: about" in caplog.text
    seconds, complete = clock.left()
    assert complete and seconds == pytest.approx(9 * 20.0 + 3.0 + 10 * 20.0, abs=2.0)
    clock.epoch(2, 10, 20.0)
    assert caplog.text.count("first epoch") == 1  # announced once


def test_describe_and_parallel():
    assert describe(45) == "45 s" and describe(600) == "10 min" and describe(3 * 3600 + 300) == "3 h 05 min"
    assert parallel_left(2, 6, 100.0) == 200.0 and parallel_left(0, 6, 1.0) == 0.0
