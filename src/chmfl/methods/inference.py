"""A trained network's outputs: DM probabilities (a one-output Cox network: its risk score),
masks and features in eval mode (``predict_network``), input-gradient saliency (``saliency_maps``), and BatchNorm on each
patient's own statistics (``bn_sample_statistics``, ``bn_eval="sample"``). No training here
(``methods.trainer``); the forward call both share is ``forward``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from chmfl.data.tensors import CaseTensors


def forward(model: nn.Module, b: CaseTensors, device: torch.device, memory_format):
    """``model``'s output on batch ``b`` moved to ``device`` (images in ``memory_format``)."""
    to = lambda t: None if t is None else t.to(device, memory_format=memory_format)  # noqa: E731
    feats = None if b.features is None else b.features.to(device)
    return model(to(b.pet), to(b.ct), mask=to(b.mask), features=feats)


def positive_score(logits: torch.Tensor) -> torch.Tensor:
    """P(DM) of two-logit networks; for a one-output (Cox risk) network the sigmoid of the
    risk, a monotone score whose AUC against the event indicator the logs record."""
    logits = logits.float()
    return torch.sigmoid(logits[:, 0]) if logits.shape[1] == 1 else torch.softmax(logits, 1)[:, 1]


def train_auc(labels: list[int], probs: list[float]) -> float:
    """ROC AUC of ``probs`` for ``labels``; NaN where only one class is present."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, probs)) if len(set(labels)) == 2 else float("nan")


@contextlib.contextmanager
def bn_sample_statistics(model: nn.Module):
    """BatchNorm normalises with each sample's own statistics (as in training at batch size 1)
    instead of the running averages; running averages are left untouched (momentum 0);
    dropout and everything else stay in eval mode.

    A map with a single value per channel (a 1-voxel deepest level of a small input) has no
    sample statistics: that BatchNorm falls back to its running averages for the call.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone())
             for m in bns]

    def _one_value_falls_back(module, args):
        x = args[0]
        module.training = x.numel() // max(x.shape[1], 1) > 1

    hooks = [m.register_forward_pre_hook(_one_value_falls_back) for m in bns]
    try:
        for m in bns:
            m.train()
            m.momentum = 0.0
        yield
    finally:
        for h in hooks:
            h.remove()
        for m, (mom, tracked) in zip(bns, saved):
            m.momentum = mom
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
            m.eval()


@contextlib.contextmanager
def _inplace(model: nn.Module, enable: bool):
    """ELUs in place for the call, their flags restored afterwards."""
    elus = [m for m in model.modules() if isinstance(m, nn.ELU)] if enable else []
    saved = [m.inplace for m in elus]
    try:
        for m in elus:
            m.inplace = True
        yield
    finally:
        for m, flag in zip(elus, saved):
            m.inplace = flag


@contextlib.contextmanager
def _channels_last_pooling(model: nn.Module, enable: bool):
    """HMFL pooling in channels-last memory order and 2D convolutions channels-last for the
    call (``accel.layout``; same values)."""
    if not enable:
        yield
        return
    from chmfl.accel.layout import ChannelsLastFusion, swap_conv2d
    from chmfl.models.chmfl import HierarchicalFusion

    swapped = [m for m in model.modules() if type(m) is HierarchicalFusion]
    convs = swap_conv2d(model)
    try:
        for m in swapped:
            m.__class__ = ChannelsLastFusion
        yield
    finally:
        for m in swapped:
            m.__class__ = HierarchicalFusion
        for m in convs:
            m.__class__ = torch.nn.Conv2d


@contextlib.contextmanager
def _decoder_skipped(model: nn.Module, skip: bool):
    """Without the CFL decoder for the call (networks that declare ``decoder_optional``): the
    DM logits do not depend on it, and it holds ~98% of CHMFL's inference FLOPs."""
    decoder = getattr(model, "decoder", None)
    if not (skip and decoder is not None and getattr(model, "decoder_optional", False)):
        yield
        return
    model.decoder = None
    try:
        yield
    finally:
        model.decoder = decoder


