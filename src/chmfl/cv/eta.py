"""How long a cross-validation run has left: an estimate from the first training epoch, then
a running one after every fold job and every epoch.

Each method (a results label) is timed as it runs: seconds per epoch and the epochs its
folds actually ran (fewer than the maximum when they stop early), plus what a fold spends
outside its epochs (predicting, writing masks); a method that trains no epochs is timed by
its whole folds. A job not yet seen takes its method's times; until every method of the run
has been seen, the estimate covers the methods seen so far ("at least").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class MethodTimes:
    """What one label's folds have taken so far."""

    epoch_s: list[float] = field(default_factory=list)  # every epoch, every fold
    max_epochs: int = 0  # 0: trains no epochs
    fold_epochs: list[int] = field(default_factory=list)  # epochs run by each finished fold
    outside_s: list[float] = field(default_factory=list)  # fold wall time outside its epochs
    fold_s: list[float] = field(default_factory=list)  # whole finished folds

    def job_seconds(self, epochs_done: int = 0) -> float | None:
        """Expected seconds for one fold of this method from ``epochs_done`` epochs on."""
        if self.max_epochs and self.epoch_s:
            per_epoch = sum(self.epoch_s) / len(self.epoch_s)
            epochs = sum(self.fold_epochs) / len(self.fold_epochs) if self.fold_epochs else self.max_epochs
            outside = sum(self.outside_s) / len(self.outside_s) if self.outside_s else 0.0
            return max(epochs - epochs_done, 0.0) * per_epoch + outside
        if self.fold_s:
            return sum(self.fold_s) / len(self.fold_s)
        return None


def seconds_left(times: dict[str, MethodTimes], pending: Sequence[str], current: str | None = None,
                 current_epochs: int = 0, current_s: float = 0.0) -> tuple[float, bool]:
    """(seconds, complete) still to run: the job under way (``current``, ``current_epochs``
    done, ``current_s`` spent) and every label in ``pending``. ``complete`` is False when a
    label has no times yet (the seconds then cover the others only)."""
    total, complete = 0.0, True
    if current is not None:
        est = times[current].job_seconds(current_epochs) if current in times else None
        if est is None:
            complete = False
        elif not times[current].max_epochs:
            est = max(est - current_s, 0.0)
        total += est or 0.0
    for label in pending:
        est = times[label].job_seconds() if label in times else None
        complete = complete and est is not None
        total += est or 0.0
    return total, complete


def parallel_left(done: int, total: int, elapsed: float) -> float:
    """Seconds left when ``done`` of ``total`` jobs finished in ``elapsed`` wall seconds (jobs
    run side by side, so the wall time per job so far already counts the parallelism)."""
    return elapsed / done * (total - done) if done else 0.0


def describe(seconds: float) -> str:
    """'45 s', '12 min', '2 h 05 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"


class RunClock:
    """The ETA of one run of ``labels`` (one per fold job, in run order); the runner calls
    ``start``/``done`` around each job and routes the training loop's epochs to ``epoch``."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.times: dict[str, MethodTimes] = {}
        self.index: int | None = None  # the job under way
        self.next = 0  # the first job not started
        self.epochs_now: list[float] = []
        self.job_start = dt.datetime.now()
        self.announced = False

    def start(self, index: int) -> None:
        self.index, self.next, self.epochs_now = index, index + 1, []
        self.job_start = dt.datetime.now()

    def epoch(self, epoch: int, max_epochs: int, seconds: float) -> None:
        """The epoch hook (``methods.epoch_hook``): log the first estimate once it exists."""
        if self.index is None:
            return
        t = self.times.setdefault(self.labels[self.index], MethodTimes())
        t.max_epochs = max_epochs
        t.epoch_s.append(seconds)
        self.epochs_now.append(seconds)
        if not self.announced:
            self.announced = True
            log.info("first epoch of %s took %.0f s: %s", self.labels[self.index], seconds, self.left_text())

    def done(self, seconds: float) -> None:
        if self.index is None:
            return
        t = self.times.setdefault(self.labels[self.index], MethodTimes())
        t.fold_s.append(seconds)
        if t.max_epochs:
            t.fold_epochs.append(len(self.epochs_now))
            t.outside_s.append(max(seconds - sum(self.epochs_now), 0.0))
        self.index, self.epochs_now = None, []

    def left(self) -> tuple[float, bool]:
        """(seconds, complete) left in the run from now."""
        current = self.labels[self.index] if self.index is not None else None
        spent = (dt.datetime.now() - self.job_start).total_seconds()
        return seconds_left(self.times, self.labels[self.next:], current, len(self.epochs_now), spent)

    def left_text(self) -> str:
        """'about 14 min left (until 12:41)' / 'at least 3 min left ...' / 'not known yet'."""
        seconds, complete = self.left()
        if not complete and seconds == 0:
            return "time left not known yet"
        until = (dt.datetime.now() + dt.timedelta(seconds=seconds)).strftime("%H:%M")
        return f"{'about' if complete else 'at least'} {describe(seconds)} left in the run (until {until})"
