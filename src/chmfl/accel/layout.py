"""channels_last_3d: 3D-conv weights (and so every activation after the first conv) stored with
the channels innermost, and CHMFL's HMFL pooling reduced in that memory order; 2D convolutions
run channels-last too.

``use_channels_last(model)`` converts the 5-D parameters, swaps every ``HierarchicalFusion`` for
``ChannelsLastFusion``, whose spatial maximum of a channels-last map runs in two stages over
rows of 16 voxels (torch reduces a (B, N, C) tensor over N ~15x slower than over 16 C-wide rows
at once), and every plain ``nn.Conv2d`` for ``ChannelsLastConv2d``, which views its weight
channels-last for each call so its map, and every map after it, is channels-last (CNLPC's
training step 2-2.5x faster on a 2-core Xeon: batch 64 of 180 x 180, 5.5-7.7 s -> 2.6-3.7 s
under shared load). The values are the same up to float summation order; only a tie at a
maximum would split its gradient differently. ``enable=False`` undoes all three.
"""

from __future__ import annotations

import torch
from torch import nn

from chmfl.models.chmfl import HierarchicalFusion


def spatial_max(x: torch.Tensor, group: int = 16) -> torch.Tensor:
    """(B, C, *spatial) -> (B, C) maximum; channels-last 5-D maps reduced in memory order."""
    if not (x.dim() == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d)):
        return torch.amax(x.flatten(2), dim=2)
    b, c = x.shape[:2]
    rows = x.movedim(1, -1).reshape(b, -1, c)  # (B, DHW, C), a view
    n = rows.shape[1] // group * group
    if n == 0:
        return rows.amax(1)
    out = rows[:, :n].reshape(b, n // group, group * c).amax(1).view(b, group, c).amax(1)
    return out if n == rows.shape[1] else torch.maximum(out, rows[:, n:].amax(1))


class ChannelsLastFusion(HierarchicalFusion):
    """``HierarchicalFusion`` whose pooling reads channels-last maps in memory order."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return spatial_max(x)


class ChannelsLastConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose weight is viewed channels-last for the call (a differentiable copy of
    its few values; restrided even with one input channel, where ``contiguous`` would not), so
    its output map is channels-last and the convolutions and pools after it stay so."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
        try:
            weight = weight.to(memory_format=torch.channels_last)
        except RuntimeError:  # a vmapped weight (stacked fold models) has no 4-D layout to change
            pass
        return super()._conv_forward(input, weight, bias)


def swap_conv2d(model: nn.Module, enable: bool = True) -> list[nn.Module]:
    """Every plain ``nn.Conv2d`` of ``model`` as ``ChannelsLastConv2d`` (or back); the swapped."""
    src, dst = (nn.Conv2d, ChannelsLastConv2d) if enable else (ChannelsLastConv2d, nn.Conv2d)
    swapped = [m for m in model.modules() if type(m) is src]
    for m in swapped:
        m.__class__ = dst
    return swapped


def use_channels_last(model: nn.Module, enable: bool = True) -> nn.Module:
    """``model`` in channels_last_3d (module docstring), or back in the contiguous format with
    plain pooling and convolutions (``enable=False``). In place; returns ``model``."""
    swap_conv2d(model, enable)
    if not enable:
        for m in model.modules():
            if type(m) is ChannelsLastFusion:
                m.__class__ = HierarchicalFusion
        return model.to(memory_format=torch.contiguous_format)
    for m in model.modules():
        if type(m) is HierarchicalFusion:
            m.__class__ = ChannelsLastFusion
        for p in m.parameters(recurse=False):
            if p.dim() == 5:
                p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
    return model
