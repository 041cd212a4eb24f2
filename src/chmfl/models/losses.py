"""The training loss of Eq. (1): (1 - w) * CE(DM logits, label) + w * voxelwise CE(seg, mask).

Eq. (1) sums the voxel term over all N voxels while the DM term is a single cross-entropy, so
taken literally the voxel term is N times larger (N = 1.8 million at 1 mm) and w = 0.5 would
not balance anything; by default both terms are means (``seg_reduction="mean"``).
``seg_reduction="sum"`` gives the literal sum over a patient's voxels (averaged over the
batch, as the DM term is). Networks without a decoder train on the DM term alone (w unused).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chmfl.errors import ChmflError
from chmfl.models.base import ModelOutput

SEG_REDUCTIONS = ("mean", "sum")


def _seg_target(mask: torch.Tensor, out: ModelOutput) -> torch.Tensor:
    """Mask (B, 1, D, H, W) or (B, D, H, W), values {0, 1} -> class indices matching seg_logits."""
    target = mask[:, 0] if mask.dim() == 5 else mask  # (B, D, H, W)
    if out.seg_slices is not None:  # 2D networks segment only their slices
        target = target[:, out.seg_slices[0] : out.seg_slices[1]]
    target = (target > 0.5).long()
    if target.shape[1:] != out.seg_logits.shape[2:]:
        raise ChmflError(f"mask {tuple(target.shape)} does not match seg logits {tuple(out.seg_logits.shape)}")
    return target


def chmfl_loss(out: ModelOutput, label: torch.Tensor, mask: torch.Tensor | None, w: float = 0.5,
               seg_reduction: str = "mean") -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss of Eq. (1) and its parts ``{"cls_loss", "seg_loss"}`` (floats, for logs).

    ``label``: (B,) DM labels 0/1; ``mask``: tumour masks, needed when the network segments.
    """
    total, cls, seg = eq1_terms(out, label, mask, w, seg_reduction)
    return total, {"cls_loss": float(cls.detach()), "seg_loss": float(seg.detach())}


def eq1_terms(out: ModelOutput, label: torch.Tensor, mask: torch.Tensor | None, w: float = 0.5,
              seg_reduction: str = "mean") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. (1) as tensors ``(total, cls, seg)``, no host copy (so ``torch.func.vmap`` can map
    it over stacked fold models); ``seg`` is 0 for networks without a decoder."""
    if seg_reduction not in SEG_REDUCTIONS:
        raise ChmflError(f"seg_reduction must be one of {SEG_REDUCTIONS}, not {seg_reduction!r}")
    if not 0.0 <= w <= 1.0:
        raise ChmflError(f"seg weight w must lie in [0, 1], got {w}")
    cls = F.cross_entropy(out.logits.float(), label.long())
    if out.seg_logits is None:
        return cls, cls, torch.zeros_like(cls)
    if mask is None:
        raise ChmflError("this network segments (Eq. 1) but no tumour mask was given")
    target = _seg_target(mask, out)
    seg = F.cross_entropy(out.seg_logits.float(), target, reduction=seg_reduction)
    if seg_reduction == "sum":
        seg = seg / out.seg_logits.shape[0]  # per-patient sum, averaged over the batch
    return (1.0 - w) * cls + w * seg, cls, seg
