"""One network's training step and inference, timed exactly as chmfl runs them.

The training step is ``methods.trainer.Trainer.step`` (forward, Eq. 1, backward, Adam) of a
``Trainer`` set up as the training loop sets it up; inference is ``predict_network``. Inputs are
one synthetic patient (PET, CT, a spherical tumour mask) of the prepared box's shape: the
arithmetic does not depend on the values. FLOPs are counted once, on the meta device.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from chmfl.bench.measure import Timing, time_call
from chmfl.cv.record import PeakRSS
from chmfl.data.tensors import CaseTensors
from chmfl.methods.runtime import RuntimeConfig
from chmfl.methods.train_config import TrainConfig
from chmfl.models import build_model


def box_shape(voxel_mm: float) -> tuple[int, int, int]:
    """The prepared box (z, y, x) in voxels at ``voxel_mm`` (144 x 112 x 112 at 1 mm)."""
    from chmfl.preprocess.config import PrepareConfig

    return PrepareConfig(voxel_mm=voxel_mm).box_shape


def synthetic_case(shape: tuple[int, int, int], seed: int = 0, batch: int = 1) -> CaseTensors:
    """``batch`` random PET/CT boxes with a centred spherical tumour mask, label DM."""
    gen = torch.Generator().manual_seed(seed)
    pet = torch.randn(batch, 1, *shape, generator=gen)
    ct = torch.randn(batch, 1, *shape, generator=gen)
    grid = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) - s / 2 for s in shape], indexing="ij")
    radius = min(shape) / 4
    ball = (sum(g**2 for g in grid) <= radius**2).float()  # (D, H, W)
    mask = ball.expand(batch, 1, *shape).clone()
    return CaseTensors(pet=pet, ct=ct, mask=mask, labels=torch.ones(batch, dtype=torch.long))


def count_flops(name: str, options: dict[str, Any], shape: tuple[int, int, int]) -> dict[str, int]:
    """Forward and training-step (forward + backward) FLOPs of network ``name`` on one box,
    counted by ``torch.utils.flop_counter`` on the meta device (nothing is allocated)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = build_model(name, **options).train()
        data = synthetic_case_meta(shape)
    fwd, bwd = FlopCounterMode(display=False), FlopCounterMode(display=False)
    with fwd:
        out = model(data.pet, data.ct)
    loss = F.cross_entropy(out.logits, data.labels)
    if out.seg_logits is not None:
        loss = loss + F.cross_entropy(out.seg_logits, data.mask[:, 0].long())
    with bwd:
        loss.backward()
    return {"forward": int(fwd.get_total_flops()),
            "train": int(fwd.get_total_flops() + bwd.get_total_flops())}


def synthetic_case_meta(shape: tuple[int, int, int]) -> CaseTensors:
    """Shape-only inputs for FLOP counting (call under ``torch.device("meta")``)."""
    return CaseTensors(pet=torch.empty(1, 1, *shape), ct=torch.empty(1, 1, *shape),
                       mask=torch.empty(1, 1, *shape), labels=torch.empty(1, dtype=torch.long))


def _build(name: str, options: dict[str, Any], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(name, **options)


def train_step_timing(name: str, options: dict[str, Any], data: CaseTensors, cfg: TrainConfig,
                      runtime: RuntimeConfig, repeats: int, warmup: int,
                      seed: int = 0) -> tuple[Timing, float, float]:
    """Median seconds of one training step of ``name`` on ``data``, the peak RSS (GB; on a GPU
    its peak allocation) and the GB of tensors the step keeps for its backward pass (each
    storage counted once, read by saved-tensor hooks that copy nothing)."""
    from chmfl.methods.trainer import Trainer

    trainer = Trainer(_build(name, options, seed), cfg, runtime, seed, progress=False)
    trainer.model.train()
    data = trainer.to_device(data)  # where the loop keeps its cases
    device = str(trainer.device)
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    def step() -> object:
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            return trainer.step(data)

    if device.startswith("cuda"):  # the GPU's peak allocation, not the host's RSS
        torch.cuda.reset_peak_memory_stats()
        timing = time_call(step, repeats=repeats, warmup=warmup, device=device)
        return timing, torch.cuda.max_memory_allocated() / 1e9, sum(saved.values()) / 1e9
    with PeakRSS() as mem:
        timing = time_call(step, repeats=repeats, warmup=warmup)
    return timing, mem.peak_gb, sum(saved.values()) / 1e9


def inference_timing(name: str, options: dict[str, Any], data: CaseTensors, precision: str,
                     repeats: int, warmup: int, segment: bool = True, channels_last: bool = False,
                     seed: int = 0, compile: str | None = None, inplace_act: bool = False,
                     device: str = "cpu") -> Timing:
    """Median seconds of ``predict_network`` on the cases of ``data`` (eval, inference mode;
    on ``device``, inputs copied from the host and outputs back, as chmfl predicts)."""
    from chmfl.methods.inference import predict_network

    model = _build(name, options, seed).to(device).eval()
    if compile:  # torch.compile's mode name
        model.compile(mode=None if compile == "default" else compile)
    run = lambda: predict_network(model, data, precision=precision, batch_size=1,  # noqa: E731
                                  segment=segment, channels_last=channels_last,
                                  inplace_act=inplace_act)
    return time_call(run, repeats=repeats, warmup=warmup, device=device)