def predict_network(model: nn.Module, data: CaseTensors, precision: str = "32-true",
                    batch_size: int = 4, bn_eval: str = "running", segment: bool = True,
                    channels_last: bool = False, inplace_act: bool = False,
                    device: str | torch.device | None = None) -> dict[str, np.ndarray]:
    """Eval-mode outputs for every case: DM probability ("probability"; a one-output Cox
    network: "risk", the log relative hazard), and masks / features when the model has them.

    ``bn_eval``: "running" (PyTorch's eval mode: BatchNorm uses running averages) or
    "sample" (each case normalised with its own statistics, one case at a time; see
    ``bn_sample_statistics`` and docs/training.md). ``segment=False``: skip the CFL decoder
    where the network allows it (same probabilities, no mask). ``channels_last``: run in the
    channels_last_3d memory format (same outputs up to float rounding). ``inplace_act``: ELUs
    overwrite their input for the call (same outputs, less memory traffic; only for networks
    whose ELU inputs are used by nothing else, as in CHMFL -- inference mode cannot check it).
    ``device``: run on this device (the model is moved there for the call and back after);
    default: where the model is. Outputs are numpy arrays on the host either way.
    """
    home = next(model.parameters()).device
    if device is not None and torch.device(device) != home:
        try:
            return predict_network(model.to(device), data, precision, batch_size, bn_eval, segment,
                                   channels_last, inplace_act)
        finally:
            model.to(home)
    model.eval()
    if bn_eval not in ("running", "sample"):
        raise ValueError(f"bn_eval must be 'running' or 'sample', not {bn_eval!r}")
    # channels_last: only the inputs change layout; every conv then runs (and outputs) channels-last
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    with (torch.inference_mode(), _decoder_skipped(model, not segment), _inplace(model, inplace_act),
          _channels_last_pooling(model, channels_last)):
        if bn_eval == "sample":
            with bn_sample_statistics(model):
                return _predict_batches(model, data, precision, 1, fmt)
        return _predict_batches(model, data, precision, batch_size, fmt)


def _predict_batches(model: nn.Module, data: CaseTensors, precision: str, batch_size: int,
                     memory_format=torch.contiguous_format) -> dict[str, np.ndarray]:
    probs, risks, masks, feats = [], [], [], []
    device = next(model.parameters()).device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    for start in range(0, len(data), batch_size):
        b = data.batch(torch.arange(start, min(start + batch_size, len(data))))
        with autocast:
            out = forward(model, b, device, memory_format)
        if out.logits.shape[1] == 1:  # a Cox head: the risk score, no probability
            risks.append(out.logits[:, 0].float().cpu())
        else:
            probs.append(torch.softmax(out.logits.float(), 1)[:, 1].cpu())
        if out.seg_logits is not None:
            seg = out.seg_logits.argmax(1).to(torch.uint8).cpu()  # (B, D', H, W)
            if out.seg_slices is not None:  # 2D models: place their slices into the full box
                full = torch.zeros((seg.shape[0], *b.ct.shape[2:]), dtype=torch.uint8)
                full[:, out.seg_slices[0] : out.seg_slices[1]] = seg
                seg = full
            masks.append(seg)
        if out.features is not None:
            feats.append(out.features.float().flatten(1).cpu())
    result = {"probability": torch.cat(probs).numpy()} if probs else {"risk": torch.cat(risks).numpy()}
    if masks:
        result["mask"] = torch.cat(masks).numpy()
    if feats:
        result["features"] = torch.cat(feats).numpy()
    return result


def saliency_maps(model: nn.Module, data: CaseTensors, bn_eval: str = "running") -> np.ndarray:
    """Input-gradient saliency of the DM probability, one map per case (N, D, H, W) in [0, 1].

    |d p(DM) / d input| summed over the PET and CT inputs, smoothed (Gaussian, 1 voxel) and
    scaled to [0, 1] per case: which voxels move the prediction (Fig. 6's feature-map view).
    Works for every network, 2D ones included (zero outside their slices).
    """
    from scipy.ndimage import gaussian_filter

    model.eval()
    maps = []
    ctx = bn_sample_statistics(model) if bn_eval == "sample" else contextlib.nullcontext()
    with ctx:
        for i in range(len(data)):
            b = data.batch(torch.tensor([i]))
            pet = None if b.pet is None else b.pet.clone().requires_grad_(True)  # CT-only cohorts: None
            ct = b.ct.clone().requires_grad_(True)
            out = model(pet, ct, mask=b.mask, features=b.features)
            torch.softmax(out.logits.float(), 1)[0, 1].backward()
            g = sum(t.grad.abs() for t in (pet, ct) if t is not None and t.grad is not None)
            g = g[0, 0].numpy() if torch.is_tensor(g) else np.zeros(b.ct.shape[2:], np.float32)
            g = gaussian_filter(g, 1.0)
            maps.append((g / g.max()) if g.max() > 0 else g)
    model.zero_grad(set_to_none=True)
    return np.stack(maps).astype(np.float32)
