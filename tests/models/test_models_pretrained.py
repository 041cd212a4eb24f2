"""Pretrained ResNet weights: only from a file the user gives, loaded without executing code."""

from __future__ import annotations

import pytest
import torch

from chmfl.errors import ChmflError
from chmfl.models import build_model
from chmfl.models.resnet2d import ResNetStages, adapt_first_conv


@pytest.fixture(scope="module")
def rgb_resnet18(tmp_path_factory):
    """A torchvision-style ResNet18 state dict (3-channel conv1, fc head) saved with torch.save."""
    torch.manual_seed(1)
    sd = ResNetStages(18, in_channels=3).state_dict()
    sd["fc.weight"], sd["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(sd, path)
    return path, sd


def test_pretrained_without_a_file_is_an_error():
    with pytest.raises(ChmflError, match="weights file"):
        build_model("resnet18-petct", pretrained=True)
    with pytest.raises(ChmflError, match="not found"):
        build_model("chmfl-resnet18", pretrained="/no/such/weights.pth")


def test_pretrained_loads_and_adapts_the_first_conv(rgb_resnet18):
    path, sd = rgb_resnet18
    net = build_model("resnet18-petct", pretrained=str(path))
    torch.testing.assert_close(net.backbone.layer3[1].conv2.weight, sd["layer3.1.conv2.weight"])
    expected = sd["conv1.weight"].sum(1, keepdim=True).repeat(1, 2, 1, 1) / 2
    torch.testing.assert_close(net.backbone.conv1.weight, expected)
    assert net.fc.out_features == 2  # the ImageNet head is not used


def test_grey_input_gives_the_rgb_activation():
    w = torch.randn(4, 3, 7, 7)
    x = torch.randn(1, 1, 16, 16)
    rgb = torch.nn.functional.conv2d(x.repeat(1, 3, 1, 1), w)
    two = torch.nn.functional.conv2d(x.repeat(1, 2, 1, 1), adapt_first_conv(w, 2))
    torch.testing.assert_close(two, rgb)


def test_chmfl_resnet_loads_both_branches_from_safetensors(rgb_resnet18, tmp_path):
    from safetensors.torch import save_file

    _, sd = rgb_resnet18
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    net = build_model("chmfl-resnet18", pretrained=str(path))
    for branch in (net.pet_backbone, net.ct_backbone):
        torch.testing.assert_close(branch.conv1.weight, sd["conv1.weight"].sum(1, keepdim=True))
        torch.testing.assert_close(branch.layer4[0].bn1.running_var, sd["layer4.0.bn1.running_var"])


def test_wrong_or_unsafe_files_are_refused(rgb_resnet18, tmp_path):
    path, _ = rgb_resnet18
    with pytest.raises(ChmflError, match="do not fit"):
        build_model("resnet34-petct", pretrained=str(path))  # ResNet18 weights into a ResNet34
    pickled = tmp_path / "evil.pt"
    torch.save({"conv1.weight": torch.zeros(1), "note": object()}, pickled)  # not loadable weights-only
    with pytest.raises(ChmflError, match="cannot read"):
        build_model("resnet18-petct", pretrained=str(pickled))
