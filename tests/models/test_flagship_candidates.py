"""Issue 16's CHMFL candidates on tiny volumes: ``uptake_head`` (SUVmax, SUVmean and volume
inside the decoder's predicted mask fed to the head) and ``norm="none"`` (no normalisation).
Shapes, hand-computed uptake values, where gradients flow, and that no contour is read at
prediction."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.network_cases import CHEAP_DECODER, SIZE
from tests.synthetic import make_cases, neural_method
from torch import nn

from chmfl.cv.experiment import load_experiment, parse_methods
from chmfl.data.cases import CaseData
from chmfl.errors import ChmflError
from chmfl.models import build_model
from chmfl.models.chmfl import UPTAKE_FEATURES, VOLUME_EPS, mask_uptake
from chmfl.models.losses import chmfl_loss

TINY = {"widths": (4, 8, 16, 32, 64), **CHEAP_DECODER}


def _inputs(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, *SIZE, generator=g), torch.randn(batch, 1, *SIZE, generator=g)


def test_mask_uptake_matches_hand_computed_values():
    pet = torch.zeros(1, 1, 4, 4, 4)
    pet[0, 0, :2, :2, :2] = torch.arange(1.0, 9.0).reshape(2, 2, 2)  # the "tumour": 1..8
    pet[0, 0, 3, 3, 3] = 20.0  # a hotter voxel outside the predicted mask
    inside = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    inside[0, :2, :2, :2] = True
    seg = torch.stack([torch.where(inside, -50.0, 50.0), torch.where(inside, 50.0, -50.0)], 1)
    got = mask_uptake(pet, seg)[0]
    assert got.shape == (len(UPTAKE_FEATURES),)
    assert got[0].item() == pytest.approx(8.0)  # SUVmax inside: not the 20 outside
    assert got[1].item() == pytest.approx(4.5)  # mean of 1..8
    assert got[2].item() == pytest.approx(np.log(8 / 64 + VOLUME_EPS), rel=1e-5)


def test_mask_uptake_soft_mask_weighs_voxels():
    pet = torch.tensor([2.0, 4.0]).reshape(1, 1, 1, 1, 2)
    seg = torch.zeros(1, 2, 1, 1, 2)  # p = 0.5 everywhere
    got = mask_uptake(pet, seg)[0]
    assert got[0].item() == pytest.approx(2.0) and got[1].item() == pytest.approx(3.0)
    assert got[2].item() == pytest.approx(np.log(0.5 + VOLUME_EPS), rel=1e-6)
    with pytest.raises(ChmflError, match="do not match"):
        mask_uptake(pet, torch.zeros(1, 2, 1, 1, 3))


def test_uptake_head_shapes_and_gradients():
    torch.manual_seed(0)
    net = build_model("chmfl", **TINY, uptake_head=True)
    pet, ct = _inputs()
    out = net(pet, ct)
    assert out.logits.shape == (2, 2) and out.seg_logits.shape == (2, 2, *SIZE)
    assert out.features.shape == (2, 2 * sum(TINY["widths"]) + len(UPTAKE_FEATURES))
    assert torch.isfinite(out.logits).all()
    # the DM term alone: reaches the uptake path, the head and both encoders, not the decoder
    # (the mask is detached for the measurement; the decoder learns from Eq. (1)'s voxel term)
    torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 1])).backward()
    grads = dict(net.named_parameters())
    for name in ("uptake_linear.weight", "classifier.layers.0.weight",
                 "pet_encoder.input_transition.conv.weight", "ct_encoder.input_transition.conv.weight"):
        assert grads[name].grad is not None and grads[name].grad.abs().sum() > 0, name
    assert all(p.grad is None or not p.grad.any() for p in net.decoder.parameters())
    net.zero_grad()
    mask = (torch.rand(2, 1, *SIZE) > 0.7).float()
    loss, _ = chmfl_loss(net(pet, ct), torch.tensor([0, 1]), mask, w=0.5)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.decoder.parameters())


def test_uptake_head_sees_absolute_uptake():
    """The same image at twice the SUV gives twice the SUVmax and SUVmean fed to the head."""
    torch.manual_seed(0)
    net = build_model("chmfl", **TINY, uptake_head=True).eval()
    pet, ct = _inputs(batch=1)
    with torch.no_grad():
        seg = net(pet, ct).seg_logits
        a, b = mask_uptake(pet, seg)[0], mask_uptake(2 * pet, seg)[0]
    assert torch.allclose(b[:2], 2 * a[:2]) and b[2] == a[2]


def test_uptake_head_keeps_the_decoder_at_prediction_and_reference_is_unchanged():
    torch.manual_seed(0)
    plain = build_model("chmfl", **TINY)
    assert plain.decoder_optional and plain.uptake_linear is None
    net = build_model("chmfl", **TINY, uptake_head=True)
    assert net.decoder_optional is False  # predict_network may not drop the decoder
    net.decoder = None
    with pytest.raises(ChmflError, match="needs its decoder"):
        net(*_inputs())
    with pytest.raises(ChmflError, match="no option"):
        build_model("mask-hmfl", widths=TINY["widths"], uptake_head=True)


def _with_mask(cases: list[CaseData], fn) -> list[CaseData]:
    out = []
    for c in cases:
        arrays = c.load()
        out.append(dataclasses.replace(c, arrays=dataclasses.replace(arrays, mask=fn(arrays.mask))))
    return out


@pytest.mark.parametrize("options", [{"uptake_head": True}, {"norm": "none"}], ids=["uptake_head", "norm_none"])
def test_candidates_train_and_predict_without_the_contour(options):
    """A fitted candidate's predictions for test patients are the same whatever their mask
    says (true, empty or moved): the contour is not an input at prediction."""
    cases = make_cases(6)
    m = neural_method("chmfl", "chmfl", {**TINY, **options},
                      {"epochs": 2, "batch_size": 2, "precision": "32", "patience": 50}, seed=3, progress=False)
    m.fit(cases)
    p = m.predict_proba(cases)
    assert p.shape == (6,) and np.all((p >= 0) & (p <= 1))
    empty = m.predict_proba(_with_mask(cases, np.zeros_like))
    moved = m.predict_proba(_with_mask(cases, lambda a: np.roll(a, 5, axis=2)))
    np.testing.assert_array_equal(p, empty)
    np.testing.assert_array_equal(p, moved)
    out = m.predict_all(cases, saliency=False)
    assert out["mask"].shape == (6, 16, 16, 16)


def test_norm_none_has_no_normalisation_and_no_batch_dependence():
    torch.manual_seed(0)
    net = build_model("chmfl", **TINY, norm="none", dropout=0.0).train()
    kinds = (nn.BatchNorm3d, nn.GroupNorm, nn.InstanceNorm3d)
    assert not any(isinstance(m, kinds) for m in net.modules())
    pet, ct = _inputs(batch=3)
    with torch.no_grad():
        ab = net(pet[[0, 1]], ct[[0, 1]]).logits[0]
        ac = net(pet[[0, 2]], ct[[0, 2]]).logits[0]
    torch.testing.assert_close(ab, ac)  # a patient's output does not depend on its batch mates
    torch.manual_seed(0)
    bn = build_model("chmfl", **TINY, dropout=0.0).train()  # the paper's: BatchNorm in train mode
    with torch.no_grad():
        assert not torch.allclose(bn(pet[[0, 1]], ct[[0, 1]]).logits[0], bn(pet[[0, 2]], ct[[0, 2]]).logits[0])


def test_candidates_are_cli_variants_and_declared_in_the_flagship_table():
    runs = parse_methods("chmfl[size=demo,uptake_head=true],chmfl[size=demo,norm=none]")
    assert [r.label for r in runs] == ["chmfl[size=demo,uptake_head=True]", "chmfl[size=demo,norm=none]"]
    exp = load_experiment(str(Path(__file__).resolve().parents[2] / "benchmarks" / "flagship" / "flagship.yaml"))
    labels = [m.label for m in exp.methods]
    assert {r.label for r in runs} <= set(labels)
    assert {"suvmax-volume", "suvmax-mtv", "hc-rf", "chmfl[size=demo]"} <= set(labels)
    assert exp.reference == "suvmax-volume" and exp.repeats == 5 and exp.folds == 6
    with pytest.raises(ChmflError, match="norm"):
        build_model("chmfl", **TINY, norm="nothing")
