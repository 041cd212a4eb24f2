"""Block-by-block output sizes, parameter counts and forward FLOPs of a network, computed on
the meta device: the model and its inputs have shapes but no storage, so a 112x112x144
CHMFL summary allocates nothing and takes about a second.

FLOPs are those ``torch.utils.flop_counter.FlopCounterMode`` counts: convolutions
(transposed too) and matrix products, 2 FLOPs per multiply-add; normalisation, activations
and pooling are not counted (they add well under 1% here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from chmfl.errors import ChmflError
from chmfl.models import build_model


@dataclass(frozen=True)
class BlockInfo:
    name: str  # dotted module path, e.g. "pet_encoder.down_conv1"
    output: tuple[int, ...] | None  # output size; None when the block returns several tensors
    n_outputs: int  # number of tensors it returns
    params: int
    flops: int


@dataclass(frozen=True)
class ModelSummary:
    model: str
    options: dict[str, Any]
    inputs: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[int, ...] | None]
    blocks: tuple[BlockInfo, ...]
    total_params: int
    total_flops: int


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _tensors(item)]
    return []


def _inputs(model: nn.Module, size: Sequence[int], batch: int) -> dict[str, torch.Tensor]:
    shape = (batch, 1, *size)
    x = {"pet": torch.empty(shape), "ct": torch.empty(shape),
         "mask": torch.empty(shape) if getattr(model, "needs_mask", False) else None}
    n = int(getattr(model, "n_features", 0))
    x["features"] = torch.empty(batch, n) if n > 0 else None
    return x


def _watch(model: nn.Module, depth: int) -> tuple[list[str], dict[str, Any], list]:
    """Hooks recording the order blocks run in and their outputs (modules up to ``depth``)."""
    order: list[str] = []
    outputs: dict[str, Any] = {}
    handles = []
    for name, module in model.named_modules():
        if not name or name.count(".") >= depth:
            continue
        handles.append(module.register_forward_pre_hook(
            lambda _m, _a, n=name: order.append(n) if n not in order else None))
        handles.append(module.register_forward_hook(
            lambda _m, _a, out, n=name: outputs.__setitem__(n, _tensors(out))))
    return order, outputs, handles


def summarize(name: str, size: Sequence[int], batch: int = 1, depth: int = 2,
              **options: Any) -> ModelSummary:
    """Summary of network ``name`` (built with ``options``) on (batch, 1, *size) PET and CT."""
    from torch.utils.flop_counter import FlopCounterMode

    if len(size) != 3 or min(size) < 1 or batch < 1:
        raise ChmflError(f"input size must be 3 positive integers and batch >= 1, got {tuple(size)}, {batch}")
    with torch.device("meta"):
        model = build_model(name, **options).eval()
        inputs = _inputs(model, size, batch)
    order, outputs, handles = _watch(model, depth)
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            out = model(inputs["pet"], inputs["ct"], mask=inputs["mask"], features=inputs["features"])
    finally:
        for h in handles:
            h.remove()
    counts = counter.get_flop_counts()
    root = type(model).__name__
    modules = dict(model.named_modules())
    blocks = []
    for block in order:
        tensors = outputs.get(block, [])
        blocks.append(BlockInfo(
            name=block, output=tuple(tensors[0].shape) if len(tensors) == 1 else None,
            n_outputs=len(tensors), params=sum(p.numel() for p in modules[block].parameters()),
            flops=int(sum(counts.get(f"{root}.{block}", {}).values()))))
    used = {k: tuple(v.shape) for k, v in inputs.items() if v is not None}
    result = {k: (tuple(v.shape) if isinstance(v, torch.Tensor) else v) for k, v in out._asdict().items()}
    return ModelSummary(model=name, options=dict(options), inputs=used, outputs=result, blocks=tuple(blocks),
                        total_params=sum(p.numel() for p in model.parameters()),
                        total_flops=int(counter.get_total_flops()))


def _size(shape: tuple[int, ...] | None) -> str:
    return " x ".join(str(s) for s in shape) if shape is not None else "-"


def format_summary(s: ModelSummary) -> str:
    """The summary as a text table, one block per line (Table SI's size notation)."""
    opts = ", ".join(f"{k}={v}" for k, v in s.options.items())
    lines = [f"{s.model}" + (f" ({opts})" if opts else ""),
             "inputs: " + ", ".join(f"{k} {_size(v)}" for k, v in s.inputs.items()),
             f"{'block':<42} {'output size':<30} {'params':>13} {'GFLOPs':>10}"]
    for b in s.blocks:
        out = _size(b.output) if b.output is not None else f"{b.n_outputs} tensors"
        lines.append(f"{b.name:<42} {out:<30} {b.params:>13,} {b.flops / 1e9:>10.3f}")
    shown = [f"{k} [{v[0]}, {v[1]})" if k == "seg_slices" else f"{k} {_size(v)}"
             for k, v in s.outputs.items() if v is not None]
    lines.append("outputs: " + ", ".join(shown))
    lines.append(f"total: {s.total_params:,} parameters, {s.total_flops / 1e9:.2f} GFLOPs per forward pass "
                 "(convolutions and matrix products, 1 multiply-add = 2 FLOPs)")
    return "\n".join(lines)
