"""``--executor ray``: fold jobs on a local Ray cluster that the test starts (2 worker CPUs)
give the local executor's predictions; a job whose worker dies is run again."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from tests.synthetic import write_cache

from chmfl.cli.main import main

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'chmfl[cluster]')")

TINY = "chmfl[widths=[4, 8, 16, 32, 64],decoder_convs=[1, 1, 1, 1],decoder_kernel=3]"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray")
    # the workers import chmfl and this module (a task below) as the test process does
    root = Path(__file__).resolve().parents[2]
    paths = [str(root / "src"), str(root), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    for attempt in range(3):  # Ray waits a fixed 30 s for its raylet: an overloaded machine can miss it
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=str(tmp / str(attempt)))
            break
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception on a startup timeout
            ray.shutdown()
            error = exc
    else:
        pytest.skip(f"Ray could not start a local cluster in 3 tries (machine overloaded?): {error}")
    yield
    ray.shutdown()


def _cv(cache, out, *extra):
    # one thread per fold in both executors: the same float summation order, so equal numbers
    return main(["cv", "--data", str(cache), "--out", str(out), "--methods", f"suvmax-volume,{TINY}",
                 "--folds", "2", "--repeats", "1", "--epochs", "1", "--set", "batch_size=2", "--set", "precision=32",
                 "--set", "num_threads=1", "--no-progress", *extra])


def test_ray_executor_equals_local(cluster, tmp_path):
    cache = write_cache(tmp_path / "cache", n=12)
    assert _cv(cache, tmp_path / "local") == 0
    assert _cv(cache, tmp_path / "ray", "--executor", "ray") == 0
    local = pd.read_csv(tmp_path / "local" / "predictions.csv")
    on_ray = pd.read_csv(tmp_path / "ray" / "predictions.csv")
    assert len(local) == 24 and set(local["method"]) == {"suvmax-volume", TINY}
    pd.testing.assert_frame_equal(local, on_ray)  # identical, not merely close
    done = sorted((tmp_path / "ray").glob("*/repeat_0/fold_*/done.json"))
    assert len(done) == 4
    stamps = [p.stat().st_mtime_ns for p in done]
    assert _cv(cache, tmp_path / "ray", "--executor", "ray") == 0  # idempotent: nothing re-run
    assert [p.stat().st_mtime_ns for p in done] == stamps


def test_a_job_whose_worker_dies_is_run_again(cluster, tmp_path):
    from chmfl.cluster import ray_map

    def _die_once(marker: str) -> int:  # local: Ray pickles it by value for its workers
        """Kills its own worker process the first time (as a lost node would), then succeeds."""
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return os.getpid()

    marker = str(tmp_path / "died")
    assert len(ray_map(_die_once, [(marker,)])) == 1  # succeeded on its retry
    assert os.path.exists(marker)
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray_map(_die_once, [(str(tmp_path / "again"),)], max_retries=0)


def test_bad_executor_and_missing_ray_are_one_line_errors(monkeypatch):
    import builtins

    from chmfl.cluster import ray_session
    from chmfl.cv.runner import RunOptions
    from chmfl.errors import ChmflError

    with pytest.raises(ChmflError, match="unknown executor 'dask'"):
        RunOptions(executor="dask")
    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ChmflError, match=r"pip install 'chmfl\[cluster\]'"), ray_session():
        pass
