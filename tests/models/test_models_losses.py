"""Eq. (1) and the 2D slice helpers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from chmfl.errors import ChmflError
from chmfl.models.base import ModelOutput
from chmfl.models.blocks import from_slices, match_size, slice_range, to_slices
from chmfl.models.losses import chmfl_loss, dice_loss, dm_loss


def _out(seg_depth=6, seg_slices=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ModelOutput(logits=torch.randn(2, 2, generator=g),
                       seg_logits=torch.randn(2, 2, seg_depth, 5, 4, generator=g), seg_slices=seg_slices)


def _mask(seed=1):
    return (torch.rand(2, 1, 6, 5, 4, generator=torch.Generator().manual_seed(seed)) > 0.6).float()


def test_eq1_weights_the_two_cross_entropies():
    out, mask, label = _out(), _mask(), torch.tensor([1, 0])
    ce = F.cross_entropy(out.logits, label)
    seg = F.cross_entropy(out.seg_logits, mask[:, 0].long())
    total, parts = chmfl_loss(out, label, mask, w=0.3)
    torch.testing.assert_close(total, 0.7 * ce + 0.3 * seg)
    assert parts == pytest.approx({"cls_loss": float(ce), "seg_loss": float(seg)})
    torch.testing.assert_close(chmfl_loss(out, label, mask, w=0.0)[0], ce)
    torch.testing.assert_close(chmfl_loss(out, label, mask, w=1.0)[0], seg)


def _two_class_logits(p_tumour: list[float]) -> torch.Tensor:
    """Voxel logits (1, 2, n) whose softmax tumour probability is ``p_tumour``."""
    p = torch.tensor(p_tumour)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))]).unsqueeze(0)


def test_dice_loss_is_milletaris_squared_denominator_form():
    """Milletari et al. 2016, Eq. 1: D = 2 sum(p g) / (sum p^2 + sum g^2), loss 1 - D.
    p = (0.8, 0.6, 0.1, 0.3), g = (1, 1, 0, 0): 2 * 1.4 / (0.64 + 0.36 + 0.01 + 0.09 + 2) = 2.8 / 3.1."""
    logits = _two_class_logits([0.8, 0.6, 0.1, 0.3])
    loss = dice_loss(logits, torch.tensor([[1, 1, 0, 0]]))
    assert float(loss) == pytest.approx(1 - 2.8 / 3.1, abs=1e-5)  # 0.096774; MONAI smooths by 1e-5
    # batch: each patient's Dice, then the mean; 2nd patient p = (0.5, 0.5, 0.5, 0.5), g = (0, 0, 0, 1):
    # 2 * 0.5 / (4 * 0.25 + 1) = 0.5
    both = torch.cat([logits, _two_class_logits([0.5] * 4)])
    loss2 = dice_loss(both, torch.tensor([[1, 1, 0, 0], [0, 0, 0, 1]]))
    assert float(loss2) == pytest.approx(((1 - 2.8 / 3.1) + 0.5) / 2, abs=1e-5)


def test_eq1_with_dice_replaces_the_voxel_cross_entropy():
    out, mask, label = _out(), _mask(), torch.tensor([1, 0])
    total, parts = chmfl_loss(out, label, mask, w=0.5, seg_loss="dice")
    seg = dice_loss(out.seg_logits, mask[:, 0].long())
    torch.testing.assert_close(total, 0.5 * F.cross_entropy(out.logits, label) + 0.5 * seg)
    assert parts["seg_loss"] == pytest.approx(float(seg)) and 0 < parts["seg_loss"] < 1
    with pytest.raises(ChmflError, match="seg_loss"):
        chmfl_loss(out, label, mask, seg_loss="focal")


def test_class_weights_scale_each_patient_then_average_over_patients():
    """hn_cnn: F.binary_cross_entropy(weight=w[y]) = mean_i w[y_i] * BCE_i (divided by n,
    not by the sum of the weights as PyTorch's weighted cross-entropy would)."""
    z = torch.tensor([0.3, -1.2, 2.0])
    y = torch.tensor([1, 0, 0])
    logits = torch.stack([torch.zeros(3), z], 1)
    bce = F.binary_cross_entropy(torch.sigmoid(z), y.float(), weight=torch.tensor([3.7, 0.7, 0.7]))
    torch.testing.assert_close(dm_loss(logits, y, (0.7, 3.7)), bce)
    by_hand = (3.7 * -torch.log(torch.sigmoid(z[0])) + 0.7 * -torch.log(1 - torch.sigmoid(z[1]))
               + 0.7 * -torch.log(1 - torch.sigmoid(z[2]))) / 3
    torch.testing.assert_close(dm_loss(logits, y, (0.7, 3.7)), by_hand)
    torch.testing.assert_close(dm_loss(logits, y), F.cross_entropy(logits, y))


def test_sum_reduction_is_the_literal_per_patient_voxel_sum():
    out, mask, label = _out(), _mask(), torch.tensor([1, 0])
    _, mean = chmfl_loss(out, label, mask, 0.5, "mean")
    _, summed = chmfl_loss(out, label, mask, 0.5, "sum")
    assert summed["seg_loss"] == pytest.approx(mean["seg_loss"] * 6 * 5 * 4)  # N voxels per patient


def test_2d_networks_are_scored_on_their_slices_only():
    out, mask, label = _out(seg_depth=3, seg_slices=(2, 5)), _mask(), torch.tensor([1, 0])
    seg = F.cross_entropy(out.seg_logits, mask[:, 0, 2:5].long())
    assert chmfl_loss(out, label, mask, 1.0)[1]["seg_loss"] == pytest.approx(float(seg))


def test_classifier_only_networks_and_errors():
    out = ModelOutput(logits=torch.randn(2, 2))
    loss, parts = chmfl_loss(out, torch.tensor([1, 0]), None, w=0.5)
    torch.testing.assert_close(loss, F.cross_entropy(out.logits, torch.tensor([1, 0])))
    assert parts["seg_loss"] == 0.0
    with pytest.raises(ChmflError, match="mask"):
        chmfl_loss(_out(), torch.tensor([1, 0]), None)
    with pytest.raises(ChmflError, match="seg_reduction"):
        chmfl_loss(_out(), torch.tensor([1, 0]), _mask(), seg_reduction="max")


def test_slices_round_trip_and_centre():
    assert slice_range(36, 5) == (16, 21) and slice_range(5, 5) == (0, 5)
    x = torch.arange(2 * 3 * 7 * 4 * 5, dtype=torch.float32).reshape(2, 3, 7, 4, 5)
    s = to_slices(x, 2, 5)  # (2*3, 3, 4, 5)
    assert s.shape == (6, 3, 4, 5)
    torch.testing.assert_close(s[4], x[1, :, 3])  # patient 1, second slice (index 3)
    torch.testing.assert_close(from_slices(s, 2), x[:, :, 2:5])


def test_match_size_pads_and_crops():
    x = torch.ones(1, 2, 2, 3, 4)
    y = match_size(x, (3, 3, 2))
    assert y.shape == (1, 2, 3, 3, 2) and y[:, :, 2].abs().sum() == 0 and y[:, :, :2].min() == 1
