"""Memory options for training that leave a network's function and parameters unchanged (same
state_dict; the gradients differ from the plain layers' by float rounding only).

``use_inplace_abn(model)``: every BatchNorm directly followed by an ELU (a ``conv -> norm ->
ELU`` block) becomes one "in-place activated BatchNorm" (Rota Bulo, Porzi & Kontschieder,
CVPR 2018). A plain block keeps two full-size maps for the backward pass: the BatchNorm input
(the conv output) and the ELU output. The fused layer keeps only the ELU output ``y`` and
recomputes what the BatchNorm backward needs from it: ELU is invertible (``z = y`` for
``y > 0``, ``alpha * log1p(y / alpha)`` otherwise), and so is the affine BatchNorm output
(``x = (z - beta) / (gamma * invstd) + mean``). The forward pass runs PyTorch's own
``native_batch_norm`` (the same statistics and running-average updates as ``nn.BatchNorm``),
the backward PyTorch's own ``native_batch_norm_backward`` on the recomputed input. Limits
(where the plain path is taken instead, exactly): eval mode, no autograd, other dtypes than
float32 (bf16 cannot invert an ELU near -alpha), or any ``|gamma| < GAMMA_MIN``. Where the
ELU saturates in float32 (``z < -15.9 * alpha``) the recomputed ``z`` is clamped there; those
voxels get no gradient through the ELU either way (its derivative rounds to 0), only their
share of the BatchNorm's centring term is approximated.

``set_split_concat(model)``: every Table SI decoder level (``models.blocks.FusionResidualUnit``)
becomes a ``SplitConcatFusion``, whose first convolution reads the horizontal connection
``cat(up, pet, ct)`` as three inputs, ``conv(cat(a, b, c), W) =
conv(a, W_a) + conv(b, W_b) + conv(c, W_c)``, so neither the fused PET-CT skip maps nor the
48-channel full-size concatenation are built; the convolutions keep the encoder and Up_Conv
maps they read, which are kept anyway.

``set_mmap_threshold(mb)``: glibc's malloc serves blocks of at least ``mb`` MB with their own
memory maps, which go back to the system when freed. By default glibc raises that threshold
(up to 32 MB) each time a mapped block is freed, after which the 2-32 MB maps of a training
step live on its heap, which keeps their memory after they are freed and fragments: measured
at 1 mm, ~0.8 GB more resident memory after a step and ~0.35-0.45 GB on its peak. Process-wide
and for the rest of the process; a no-op (returning False) outside glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from chmfl.models.blocks import FusionResidualUnit

log = logging.getLogger(__name__)

GAMMA_MIN = 1e-2  # smallest |BatchNorm weight| for which the input is recomputed from the output


class _InPlaceABN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, alpha):
        y, mean, invstd = torch.native_batch_norm(x, weight, bias, running_mean, running_var,
                                                  True, momentum, eps)
        F.elu(y, alpha, inplace=True)
        ctx.save_for_backward(y, weight, bias, mean, invstd)
        ctx.eps, ctx.alpha = eps, alpha
        return y

    @staticmethod
    def backward(ctx, grad_y):
        y, weight, bias, mean, invstd = ctx.saved_tensors
        alpha = ctx.alpha
        grad_z = torch.ops.aten.elu_backward(grad_y, alpha, 1, 1, True, y)
        # x = ELU^-1(y) = (y if y > 0 else alpha * log1p(y / alpha)), then x = (x - beta) /
        # (gamma * invstd) + mean: built in one buffer, so the backward holds y, grad_y,
        # grad_z and x (the BatchNorm backward then adds its input gradient)
        x = y.clamp(-alpha * (1 - torch.finfo(y.dtype).eps), 0)
        if alpha == 1:
            x.log1p_()
        else:
            x.div_(alpha).log1p_().mul_(alpha)
        torch.where(y > 0, y, x, out=x)
        shape = (1, -1) + (1,) * (y.dim() - 2)
        scale = 1 / (weight * invstd)
        torch.addcmul((mean - bias * scale).view(shape), x, scale.view(shape), out=x)
        grads = torch.ops.aten.native_batch_norm_backward(
            grad_z, x, weight, None, None, mean, invstd, True, ctx.eps, list(ctx.needs_input_grad[:3]))
        return grads[0], grads[1], grads[2], None, None, None, None, None


class InPlaceABN:
    """Mixin of a BatchNorm that also applies the ELU which followed it (module docstring);
    only ever made by ``use_inplace_abn``, which swaps the class of an ``nn.BatchNorm{1,2,3}d``
    for its ``InPlaceABN{1,2,3}d`` subclass, so parameters, buffers and state_dict keys stay."""

    _abn_alpha: float = 1.0
    _abn_inplace: bool = False

    def _fused(self, x: torch.Tensor) -> bool:
        return (self.training and torch.is_grad_enabled() and self.track_running_stats
                and self.running_mean is not None and self.affine and x.dtype == torch.float32
                and not torch.is_autocast_enabled(x.device.type)
                and bool(self.weight.detach().abs().min() >= GAMMA_MIN))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._fused(x):  # exactly the two plain modules
            return F.elu(super().forward(x), self._abn_alpha, inplace=self._abn_inplace)
        self.num_batches_tracked.add_(1)
        momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return _InPlaceABN.apply(x, self.weight, self.bias, self.running_mean, self.running_var,
                                 momentum, self.eps, self._abn_alpha)


class InPlaceABN1d(InPlaceABN, nn.BatchNorm1d):
    pass


class InPlaceABN2d(InPlaceABN, nn.BatchNorm2d):
    pass


class InPlaceABN3d(InPlaceABN, nn.BatchNorm3d):
    pass


class AppliedELU(nn.ELU):
    """An ELU whose work the preceding ``InPlaceABN`` does: passes its input through."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


