"""``SpeedOptions``: the speed and memory settings of a training run, and what applies them.

The six options of ``SPEED_OPTIONS`` are on by default where they are faster on the device at
hand: a field left ``None`` ("auto") is filled by ``device_defaults`` (the rule and its
measurements are there) when the settings of a fold or a ``Trainer`` are resolved
(``SpeedOptions.resolved``), and the resolved values are what results record. ``True`` /
``False`` (``--speed-options``, ``--no-speed-options``, ``--set KEY=false``) override the rule.

Every option keeps the network's function and parameters (each step equals the plain one up to
float summation order), so none of them is part of what a result *is*: they are runtime
settings (``chmfl.methods.runtime.RuntimeConfig``), stored with every result but left out of
its identity. ``apply`` switches them on for training, ``remove`` switches them off again before
a network is returned, so saved models and predictions never depend on them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chmfl.errors import ChmflError
from chmfl.typecheck import coerce_fields

if TYPE_CHECKING:  # torch is imported where the options are applied, not where they are read
    import torch
    from torch import nn

# torch.compile's modes; those in CUDA_GRAPH_MODES record and replay CUDA graphs on a GPU
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
COMPILE_MODES = ("default", *CUDA_GRAPH_MODES, "max-autotune-no-cudagraphs")


# None ("auto"): on where the device's rule says it is faster (``device_defaults``)
@dataclass(frozen=True)
class SpeedOptions:
    channels_last: bool | None = None  # channels_last_3d memory format (accel/layout.py)
    fast_wgrad: bool | None = None  # conv3d weight gradients as large GEMMs (accel/fastconv.py)
    inplace_act: bool | None = None  # in-place ELUs: one activation less per conv block in training
    fused_adam: bool | None = None  # Adam's update as one fused kernel per step (same update up to rounding)
    inplace_abn: bool | None = None  # BatchNorm + ELU keep one map for backward (accel/lowmem.py)
    split_concat: bool | None = None  # decoder convs read (up, PET, CT) apart: no concatenated copies
    # >0: glibc malloc maps blocks from this size (process-wide); 0: the allocator's default;
    # None ("auto"): the device's rule (``mmap_default``)
    mmap_threshold_mb: float | None = None
    compile: bool = False  # torch.compile (inductor) the network; the first steps pay the compile
    # torch.compile's mode: "default", or "reduce-overhead" (CUDA graphs on a GPU: one launch
    # per graph instead of one per kernel), "max-autotune", "max-autotune-no-cudagraphs"
    compile_mode: str = "default"

    def __post_init__(self) -> None:
        coerce_fields(self, "speed option")
        for key in AUTO_FIELDS:  # True, False or None / "auto" (the device's rule)
            value = getattr(self, key)
            if value == "auto":
                object.__setattr__(self, key, None)
            elif value is not None and not isinstance(value, bool):
                raise ChmflError(f"speed option {key} must be true, false or auto, got {value!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ChmflError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, "
                             f"not {self.compile_mode!r}")
        object.__setattr__(self, "mmap_threshold_mb", _mmap_mb(self.mmap_threshold_mb))

    @property
    def uses_cuda_graphs(self) -> bool:
        """True where the compiled network replays CUDA graphs (torch.compile's
        "reduce-overhead" and "max-autotune" modes; on a CPU the same modes compile without
        graphs, and marking a step there costs nothing)."""
        return self.compile and self.compile_mode in CUDA_GRAPH_MODES

    @property
    def memory_format(self) -> torch.memory_format:
        import torch

        return torch.channels_last_3d if self.channels_last else torch.contiguous_format

    @property
    def is_resolved(self) -> bool:
        return all(getattr(self, k) is not None for k in (*AUTO_FIELDS, "mmap_threshold_mb"))

    def resolved(self, device: str) -> SpeedOptions:
        """A copy with every "auto" option decided for ``device`` ("cpu" or "cuda"; the
        device *type*) by ``device_defaults``; explicit True / False stay as they are."""
        rule = device_defaults(device)
        mmap = mmap_default(device) if self.mmap_threshold_mb is None else self.mmap_threshold_mb
        return dataclasses.replace(self, **{k: rule[k] for k in AUTO_FIELDS if getattr(self, k) is None},
                                   mmap_threshold_mb=mmap)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SPEED_FIELDS = tuple(f.name for f in dataclasses.fields(SpeedOptions))

# Every option that keeps the network's function and parameters (``--speed-options``;
# docs/performance.md): each step equals the plain one up to float summation order (over many
# epochs the runs drift apart as any two SGD runs do). Measured at 1 mm on a 2-core AVX2 CPU:
# step 60.3 -> 36-37 s, peak 4.28 -> 2.44 GB. The malloc threshold (``mmap_threshold_mb``) is
# decided apart (``mmap_default``).
SPEED_OPTIONS = {"channels_last": True, "fast_wgrad": True, "inplace_act": True,
                 "inplace_abn": True, "split_concat": True, "fused_adam": True}
AUTO_FIELDS = tuple(SPEED_OPTIONS)  # the on/off options "auto" decides; compile defaults to off
# ``--no-speed-options``: the plain step (and the allocator's own mmap threshold)
NO_SPEED_OPTIONS = {**dict.fromkeys(AUTO_FIELDS, False), "mmap_threshold_mb": 0.0}

# The rule behind "auto", by device type and CPU capability only (deterministic, no timing at
# run time). Every measurement of the six options together was faster on an AVX2 CPU (1 mm step
# 60.3 -> 36.6 s on an EPYC) and on an AMX Xeon in bf16 (6.59 -> 3.70 s, issue 17; the GEMM
# weight gradient steps aside by itself in bf16). The GEMM weight gradient beats oneDNN's only
# where oneDNN has no AVX-512 backward-weights kernels: on AVX2 oneDNN ran these shapes at
# 8-15 GFLOP/s, on an AVX-512 Xeon at 95-103 GFLOP/s per thread against the GEMM's 36-41
# (docs/performance.md, "Fast by default"), so it is off on AVX-512 CPUs. On a GPU only
# channels_last was measured faster (H200, 1 mm bf16 step 0.083 -> 0.049 s), and fused Adam is
# PyTorch's fastest documented Adam there; the GEMM weight gradient is CPU-only, and the memory
# options are untimed on a GPU, so they stay off there until measured.
_CUDA_DEFAULTS = {**NO_SPEED_OPTIONS, "channels_last": True, "fused_adam": True}


def cpu_capability() -> str:
    """torch's CPU kernel level on this machine: "AVX512", "AVX2", "DEFAULT" (or "VSX", ...)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def device_defaults(device: str) -> dict[str, bool]:
    """What "auto" means for each option of ``SPEED_OPTIONS`` on a device of type ``device``
    ("cpu", "cuda"; any other type: all off). On a CPU: all six, but the GEMM weight gradient
    only where the CPU lacks AVX-512 (the rule above)."""
    if device == "cpu":
        return {**SPEED_OPTIONS, "fast_wgrad": cpu_capability() != "AVX512"}
    if device == "cuda":
        return dict(_CUDA_DEFAULTS)
    return dict(NO_SPEED_OPTIONS)


