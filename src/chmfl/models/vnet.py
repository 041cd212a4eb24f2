"""V-Net (Milletari et al. 2016; MONAI's implementation), the segmentation comparator of
Table SIV, on PET-CT (2 input channels, 2 output classes).

V-Net has no classifier, but every chmfl network must return DM logits so one training loop
serves all. A tiny head turns the predicted tumour into 3 numbers, the predicted tumour
volume fraction, the highest tumour probability and the highest PET value weighted by
tumour probability (a soft SUVmax of the predicted tumour), and maps them linearly to 2
logits. The head sees the probabilities detached, so V-Net itself learns only from the
segmentation term of Eq. (1), like the stand-alone V-Net of the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from chmfl.models.base import ModelOutput
from chmfl.models.blocks import match_size


class VNetSeg(nn.Module):
    """MONAI V-Net (PET+CT in, 2 classes out) with a 3 -> 2 linear DM head on its prediction.

    Inputs whose sizes are not multiples of 16 are zero-padded at the far end and the logits
    cropped back, as V-Net's skip connections need sizes divisible by 16.
    """

    segments = True
    needs_mask = False
    uses_handcrafted = False
    n_features = 0
    is_2d = False

    def __init__(self, dropout: float = 0.5):
        super().__init__()
        from monai.networks.nets import VNet

        self.vnet = VNet(spatial_dims=3, in_channels=2, out_channels=2, dropout_prob_down=dropout,
                         dropout_prob_up=(dropout, dropout))
        self.head = nn.Linear(3, 2)

    def forward(self, pet: torch.Tensor, ct: torch.Tensor, mask: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> ModelOutput:
        size = tuple(pet.shape[2:])
        padded = tuple(-(-s // 16) * 16 for s in size)
        x = match_size(torch.cat([pet, ct], 1), padded)  # (B, 2, D16, H16, W16)
        seg = match_size(self.vnet(x), size)  # (B, 2, D, H, W)
        prob = torch.softmax(seg.detach().float(), 1)[:, 1].flatten(1)  # (B, N) tumour probability
        summary = torch.stack([prob.mean(1), prob.amax(1),
                               (pet.detach().float().flatten(1) * prob).amax(1)], 1)  # (B, 3)
        logits = self.head(summary.to(self.head.weight.dtype))
        return ModelOutput(logits=logits, seg_logits=seg, features=summary)