_FUSED = {nn.BatchNorm1d: InPlaceABN1d, nn.BatchNorm2d: InPlaceABN2d, nn.BatchNorm3d: InPlaceABN3d}
_PLAIN = {v: k for k, v in _FUSED.items()}


def _norm_act_pairs(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(BatchNorm, ELU) pairs where the ELU reads the BatchNorm output and nothing else does:
    consecutive children of an ``nn.Sequential``, and modules that declare the pair in
    ``norm_act_pair`` (attribute names; None where their forward puts work in between)."""
    pairs = []
    for m in model.modules():
        if isinstance(m, nn.Sequential):
            kids = list(m)
            pairs += list(zip(kids[:-1], kids[1:]))
        names = getattr(m, "norm_act_pair", None)
        if names is not None:
            pairs.append((getattr(m, names[0]), getattr(m, names[1])))
    return [(n, a) for n, a in pairs
            if type(n) in _FUSED and type(a) is nn.ELU]


def use_inplace_abn(model: nn.Module, enable: bool = True) -> nn.Module:
    """Fuse every eligible (BatchNorm, ELU) pair of ``model`` into an in-place activated
    BatchNorm (``enable=False`` undoes it); in place, returns ``model``."""
    if enable:
        for norm, act in _norm_act_pairs(model):
            norm.__class__ = _FUSED[type(norm)]
            norm._abn_alpha, norm._abn_inplace = float(act.alpha), bool(act.inplace)
            act.__class__ = AppliedELU
        return model
    for m in model.modules():
        if type(m) in _PLAIN:
            m.__class__ = _PLAIN[type(m)]
            del m._abn_alpha, m._abn_inplace
        elif type(m) is AppliedELU:
            m.__class__ = nn.ELU
    return model


def conv_parts(conv: nn.Module, parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """``conv(torch.cat(parts, 1))`` without the concatenation: one convolution per part with
    its slice of the weight, summed (the bias added once). Same parameters and gradients up to
    float summation order. The weight is cut with one ``split`` (its backward is one
    concatenation of the slices' gradients; indexing each slice instead cost a zero-filled
    full-size gradient, a copy and an add per slice: at 4 mm 3 fills + 14 copies of the
    128-channel level's weights per step, profiled)."""
    sizes = [part.shape[1] for part in parts]
    if sum(sizes) != conv.in_channels:
        raise ValueError(f"parts have {sum(sizes)} channels, the convolution takes {conv.in_channels}")
    out = None
    for i, (part, w) in enumerate(zip(parts, torch.split(conv.weight, sizes, dim=1))):
        y = conv._conv_forward(part, w, conv.bias if i == 0 else None)
        out = y if out is None else out.add_(y)
    return out


class SplitConcatFusion(FusionResidualUnit):
    """A Table SI decoder level that never builds its concatenated input: the first conv reads
    the maps one by one (``conv_parts``); same parameters and state_dict keys."""

    def forward(self, up: torch.Tensor, parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
        first = self.convs[0]  # conv -> norm -> ELU
        x = first[2](first[1](conv_parts(first[0], (up, *parts))))
        return self.act(self.convs[1:](x) + up)


def set_split_concat(model: nn.Module, enable: bool = True) -> nn.Module:
    """Every Table SI decoder level of ``model`` reads its horizontal connection as separate
    inputs (module docstring; ``enable=False`` undoes it); in place, returns ``model``."""
    for m in model.modules():
        if enable and type(m) is FusionResidualUnit:
            m.__class__ = SplitConcatFusion
        elif not enable and type(m) is SplitConcatFusion:
            m.__class__ = FusionResidualUnit
    return model


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
TRIM_THRESHOLD_MB = 256  # heap top kept before it is given back (glibc's default is 128 KB once fixed)


def set_mmap_threshold(mb: float) -> bool:
    """Fix glibc's mmap threshold at ``mb`` MB (module docstring) and its trim threshold at
    TRIM_THRESHOLD_MB; True where they were set. Fixing the mmap threshold also ends glibc's
    dynamic trim threshold, which then falls to 128 KB: the heap is given back to the system
    after nearly every step and faulted in again, which made a 4 mm step 8 % slower with a 16 MB
    threshold (0.40 -> 0.43 s, Intel Xeon AVX-512, 2 threads); with the trim threshold at 256 MB
    it was 0.40 s again. Maps of at least ``mb`` MB are returned when freed either way."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        ok = bool(libc is not None and libc.mallopt(M_MMAP_THRESHOLD, int(mb * 2**20))
                  and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_MB * 2**20))
    except (OSError, AttributeError):  # not glibc: no mallopt
        ok = False
    if not ok:
        log.info("malloc mmap threshold not set (needs glibc)")
    return ok
