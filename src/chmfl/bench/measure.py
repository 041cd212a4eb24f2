"""Timing primitives of ``chmfl bench``: median of timed runs after warm-up, the machine's
matrix-multiply rates (the roofline the networks are compared with), and the load average."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Timing:
    median_s: float
    samples_s: tuple[float, ...]  # the timed runs
    warmup_s: tuple[float, ...]  # the untimed runs before them (first-call and compile costs)


def time_call(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; the median wall time."""
    warm = []
    for _ in range(warmup):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return Timing(statistics.median(samples), tuple(samples), tuple(warm))


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15-minute load averages (zeros where the OS has none)."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())  # type: ignore[return-value]
    except OSError:
        return (0.0, 0.0, 0.0)


def _matmul_seconds(n: int, dtype: torch.dtype, repeats: int) -> float:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    return time_call(lambda: torch.mm(a, b), repeats=repeats, warmup=1).median_s


def matmul_gflops(dtype: torch.dtype, size: int | None = None, target_s: float = 0.3,
                  max_size: int = 4096, repeats: int = 5) -> tuple[float, int]:
    """Achieved GFLOP/s of a square ``dtype`` matmul and the size used.

    Without ``size`` a 256^2 probe picks the largest power-of-two size (up to ``max_size``)
    whose product takes about ``target_s``: emulated bf16 on an AVX2 CPU is hundreds of times
    slower than fp32, so one fixed size would take either microseconds or minutes.
    """
    if size is None:
        size, probe = 256, _matmul_seconds(256, dtype, 1)
        while size < max_size and probe * 8 < target_s:
            size, probe = size * 2, probe * 8
    seconds = _matmul_seconds(size, dtype, repeats)
    return 2.0 * size**3 / seconds / 1e9, size
