"""channels_last_3d: 3D-conv weights (and so every activation after the first conv) stored with
the channels innermost, and CHMFL's HMFL pooling reduced in that memory order.

``use_channels_last(model)`` converts the 5-D parameters (networks with 2D convolutions, or
none, keep theirs) and swaps every ``HierarchicalFusion`` for ``ChannelsLastFusion``, whose
spatial maximum of a channels-last map runs in two stages over rows of 16 voxels: torch reduces
a (B, N, C) tensor over N ~15x slower than over 16 C-wide rows at once. The values are the same;
only a tie at the maximum would split its gradient differently. ``enable=False`` undoes both.
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


def use_channels_last(model: nn.Module, enable: bool = True) -> nn.Module:
    """``model`` in channels_last_3d (module docstring), or back in the contiguous format with
    plain pooling (``enable=False``). In place; returns ``model``."""
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