# glibc's mmap threshold on a CPU (``mmap_threshold_mb`` "auto"; accel/lowmem.py): blocks of at
# least this size get their own memory maps, returned to the system when freed, instead of
# glibc's dynamic threshold, which rises to 32 MB after the first large free and then keeps
# the step's freed maps on a fragmenting heap. MMAP_AUTO_MB is the measured choice: see
# docs/performance.md, "Fast by default" (1 mm and 4 mm, Intel Xeon AVX-512, 2 threads).
MMAP_AUTO_MB = 8.0


def mmap_default(device: str) -> float:
    """What "auto" means for ``mmap_threshold_mb`` on a device of type ``device``: MMAP_AUTO_MB
    on a CPU (the training step's maps are host memory), 0 (the allocator's default) elsewhere."""
    return MMAP_AUTO_MB if device == "cpu" else 0.0


def _mmap_mb(value: Any) -> float | None:
    """``mmap_threshold_mb`` as a number of MB >= 0, or None for "auto"; a one-line error else."""
    if value is None or value == "auto":
        return None
    try:
        mb = float(value)
    except (TypeError, ValueError):
        mb = float("nan")
    if isinstance(value, bool) or not mb >= 0:
        raise ChmflError(f"speed option mmap_threshold_mb must be a number of MB >= 0 or auto, got {value!r}")
    return mb


