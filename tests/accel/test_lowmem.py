"""The memory options keep the network's function: in-place activated BatchNorm and split
decoder concatenations give the same forward pass, gradients equal up to float rounding, the
same BatchNorm statistics and state_dict, and keep fewer bytes for the backward pass."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.network_cases import CASES as FORWARD_CASES
from tests.synthetic import make_cases, neural_method
from torch import nn

from chmfl.accel.lowmem import (
    AppliedELU,
    InPlaceABN,
    SplitConcatFusion,
    conv_parts,
    set_split_concat,
    use_inplace_abn,
)
from chmfl.accel.options import NO_SPEED_OPTIONS
from chmfl.models import build_model

SMALL = {"widths": (4, 8, 16, 32, 64), "decoder_convs": (2, 2, 2, 2), "decoder_kernel": 3}


def _step(net: nn.Module, pet, ct, mask, labels):
    """One forward + Eq. (1)-like loss + backward; returns outputs and the saved bytes."""
    saved: dict[int, int] = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    torch.manual_seed(7)  # the same dropout masks
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net(pet, ct)
        loss = F.cross_entropy(out.logits, labels) + F.cross_entropy(out.seg_logits, mask)
    loss.backward()
    return out, sum(saved.values())


def _inputs(shape=(24, 24, 24), batch=2):
    gen = torch.Generator().manual_seed(0)
    pet, ct = (torch.randn(batch, 1, *shape, generator=gen) for _ in range(2))
    mask = (torch.rand(batch, *shape, generator=gen) > 0.7).long()
    return pet, ct, mask, torch.tensor([0, 1])[:batch]


def _compare(ref: nn.Module, net: nn.Module, inputs, rtol=1e-4):
    """Same outputs and BatchNorm buffers; gradients within ``rtol`` of their norm."""
    a, bytes_ref = _step(ref, *inputs)
    b, bytes_net = _step(net, *inputs)
    torch.testing.assert_close(b.logits, a.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.seg_logits, a.seg_logits, rtol=1e-5, atol=1e-5)
    for (name, x), (_, y) in zip(ref.named_buffers(), net.named_buffers()):
        torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-6, msg=name)
    scale = max(float(p.grad.norm()) for p in ref.parameters())
    for (name, p), (_, q) in zip(ref.named_parameters(), net.named_parameters()):
        # biases right before a BatchNorm have a true gradient of 0 (rounding noise only)
        err = float((p.grad - q.grad).norm())
        assert err <= rtol * float(p.grad.norm()) + 1e-6 * scale, name
    return bytes_ref, bytes_net


def test_inplace_abn_same_function_fewer_saved_bytes():
    torch.manual_seed(0)
    ref = build_model("chmfl", **SMALL).train()
    net = use_inplace_abn(copy.deepcopy(ref))
    fused = [m for m in net.modules() if isinstance(m, InPlaceABN)]
    bns = [m for m in ref.modules() if isinstance(m, nn.BatchNorm3d)]
    assert len(fused) == len(bns) == 23  # every BatchNorm of CHMFL is followed by an ELU
    assert sum(type(m) is AppliedELU for m in net.modules()) == len(fused)
    assert list(net.state_dict()) == list(ref.state_dict())
    bytes_ref, bytes_net = _compare(ref, net, _inputs())
    assert bytes_net < 0.7 * bytes_ref, (bytes_net, bytes_ref)
    use_inplace_abn(net, enable=False)
    assert [type(m) for m in net.modules()] == [type(m) for m in ref.modules()]


def test_split_concat_same_function_fewer_saved_bytes():
    torch.manual_seed(0)
    ref = build_model("chmfl", **SMALL).train()
    net = set_split_concat(copy.deepcopy(ref))  # each comparison starts from equal copies
    assert sum(type(m) is SplitConcatFusion for m in net.modules()) == 4  # every decoder level
    inputs = _inputs()
    bytes_ref, bytes_net = _compare(ref, net, inputs)
    # at least the full-size copy of the PET and CT maps inside the concatenation is not kept
    copy_bytes = 2 * SMALL["widths"][0] * inputs[0].numel() * 4
    assert bytes_ref - bytes_net >= copy_bytes, (bytes_net, bytes_ref)
    fresh = build_model("chmfl", **SMALL).train()
    both = use_inplace_abn(set_split_concat(copy.deepcopy(fresh)))
    _, bytes_both = _compare(fresh, both, _inputs())
    assert bytes_both < bytes_net


def test_split_concat_leaves_vnet_style_decoder_concatenated():
    net = set_split_concat(build_model("chmfl", decoder_style="vnet", widths=(4, 8, 16, 32, 64),
                                       decoder_convs=(1, 1, 1, 1), decoder_kernel=3))
    # its residual units add the concatenation to their output: none is swapped
    assert not any(type(m) is SplitConcatFusion for m in net.modules())
    out = net(*_inputs((16, 16, 16))[:2])
    assert out.seg_logits.shape == (2, 2, 16, 16, 16)


def test_fused_batchnorm_falls_back_exactly():
    """Eval mode, no autograd, float64 and a near-zero BatchNorm weight take the plain path."""
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv3d(2, 3, 3, padding=1), nn.BatchNorm3d(3, momentum=None), nn.ELU())
    fused = use_inplace_abn(copy.deepcopy(block))
    assert isinstance(fused[1], InPlaceABN)
    x = torch.randn(2, 2, 5, 6, 7)
    for _ in range(2):  # cumulative averages (momentum None) advance as nn.BatchNorm's
        torch.testing.assert_close(fused(x), block(x))
    torch.testing.assert_close(fused[1].running_var, block[1].running_var)
    assert int(fused[1].num_batches_tracked) == int(block[1].num_batches_tracked) == 2
    with torch.no_grad():
        torch.testing.assert_close(fused(x), block(x))
    fused.eval(), block.eval()
    torch.testing.assert_close(fused(x), block(x))
    fused.train(), block.train()
    with torch.no_grad():
        fused[1].weight[1] = block[1].weight[1] = 1e-4  # |gamma| too small to invert the norm
    xr = x.clone().requires_grad_(True)
    fused(xr).sum().backward()
    g = xr.grad.clone()
    xr.grad = None
    block(xr).sum().backward()
    torch.testing.assert_close(g, xr.grad, rtol=0, atol=0)


def test_inverse_elu_saturated_voxels_stay_finite():
    """Inputs far below the ELU's knee (exp underflows in float32) must not give inf/NaN."""
    torch.manual_seed(0)
    bn = nn.BatchNorm3d(2)
    with torch.no_grad():
        bn.bias[:] = torch.tensor([-30.0, 0.0])  # channel 0: every ELU output rounds to -1
    block = nn.Sequential(bn, nn.ELU())
    fused = use_inplace_abn(copy.deepcopy(block))
    x = torch.randn(2, 2, 4, 4, 4, requires_grad=True)
    w = torch.randn(2, 2, 4, 4, 4)
    (fused(x) * w).sum().backward()
    g_fused = x.grad.clone()
    x.grad = None
    (block(x) * w).sum().backward()
    assert torch.isfinite(g_fused).all()
    torch.testing.assert_close(g_fused[:, 1], x.grad[:, 1], rtol=1e-4, atol=1e-6)
    assert torch.isfinite(fused[0].weight.grad).all()


