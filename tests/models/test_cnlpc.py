"""CNLPC is hn_cnn's network (Diamant et al. 2019 as Mateus et al. 2023 re-implement it).

The expected sizes and parameter counts below are worked out by hand from the published
description (conv 3x3 s1 + max pool 3x3 s1, conv 3x3 s2 + max pool 3x3 s2, conv 4x4 s3 +
max pool 4x4 s3, 8 / 16 / 32 filters, no padding, FC 512-128-64-32-1), never from chmfl's
code: out = floor((in - kernel) / stride) + 1.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from chmfl.errors import ChmflError
from chmfl.models import build_model

# 180 -> conv 3/1: 178 -> pool 3/1: 176 -> conv 3/2: floor(173/2)+1 = 87 -> pool 3/2: floor(84/2)+1 = 43
# -> conv 4/3: floor(39/3)+1 = 14 -> pool 4/3: floor(10/3)+1 = 4; 32 x 4 x 4 = 512 features
SOURCE_SIZES = {
    "cv1": (8, 178, 178), "mxp1": (8, 176, 176),
    "cv2": (16, 87, 87), "mxp2": (16, 43, 43),
    "cv3": (32, 14, 14), "mxp3": (32, 4, 4),
    "ln1": (128,), "ln2": (64,), "ln3": (32,), "ln4": (1,),
}
# weights + biases: conv k*k*c_in*c_out + c_out; linear in*out + out
SOURCE_PARAMS = {
    "cv1": 3 * 3 * 1 * 8 + 8,  # 80
    "cv2": 3 * 3 * 8 * 16 + 16,  # 1,168
    "cv3": 4 * 4 * 16 * 32 + 32,  # 8,224
    "ln1": 512 * 128 + 128,  # 65,664
    "ln2": 128 * 64 + 64,  # 8,256
    "ln3": 64 * 32 + 32,  # 2,080
    "ln4": 32 * 1 + 1,  # 33
}


def _box(batch=2, depth=1, size=180, hu=100.0):
    ct = torch.full((batch, 1, depth, size, size), hu)
    mask = torch.ones_like(ct)
    return ct, mask


def test_layer_output_sizes_and_parameters_are_the_sources():
    net = build_model("cnlpc").eval()
    seen = {}
    def hook(name):
        def record(module, inputs, output):
            seen[name] = tuple(output.shape[1:])
        return record

    for name in SOURCE_SIZES:
        getattr(net, name).register_forward_hook(hook(name))
    ct, mask = _box()
    net(None, ct, mask=mask)
    assert seen == SOURCE_SIZES
    assert 32 * 4 * 4 == 512 == net.ln1.in_features
    for name, count in SOURCE_PARAMS.items():
        assert sum(p.numel() for p in getattr(net, name).parameters()) == count, name
    assert sum(p.numel() for p in net.parameters()) == sum(SOURCE_PARAMS.values()) == 85_505


def test_layers_are_the_sources_kinds():
    net = build_model("cnlpc")
    assert [(c.kernel_size, c.stride, c.padding) for c in (net.cv1, net.cv2, net.cv3)] == [
        ((3, 3), (1, 1), (0, 0)), ((3, 3), (2, 2), (0, 0)), ((4, 4), (3, 3), (0, 0))]
    assert [(p.kernel_size, p.stride) for p in (net.mxp1, net.mxp2, net.mxp3)] == [(3, 1), (3, 2), (4, 3)]
    assert [d.p for d in (net.dp1, net.dp2, net.dp3)] == [0.3, 0.2, 0.1]
    assert isinstance(net.lr, torch.nn.LeakyReLU) and net.lr.negative_slope == 0.01
    assert net.needs_mask and net.raw_inputs and not net.segments


def test_sigmoid_output_as_two_logits():
    """logits [0, z]: softmax gives sigmoid(z), cross-entropy equals binary cross-entropy."""
    net = build_model("cnlpc").eval()
    ct, mask = _box(batch=3)
    ct[1] = 250.0
    out = net(None, ct, mask=mask)
    z = out.logits[:, 1]
    assert torch.equal(out.logits[:, 0], torch.zeros(3))
    torch.testing.assert_close(torch.softmax(out.logits, 1)[:, 1], torch.sigmoid(z))
    y = torch.tensor([0, 1, 1])
    torch.testing.assert_close(F.cross_entropy(out.logits, y),
                               F.binary_cross_entropy(torch.sigmoid(z), y.float()))


def test_input_image_is_the_sources_preprocessing():
    """Largest in-window tumour slice; (HU + 50) / 350 inside (-50, 300], 0 outside the window
    and the tumour; 1 mm pixels centred in 180 x 180."""
    net = build_model("cnlpc")
    ct = torch.full((1, 1, 3, 4, 4), 100.0)
    mask = torch.zeros_like(ct)
    mask[0, 0, 0] = 1  # slice 0: 16 tumour pixels, but 12 of them above the window
    ct[0, 0, 0, 1:] = 400.0
    mask[0, 0, 2, :2] = 1  # slice 2: 8 tumour pixels, all in the window -> chosen
    ct[0, 0, 2, 0, 0], ct[0, 0, 2, 0, 1] = -50.0, 300.0  # window edges: -50 -> 0, 300 -> 1
    assert int(net.tumour_slice(ct, mask)) == 2
    img = net.image(None, ct, mask)
    assert img.shape == (1, 1, 180, 180)
    inner = img[0, 0, 88:92, 88:92]  # the 4 x 4 slice, centred
    assert float(inner[0, 0]) == 0.0 and float(inner[0, 1]) == 1.0
    torch.testing.assert_close(inner[1, 2], torch.tensor(150 / 350))
    assert float(inner[2:].abs().sum()) == 0.0  # outside the tumour
    assert float(img.sum()) == pytest.approx(float(inner.sum()))


def test_four_mm_slice_is_resampled_to_1mm_not_stretched():
    """A 28 x 28 slice of 4 mm pixels becomes 112 x 112 pixels of 1 mm inside 180 x 180."""
    net = build_model("cnlpc", input_mm=4.0)
    ct, mask = _box(batch=1, depth=3, size=28, hu=125.0)
    img = net.image(None, ct, mask)[0, 0]
    rows = img.abs().sum(1).nonzero().flatten()
    assert img.shape == (180, 180) and len(rows) == 112 and int(rows[0]) == 34
    torch.testing.assert_close(img[90, 90], torch.tensor(0.5))


def test_petct_variant_adds_the_pet_slice_as_a_channel():
    net = build_model("cnlpc", modality="petct")
    ct, mask = _box(batch=1, size=20)
    pet = torch.full_like(ct, 5.0)
    img = net.image(pet, ct, mask)
    assert img.shape == (1, 2, 180, 180) and net.cv1.in_channels == 2
    assert float(img[0, 0, 90, 90]) == pytest.approx(0.5)  # SUV 5 / 10
    with pytest.raises(ChmflError, match="needs PET"):
        net(None, ct, mask=mask)


def test_mask_is_required():
    ct, _ = _box(batch=1, size=20)
    with pytest.raises(ChmflError, match="mask"):
        build_model("cnlpc")(None, ct)
