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
    median_s: float  # median wall time of the timed runs
    samples_s: tuple[float, ...]  # the timed runs
    warmup_s: tuple[float, ...]  # the untimed runs before them (first-call and compile costs)
    cpu_s: float = 0.0  # median process CPU time per run: with one thread, what an idle core
    # would take when other jobs share the machine (with more, it counts OpenMP spinning too)


def _synced(fn: Callable[[], object], device: str) -> Callable[[], object]:
    """``fn`` followed by a wait for the device's queued work (CUDA runs asynchronously)."""
    if not str(device).startswith("cuda"):
        return fn

    def run() -> object:
        out = fn()
        torch.cuda.synchronize()
        return out

    return run


def time_call(fn: Callable[[], object], repeats: int = 3, warmup: int = 1, device: str = "cpu") -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; the median wall time
    (on CUDA, each run ends when the GPU has finished it)."""
    fn = _synced(fn, device)
    warm = []
    for _ in range(warmup):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    samples, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return Timing(statistics.median(samples), tuple(samples), tuple(warm), statistics.median(cpu))


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15-minute load averages (zeros where the OS has none)."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())  # type: ignore[return-value]
    except OSError:
        return (0.0, 0.0, 0.0)


def _matmul_seconds(n: int, dtype: torch.dtype, repeats: int, device: str = "cpu") -> float:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    return time_call(lambda: torch.mm(a, b), repeats=repeats, warmup=1, device=device).median_s


def matmul_gflops(dtype: torch.dtype, size: int | None = None, target_s: float = 0.3,
                  max_size: int = 4096, repeats: int = 5, device: str = "cpu") -> tuple[float, int]:
    """Achieved GFLOP/s of a square ``dtype`` matmul and the size used.

    Without ``size`` a 256^2 probe picks the largest power-of-two size (up to ``max_size``)
    whose product takes about ``target_s``: emulated bf16 on an AVX2 CPU is hundreds of times
    slower than fp32, so one fixed size would take either microseconds or minutes.
    """
    if size is None:
        size, probe = 256, _matmul_seconds(256, dtype, 1, device)
        while size < max_size and probe * 8 < target_s:
            size, probe = size * 2, probe * 8
    seconds = _matmul_seconds(size, dtype, repeats, device)
    return 2.0 * size**3 / seconds / 1e9, size
