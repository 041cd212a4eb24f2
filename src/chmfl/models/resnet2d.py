"""2D ResNet networks of Table SII: ResNet18/34/50 on 2-channel PET-CT slices, and CHMFL in
2D with a ResNet backbone per modality (CHMFL+ResNet).

Both take the 3D boxes like every chmfl network and use ``n_slices`` axial slices centred in
the box (default 5) as a batch of 2D images; slice logits are averaged per patient. The
backbones are MONAI's 2D ResNets with torchvision's stem (7x7 stride-2 conv, max pool) and
torchvision's parameter names, so a torchvision/ImageNet state dict the user gives loads
directly (``pretrained=PATH``); nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from chmfl.errors import ChmflError
from chmfl.models.base import ModelOutput
from chmfl.models.blocks import from_slices, init_he, mean_over_slices, slice_range, to_slices
from chmfl.models.chmfl import HIDDEN, Classifier, HierarchicalFusion
from chmfl.models.decoder import ConstrainedDecoder

N_SLICES = 5
STAGE_WIDTHS = {18: (64, 64, 128, 256, 512), 34: (64, 64, 128, 256, 512),
                50: (64, 256, 512, 1024, 2048)}


class ResNetStages(nn.Module):
    """A 2D ResNet without its head, returning the 5 stage outputs (strides 2, 4, 8, 16, 32).

    Attribute names equal torchvision's (conv1, bn1, layer1..4) so its state dicts load.
    """

    def __init__(self, depth: int = 18, in_channels: int = 2):
        super().__init__()
        from monai.networks.nets import resnet

        if depth not in STAGE_WIDTHS:
            raise ChmflError(f"ResNet depth {depth} not available; choose 18, 34 or 50")
        net = getattr(resnet, f"resnet{depth}")(spatial_dims=2, n_input_channels=in_channels,
                                                conv1_t_stride=2, bias_downsample=False,
                                                act=("relu", {"inplace": False}), num_classes=2)
        self.conv1, self.bn1, self.act, self.maxpool = net.conv1, net.bn1, net.act, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.widths = STAGE_WIDTHS[depth]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        stem = self.act(self.bn1(self.conv1(x)))  # (N, 64, H/2, W/2)
        maps = [stem, self.layer1(self.maxpool(stem))]  # layer1: (N, w1, H/4, W/4)
        for layer in (self.layer2, self.layer3, self.layer4):
            maps.append(layer(maps[-1]))  # (N, w_i, H/2^i, W/2^i)
        return maps


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a safetensors file or a torch file loaded with weights_only=True."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable or unsafe file
        raise ChmflError(f"cannot read pretrained weights {path}: {type(exc).__name__}: {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise ChmflError(f"pretrained weights {path}: expected a state dict, found {type(sd).__name__}")
    return {k.removeprefix("module."): v for k, v in sd.items() if not k.startswith(("fc.", "module.fc."))}


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB conv1 weights (out, 3, k, k) -> (out, C, k, k): the sum over RGB spread evenly over
    the C inputs, so C identical grey channels give the activation the RGB net gives grey."""
    if weight.shape[1] == in_channels:
        return weight
    return (weight.sum(1, keepdim=True) / in_channels).repeat(1, in_channels, 1, 1)


def load_pretrained(stages: ResNetStages, pretrained: str | Path | bool | None, in_channels: int) -> None:
    """Load user-given ImageNet-style weights into ``stages``; the classifier (fc) is dropped."""
    if pretrained is None or pretrained is False:
        return
    if pretrained is True or not str(pretrained).strip():
        raise ChmflError("pretrained=True needs a weights file: pass pretrained=PATH "
                         "(a torchvision ResNet state dict, .pt/.pth or .safetensors); nothing is downloaded")
    path = Path(pretrained)
    if not path.is_file():
        raise ChmflError(f"pretrained weights file not found: {path}")
    sd = _read_state_dict(path)
    if "conv1.weight" in sd:
        sd["conv1.weight"] = adapt_first_conv(sd["conv1.weight"], in_channels)
    try:
        missing, unexpected = stages.load_state_dict(sd, strict=False)
    except RuntimeError as exc:
        raise ChmflError(f"pretrained weights {path} do not fit this ResNet: {str(exc).splitlines()[0]}") from exc
    if missing or unexpected:
        bad = (missing or unexpected)[:3]
        raise ChmflError(f"pretrained weights {path} do not fit this ResNet: "
                         f"{len(missing)} missing, {len(unexpected)} unexpected keys (e.g. {', '.join(bad)})")


