"""CHMFL (paper Section II.B-E, Table SI) and its two ablations, CFL and Mask+HMFL.

Two identical 3D branches (PET, CT): Input Transition (conv 5, 16 ch) and Down_Conv_1..4
(conv 2 stride 2; 32, 64, 128, 256 ch), each conv -> norm -> ELU. HMFL: at each of the 5
scales the PET and CT maps are concatenated, max-pooled to a vector, and the 5 vectors
concatenated (992 values) feed 3 fully connected layers. CFL: a decoder from the deepest
fused map back to full resolution with horizontal connections to the fused maps, trained
against the tumour mask (Eq. 1), so the encoders learn to attend to the tumour.

Reading of Table SI: its "Details" column lists one conv per block, so by default a block is
just that conv; ``encoder_residual=True`` adds V-Net's residual conv stacks (1, 2, 3, 2 convs
of 5x5x5 at levels 1-4) and V-Net's input-transition shortcut. docs/methods.md gives the
FLOPs of both choices.

``uptake_head=True`` (not in the paper; issue 16's candidate A, benchmarks/flagship/): the
decoder's own soft tumour probability measures SUVmax, SUVmean and volume of the input PET,
and these three numbers join the HMFL vector and reach the logits through a linear path.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from chmfl.errors import ChmflError
from chmfl.models.base import ModelOutput
from chmfl.models.blocks import CONV, ResidualUnit, check_min_size, conv_block, init_he, make_norm
from chmfl.models.decoder import ConstrainedDecoder

WIDTHS = (16, 32, 64, 128, 256)  # Table SI: Input Transition, Down_Conv_1..4
UP_WIDTHS = (128, 64, 32, 16)  # Table SI: Up_Conv_1..4
VNET_ENCODER_CONVS = (1, 2, 3, 2)  # V-Net residual convs after Down_Conv_1..4
VNET_DECODER_CONVS = (2, 2, 1, 1)  # V-Net residual convs after Up_Conv_1..4 (style "vnet")
DECODER_CONVS = (2, 2, 2, 2)  # "several convolutional layers" per level (style "tableSI")
HIDDEN = (256, 64)  # widths of the first two of the 3 FC layers (our choice)
MIN_SIZE = 16  # four stride-2 convs need at least 16 voxels per axis
# Named sizes (``chmfl cv --methods "chmfl[size=demo]"``): "paper" is Table SI; "demo" is the
# same five-scale two-branch layout with half the channels, one 3x3x3 conv per
# decoder level (~1/20 of the FLOPs), which trains in minutes on a CPU (``chmfl demo``).
DEMO_WIDTHS = (8, 16, 32, 64, 128)
SIZES = {"paper": {}, "demo": {"widths": DEMO_WIDTHS, "decoder_convs": (1, 1, 1, 1), "decoder_kernel": 3}}


class InputTransition(nn.Module):
    """Conv 5 -> norm -> ELU (Table SI); with ``residual`` V-Net's shortcut (input repeated
    to the output width) is added before the ELU."""

    def __init__(self, dims: int, cin: int, cout: int, norm: str = "batch", residual: bool = False):
        super().__init__()
        self.conv = CONV[dims](cin, cout, 5, padding=2)
        self.norm = make_norm(norm, cout, dims)
        self.act = nn.ELU()
        self.residual = residual
        # the one hook networks declare for chmfl.accel: act reads norm's output and nothing
        # else does, so the two may run as one in-place activated BatchNorm (accel/lowmem.py)
        self.norm_act_pair = None if residual else ("norm", "act")
        if residual and cout % cin:
            raise ValueError(f"residual input transition needs {cout} divisible by {cin}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(x))  # (B, cout, D, H, W)
        if self.residual:
            y = y + x.repeat(1, y.shape[1] // x.shape[1], *([1] * (x.dim() - 2)))
        return self.act(y)


class DownBlock(nn.Module):
    """Down_Conv_i: conv 2 stride 2 -> norm -> ELU, then ``n_convs`` residual convs (0 = none)."""

    def __init__(self, dims: int, cin: int, cout: int, n_convs: int = 0, norm: str = "batch"):
        super().__init__()
        self.down = conv_block(dims, cin, cout, 2, stride=2, norm=norm)
        self.res = ResidualUnit(dims, cout, n_convs, 5, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res(self.down(x))  # (B, cout, D/2, H/2, W/2)


class Encoder(nn.Module):
    """One branch (PET or CT): Input Transition + Down_Conv_1..4; returns the 5 scale maps."""

    def __init__(self, in_channels: int = 1, widths: Sequence[int] = WIDTHS, norm: str = "batch",
                 residual: bool = False, dims: int = 3):
        super().__init__()
        self.input_transition = InputTransition(dims, in_channels, widths[0], norm, residual)
        convs = VNET_ENCODER_CONVS if residual else (0,) * (len(widths) - 1)
        for i in range(1, len(widths)):
            self.add_module(f"down_conv{i}", DownBlock(dims, widths[i - 1], widths[i], convs[i - 1], norm))
        self.depth = len(widths) - 1

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = [self.input_transition(x)]  # (B, 16, D, H, W)
        for i in range(1, self.depth + 1):
            maps.append(getattr(self, f"down_conv{i}")(maps[-1]))  # (B, w_i, D/2^i, ...)
        return maps


class HierarchicalFusion(nn.Module):
    """HMFL pooling (Eq. 4): adaptive max pooling of the fused maps at ``levels`` -> one vector."""

    def __init__(self, levels: Sequence[int]):
        super().__init__()
        self.levels = tuple(levels)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *spatial) -> (B, C): the global maximum of each channel."""
        return torch.amax(x.flatten(2), dim=2)

    def forward(self, fused: Sequence[torch.Tensor]) -> torch.Tensor:
        pooled = [self.pool(fused[i]) for i in self.levels]  # (B, C_i) each
        return torch.cat(pooled, 1)  # (B, sum C_i)

    def pool_pair(self, pet_maps: Sequence[torch.Tensor], ct_maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """``forward`` of the concatenated maps, without concatenating them: the channel-wise
        max of cat(p, c) is cat(max p, max c), exactly (values and gradients), and the
        full-resolution concatenated copy is never made when nothing else needs it."""
        pooled = [self.pool(m[i]) for i in self.levels for m in (pet_maps, ct_maps)]
        return torch.cat(pooled, 1)  # (B, sum 2 w_i), the order of forward(fused)


class Classifier(nn.Module):
    """Fully connected layers: Linear -> ReLU -> Dropout per hidden layer, then Linear to logits
    (paper: "three fully connected layers ... ReLU and dropout 0.5")."""

    def __init__(self, in_features: int, hidden: Sequence[int] = HIDDEN, dropout: float = 0.5,
                 n_classes: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.ReLU(), nn.Dropout(dropout)]
            in_features = width
        layers.append(nn.Linear(in_features, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, n_classes)


UPTAKE_FEATURES = ("suvmax", "suvmean", "log_volume_fraction")
VOLUME_EPS = 1e-3  # floor of the predicted volume fraction before the log


def mask_uptake(pet: torch.Tensor, seg_logits: torch.Tensor) -> torch.Tensor:
    """(B, 3) uptake inside the predicted tumour: max(p * PET), sum(p * PET) / sum(p) and
    log(mean(p) + 1e-3), with p the softmax tumour probability of ``seg_logits`` (B, 2, ...)
    and ``pet`` (B, 1, ...) the network's PET input. No contour is involved: p is the
    network's own prediction. The values are in the PET input's units: with window
    intensities (a fixed SUV / 10 for every patient) SUVmax and SUVmean keep their absolute
    scale; the volume is a fraction of the fixed box, so it does not depend on the voxel size.
    ``p`` is detached: the decoder learns only from Eq. (1)'s voxel term."""
    if seg_logits.shape[2:] != pet.shape[2:]:
        raise ChmflError(f"seg logits {tuple(seg_logits.shape)} do not match the PET {tuple(pet.shape)}")
    p = torch.softmax(seg_logits.detach().float(), 1)[:, 1:2]  # (B, 1, D, H, W)
    x = pet[:, :1].float()
    weighted = (p * x).flatten(1)  # (B, N)
    mass = p.flatten(1).sum(1)  # (B,)
    suvmax = weighted.amax(1)
    suvmean = weighted.sum(1) / mass.clamp_min(1e-6)
    log_volume = torch.log(p.flatten(1).mean(1) + VOLUME_EPS)
    return torch.stack([suvmax, suvmean, log_volume], 1)  # (B, 3)


class CHMFL(nn.Module):
    """CHMFL: PET and CT branches, HMFL over 5 scales, CFL decoder (Eq. 1).

    ``norm``: "batch" (paper) | "group4" | "group8" | "group16" (Table SIII, channels per
    group) | "instance". ``encoder_residual``: add V-Net residual stacks to the encoder.
    ``decoder_convs``/``decoder_kernel``/``decoder_style``: convs, kernel and form of each
    decoder residual unit (default: Table SI's widths, 2 convs of 5x5x5 per level;
    ``decoder_style="vnet"`` keeps V-Net's concatenated widths, e.g. with convs 2, 2, 1, 1).
    ``hidden``/``dropout``: the FC head. ``uptake_head``: the head also takes
    ``mask_uptake`` of the decoder's prediction (not in the paper; the decoder is then needed
    for the DM logits too).
    """

    segments = True  # has the CFL decoder: trained with Eq. (1)
    decoder_optional = True  # forward skips a None decoder: DM logits without the mask (faster)
    needs_mask = False  # tumour mask as an input channel
    uses_handcrafted = False
    n_features = 0
    is_2d = False
    hmfl = True  # classify from all 5 scales (False: deepest fused map only)
    sizes = SIZES  # named option sets (models.size_options)

    def __init__(self, norm: str = "batch", encoder_residual: bool = False,
                 decoder_convs: Sequence[int] = DECODER_CONVS, decoder_kernel: int = 5,
                 hidden: Sequence[int] = HIDDEN, dropout: float = 0.5, widths: Sequence[int] = WIDTHS,
                 decoder_style: str = "tableSI", n_outputs: int = 2, uptake_head: bool = False):
        super().__init__()
        widths = tuple(widths)
        if uptake_head and not self.segments:
            raise ChmflError(f"{type(self).__name__} has no decoder: uptake_head needs its predicted mask")
        cin = 2 if self.needs_mask else 1
        self.pet_encoder = Encoder(cin, widths, norm, encoder_residual)
        self.ct_encoder = Encoder(cin, widths, norm, encoder_residual)
        levels = tuple(range(len(widths))) if self.hmfl else (len(widths) - 1,)
        self.fusion = HierarchicalFusion(levels)
        # n_outputs: 2 DM logits, or 1 risk score for the Cox head of chmfl-surv
        n_uptake = len(UPTAKE_FEATURES) if uptake_head else 0
        self.classifier = Classifier(sum(2 * widths[i] for i in levels) + n_uptake, hidden, dropout, n_outputs)
        self.decoder = None
        if self.segments:
            fused = [2 * w for w in widths]
            ups = tuple(max(w // 2, 1) for w in widths[1:])[::-1]  # 128, 64, 32, 16
            self.decoder = ConstrainedDecoder(fused[-1], fused[-2::-1], ups, tuple(decoder_convs),
                                              decoder_kernel, norm, style=decoder_style)
        # the linear path from the 3 uptake numbers straight to the logits (a logistic
        # regression on them, as the floor), beside the FC head that also sees them
        self.uptake_linear = nn.Linear(n_uptake, n_outputs) if uptake_head else None
        if uptake_head:
            self.decoder_optional = False  # the DM logits need the predicted mask
        init_he(self)

    def forward(self, pet: torch.Tensor, ct: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> ModelOutput:
        check_min_size(pet, MIN_SIZE, type(self).__name__)
        if self.needs_mask:
            if mask is None:
                raise ChmflError(f"{type(self).__name__} needs the tumour mask as input")
            pet, ct = torch.cat([pet, mask.to(pet.dtype)], 1), torch.cat([ct, mask.to(ct.dtype)], 1)
        pet_maps, ct_maps = self.pet_encoder(pet), self.ct_encoder(ct)
        vector = self.fusion.pool_pair(pet_maps, ct_maps)  # (B, 992) with HMFL, (B, 512) without
        logits = self.classifier(vector) if self.uptake_linear is None else None
        seg = None
        if self.decoder is not None:
            deep = torch.cat([pet_maps[-1], ct_maps[-1]], 1)  # (B, 2 w_4, ...)
            # horizontal connections as (PET, CT) pairs, deep to shallow: the decoder
            # concatenates them with its Up_Conv output
            seg = self.decoder(deep, list(zip(pet_maps, ct_maps))[-2::-1])
        if logits is None:
            logits, vector = self._uptake_logits(pet, seg, vector)
        return ModelOutput(logits=logits, seg_logits=seg, features=vector)

    def _uptake_logits(self, pet: torch.Tensor, seg: torch.Tensor | None,
                       vector: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """DM logits of ``uptake_head``: the FC head on [pooled features, uptake] plus the
        linear path from the uptake; returns (logits, the head's input vector)."""
        if seg is None:
            raise ChmflError(f"{type(self).__name__} with uptake_head needs its decoder for the DM logits")
        uptake = mask_uptake(pet, seg).to(vector.dtype)  # (B, 3)
        vector = torch.cat([vector, uptake], 1)
        return self.classifier(vector) + self.uptake_linear(uptake), vector


class CFL(CHMFL):
    """CFL ablation: CHMFL without HMFL, classifying from the deepest fused map only."""

    hmfl = False


class MaskHMFL(CHMFL):
    """Mask+HMFL ablation: CHMFL without the CFL decoder; each branch takes 2 channels,
    the modality and the tumour mask (needed at inference too)."""

    segments = False
    needs_mask = True
    sizes = {"paper": {}, "demo": {"widths": DEMO_WIDTHS}}  # no decoder to shrink

    def __init__(self, norm: str = "batch", encoder_residual: bool = False,
                 hidden: Sequence[int] = HIDDEN, dropout: float = 0.5, widths: Sequence[int] = WIDTHS):
        super().__init__(norm=norm, encoder_residual=encoder_residual, hidden=hidden,
                         dropout=dropout, widths=widths)
