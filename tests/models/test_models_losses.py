"""Eq. (1) and the 2D slice helpers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from chmfl.errors import ChmflError
from chmfl.models.base import ModelOutput
from chmfl.models.blocks import from_slices, match_size, slice_range, to_slices
from chmfl.models.losses import chmfl_loss


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