class ResNetPetCt(nn.Module):
    """ResNet on 2-channel PET-CT slices (Table SII "ResNet-PET-CT"): backbone, global average
    pool, linear to 2 logits, averaged over the slices."""

    segments = False
    needs_mask = False
    uses_handcrafted = False
    n_features = 0
    is_2d = True
    depth = 18

    def __init__(self, pretrained: str | Path | None = None, n_slices: int = N_SLICES):
        super().__init__()
        self.n_slices = n_slices
        self.backbone = ResNetStages(self.depth, in_channels=2)
        load_pretrained(self.backbone, pretrained, 2)
        self.fc = nn.Linear(self.backbone.widths[-1], 2)

    def forward(self, pet: torch.Tensor, ct: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> ModelOutput:
        start, stop = slice_range(pet.shape[2], self.n_slices)
        x = to_slices(torch.cat([pet, ct], 1), start, stop)  # (B k, 2, H, W)
        pooled = self.backbone(x)[-1].mean((2, 3))  # (B k, w4)
        logits = mean_over_slices(self.fc(pooled), pet.shape[0])  # (B, 2)
        return ModelOutput(logits=logits, features=mean_over_slices(pooled, pet.shape[0]))


class ResNet18PetCt(ResNetPetCt):
    depth = 18


class ResNet34PetCt(ResNetPetCt):
    depth = 34


class ResNet50PetCt(ResNetPetCt):
    depth = 50


class CHMFLResNet(nn.Module):
    """CHMFL in 2D with a ResNet per modality (Table SII "CHMFL+ResNet"): HMFL over the 5
    ResNet stages, a 2D CFL decoder with horizontal connections and one extra Up_Conv from
    stride 2 to full resolution; seg logits cover the ``n_slices`` central slices."""

    segments = True
    needs_mask = False
    uses_handcrafted = False
    n_features = 0
    is_2d = True
    depth = 18

    def __init__(self, pretrained: str | Path | None = None, n_slices: int = N_SLICES,
                 norm: str = "batch", decoder_convs: Sequence[int] = (1, 1, 1, 1),
                 decoder_kernel: int = 3, hidden: Sequence[int] = HIDDEN, dropout: float = 0.5):
        super().__init__()
        self.n_slices = n_slices
        self.pet_backbone = ResNetStages(self.depth, in_channels=1)
        self.ct_backbone = ResNetStages(self.depth, in_channels=1)
        load_pretrained(self.pet_backbone, pretrained, 1)
        load_pretrained(self.ct_backbone, pretrained, 1)
        fused = [2 * w for w in self.pet_backbone.widths]
        self.fusion = HierarchicalFusion(range(len(fused)))
        self.classifier = Classifier(sum(fused), hidden, dropout)
        self.decoder = ConstrainedDecoder(fused[-1], fused[-2::-1], (256, 128, 64, 32), tuple(decoder_convs),
                                          decoder_kernel, norm, dims=2, extra_up=16)
        init_he(self.fusion)
        init_he(self.classifier)
        init_he(self.decoder)

    def forward(self, pet: torch.Tensor, ct: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> ModelOutput:
        batch = pet.shape[0]
        start, stop = slice_range(pet.shape[2], self.n_slices)
        pet_maps = self.pet_backbone(to_slices(pet, start, stop))  # 5 x (B k, w_i, ...)
        ct_maps = self.ct_backbone(to_slices(ct, start, stop))
        fused = [torch.cat([p, c], 1) for p, c in zip(pet_maps, ct_maps)]
        vector = self.fusion(fused)  # (B k, 2 sum w_i)
        logits = mean_over_slices(self.classifier(vector), batch)  # (B, 2)
        seg = self.decoder(fused[-1], fused[-2::-1], out_size=pet.shape[3:])  # (B k, 2, H, W)
        return ModelOutput(logits=logits, seg_logits=from_slices(seg, batch), seg_slices=(start, stop),
                           features=mean_over_slices(vector, batch))


class CHMFLResNet18(CHMFLResNet):
    depth = 18


class CHMFLResNet34(CHMFLResNet):
    depth = 34


class CHMFLResNet50(CHMFLResNet):
    depth = 50