def test_conv_parts_equals_conv_of_concatenation():
    torch.manual_seed(0)
    conv = nn.Conv3d(7, 3, 3, padding=1)
    parts = [torch.randn(2, c, 5, 5, 5, requires_grad=True) for c in (2, 4, 1)]
    want = conv(torch.cat(parts, 1))
    torch.testing.assert_close(conv_parts(conv, parts), want)
    with pytest.raises(ValueError, match="7"):
        conv_parts(conv, parts[:2])


def test_training_with_memory_options_keeps_the_result():
    cases = make_cases(4, shape=(16, 16, 32))
    tiny = {"widths": (4, 8, 16, 32, 64), "decoder_convs": (1, 1, 1, 1), "decoder_kernel": 3}
    train = {"epochs": 2, "batch_size": 2, "precision": "32", "patience": 50}

    def fit(**extra):
        # the plain step (no speed option; they are on by default) plus ``extra``
        return neural_method("chmfl", "chmfl", tiny, {**train, **NO_SPEED_OPTIONS, **extra}, seed=3,
                             progress=False).fit(cases)

    ref = fit()
    low = fit(inplace_abn=True, split_concat=True)
    np.testing.assert_allclose(low.predict_proba(cases), ref.predict_proba(cases), atol=2e-3)
    np.testing.assert_allclose([h["loss"] for h in low.history_], [h["loss"] for h in ref.history_],
                               rtol=1e-5)
    net = low.network_
    assert not any(isinstance(m, InPlaceABN) or type(m) is AppliedELU for m in net.modules())
    # undone after fit: prediction runs the plain network
    assert not any(type(m) is SplitConcatFusion for m in net.modules())


def test_mmap_threshold_is_set_on_glibc():
    code = "from chmfl.accel.lowmem import set_mmap_threshold; print(set_mmap_threshold(1))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    libc = __import__("platform").libc_ver()[0]
    assert out.stdout.strip() == ("True" if libc == "glibc" else "False")


@pytest.mark.parametrize("name,options", [c[:2] for c in FORWARD_CASES], ids=[c[0] for c in FORWARD_CASES])
def test_every_network_trains_alike_with_all_speed_options(name, options):
    """``--speed-options`` on every network: same loss, gradients equal up to float rounding,
    and the plain modules (classes, in-place flags) back after ``accel.options.remove``."""
    from chmfl.accel.options import SPEED_OPTIONS, SpeedOptions, apply, remove
    from chmfl.models.losses import chmfl_loss

    torch.manual_seed(0)
    ref = build_model(name, **options).train()
    net = apply(copy.deepcopy(ref), SpeedOptions(**SPEED_OPTIONS, mmap_threshold_mb=0.0))
    pet, ct, mask = _inputs((16, 16, 24))[:3]
    mask = mask[:, None].float()  # (B, 1, D, H, W) as the networks take it
    feats = torch.randn(2, ref.n_features) if ref.n_features else None
    losses = []
    for m in (ref, net):
        torch.manual_seed(3)
        out = m(pet, ct, mask=mask, features=feats)
        loss, _ = chmfl_loss(out, torch.tensor([0, 1]), mask, w=0.5)
        loss.backward()
        losses.append(float(loss.detach()))
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    scale = max(float(p.grad.norm()) for p in ref.parameters() if p.grad is not None)
    for (pname, p), (_, q) in zip(ref.named_parameters(), net.named_parameters()):
        if p.grad is None:
            assert q.grad is None, pname
            continue
        # channels_last alone moves a 1-channel conv's weight gradient by ~4e-4 (oneDNN's
        # summation order); every other option by <= 5e-5
        assert float((p.grad - q.grad).norm()) <= 2e-3 * float(p.grad.norm()) + 1e-5 * scale, pname
    remove(net)
    assert [type(m) for m in net.modules()] == [type(m) for m in ref.modules()]
    assert [getattr(m, "inplace", None) for m in net.modules()] == [getattr(m, "inplace", None) for m in ref.modules()]
