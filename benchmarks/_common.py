"""Shared helpers of the benchmark scripts: run a command and time it, describe the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def machine() -> dict:
    """CPU model, cores and load average: every recorded number carries them."""
    from chmfl.bench.measure import load_average
    from chmfl.cv.record import cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load_avg": list(load_average()),
            "python": platform.python_version(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def timed(cmd: list[str]) -> dict:
    """Run ``cmd`` (stdout/stderr passed through), return its wall time and exit code."""
    print("$ " + " ".join(cmd), flush=True)
    from chmfl.bench.measure import load_average

    load = list(load_average())
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, check=False).returncode
    return {"cmd": cmd, "rc": rc, "wall_s": round(time.perf_counter() - t0, 2), "load_before": load,
            "load_after": list(load_average())}


def chmfl() -> list[str]:
    """The chmfl command of this interpreter's environment."""
    return [sys.executable, "-m", "chmfl.cli.main"]


def write(path: str | Path, record: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}")
