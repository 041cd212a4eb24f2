"""``RuntimeConfig``: how a training run computes -- device(s), precision, threads, determinism,
where the cases live, and the speed/memory options (``chmfl.accel.options.SpeedOptions``).

Stored with every result and model, but never part of what a result *is* (its label, the
reuse of a finished fold): a run repeated with other runtime settings is the same experiment
(``methods.train_config`` holds the science). ``split_settings`` routes a flat mapping of
setting names -- an experiment's ``train:`` block, ``--set KEY=VALUE``, the flat ``train``
dict of model folders saved before the split -- to the two. Also here, so that the
cross-validation runner can ask without importing the loop: ``is_main_process``.
Imports torch only inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chmfl.accel.options import SPEED_FIELDS, SpeedOptions
from chmfl.errors import ChmflError
from chmfl.methods.train_config import TRAIN_FIELDS, TrainConfig
from chmfl.typecheck import coerce_fields


@dataclass(frozen=True)
class RuntimeConfig:
    accelerator: str = "auto"  # "cpu", "cuda", "auto"
    devices: int | str = 1  # >1 -> DDP through Lightning Fabric
    num_threads: int = 0  # torch CPU threads; 0 = leave torch's default
    deterministic: bool = True
    precision: str = "auto"  # "32", "bf16" or "auto" (bf16 only where the hardware runs it fast)
    # the training cases live on the training device for the whole fit (one copy, not one per
    # step: a host-to-GPU copy makes the host wait for the GPU); nothing moves on a CPU
    data_on_device: bool = True
    speed: SpeedOptions = field(default_factory=SpeedOptions)

    def __post_init__(self) -> None:
        # "--set precision=32" arrives as the YAML integer 32; keep the setting one type
        if isinstance(self.precision, (int, float)) and not isinstance(self.precision, bool):
            object.__setattr__(self, "precision", f"{self.precision:g}")
        coerce_fields(self, "runtime setting", skip=("devices", "speed"))
        if not isinstance(self.devices, (int, str)) or isinstance(self.devices, bool):
            raise ChmflError(f"runtime setting devices must be a number or 'auto', got {self.devices!r}")

    def replace(self, **changes: Any) -> RuntimeConfig:
        """A copy with flat ``changes`` (speed option names go to ``speed``)."""
        unknown = set(changes) - set(RUNTIME_FIELDS)
        if unknown:
            raise ChmflError(f"unknown runtime setting(s): {', '.join(sorted(unknown))}")
        speed = {k: v for k, v in changes.items() if k in SPEED_FIELDS}
        rest = {k: v for k, v in changes.items() if k not in SPEED_FIELDS}
        return dataclasses.replace(self, speed=dataclasses.replace(self.speed, **speed), **rest)

    def resolved(self, device: str | None = None) -> RuntimeConfig:
        """A copy with the "auto" speed options decided for ``device`` (a device type; default:
        the one ``accelerator`` names, "auto" meaning a GPU where one is here): what a fold
        trains with and records (``accel.options.device_defaults``)."""
        if device is None:
            device = self.accelerator if self.accelerator != "auto" else resolve_accelerator("auto")
        return dataclasses.replace(self, speed=self.speed.resolved(device))

    def to_dict(self) -> dict[str, Any]:
        """Flat: the speed options beside the other settings (their names are unique)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "speed"}
        return {**out, **self.speed.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> RuntimeConfig:
        return cls().replace(**(d or {}))


RUNTIME_FIELDS = tuple(f.name for f in dataclasses.fields(RuntimeConfig) if f.name != "speed") + SPEED_FIELDS


def split_settings(flat: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(science, runtime) parts of a flat settings mapping; an unknown name is a one-line error."""
    flat = dict(flat or {})
    unknown = set(flat) - set(TRAIN_FIELDS) - set(RUNTIME_FIELDS)
    if unknown:
        raise ChmflError(f"unknown training setting(s): {', '.join(sorted(unknown))} "
                         f"(science: {', '.join(TRAIN_FIELDS)}; runtime: {', '.join(RUNTIME_FIELDS)})")
    return ({k: v for k, v in flat.items() if k in TRAIN_FIELDS},
            {k: v for k, v in flat.items() if k in RUNTIME_FIELDS})


def settings(flat: Mapping[str, Any] | None) -> tuple[TrainConfig, RuntimeConfig]:
    """``TrainConfig`` and ``RuntimeConfig`` from one flat mapping (``split_settings``)."""
    science, runtime = split_settings(flat)
    return TrainConfig.from_dict(science), RuntimeConfig.from_dict(runtime)


def is_main_process() -> bool:
    """False in the DDP ranks other than 0 (``devices > 1``): they train in step with rank 0
    but leave every record to it. Before the process group exists (a rank's process re-runs
    the command from its start), the launcher's LOCAL_RANK / NODE_RANK tell."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return all(int(os.environ.get(k, "0") or 0) == 0 for k in ("LOCAL_RANK", "NODE_RANK"))


def cpu_has_fast_bf16() -> bool:
    """True where the CPU multiplies bf16 natively (AMX or AVX512-BF16); elsewhere bf16 is
    emulated and hundreds of times slower than fp32 (measured: 0.28 vs 118 GFLOP/s on an
    AVX2-only EPYC)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # private probes: absent or failing means "not known to be fast"
            continue
    return False


def resolve_precision(precision: str, accelerator: str) -> str:
    """Map "32" / "bf16" / "auto" to a Lightning Fabric precision string."""
    import torch

    if precision in ("32", "32-true", "fp32"):
        return "32-true"
    if precision in ("bf16", "bf16-mixed"):
        return "bf16-mixed"
    if precision != "auto":
        raise ChmflError(f"unknown precision {precision!r}: use 32, bf16 or auto")
    if accelerator == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_has_fast_bf16() else "32-true"


def resolve_accelerator(accelerator: str) -> str:
    import torch

    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise ChmflError("accelerator 'cuda' asked for but no CUDA device is available")
    return accelerator
