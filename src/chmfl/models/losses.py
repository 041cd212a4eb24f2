"""The training loss of Eq. (1): (1 - w) * CE(DM logits, label) + w * voxelwise CE(seg, mask),
and its survival form for ``chmfl-surv``: the DM term replaced by the negative log Cox partial
likelihood of the network's risk output (``cox_partial_likelihood``, Breslow ties).

Eq. (1) sums the voxel term over all N voxels while the DM term is a single cross-entropy, so
taken literally the voxel term is N times larger (N = 1.8 million at 1 mm) and w = 0.5 would
not balance anything; by default both terms are means (``seg_reduction="mean"``).
``seg_reduction="sum"`` gives the literal sum over a patient's voxels (averaged over the
batch, as the DM term is). Networks without a decoder train on the DM term alone (w unused).

Two settings serve the comparators' own losses: ``seg_loss="dice"`` replaces the voxel
cross-entropy by V-Net's soft Dice loss (``dice_loss``), and ``class_weights`` weight the DM
cross-entropy per class as hn_cnn's class-weighted binary cross-entropy does (CNLPC).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from chmfl.errors import ChmflError
from chmfl.models.base import ModelOutput

SEG_REDUCTIONS = ("mean", "sum")
SEG_LOSSES = ("ce", "dice")


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
               seg_reduction: str = "mean", seg_loss: str = "ce",
               class_weights: tuple[float, float] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss of Eq. (1) and its parts ``{"cls_loss", "seg_loss"}`` (floats, for logs).

    ``label``: (B,) DM labels 0/1; ``mask``: tumour masks, needed when the network segments.
    """
    total, cls, seg = eq1_terms(out, label, mask, w, seg_reduction, seg_loss, class_weights)
    return total, {"cls_loss": float(cls.detach()), "seg_loss": float(seg.detach())}


def _check_eq1(w: float, seg_reduction: str, seg_loss: str) -> None:
    """Eq. (1)'s settings, as both its forms (DM and Cox) accept them."""
    if seg_reduction not in SEG_REDUCTIONS:
        raise ChmflError(f"seg_reduction must be one of {SEG_REDUCTIONS}, not {seg_reduction!r}")
    if seg_loss not in SEG_LOSSES:
        raise ChmflError(f"seg_loss must be one of {SEG_LOSSES}, not {seg_loss!r}")
    if not 0.0 <= w <= 1.0:
        raise ChmflError(f"seg weight w must lie in [0, 1], got {w}")


