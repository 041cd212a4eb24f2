"""``BenchConfig``: what one ``chmfl bench`` run measures, as plain frozen data.

Model presets name the network options a run uses. ``faithful`` is the paper's CHMFL (Table SI
widths, 2 convs of 5x5x5 per decoder level); ``fast`` changes the arithmetic of the CFL
decoder (kernel 3, one conv per level) and is therefore only ever used when asked for by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from chmfl.errors import ChmflError

PRESETS: dict[str, dict[str, Any]] = {
    "faithful": {},
    "fast": {"decoder_kernel": 3, "decoder_convs": (1, 1, 1, 1)},
}


@dataclass(frozen=True)
class BenchConfig:
    voxel_mm: float = 1.0  # isotropic voxel size of the box (the paper: 1 mm)
    device: str = "cpu"  # "cpu" or "cuda" (one GPU; the training inputs live on it, as in the loop)
    precision: str = "auto"  # "32", "bf16" or "auto" (bf16 only where the device runs it natively)
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    interop_threads: int = 0  # torch inter-op threads; 0 = torch's default
    repeats: int = 3  # timed runs per measurement (the median is reported)
    warmup: int = 1  # untimed runs before them
    # the speed options of CHMFL's step (None: the device's default, accel.options.device_defaults)
    channels_last: bool | None = None  # channels_last_3d memory format for CHMFL
    fast_wgrad: bool | None = None  # CHMFL convolution weight gradients as large GEMMs (accel/fastconv.py)
    inplace_act: bool | None = None  # ELU in place (saves one activation per conv block)
    inplace_abn: bool | None = None  # BatchNorm + ELU keep one map for backward (accel/lowmem.py)
    split_concat: bool | None = None  # decoder convs read (up, PET, CT) apart (accel/lowmem.py)
    fused_adam: bool | None = None  # Adam's update as one fused kernel
    # glibc malloc maps blocks from this size during the step (0: the allocator's default; None:
    # the device's rule, accel.options.mmap_default)
    mmap_threshold_mb: float | None = None
    compile: bool = False  # torch.compile (inductor) the CHMFL network
    compile_mode: str = "default"  # torch.compile's mode ("reduce-overhead": CUDA graphs on a GPU)
    preset: str = "faithful"  # CHMFL model preset (PRESETS)
    model_options: dict[str, Any] = field(default_factory=dict)  # extra CHMFL options
    skip_vnet: bool = False
    skip_matmul: bool = False
    matmul_fp32_size: int = 2048  # square fp32 matmul size
    seed: int = 0

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ChmflError(f"unknown bench preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.repeats < 1 or self.warmup < 0:
            raise ChmflError(f"repeats must be >= 1 and warmup >= 0, got {self.repeats}, {self.warmup}")
        if self.device not in ("cpu", "cuda"):
            raise ChmflError(f"bench device must be cpu or cuda, not {self.device!r}")
        if self.mmap_threshold_mb is not None and self.mmap_threshold_mb < 0:
            raise ChmflError(f"mmap threshold must be >= 0 MB, got {self.mmap_threshold_mb}")
        from chmfl.accel.options import COMPILE_MODES

        if self.compile_mode not in COMPILE_MODES:
            raise ChmflError(f"compile mode must be one of {', '.join(COMPILE_MODES)}, not {self.compile_mode!r}")
        if not self.voxel_mm > 0:
            raise ChmflError(f"voxel size must be > 0 mm, got {self.voxel_mm}")

    def resolved(self) -> BenchConfig:
        """A copy with every "auto" speed option decided for ``device`` (as a fold decides them)."""
        from chmfl.accel.options import AUTO_FIELDS, SpeedOptions

        keys = (*AUTO_FIELDS, "mmap_threshold_mb")
        speed = SpeedOptions(**{k: getattr(self, k) for k in keys}).resolved(self.device)
        return dataclasses.replace(self, **{k: getattr(speed, k) for k in keys})

    def chmfl_options(self) -> dict[str, Any]:
        """Network options of the benchmarked CHMFL: the preset, then ``model_options``."""
        return {**PRESETS[self.preset], **self.model_options}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
