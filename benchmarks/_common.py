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


def method_setup(name: str, voxel_mm: float, cases: int, seed: int = 0):
    """Network, ``cases`` synthetic training patients (half DM), the (science, runtime)
    settings and the network name of the
    neural method ``name`` as the paper protocol trains it: its own settings, batch 1.
    MOR+3D CNNs is its CNN (its radiomics search runs on the CPU); 3DMCL gets 100 random
    handcrafted features."""
    import dataclasses

    import torch

    from chmfl.bench.networks import box_shape, synthetic_case
    from chmfl.methods.base import FitContext
    from chmfl.methods.neural import NeuralMethod
    from chmfl.methods.registry import create
    from chmfl.methods.spec import MethodRun

    m = (NeuralMethod("mor-3dcnn[cnn]", "mor-cnn", seed=seed) if name == "mor-3dcnn"
         else create(MethodRun(name), FitContext(seed=seed)))
    n_features = 100 if getattr(m._network_class(), "uses_handcrafted", False) else 0
    data = synthetic_case(box_shape(voxel_mm), seed=seed, batch=cases)
    data.labels[::2] = 0
    if n_features:
        data = dataclasses.replace(data, features=torch.randn(cases, n_features))
    return m._build(n_features), data, (m.train, m.runtime), m.model


def with_settings(settings: tuple, changes: dict) -> tuple:
    """(TrainConfig, RuntimeConfig) ``settings`` with flat ``changes`` (``--set`` keys of
    either kind, routed by name)."""
    from chmfl.methods.runtime import split_settings

    science, runtime = split_settings(changes)
    return settings[0].replace(**science), settings[1].replace(**runtime)


def fit(net, data, settings: tuple, seed: int) -> list[dict]:
    """The real training loop (``chmfl.methods.trainer.Trainer``); returns the epoch history."""
    from chmfl.methods.trainer import Trainer

    return Trainer(net, *settings, seed=seed, progress=False).fit(data)[1]
