"""What every network returns, and the one forward signature they all share.

Every chmfl network is an ``nn.Module`` whose ``forward(pet, ct, mask=None, features=None)``
takes PET and CT boxes of shape (B, 1, D, H, W) (D the cranio-caudal axis), the tumour mask
(B, 1, D, H, W) for methods that use it as input, and handcrafted features (B, F) for hybrid
methods, and returns a ``ModelOutput``. A network ignores inputs it does not use (a CT-only
CNN ignores ``pet``), so the training loop has no special cases. Class attributes tell the
training loop what a network needs: ``segments`` (has a decoder, trained with Eq. 1),
``needs_mask`` (mask is an input, also at inference), ``n_features`` (handcrafted features
expected, 0 if none).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, 2) DM logits: index 1 = DM
    seg_logits: torch.Tensor | None = None  # (B, 2, D', H, W) voxel logits (index 1 = tumour)
    seg_slices: tuple[int, int] | None = None  # 2D models: the D range [start, stop) seg_logits cover
    features: torch.Tensor | None = None  # (B, d) the vector the classifier head sees (t-SNE)
