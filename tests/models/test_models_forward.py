"""Every network: one forward + backward on tiny boxes, shapes, finite values, and gradients
reaching each input branch and the decoder."""

from __future__ import annotations

import pytest
import torch
from tests.network_cases import CASES, CHEAP_DECODER, SIZE
from torch import nn

from chmfl.errors import ChmflError
from chmfl.models import MODELS, build_model
from chmfl.models.losses import chmfl_loss


def _inputs(size=SIZE, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    pet = torch.randn(batch, 1, *size, generator=g)
    ct = torch.randn(batch, 1, *size, generator=g)
    mask = (torch.rand(batch, 1, *size, generator=g) > 0.7).float()
    return pet, ct, mask


@pytest.mark.parametrize("name,options,grad_params", CASES, ids=[c[0] for c in CASES])
def test_forward_backward(name, options, grad_params):
    torch.manual_seed(0)
    net = build_model(name, **options)
    pet, ct, mask = _inputs()
    feats = torch.randn(2, net.n_features) if net.n_features else None
    out = net(pet, ct, mask=mask, features=feats)
    assert out.logits.shape == (2, 2) and torch.isfinite(out.logits).all()
    assert out.features is not None and out.features.shape[0] == 2 and torch.isfinite(out.features).all()
    assert (out.seg_logits is not None) == net.segments
    if net.segments:
        k = out.seg_slices[1] - out.seg_slices[0] if out.seg_slices else SIZE[0]
        assert out.seg_logits.shape == (2, 2, k, *SIZE[1:])
        assert torch.isfinite(out.seg_logits).all()
    assert (out.seg_slices is not None) == (net.is_2d and net.segments)
    loss, parts = chmfl_loss(out, torch.tensor([0, 1]), mask, w=0.5)
    loss.backward()
    params = dict(net.named_parameters())
    for p in params.values():
        assert p.grad is None or torch.isfinite(p.grad).all()
    for key in grad_params:
        assert params[key].grad is not None and params[key].grad.abs().sum() > 0, key


def test_every_registered_network_is_tested_or_slow():
    tested = {c[0] for c in CASES} | {"chmfl-resnet34", "chmfl-resnet50", "resnet34-petct", "resnet50-petct"}
    assert tested == set(MODELS)
    for cls in MODELS.values():
        for attr in ("segments", "needs_mask", "uses_handcrafted", "n_features", "is_2d"):
            assert hasattr(cls, attr), (cls, attr)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["chmfl-resnet34", "chmfl-resnet50", "resnet34-petct", "resnet50-petct"])
def test_forward_backward_big_resnets(name):
    net = build_model(name)
    pet, ct, mask = _inputs((16, 32, 32))
    out = net(pet, ct, mask=mask)
    loss, _ = chmfl_loss(out, torch.tensor([0, 1]), mask)
    loss.backward()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", ["chmfl", "mask-hmfl", "cnn3d", "3dmcl", "vnet"])
def test_four_mm_box_not_divisible_by_16(name):
    """CPU work uses 4 mm voxels: a 28 x 28 x 36 box; decoders pad/crop to the skip sizes."""
    net = build_model(name).eval()  # default options, forward only
    pet, ct, mask = _inputs((28, 28, 36), batch=1)
    with torch.no_grad():
        out = net(pet, ct, mask=mask)
    assert out.logits.shape == (1, 2)
    if net.segments:
        assert out.seg_logits.shape == (1, 2, 28, 28, 36)


def test_chmfl_trains_with_batch_one_at_4mm():
    """Batch 1 (the paper's) in training mode: BatchNorm still sees >1 value at 1 x 1 x 2."""
    net = build_model("chmfl", **CHEAP_DECODER).train()
    pet, ct, mask = _inputs((28, 28, 36), batch=1)
    loss, _ = chmfl_loss(net(pet, ct), torch.tensor([1]), mask)
    loss.backward()
    assert torch.isfinite(loss)


def test_bf16_autocast_cpu():
    # narrow widths: this CPU has no native bf16, so full-width bf16 convolutions are slow
    net = build_model("chmfl", widths=(4, 8, 16, 32, 64), **CHEAP_DECODER)
    pet, ct, mask = _inputs()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = net(pet, ct)
        loss, _ = chmfl_loss(out, torch.tensor([0, 1]), mask)
    loss.backward()
    assert out.seg_logits.dtype == torch.bfloat16
    assert torch.isfinite(loss) and net.pet_encoder.input_transition.conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("norm,groups", [("group4", 4), ("group8", 2), ("group16", 1)])
def test_group_norm_variants_have_no_batchnorm(norm, groups):
    with torch.device("meta"):
        net = build_model("chmfl", norm=norm)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    first = net.pet_encoder.input_transition.norm  # 16 channels, `norm` channels per group
    assert isinstance(first, nn.GroupNorm) and first.num_groups == groups
    assert net.decoder.res4.convs[0][1].num_groups == 16 // int(norm[5:])  # Table SI width 16


def test_he_initialisation():
    torch.manual_seed(0)
    w = build_model("chmfl", **CHEAP_DECODER).pet_encoder.input_transition.conv.weight.detach()
    assert abs(float(w.std()) - (2 / 125) ** 0.5) < 0.015  # fan_in = 1 * 5^3


def test_ablations_differ_as_the_paper_says():
    with torch.device("meta"):
        chmfl, cfl, mask = build_model("chmfl"), build_model("cfl"), build_model("mask-hmfl")
    assert chmfl.classifier.layers[0].in_features == 2 * (16 + 32 + 64 + 128 + 256)
    assert cfl.classifier.layers[0].in_features == 512  # deepest fused map only
    assert mask.decoder is None and mask.needs_mask and not mask.segments
    assert mask.pet_encoder.input_transition.conv.in_channels == 2


def test_bad_inputs_are_one_line_errors():
    pet, ct, mask = _inputs()
    with pytest.raises(ChmflError, match="mask"):
        build_model("mask-hmfl")(pet, ct)
    with pytest.raises(ChmflError, match="7 handcrafted"):
        build_model("3dmcl", n_features=7)(pet, ct, mask=mask, features=torch.zeros(2, 3))
    with pytest.raises(ChmflError, match="below 16"):
        build_model("chmfl", **CHEAP_DECODER)(*_inputs((8, 16, 16))[:2])
    with pytest.raises(ChmflError, match="no option"):
        build_model("chmfl", depth=3)
    with pytest.raises(ChmflError, match="norm"):
        build_model("chmfl", norm="layer")
    with pytest.raises(ChmflError, match="modality"):
        build_model("cnn3d", modality="mri")
    with pytest.raises(ChmflError, match="slices"):
        build_model("cnn2d", n_slices=20)(*_inputs()[:2])
