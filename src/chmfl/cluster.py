"""Independent jobs on a Ray cluster (``--executor ray``): fold jobs of ``chmfl cv`` and the
per-patient work of ``chmfl data prepare``.

Why Ray (and not Dask distributed): a job here is one long, self-contained Python call (a fold
trains for minutes to hours; a patient is resampled for seconds), not a graph of array chunks.
Ray's tasks are exactly that, with a retry built in: a task whose worker process or node dies
is run again (``max_retries``), and each chmfl job is idempotent (a fold with ``done.json`` is
read back, an unfinished one resumes from its checkpoint; a prepared patient is skipped), so a
re-run costs at most the lost work and changes no result. Ray also places a task on a node with
the CPUs / GPU it asks for. Ray is an optional dependency (``pip install 'chmfl[cluster]'``),
imported only here and only when asked for.

Every node must see the same file system paths (the cache and the results folder: a shared
disk) and have the same chmfl installed. ``address=None`` connects to the cluster named by
``RAY_ADDRESS`` or, without one, starts a local cluster for the run; "auto" joins the one
``ray start`` began on this machine; "ray://HOST:10001" a remote one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from chmfl.errors import ChmflError

EXECUTORS = ("local", "ray")
# a job whose worker died (process killed, node lost) is run again this many times; a job that
# raised an error is not (the error is the job's result: running it again would raise it again)
MAX_RETRIES = 3


def check_executor(executor: str) -> None:
    if executor not in EXECUTORS:
        raise ChmflError(f"unknown executor {executor!r}: use {' or '.join(EXECUTORS)}")


def _ray():
    try:
        import ray
    except ImportError:
        raise ChmflError("--executor ray needs the 'ray' package: pip install 'chmfl[cluster]'") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[Any]:
    """The ``ray`` module connected to a cluster: the one this process already joined, the
    one at ``address`` (module docstring), or a local one started here and shut down after."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"address": address, "log_to_driver": True}
    if address is None:
        kwargs["include_dashboard"] = False  # a local cluster for this run only
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        raise ChmflError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _with_threads(fn: Callable[..., Any], threads: int, *args: Any) -> Any:
    """``fn(*args)`` with torch's intra-op threads set to the task's CPUs (as the local process
    pool's workers are set), where torch is installed."""
    try:
        import torch
    except ImportError:  # pragma: no cover - chmfl needs torch; kept for plain helpers
        return fn(*args)
    torch.set_num_threads(max(1, threads))
    return fn(*args)


def ray_map(fn: Callable[..., Any], jobs: Sequence[tuple], *, address: str | None = None,
            num_cpus: int = 1, num_gpus: float = 0, max_retries: int = MAX_RETRIES,
            on_result: Callable[[int, Any], bool] | None = None) -> list[Any]:
    """``[fn(*job) for job in jobs]``, each call a Ray task with ``num_cpus`` CPUs (torch uses
    as many threads) and ``num_gpus`` GPUs, re-run up to ``max_retries`` times if its worker
    dies. Results come back in the order of ``jobs``; ``on_result(i, result)`` is called as each
    arrives (in order) and may return False to cancel the tasks not yet read (and stop)."""
    with ray_session(address) as ray:
        task = ray.remote(_with_threads).options(num_cpus=num_cpus, num_gpus=num_gpus,
                                                 max_retries=max_retries, retry_exceptions=False)
        refs = [task.remote(fn, num_cpus, *job) for job in jobs]
        results = []
        for i, ref in enumerate(refs):
            results.append(_get(ray, ref))
            if on_result is not None and on_result(i, results[-1]) is False:
                for other in refs[i + 1:]:
                    ray.cancel(other)
                break
        return results


def _get(ray: Any, ref: Any) -> Any:
    """``ray.get(ref)``; a task's ``ChmflError`` is raised as itself (a one-line message for the
    command line), not wrapped in Ray's traceback."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, ChmflError):
            raise cause from None
        raise
