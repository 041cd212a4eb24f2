"""``TrainConfig``: every setting of the neural training loop, as plain frozen data.

The defaults are the paper's (Section II.E): Adam, lr 1e-4, batch size 1, w = 0.5 in Eq. (1),
He initialisation (in the models), no augmentation, training until the total loss stops
changing (at most 200 epochs). ``ROBUST`` holds the settings chmfl found to generalise on
this cohort (see docs/training.md); it is opt-in, and every result records which was used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from chmfl.errors import ChmflError

# torch.compile's modes; those in CUDA_GRAPH_MODES record and replay CUDA graphs on a GPU
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
COMPILE_MODES = ("default", *CUDA_GRAPH_MODES, "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200  # maximum number of epochs
    patience: int = 20  # stop after this many epochs without a relative loss drop of min_delta
    min_delta: float = 0.01  # relative change of the epoch-mean total loss that counts as a change
    min_epochs: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 1
    seg_weight: float = 0.5  # w in Eq. (1)
    seg_reduction: str = "mean"  # voxel term of Eq. (1): "mean" over voxels or "sum" (literal)
    augment: bool = False  # random flips + small shifts (the paper names none)
    precision: str = "auto"  # "32", "bf16" or "auto" (bf16 only where the hardware runs it fast)
    channels_last: bool = False  # channels_last_3d memory format
    # Speed options that keep the network's arithmetic (docs/performance.md); off by default
    fast_wgrad: bool = False  # conv3d weight gradients as large GEMMs (models/fastconv.py)
    inplace_act: bool = False  # in-place ELUs: one activation less per conv block in training
    fused_adam: bool = False  # Adam's update as one fused kernel per step (same update up to rounding)
    # Memory options, same function and parameters (models/lowmem.py); off by default
    inplace_abn: bool = False  # BatchNorm + ELU keep one map for backward (in-place activated BN)
    split_concat: bool = False  # decoder convs read (up, PET, CT) apart: no concatenated copies
    mmap_threshold_mb: float = 0  # >0: glibc malloc maps blocks from this size (process-wide; 0: default)
    compile: bool = False  # torch.compile (inductor) the network; the first steps pay the compile
    # torch.compile's mode: "default", or "reduce-overhead" (CUDA graphs on a GPU: one launch
    # per graph instead of one per kernel), "max-autotune", "max-autotune-no-cudagraphs"
    compile_mode: str = "default"
    accelerator: str = "auto"  # "cpu", "cuda", "auto"
    # the training cases live on the training device for the whole fit (one copy, not one per
    # step: a host-to-GPU copy makes the host wait for the GPU); nothing moves on a CPU
    data_on_device: bool = True
    devices: int | str = 1  # >1 -> DDP through Lightning Fabric
    num_threads: int = 0  # torch CPU threads; 0 = leave torch's default
    deterministic: bool = True
    # BatchNorm at prediction: "running" (PyTorch eval mode, the paper's implied default) or
    # "sample" (each patient normalised by its own statistics, exactly as in training at
    # batch size 1; see docs/training.md for why this matters on this cohort)
    bn_eval: str = "running"

    def __post_init__(self) -> None:
        # "--set precision=32" arrives as the YAML integer 32; keep the setting one type
        if isinstance(self.precision, (int, float)) and not isinstance(self.precision, bool):
            object.__setattr__(self, "precision", f"{self.precision:g}")
        if self.compile_mode not in COMPILE_MODES:
            raise ChmflError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, "
                             f"not {self.compile_mode!r}")

    def replace(self, **changes: Any) -> TrainConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ChmflError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TrainConfig:
        return cls().replace(**(d or {}))


# Opt-in settings (``--preset robust``), chosen from the mechanism and training-fold
# diagnostics only, never from test folds (docs/training.md): BatchNorm predicts with each
# patient's own statistics, exactly as it trained at batch size 1, and flips/shifts enlarge
# 40 training patients. Everything else stays the paper's.
ROBUST = {"bn_eval": "sample", "augment": True}

# Every speed and memory option that keeps the network's function and parameters
# (``--speed-options``; docs/performance.md): each step equals the plain one up to float
# summation order (over many epochs the runs drift apart as any two SGD runs do). Measured at
# 1 mm on a 2-core AVX2 CPU: step 60.3 -> 36-37 s, peak 4.28 -> 2.44 GB (2.07 GB adding
# mmap_threshold_mb=1, left out here: it slowed the 4 mm batch-4 step by 28%).
SPEED_OPTIONS = {"channels_last": True, "fast_wgrad": True, "inplace_act": True,
                 "inplace_abn": True, "split_concat": True, "fused_adam": True}


def cpu_has_fast_bf16() -> bool:
    """True where the CPU multiplies bf16 natively (AMX or AVX512-BF16); elsewhere bf16 is
    emulated and hundreds of times slower than fp32 (measured: 0.28 vs 118 GFLOP/s on an
    AVX2-only EPYC)."""
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
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise ChmflError("accelerator 'cuda' asked for but no CUDA device is available")
    return accelerator