def apply(model: nn.Module, opts: SpeedOptions) -> nn.Module:
    """``model`` with the options of ``opts`` switched on (channels_last_3d weights, GEMM
    weight gradients, in-place ELUs, in-place activated BatchNorm, split decoder
    concatenations, torch.compile; the malloc threshold for the process). ``opts`` must be
    resolved (``SpeedOptions.resolved``). In place; returns ``model``."""
    if not opts.is_resolved:
        raise ValueError("speed options must be resolved for a device before they are applied")
    from chmfl.accel.fastconv import set_inplace_activations, use_gemm_wgrad
    from chmfl.accel.layout import use_channels_last
    from chmfl.accel.lowmem import set_mmap_threshold, set_split_concat, use_inplace_abn

    use_channels_last(model, opts.channels_last)
    if opts.mmap_threshold_mb > 0:
        set_mmap_threshold(opts.mmap_threshold_mb)
    if opts.fast_wgrad:
        use_gemm_wgrad(model)
    if opts.inplace_act:
        set_inplace_activations(model)
    if opts.inplace_abn:
        use_inplace_abn(model)
    if opts.split_concat:
        set_split_concat(model)
    if opts.compile:
        import torch._inductor.config as inductor_config

        # dropout from torch's own generator, as in eager mode: the same masks for the same
        # seed (and an exact resume); inductor's own RNG would train another trajectory
        # (measured: a cnn3d's first-epoch loss 0.54 instead of eager's 1.47). Process-wide.
        inductor_config.fallback_random = True
        # compiles __call__ in place: state_dict keys stay the same
        model.compile(mode=None if opts.compile_mode == "default" else opts.compile_mode)
    return model


def remove(model: nn.Module) -> nn.Module:
    """Undo every training-only option (plain convolutions, BatchNorms, ELUs and decoder units,
    no compiled call, contiguous weights and plain HMFL pooling): the trained network predicts
    as one trained without them. In-place ELUs left on cost memory there: with BatchNorm on
    per-sample statistics (``bn_eval="sample"``) they raised a 40-patient prediction's peak RSS
    from 0.36 to 1.09 GB at 4 mm (allocator fragmentation; same outputs). In place."""
    from chmfl.accel.fastconv import set_inplace_activations, use_gemm_wgrad
    from chmfl.accel.layout import use_channels_last
    from chmfl.accel.lowmem import set_split_concat, use_inplace_abn

    set_inplace_activations(model, enable=False)
    use_gemm_wgrad(model, enable=False)
    use_inplace_abn(model, enable=False)
    set_split_concat(model, enable=False)
    use_channels_last(model, False)
    if getattr(model, "_compiled_call_impl", None) is not None:
        model._compiled_call_impl = None
    return model


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, opts: SpeedOptions):
    """The paper's Adam for ``model``; ``opts.fused_adam``: PyTorch's fused implementation (one
    kernel per step instead of a loop over the parameters: CHMFL's update 66 -> 14 ms on a
    2-core CPU, and on a GPU one launch instead of dozens; same update up to float rounding)."""
    import torch

    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay,
                            fused=True if opts.fused_adam else None)


def mark_step(opts: SpeedOptions) -> None:
    """Tell CUDA graph trees a new step begins (the last step's outputs may be overwritten);
    nothing where no graphs are replayed."""
    if opts.uses_cuda_graphs:
        import torch

        torch.compiler.cudagraph_mark_step_begin()
