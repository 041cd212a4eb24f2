"""The CNN parts of the hybrid comparators of Table I.

``3dmcl`` (Peng et al., EMBC 2019): a PET branch and a CT branch, each given the tumour
delineation as a second input channel, whose deepest features are pooled, concatenated
with a projection of the handcrafted radiomic feature vector, and classified.
``mor-cnn`` (Chen et al., PMB 2019): the 3D CNN half of MOR+3D CNNs, a plain 3D CNN on a
PET-CT patch; the many-objective radiomics model and the evidential-reasoning fusion live
in ``chmfl.methods.hybrid``.
Neither paper's layer table was available offline; docs/methods.md states our reading.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from chmfl.errors import ChmflError
from chmfl.models.base import ModelOutput
from chmfl.models.blocks import (
    check_min_size,
    init_he,
    make_norm,
    modality_channels,
    modality_input,
)


def conv_pool_stack(cin: int, widths: Sequence[int], norm: str = "batch") -> nn.Sequential:
    """(conv 3x3x3 -> norm -> ReLU -> max pool 2) per width: a classic 3D CNN feature path."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv3d(cin, width, 3, padding=1), make_norm(norm, width, 3), nn.ReLU(), nn.MaxPool3d(2)]
        cin = width
    return nn.Sequential(*layers)


def _global_max(x: torch.Tensor) -> torch.Tensor:
    return torch.amax(x.flatten(2), 2)  # (B, C)


class MCL3D(nn.Module):
    """3DMCL: PET+mask and CT+mask 3D branches, single-level (deepest) fusion, plus the
    handcrafted features (``n_features`` values, standardised by the caller); 0 = image only."""

    segments = False
    needs_mask = True
    uses_handcrafted = True
    n_features = 0  # set per instance from the constructor
    is_2d = False

    def __init__(self, n_features: int = 0, widths: Sequence[int] = (16, 32, 64, 128),
                 feature_width: int = 64, hidden: int = 128, dropout: float = 0.5):
        super().__init__()
        self.n_features = int(n_features)
        self.min_size = 2 ** len(widths)
        self.pet_branch = conv_pool_stack(2, widths)
        self.ct_branch = conv_pool_stack(2, widths)
        width = 2 * widths[-1]
        self.radiomics = None
        if self.n_features > 0:
            self.radiomics = nn.Sequential(nn.Linear(self.n_features, feature_width), nn.ReLU())
            width += feature_width
        self.classifier = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, 2))
        init_he(self)

    def forward(self, pet: torch.Tensor, ct: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> ModelOutput:
        check_min_size(pet, self.min_size, "3dmcl")
        if mask is None:
            raise ChmflError("3dmcl needs the tumour mask as input")
        m = mask.to(pet.dtype)
        parts = [_global_max(self.pet_branch(torch.cat([pet, m], 1))),  # (B, 128)
                 _global_max(self.ct_branch(torch.cat([ct, m], 1)))]
        if self.radiomics is not None:
            if features is None or features.shape[-1] != self.n_features:
                got = None if features is None else tuple(features.shape)
                raise ChmflError(f"3dmcl expects {self.n_features} handcrafted features per case, got {got}")
            parts.append(self.radiomics(features.to(parts[0].dtype)))  # (B, feature_width)
        vector = torch.cat(parts, 1)
        return ModelOutput(logits=self.classifier(vector), features=vector)


class MORCNN(nn.Module):
    """The 3D CNN of MOR+3D CNNs: conv-pool stack on PET-CT (2 channels) -> FC -> 2 logits."""

    segments = False
    needs_mask = False
    uses_handcrafted = False
    n_features = 0
    is_2d = False

    def __init__(self, modality: str = "petct", widths: Sequence[int] = (32, 64, 128),
                 hidden: int = 128, dropout: float = 0.5):
        super().__init__()
        self.modality = modality
        self.min_size = 2 ** len(widths)
        self.convs = conv_pool_stack(modality_channels(modality), widths)
        self.classifier = nn.Sequential(nn.Linear(widths[-1], hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, 2))
        init_he(self)

    def forward(self, pet: torch.Tensor, ct: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> ModelOutput:
        check_min_size(pet, self.min_size, "mor-cnn")
        vector = _global_max(self.convs(modality_input(pet, ct, self.modality)))  # (B, 128)
        return ModelOutput(logits=self.classifier(vector), features=vector)
