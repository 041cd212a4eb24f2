"""Speed options that leave a network's arithmetic unchanged (same function, same weights,
same state_dict; only the floating-point summation order of the weight gradients differs).

``use_gemm_wgrad(model)``: 3D convolutions with stride 1 compute their weight gradient as
large matrix products instead of oneDNN's backward-weights kernel. On AVX2-only CPUs oneDNN
runs that kernel as im2col + small GEMMs at a fraction of the forward rate (e.g. 20 vs 70
GFLOP/s for 48 -> 16 channels, 5x5x5), and it is a third of a training step's FLOPs.

The trick: pad the input once and lay it out channels-last as a (rows, C_in) matrix; pad the
output gradient to the same grid. A kernel offset (a, b, c) then pairs row r of the output
gradient with row r + a*Hp*Wp + b*Wp + c of the input, so each offset's weight gradient is
one GEMM between two plain row ranges of these matrices, with no im2col copy (measured 2-3x
oneDNN's rate for this network's layers; docs/performance.md).

``set_inplace_activations(model)``: ELUs overwrite their input (the normalisation output,
which nothing else reads), saving one full-size activation per conv block in training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ROWS = 8192  # rows per GEMM: long enough to amortise the call, short enough to stay in cache


def conv3d_weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kernel: tuple[int, int, int],
                       padding: tuple[int, int, int], rows: int = ROWS) -> torch.Tensor:
    """Weight gradient (C_out, C_in, kd, kh, kw) of a stride-1, dilation-1, ungrouped conv3d
    with zero ``padding``; ``x``: (B, C_in, D, H, W) input, ``grad_out``: (B, C_out, Do, Ho, Wo)."""
    pd, ph, pw = padding
    cin, cout = x.shape[1], grad_out.shape[1]
    xp = F.pad(x, (pw, pw, ph, ph, pd, pd)).permute(0, 2, 3, 4, 1).contiguous()  # (B, Dp, Hp, Wp, Cin)
    _, dp, hp, wp, _ = xp.shape
    do, ho, wo = grad_out.shape[2:]
    gp = F.pad(grad_out, (0, wp - wo, 0, hp - ho, 0, dp - do)).permute(0, 2, 3, 4, 1).contiguous()
    xf, gf = xp.view(-1, cin), gp.view(-1, cout)  # (N, Cin), (N, Cout) on the same padded grid
    kd, kh, kw = kernel
    n = ((gp.shape[0] - 1) * dp + do - 1) * hp * wp + (ho - 1) * wp + wo  # rows up to the last output
    acc = x.new_zeros(kd, kh, kw, cout, cin)
    for s in range(0, n, rows):
        m = min(rows, n - s)
        g = gf[s: s + m].t().expand(kw, cout, m)  # (kw, Cout, m): the same rows for each c
        for a in range(kd):
            for b in range(kh):
                start = xf.storage_offset() + (s + a * hp * wp + b * wp) * cin
                win = xf.as_strided((kw, m, cin), (cin, cin, 1), start)  # rows shifted by c = 0..kw-1
                acc[a, b].baddbmm_(g, win)  # (kw, Cout, Cin)
    return acc.permute(3, 4, 0, 1, 2).contiguous()


def _native_is_slow(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """True where PyTorch's CPU backend choice (``ConvParams::use_mkldnn``) sends a stride-1
    fp32 conv3d to its unblocked reference kernel: batch 1, kernel <= 3 in H or W, and
    N*C*D*H <= 20480 -- a 2D-minded size rule that ignores W (e.g. 8 channels at 36x28x28).
    The reference kernel ran those 3-5x slower than oneDNN here (docs/performance.md)."""
    return (x.shape[0] == 1 and not (weight.shape[-1] > 3 and weight.shape[-2] > 3)
            and x.shape[0] * x.shape[1] * x.shape[2] * x.shape[3] <= 20480
            and torch.backends.mkldnn.is_available())


def _gemm_wgrad_pays(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Where the GEMM weight gradient beats oneDNN's (measured per shape, 2 threads, AVX2,
    channels-last, GFLOP/s GEMM vs oneDNN; docs/performance.md). 5x5x5-class kernels: on large
    maps (>= 100k voxels x batch; 16 -> 16 at 72x56x56: 58 vs 43; 16 -> 2 at 1 mm: 12 vs 5) or
    wide layers on medium maps (64 -> 64 at 36x28x28: 75 vs 63), not on small ones (16 -> 16
    at 36x28x28: 51 vs 67; 128 -> 128 at 18x14x14: 49 vs 66). 3x3x3 kernels: only on large
    maps with >= 16 input channels (48 -> 16 at 1 mm: 42 vs 31; 8 -> 8 at 4 x 36x28x28: 7 vs 29)."""
    voxels = x.shape[0] * x.shape[2] * x.shape[3] * x.shape[4]
    if weight.shape[-1] <= 3 or weight.shape[-2] <= 3:
        return voxels >= 200_000 and weight.shape[1] >= 16
    return voxels >= 100_000 or (weight.shape[0] * weight.shape[1] >= 4096 and voxels >= 20_000)


