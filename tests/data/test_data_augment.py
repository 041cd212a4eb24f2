"""Training-time augmentation: chmfl's flips + shifts and hn_cnn's flips + rotations."""

from __future__ import annotations

import pytest
import torch

from chmfl.data.tensors import CaseTensors, _rotate, augment
from chmfl.errors import ChmflError


def _batch(n=6, size=9, depth=2):
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(n, 1, depth, size, size, generator=g) > 0.5).float()
    ct = mask * torch.arange(1, size * size + 1, dtype=torch.float32).reshape(size, size)
    return CaseTensors(pet=ct.clone() * 2, ct=ct, mask=mask, labels=torch.arange(n) % 2)


def test_flip_rotate_moves_every_image_of_a_patient_together():
    b = _batch()
    out = augment(b, torch.Generator().manual_seed(3), "flip-rotate")
    assert out.ct.shape == b.ct.shape and torch.equal(out.labels, b.labels)
    torch.testing.assert_close(out.pet, 2 * out.ct)
    assert torch.equal(out.ct > 0, out.mask > 0)  # nearest neighbour: the mask stays binary and aligned
    assert set(out.mask.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(out.ct, b.ct)
    again = augment(b, torch.Generator().manual_seed(3), "flip-rotate")
    assert torch.equal(again.ct, out.ct)  # draws only from the generator


def test_rotation_by_90_degrees_is_a_quarter_turn():
    x = torch.arange(25, dtype=torch.float32).reshape(1, 1, 5, 5)
    turned = _rotate(x, 90.0)
    assert torch.equal(turned, torch.rot90(x, 1, (2, 3))) or torch.equal(turned, torch.rot90(x, -1, (2, 3)))
    assert torch.equal(_rotate(x, 0.0), x)


def test_ct_only_batches_and_unknown_modes():
    b = _batch()
    b.pet = None
    assert augment(b, torch.Generator().manual_seed(0), "flip-rotate").pet is None
    assert augment(b, torch.Generator().manual_seed(0)).pet is None
    with pytest.raises(ChmflError, match="augmentation"):
        augment(b, torch.Generator(), "mixup")