def eq1_terms(out: ModelOutput, label: torch.Tensor, mask: torch.Tensor | None, w: float = 0.5,
              seg_reduction: str = "mean", seg_loss: str = "ce",
              class_weights: tuple[float, float] | None = None,
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. (1) as tensors ``(total, cls, seg)``, no host copy (so ``torch.func.vmap`` can map
    it over stacked fold models); ``seg`` is 0 for networks without a decoder."""
    _check_eq1(w, seg_reduction, seg_loss)
    cls = dm_loss(out.logits, label, class_weights)
    return _with_seg(cls, out, mask, w, seg_reduction, seg_loss)


def _with_seg(cls: torch.Tensor, out: ModelOutput, mask: torch.Tensor | None, w: float,
              seg_reduction: str, seg_loss: str = "ce") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(1 - w) * cls + w * seg`` with Eq. (1)'s voxel term (cross-entropy, or V-Net's soft
    Dice with ``seg_loss="dice"``); ``cls`` alone without a decoder."""
    if out.seg_logits is None:
        return cls, cls, torch.zeros_like(cls)
    if mask is None:
        raise ChmflError("this network segments (Eq. 1) but no tumour mask was given")
    target = _seg_target(mask, out)
    if seg_loss == "dice":
        seg = dice_loss(out.seg_logits, target)
    else:
        seg = F.cross_entropy(out.seg_logits.float(), target, reduction=seg_reduction)
        if seg_reduction == "sum":
            seg = seg / out.seg_logits.shape[0]  # per-patient sum, averaged over the batch
    return (1.0 - w) * cls + w * seg, cls, seg


def cox_partial_likelihood(risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor) -> torch.Tensor:
    """Negative log Cox partial likelihood of ``risk`` (B,) with Breslow's handling of ties,
    divided by the number of events: for each event i, risk_i - log sum_{j: t_j >= t_i} exp(risk_j).

    The risk sets are those of the patients passed in (a batch): a batch needs >= 2 patients
    and an event for a gradient; one without events returns 0 (connected to the graph)."""
    r = (risk if risk.dtype == torch.float64 else risk.float()).reshape(-1)  # bf16 -> fp32
    t = time.reshape(-1).to(r.device)
    e = event.reshape(-1).to(r.device).bool()
    if r.numel() != t.numel() or r.numel() != e.numel():
        raise ChmflError(f"Cox loss: {r.numel()} risks, {t.numel()} times, {e.numel()} events")
    at_risk = t[None, :] >= t[:, None]  # (B, B): row i holds the risk set of t_i
    log_denominator = torch.logsumexp(r[None, :].masked_fill(~at_risk, float("-inf")), dim=1)  # (B,)
    per_event = (r - log_denominator) * e
    return -per_event.sum() / e.sum().clamp(min=1)


def eq1_cox_terms(out: ModelOutput, time: torch.Tensor, event: torch.Tensor, mask: torch.Tensor | None,
                  w: float = 0.5, seg_reduction: str = "mean",
                  seg_loss: str = "ce") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. (1) with the DM term swapped for ``cox_partial_likelihood`` of the network's single
    risk output (``logits`` of shape (B, 1)); ``(total, cox, seg)``."""
    _check_eq1(w, seg_reduction, seg_loss)
    if out.logits.dim() != 2 or out.logits.shape[1] != 1:
        raise ChmflError(f"the Cox loss needs one risk output per patient, got logits {tuple(out.logits.shape)}")
    cox = cox_partial_likelihood(out.logits[:, 0], time, event)
    return _with_seg(cox, out, mask, w, seg_reduction, seg_loss)


def dm_loss(logits: torch.Tensor, label: torch.Tensor,
            class_weights: tuple[float, float] | None = None) -> torch.Tensor:
    """Cross-entropy of the DM logits (B, 2); with ``class_weights`` (w0, w1) each patient's
    term is multiplied by the weight of its class and the batch mean taken over patients,
    ``mean_i w[y_i] * CE_i``, as hn_cnn's ``F.binary_cross_entropy(weight=...)`` does (not
    PyTorch's weighted CE, which divides by the sum of the weights instead)."""
    if class_weights is None:
        return F.cross_entropy(logits.float(), label.long())
    if len(class_weights) != 2 or min(class_weights) < 0:
        raise ChmflError(f"class_weights must be two non-negative numbers, got {class_weights}")
    per_case = F.cross_entropy(logits.float(), label.long(), reduction="none")
    weights = torch.as_tensor(class_weights, dtype=per_case.dtype, device=per_case.device)
    return (weights[label.long()] * per_case).mean()


def dice_loss(seg_logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """V-Net's soft Dice loss (Milletari et al. 2016, Eq. 1), 1 - D with
    ``D = 2 sum(p g) / (sum(p^2) + sum(g^2))`` over each patient's voxels, ``p`` the softmax
    tumour probability and ``g`` the binary tumour mask; averaged over the batch. MONAI's
    ``DiceLoss`` (foreground channel only, squared denominator) with its 1e-5 smoothing in
    numerator and denominator, so an empty mask predicted empty costs 0, not 0/0.

    ``seg_logits``: (B, 2, ...) voxel logits; ``target``: (B, ...) class indices {0, 1}."""
    from monai.losses import DiceLoss

    loss = DiceLoss(include_background=False, to_onehot_y=True, softmax=True, squared_pred=True)
    return loss(seg_logits.float(), target.unsqueeze(1))