def _conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
            padding: tuple[int, int, int], onednn: bool) -> torch.Tensor:
    """``F.conv3d`` (stride 1); ``onednn``: through oneDNN, where PyTorch would pick its slow
    kernel (``_native_is_slow``)."""
    if onednn:
        return torch.ops.aten.mkldnn_convolution(x, weight, bias, list(padding), [1, 1, 1], [1, 1, 1], 1)
    return F.conv3d(x, weight, bias, padding=padding)


def _conv3d_input_grad(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                       padding: tuple[int, int, int], onednn: bool) -> torch.Tensor:
    """Input gradient of a stride-1 conv3d; ``onednn`` (where PyTorch would use its slow
    kernel): the equivalent forward conv of ``grad_out`` with the flipped, transposed weight
    through oneDNN (padding k - 1 - p gives back the input's size)."""
    pad = [k - 1 - p for k, p in zip(weight.shape[2:], padding)]
    if onednn and min(pad) >= 0:
        fmt = (torch.channels_last_3d if grad_out.is_contiguous(memory_format=torch.channels_last_3d)
               and not grad_out.is_contiguous() else torch.contiguous_format)
        wt = weight.transpose(0, 1).flip((2, 3, 4)).contiguous(memory_format=fmt)  # (C_in, C_out, k...)
        return torch.ops.aten.mkldnn_convolution(grad_out, wt, None, pad, [1, 1, 1], [1, 1, 1], 1)
    return torch.ops.aten.convolution_backward(
        grad_out, x, weight, None, [1, 1, 1], list(padding), [1, 1, 1], False,
        [0, 0, 0], 1, [True, False, False])[0]


class _GemmWgradConv3d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, padding, onednn):
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.has_bias, ctx.onednn = padding, bias is not None, onednn
        return _conv3d(x, weight, bias, padding, onednn)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _conv3d_input_grad(grad_out, x, weight, ctx.padding, ctx.onednn)
        if ctx.needs_input_grad[1]:
            grad_w = conv3d_weight_grad(x, grad_out, tuple(weight.shape[2:]), ctx.padding)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3, 4))
        return grad_x, grad_w, grad_b, None, None


class GemmWgradConv3d(nn.Conv3d):
    """``nn.Conv3d`` whose weight gradient runs as large GEMMs (module docstring); same
    parameters and state_dict. Falls back to the plain convolution outside fp32 CPU training
    and on shapes where oneDNN's weight gradient is faster (``_gemm_wgrad_pays``); layers that
    PyTorch would send to its slow reference kernel always take this path (oneDNN forward and
    input gradient, ``_native_is_slow``)."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
        if (not torch.is_grad_enabled() or not weight.requires_grad or x.dtype != torch.float32
                or torch.is_autocast_enabled("cpu") or x.device.type != "cpu"):
            return super()._conv_forward(x, weight, bias)
        onednn = _native_is_slow(x, weight)
        if not (onednn or _gemm_wgrad_pays(x, weight)):
            return super()._conv_forward(x, weight, bias)
        return _GemmWgradConv3d.apply(x, weight, bias, tuple(self.padding), onednn)


MIN_IN_CHANNELS = 8  # below, each GEMM is a matrix-vector product: oneDNN is faster (1 -> 16: 10x)


def _eligible(m: nn.Module) -> bool:
    return (type(m) is nn.Conv3d and m.stride == (1, 1, 1) and m.dilation == (1, 1, 1)
            and m.groups == 1 and m.padding_mode == "zeros" and not isinstance(m.padding, str)
            and max(m.kernel_size) > 1 and m.in_channels >= MIN_IN_CHANNELS)


def use_gemm_wgrad(model: nn.Module, enable: bool = True) -> nn.Module:
    """Switch every eligible ``nn.Conv3d`` of ``model`` (stride 1, ungrouped, kernel > 1, at
    least 8 input channels) to ``GemmWgradConv3d`` (``enable=False`` switches back); in place,
    returns ``model``."""
    for m in model.modules():
        if enable and _eligible(m):
            m.__class__ = GemmWgradConv3d
        elif not enable and type(m) is GemmWgradConv3d:
            m.__class__ = nn.Conv3d
    return model


def set_inplace_activations(model: nn.Module, enable: bool = True) -> nn.Module:
    """ELU modules of ``model`` compute in place; ``enable=False`` undoes it (each ELU gets
    back the flag it had, e.g. MONAI's V-Net builds some in place). Autograd refuses any use
    where the overwritten input is still needed, so this is safe to try."""
    for m in model.modules():
        if isinstance(m, nn.ELU):
            if enable:
                m.__dict__.setdefault("_inplace_before", m.inplace)
                m.inplace = True
            else:
                m.inplace = m.__dict__.pop("_inplace_before", m.inplace)
    return model
