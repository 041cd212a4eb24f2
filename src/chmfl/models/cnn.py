"""Plain CNN comparators (Table II); CNLPC (Table I) is in ``cnlpc.py``.

``cnn3d``: the CHMFL encoder path on one input (CT, PET, or PET-CT as 2 channels), classified
from its last layer only (global max pool -> the same FC head); no HMFL, no decoder.
``cnn2d``: its 2D analogue on ``n_slices`` axial slices through the box centre, slice logits
averaged per patient.
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
