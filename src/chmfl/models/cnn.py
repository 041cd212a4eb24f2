"""Plain CNN comparators (Table II) and CNLPC (Table I, Diamant et al. 2019).

``cnn3d``: the CHMFL encoder path on one input (CT, PET, or PET-CT as 2 channels), classified
from its last layer only (global max pool -> the same FC head); no HMFL, no decoder.
``cnn2d``: its 2D analogue on ``n_slices`` axial slices through the box centre, slice logits
averaged per patient. ``cnlpc``: convolution, non-linearity, pooling, classification on the
central PET-CT slice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from chmfl.models.base import ModelOutput
from chmfl.models.blocks import (
    check_min_size,
    init_he,
    mean_over_slices,
    modality_channels,
    modality_input,
    slice_range,
    to_slices,
)
from chmfl.models.chmfl import HIDDEN, MIN_SIZE, WIDTHS, Classifier, Encoder


class _Attrs:
    segments = False
    needs_mask = False
    uses_handcrafted = False
    n_features = 0


class PlainCNN3D(_Attrs, nn.Module):
    """3D-CNN-{CT,PET,PET-CT}: encoder (Table SI HMFL path) -> max pool of the last map -> FC."""

    is_2d = False

    def __init__(self, modality: str = "petct", norm: str = "batch", hidden: Sequence[int] = HIDDEN,
                 dropout: float = 0.5):
        super().__init__()
        self.modality = modality
        self.encoder = Encoder(modality_channels(modality), WIDTHS, norm, dims=3)
        self.classifier = Classifier(WIDTHS[-1], hidden, dropout)
        init_he(self)

    def forward(self, pet: torch.Tensor, ct: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> ModelOutput:
        check_min_size(pet, MIN_SIZE, "cnn3d")
        x = modality_input(pet, ct, self.modality)
        vector = torch.amax(self.encoder(x)[-1].flatten(2), 2)  # (B, 256)
        return ModelOutput(logits=self.classifier(vector), features=vector)


class PlainCNN2D(_Attrs, nn.Module):
    """2D-CNN-{CT,PET,PET-CT}: the 2D analogue of ``cnn3d`` on ``n_slices`` central slices."""

    is_2d = True

    def __init__(self, modality: str = "petct", n_slices: int = 5, norm: str = "batch",
                 hidden: Sequence[int] = HIDDEN, dropout: float = 0.5):
        super().__init__()
        self.modality = modality
        self.n_slices = n_slices
        self.encoder = Encoder(modality_channels(modality), WIDTHS, norm, dims=2)
        self.classifier = Classifier(WIDTHS[-1], hidden, dropout)
        init_he(self)

    def forward(self, pet: torch.Tensor, ct: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> ModelOutput:
        check_min_size(pet[:, :, 0], MIN_SIZE, "cnn2d")
        start, stop = slice_range(pet.shape[2], self.n_slices)
        x = to_slices(modality_input(pet, ct, self.modality), start, stop)  # (B k, C, H, W)
        vector = torch.amax(self.encoder(x)[-1].flatten(2), 2)  # (B k, 256)
        logits = mean_over_slices(self.classifier(vector), pet.shape[0])
        return ModelOutput(logits=logits, features=mean_over_slices(vector, pet.shape[0]))


class CNLPC(_Attrs, nn.Module):
    """CNLPC (Diamant et al. 2019): conv -> ReLU -> max pool blocks, then dense layers, on the
    central axial slice of the box (PET-CT, 2 channels, as the CHMFL paper compares it).

    Blocks: conv 5x5 (32), conv 3x3 (64), conv 3x3 (128), each ReLU + 2x2 max pool; adaptive
    max pool to 4x4 (any box size); dense 2048 -> 256 -> 2 with dropout 0.5.
    """

    is_2d = True

    def __init__(self, n_slices: int = 1, widths: Sequence[int] = (32, 64, 128), hidden: int = 256,
                 dropout: float = 0.5, modality: str = "petct"):
        super().__init__()
        self.n_slices, self.modality = n_slices, modality
        layers: list[nn.Module] = []
        cin = modality_channels(modality)
        for i, width in enumerate(widths):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(cin, width, k, padding=k // 2), nn.ReLU(), nn.MaxPool2d(2)]
            cin = width
        self.convs = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(4))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(cin * 16, hidden), nn.ReLU(),
                                        nn.Dropout(dropout), nn.Linear(hidden, 2))
        init_he(self)

    def forward(self, pet: torch.Tensor, ct: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> ModelOutput:
        check_min_size(pet[:, :, 0], 8, "cnlpc")
        start, stop = slice_range(pet.shape[2], self.n_slices)
        x = to_slices(modality_input(pet, ct, self.modality), start, stop)  # (B k, 2, H, W)
        maps = self.convs(x)  # (B k, 128, 4, 4)
        logits = mean_over_slices(self.classifier(maps), pet.shape[0])
        return ModelOutput(logits=logits, features=mean_over_slices(maps.flatten(1), pet.shape[0]))
