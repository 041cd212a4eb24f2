"""Small building blocks shared by the networks: normalisation choice, conv blocks, the
residual unit of the CFL decoder, size matching for odd box sizes, He initialisation, and
the slice helpers of the 2D networks.

``dims`` (2 or 3) picks the 2D or 3D layer class in one explicit table, so the 2D
CHMFL+ResNet decoder and the 3D CHMFL decoder are the same code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chmfl.errors import ChmflError

NORMS = ("batch", "group4", "group8", "group16", "instance", "none")

CONV = {2: nn.Conv2d, 3: nn.Conv3d}
CONVT = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BN = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_IN = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


def _num_groups(channels: int, per_group: int) -> int:
    """Groups for GroupNorm with ``per_group`` channels each; the largest divisor of
    ``channels`` not above ``channels // per_group`` (at least 1) when it does not divide."""
    target = max(1, channels // per_group)
    return next(g for g in range(target, 0, -1) if channels % g == 0)


def make_norm(kind: str, channels: int, dims: int = 3) -> nn.Module:
    """Normalisation layer by name.

    ``groupN`` = GroupNorm with N channels per group (Table SIII "GN channels 4, 8, 16",
    read as Wu & He's channels-per-group axis; see docs/methods.md). ``none``: no
    normalisation (identity), so features keep the absolute level of the input (issue 16).
    """
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return _BN[dims](channels)
    if kind == "instance":
        return _IN[dims](channels, affine=True)
    if kind.startswith("group") and kind[5:].isdigit():
        return nn.GroupNorm(_num_groups(channels, int(kind[5:])), channels)
    raise ChmflError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")


def conv_block(dims: int, cin: int, cout: int, kernel: int, stride: int = 1,
               norm: str = "batch") -> nn.Sequential:
    """Conv (padding keeps the size at stride 1) -> norm -> ELU, as every Table SI row."""
    pad = kernel // 2 if stride == 1 else 0
    return nn.Sequential(CONV[dims](cin, cout, kernel, stride=stride, padding=pad),
                         make_norm(norm, cout, dims), nn.ELU())


def up_block(dims: int, cin: int, cout: int, norm: str = "batch") -> nn.Sequential:
    """ConvTranspose (2, stride 2) -> norm -> ELU: one Up_Conv row of Table SI."""
    return nn.Sequential(CONVT[dims](cin, cout, 2, stride=2), make_norm(norm, cout, dims), nn.ELU())


class ResidualUnit(nn.Module):
    """``n_convs`` x (conv -> norm -> ELU) at constant width, added to its input, then ELU
    (V-Net's residual stage; the paper's "several convolutional layers and non-linearities,
    then added")."""

    def __init__(self, dims: int, channels: int, n_convs: int, kernel: int = 5, norm: str = "batch"):
        super().__init__()
        self.convs = nn.Sequential(*[conv_block(dims, channels, channels, kernel, norm=norm)
                                     for _ in range(n_convs)])
        self.act = nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs(x) + x) if len(self.convs) else x


class FusionResidualUnit(nn.Module):
    """Table SI reading of a CFL level: the concatenated (Up_Conv output + fused skip) map goes
    through ``n_convs`` x (conv -> norm -> ELU), the first narrowing it to the Up_Conv width,
    and is added to the Up_Conv output, then ELU. The block thus outputs Table SI's width
    (128, 64, 32, 16) -- unlike V-Net's unit, which keeps the concatenated width."""

    def __init__(self, dims: int, cin: int, cout: int, n_convs: int, kernel: int = 5, norm: str = "batch"):
        super().__init__()
        if n_convs < 1:
            raise ChmflError("a Table SI decoder level needs at least one convolution")
        widths = [cin] + [cout] * n_convs
        self.convs = nn.Sequential(*[conv_block(dims, a, b, kernel, norm=norm)
                                     for a, b in zip(widths[:-1], widths[1:])])
        self.act = nn.ELU()

    def forward(self, up: torch.Tensor, parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``up``: the Up_Conv output; ``parts``: the maps of the horizontal connection (e.g. the
        PET and CT maps of this scale), concatenated after ``up``."""
        cat = torch.cat([up, *parts], 1)  # (B, up_i + skip_i, ...): horizontal connection
        return self.act(self.convs(cat) + up)  # (B, cout, ...)


def match_size(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Zero-pad (at the far end) or crop the spatial dims of ``x`` to ``size``: decoder maps
    of boxes not divisible by 16 come out one voxel short of their skip connection."""
    spatial = x.shape[2:]
    if tuple(spatial) == tuple(size):
        return x
    pad: list[int] = []
    for have, want in reversed(list(zip(spatial, size))):
        pad += [0, max(want - have, 0)]
    x = F.pad(x, pad) if any(pad) else x
    index = (slice(None), slice(None)) + tuple(slice(0, s) for s in size)
    return x[index]


def init_he(module: nn.Module) -> None:
    """He (kaiming-normal) initialisation of conv and linear weights, zero biases, unit norms
    (paper Section II.E, He et al. 2015)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm,
                            nn.InstanceNorm2d, nn.InstanceNorm3d)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def check_min_size(x: torch.Tensor, minimum: int, name: str) -> None:
    """Raise a one-line error when a spatial dim is too small for the network's downsampling."""
    if min(x.shape[2:]) < minimum:
        raise ChmflError(f"{name}: input {tuple(x.shape)} has a spatial size below {minimum}, "
                         f"the smallest its downsampling path accepts")


def modality_input(pet: torch.Tensor, ct: torch.Tensor, modality: str) -> torch.Tensor:
    """The channels a single-path CNN sees: "pet", "ct" or "petct" (2 channels)."""
    if modality == "pet":
        return pet
    if modality == "ct":
        return ct
    if modality == "petct":
        return torch.cat([pet, ct], 1)
    raise ChmflError(f"unknown modality {modality!r}; choose pet, ct or petct")


def modality_channels(modality: str) -> int:
    """Input channels of a single-path CNN for ``modality``."""
    if modality not in ("pet", "ct", "petct"):
        raise ChmflError(f"unknown modality {modality!r}; choose pet, ct or petct")
    return 2 if modality == "petct" else 1


def slice_range(depth: int, n_slices: int) -> tuple[int, int]:
    """[start, stop) of the ``n_slices`` axial slices centred in a box of ``depth`` slices."""
    if not 1 <= n_slices <= depth:
        raise ChmflError(f"2D network needs {n_slices} slices but the box has {depth} along D")
    start = depth // 2 - n_slices // 2
    return start, start + n_slices


def to_slices(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """(B, C, D, H, W) -> (B * k, C, H, W): the axial slices [start, stop) as a 2D batch."""
    b, c = x.shape[:2]
    s = x[:, :, start:stop].transpose(1, 2)  # (B, k, C, H, W)
    return s.reshape(b * (stop - start), c, *x.shape[3:])


def from_slices(y: torch.Tensor, batch: int) -> torch.Tensor:
    """(B * k, C, H, W) -> (B, C, k, H, W): per-slice 2D maps back into a slab of the box."""
    k = y.shape[0] // batch
    return y.reshape(batch, k, *y.shape[1:]).transpose(1, 2)


def mean_over_slices(y: torch.Tensor, batch: int) -> torch.Tensor:
    """(B * k, ...) -> (B, ...): average per patient (slice logits -> patient logits)."""
    return y.reshape(batch, -1, *y.shape[1:]).mean(1)
