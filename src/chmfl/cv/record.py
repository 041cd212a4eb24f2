"""What a run records about itself: versions, git commit, hardware, peak memory."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from chmfl import __version__


def git_commit() -> str | None:
    """The commit of the chmfl source tree, when it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(), "python": platform.python_version(),
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"chmfl": __version__}
    for pkg in ("torch", "numpy", "scikit-learn", "SimpleITK", "pydicom", "monai", "lightning",
                "pyradiomics-bhklab", "highdicom"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _rss_gb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


class PeakRSS:
    """Context manager sampling this process's resident memory; ``.peak_gb`` after exit."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.peak_gb = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_gb = max(self.peak_gb, _rss_gb())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRSS:
        self.peak_gb = _rss_gb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_gb = max(self.peak_gb, _rss_gb())
        self.seconds = time.perf_counter() - self.t0
