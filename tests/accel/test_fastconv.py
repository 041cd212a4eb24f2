"""The speed options keep the arithmetic: GEMM weight gradients equal oneDNN's, in-place ELUs
and channels_last give the same training and prediction, the decoder-free prediction gives the
same probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.synthetic import make_cases, neural_method
from torch import nn

from chmfl.accel.fastconv import GemmWgradConv3d, conv3d_weight_grad, use_gemm_wgrad
from chmfl.accel.options import NO_SPEED_OPTIONS
from chmfl.data.tensors import stack_cases
from chmfl.methods.inference import predict_network
from chmfl.models import build_model

TINY = {"widths": (4, 8, 16, 32, 64), "decoder_convs": (1, 1, 1, 1), "decoder_kernel": 3}
FAST = {"epochs": 2, "batch_size": 2, "precision": "32", "patience": 50}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("cin, cout, kernel, padding, shape", [
    (3, 5, (3, 3, 3), (1, 1, 1), (2, 9, 10, 11)),  # batch 2, odd sizes
    (6, 2, (5, 5, 5), (2, 2, 2), (1, 8, 7, 9)),  # CHMFL's output transition shape
    (4, 4, (3, 3, 3), (0, 0, 0), (2, 8, 8, 8)),  # no padding: smaller output
    (2, 3, (3, 1, 5), (1, 0, 2), (1, 7, 6, 9)),  # anisotropic kernel and padding
])
def test_gemm_weight_grad_matches_torch(cin, cout, kernel, padding, shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape[0], cin, *shape[1:], generator=gen)
    w = torch.randn(cout, cin, *kernel, generator=gen)
    y = torch.nn.functional.conv3d(x, w, padding=padding)
    g = torch.randn(y.shape, generator=gen)
    ref = torch.ops.aten.convolution_backward(g, x, w, None, [1] * 3, list(padding), [1] * 3, False,
                                              [0] * 3, 1, [False, True, False])[1]
    got = conv3d_weight_grad(x, g, kernel, padding, rows=64)  # small chunks: many chunk edges
    assert got.shape == ref.shape
    assert _rel(got, ref) < 1e-5


@pytest.mark.parametrize("channels_last", [False, True])
def test_gemm_conv_module_same_outputs_and_grads(channels_last, monkeypatch):
    from chmfl.accel import fastconv

    monkeypatch.setattr(fastconv, "_gemm_wgrad_pays", lambda x, w: True)  # a small map takes the path
    torch.manual_seed(0)
    conv = nn.Conv3d(8, 4, 3, padding=1)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    conv = conv.to(memory_format=fmt)
    x = torch.randn(2, 8, 8, 9, 10).to(memory_format=fmt).requires_grad_(True)
    keys = list(conv.state_dict())
    conv(x).square().sum().backward()
    ref = [x.grad.clone(), conv.weight.grad.clone(), conv.bias.grad.clone()]
    x.grad = None
    conv.zero_grad()
    use_gemm_wgrad(conv)
    assert type(conv) is GemmWgradConv3d and list(conv.state_dict()) == keys
    y = conv(x)
    assert "GemmWgrad" in type(y.grad_fn).__name__
    y.square().sum().backward()
    for got, want in zip([x.grad, conv.weight.grad, conv.bias.grad], ref):
        assert _rel(got, want) < 1e-5
    use_gemm_wgrad(conv, enable=False)
    assert type(conv) is nn.Conv3d


def test_only_stride1_convs_are_switched():
    net = use_gemm_wgrad(build_model("chmfl", **TINY))
    kinds = {type(m).__name__ for m in net.modules() if isinstance(m, nn.Conv3d)}
    assert kinds == {"Conv3d", "GemmWgradConv3d"}  # stride-2, 1x1x1 and 1-channel convs stay plain
    assert all(m.stride == (1, 1, 1) and max(m.kernel_size) > 1 and m.in_channels >= 8
               for m in net.modules() if type(m) is GemmWgradConv3d)


def _fit(**train):
    # the plain step (no speed option; they are on by default) plus ``train``'s options
    return neural_method("chmfl", "chmfl", TINY, {**FAST, **NO_SPEED_OPTIONS, **train}, seed=3, progress=False)


def test_training_speed_options_keep_the_result():
    cases = make_cases(4, shape=(16, 16, 32))  # deepest map 1x1x2: BatchNorm per sample works
    ref = _fit().fit(cases)
    p_ref = ref.predict_proba(cases)
    p_init = _fit(epochs=0).fit(cases).predict_proba(cases)
    assert np.abs(p_ref - p_init).max() > 0.02  # training moved the predictions well beyond atol
    for option in ({"fast_wgrad": True}, {"inplace_act": True}, {"channels_last": True}, {"fused_adam": True}):
        m = _fit(**option).fit(cases)
        # float summation order differs; Adam's normalised steps carry that into ~1e-4
        np.testing.assert_allclose(m.predict_proba(cases), p_ref, atol=2e-3, err_msg=str(option))
        assert not any(type(x) is GemmWgradConv3d for x in m.network_.modules())  # undone after fit
        hist = [h["loss"] for h in m.history_]
        np.testing.assert_allclose(hist, [h["loss"] for h in ref.history_], rtol=1e-5)


def test_fused_adam_option_makes_a_fused_optimizer():
    from chmfl.accel.options import SpeedOptions, make_optimizer

    net = torch.nn.Linear(3, 2)
    assert make_optimizer(net, 1e-4, 0.0, SpeedOptions(fused_adam=True)).defaults["fused"] is True
    assert not make_optimizer(net, 1e-4, 0.0, SpeedOptions()).defaults["fused"]


def test_prediction_without_decoder_and_channels_last():
    cases = make_cases(3)
    torch.manual_seed(0)
    net = build_model("chmfl", **TINY).eval()
    data = stack_cases(cases)
    full = predict_network(net, data)
    prob = predict_network(net, data, segment=False)
    assert "mask" in full and "mask" not in prob and net.decoder is not None  # decoder restored
    np.testing.assert_array_equal(prob["probability"], full["probability"])
    cl = predict_network(net, data, channels_last=True)
    np.testing.assert_allclose(cl["probability"], full["probability"], atol=1e-5)
    assert (cl["mask"] != full["mask"]).mean() < 1e-3
    ip = predict_network(net, data, inplace_act=True)
    np.testing.assert_array_equal(ip["probability"], full["probability"])
    np.testing.assert_array_equal(ip["mask"], full["mask"])
    assert not any(m.inplace for m in net.modules() if isinstance(m, nn.ELU))  # flags restored
    assert all(p.is_contiguous() for p in net.parameters())  # the model itself is left as it was


@pytest.mark.parametrize("shape", [(2, 5, 6, 7, 8), (1, 16, 9, 7, 5), (2, 3, 2, 2, 3)])
def test_spatial_max_any_layout_same_values_and_grads(shape):
    from chmfl.accel.layout import spatial_max

    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    ref = x.clone().requires_grad_(True)
    ref.flatten(2).amax(2).square().sum().backward()
    for fmt in (torch.contiguous_format, torch.channels_last_3d):
        got = x.clone(memory_format=fmt).requires_grad_(True)
        out = spatial_max(got)
        assert torch.equal(out, ref.flatten(2).amax(2))
        out.square().sum().backward()
        assert torch.equal(got.grad, ref.grad)


@pytest.mark.parametrize("channels_last", [False, True])
def test_onednn_replaces_the_reference_kernel_exactly(channels_last):
    """Batch-1 3x3x3 convs on small maps, which PyTorch sends to its slow reference kernel:
    the GEMM-wgrad layer runs them through oneDNN with the same outputs and gradients."""
    from chmfl.accel.fastconv import _native_is_slow

    torch.manual_seed(0)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    conv = nn.Conv3d(8, 3, 3, padding=1).to(memory_format=fmt)
    x = torch.randn(1, 8, 12, 10, 9).to(memory_format=fmt).requires_grad_(True)
    assert _native_is_slow(x, conv.weight)
    g = torch.randn(1, 3, 12, 10, 9)
    y_ref = conv(x)
    (y_ref * g).sum().backward()
    ref = [x.grad.clone(), conv.weight.grad.clone(), conv.bias.grad.clone()]
    x.grad = None
    conv.zero_grad()
    use_gemm_wgrad(conv)
    y = conv(x)
    assert "GemmWgrad" in type(y.grad_fn).__name__
    (y * g).sum().backward()
    assert _rel(y.detach(), y_ref.detach()) < 1e-5
    for got, want in zip([x.grad, conv.weight.grad, conv.bias.grad], ref):
        assert _rel(got, want) < 1e-5


def test_gemm_wgrad_only_where_it_beats_onednn():
    from chmfl.accel.fastconv import _gemm_wgrad_pays

    def pays(b, cin, cout, sp, k):
        return _gemm_wgrad_pays(torch.empty(b, cin, *sp, device="meta"),
                                torch.empty(cout, cin, k, k, k, device="meta"))

    assert pays(1, 16, 16, (144, 112, 112), 5) and pays(1, 16, 16, (72, 56, 56), 5)  # 1 mm levels
    assert pays(1, 64, 64, (36, 28, 28), 5)
    assert not pays(1, 16, 16, (36, 28, 28), 5) and not pays(1, 128, 128, (18, 14, 14), 5)
    assert not pays(4, 8, 8, (36, 28, 28), 3) and not pays(4, 24, 8, (36, 28, 28), 3)  # 4 mm demo size
    assert pays(1, 48, 16, (144, 112, 112), 3) and pays(1, 16, 2, (144, 112, 112), 3)  # fast preset


def test_channels_last_runs_2d_convolutions_channels_last():
    """2D networks (CNLPC) too: each plain Conv2d views its weight channels-last per call, so
    its map is channels-last; same values, and the plain class back on ``enable=False``."""
    import copy

    from chmfl.accel.layout import ChannelsLastConv2d, use_channels_last

    torch.manual_seed(0)
    ref = build_model("cnlpc")
    net = use_channels_last(copy.deepcopy(ref))
    assert type(net.cv1) is ChannelsLastConv2d and type(net.cv3) is ChannelsLastConv2d
    for name, x in (("cv1", torch.rand(2, 1, 60, 60)), ("cv2", torch.rand(2, 8, 50, 50))):
        got = getattr(net, name)(x)
        assert got.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(got, getattr(ref, name)(x), rtol=1e-5, atol=1e-5)
    use_channels_last(net, False)
    assert type(net.cv1) is torch.nn.Conv2d
