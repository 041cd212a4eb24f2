"""How many CPU threads a training run should use, and how its threads should wait.

``threads_for(cores, load)`` is the rule, a pure function: one thread per core that other
processes leave free (the 1-minute load average counts the runnable ones), at least one.
``auto_threads()`` applies it to this machine: the cores this process may run on
(``os.sched_getaffinity``, capped by a cgroup CPU quota) and ``os.getloadavg``.

The thread count is part of the arithmetic: oneDNN splits a convolution's weight-gradient
sums by thread, so 1 and 2 threads give gradients that differ in the 7th digit (measured on
CHMFL's demo network) and, over epochs, other numbers. A run that must repeat a published
number (``chmfl demo``) therefore pins its count; ``--threads auto`` trades that for speed.

What made a busy machine slow was not the count but how idle threads wait: GNU OpenMP's
threads spin between parallel regions, and on oversubscribed cores the spinning steals the
time the working threads need. ``OMP_WAIT_POLICY=PASSIVE`` (set by the command line unless the
user set it) makes them sleep instead, with the same arithmetic (gradients bit-identical).
Measured, one CHMFL demo training step (batch 4, 4 mm) on the 2-core Xeon @ 2.5 GHz at load
average 17: 2 threads spinning 12.3 s, 2 threads passive 1.1-1.8 s, 1 thread 1.6-2.3 s.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

WAIT_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")


def threads_for(cores: int, load: float) -> int:
    """One thread per core left free by a load average of ``load`` on ``cores`` cores (>= 1)."""
    return max(1, min(cores, math.floor(cores - max(load, 0.0) + 0.5)))


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def auto_threads() -> int:
    """``threads_for`` on this machine now."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return threads_for(usable_cores(), load)


def resolve_threads(setting: int | str) -> int:
    """A thread setting as torch takes it: "auto" -> ``auto_threads()``; 0 = torch's default."""
    if isinstance(setting, str):
        if setting.strip().lower() == "auto":
            return auto_threads()
        try:
            setting = int(setting)
        except ValueError:
            from chmfl.errors import ChmflError

            raise ChmflError(f"threads must be a number or 'auto', not {setting!r}") from None
    if setting < 0:
        from chmfl.errors import ChmflError

        raise ChmflError(f"threads must be 0 (torch's default), a positive number or 'auto', not {setting}")
    return int(setting)


def passive_wait() -> None:
    """Idle OpenMP threads sleep instead of spinning (see the module docstring), unless the
    user chose otherwise; only effective before torch is first imported."""
    os.environ.setdefault(*WAIT_POLICY)
