"""The constrained feature learning (CFL) decoder (paper Section II.C, Table SI "CFL Module").

From the deepest fused PET-CT map, transposed-conv blocks (Up_Conv_i: ConvTranspose 2x2x2
stride 2 -> norm -> ELU) double the resolution; each output is concatenated with the fused
PET-CT map of the same scale (the horizontal connections) and passed through a residual
unit; the Output Transition (conv 5 -> norm -> ELU -> conv 1) gives 2-class voxel logits.
The same module, with ``dims=2``, is the decoder of CHMFL+ResNet.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from chmfl.errors import ChmflError
from chmfl.models.blocks import (
    CONV,
    FusionResidualUnit,
    ResidualUnit,
    conv_block,
    match_size,
    up_block,
)

DECODER_STYLES = ("tableSI", "vnet")


class OutputTransition(nn.Module):
    """Conv (kernel 5) -> norm -> ELU -> conv 1x1 to ``n_classes`` logits (Table SI; the
    softmax of the table lives in the loss)."""

    def __init__(self, dims: int, cin: int, n_classes: int = 2, kernel: int = 5, norm: str = "batch"):
        super().__init__()
        self.conv = conv_block(dims, cin, n_classes, kernel, norm=norm)
        self.head = CONV[dims](n_classes, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x))


class ConstrainedDecoder(nn.Module):
    """Up_Conv_i + horizontal connection + residual unit per level, then Output Transition.

    ``deep_channels``: channels of the deepest fused map; ``skip_channels``: fused skip
    channels from deep to shallow; ``up_channels``: Up_Conv output widths (Table SI: 128, 64,
    32, 16); ``n_convs``: convs of each level's residual unit; ``extra_up``: width of one more
    Up_Conv without a skip (2D ResNets, whose shallowest stage is at stride 2), 0 for none.
    ``style``: "tableSI" (default: each level outputs its Up_Conv width, as Table SI's output
    sizes say; ``FusionResidualUnit``) or "vnet" (V-Net's units at the concatenated width,
    ~2.7x the FLOPs at 1 mm).
    """

    def __init__(self, deep_channels: int, skip_channels: Sequence[int], up_channels: Sequence[int],
                 n_convs: Sequence[int], kernel: int = 5, norm: str = "batch", dims: int = 3,
                 extra_up: int = 0, n_classes: int = 2, style: str = "tableSI"):
        super().__init__()
        if not len(skip_channels) == len(up_channels) == len(n_convs):
            raise ValueError("skip_channels, up_channels and n_convs need one entry per level")
        if style not in DECODER_STYLES:
            raise ChmflError(f"unknown decoder style {style!r}; choose one of {', '.join(DECODER_STYLES)}")
        self.style = style
        ch = deep_channels
        for i, (skip, up, n) in enumerate(zip(skip_channels, up_channels, n_convs), start=1):
            self.add_module(f"up_conv{i}", up_block(dims, ch, up, norm))
            if style == "vnet":
                ch = up + skip  # after the horizontal connection
                self.add_module(f"res{i}", ResidualUnit(dims, ch, n, kernel, norm))
            else:
                self.add_module(f"res{i}", FusionResidualUnit(dims, up + skip, up, n, kernel, norm))
                ch = up
        self.levels = len(up_channels)
        self.extra = up_block(dims, ch, extra_up, norm) if extra_up else None
        self.output_transition = OutputTransition(dims, extra_up or ch, n_classes, kernel, norm)

    def forward(self, deep: torch.Tensor, skips: Sequence[torch.Tensor | tuple[torch.Tensor, ...]],
                out_size: Sequence[int] | None = None) -> torch.Tensor:
        """``deep``: (B, C, ...) deepest fused map; ``skips``: fused maps from deep to shallow,
        each a tensor or a tuple of the maps that make it (e.g. (PET, CT)), concatenated here
        after the Up_Conv output; ``out_size``: spatial size of the logits when an extra Up_Conv
        is used."""
        x = deep
        for i, skip in enumerate(skips, start=1):
            parts = tuple(skip) if isinstance(skip, (tuple, list)) else (skip,)
            up = match_size(getattr(self, f"up_conv{i}")(x), parts[0].shape[2:])  # (B, up_i, 2x spatial)
            res = getattr(self, f"res{i}")
            if self.style == "vnet":  # V-Net's unit adds the concatenation to its output
                x = res(torch.cat([up, *parts], 1))  # (B, up_i + skip_i, ...)
            else:  # the unit concatenates (up, *parts) itself: (B, up_i, ...)
                x = res(up, parts)
        if self.extra is not None:
            x = self.extra(x)
            x = match_size(x, tuple(out_size)) if out_size is not None else x
        return self.output_transition(x)  # (B, n_classes, ...)
