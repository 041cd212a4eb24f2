"""Intensity options: window, z-score and the paper's standardisation + Foracchia normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from chmfl.preprocess.config import IntensityConfig
from chmfl.preprocess.intensity import foracchia, normalize, window, zscore

SPACING = (2.0, 2.0, 2.0)


def _lesion_on_ramp(seed=0, shape=(24, 32, 32)):
    """Noise on a strong left-right intensity ramp, with a bright lesion in the middle."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    ramp = 5.0 * x / shape[2]
    lesion = ((z - 12) ** 2 + (y - 16) ** 2 + (x - 16) ** 2) <= 16
    return (ramp + rng.normal(0, 0.3, shape) + 4.0 * lesion).astype(np.float32), lesion


def test_window():
    cfg = IntensityConfig(mode="window")
    ct = normalize(np.array([-2000.0, -1000.0, 0.0, 1000.0, 3000.0]).reshape(1, 1, 5), "ct", SPACING, cfg)
    np.testing.assert_allclose(ct.ravel(), [-1, -1, 0, 1, 1])
    pet = normalize(np.array([0.0, 5.0, 30.0, 50.0]).reshape(1, 1, 4), "pet", SPACING, cfg)
    np.testing.assert_allclose(pet.ravel(), [0, 0.5, 3.0, 3.0])
    assert window(np.zeros((1, 1, 1)), -1, 1, 0, 10).item() == 5.0


def test_zscore():
    x, _ = _lesion_on_ramp()
    z = normalize(x, "pet", SPACING, IntensityConfig(mode="zscore"))
    assert abs(z.mean()) < 1e-4 and z.std() == pytest.approx(1.0, abs=1e-3)
    assert (zscore(np.full((4, 4, 4), 7.0)) == 0).all()


def test_paper_removes_the_slow_ramp_and_keeps_the_lesion():
    x, lesion = _lesion_on_ramp()
    out = foracchia(zscore(x), SPACING, IntensityConfig())
    background = ~lesion
    left, right = out[:, :, :8][background[:, :, :8]], out[:, :, -8:][background[:, :, -8:]]
    raw_left, raw_right = zscore(x)[:, :, :8], zscore(x)[:, :, -8:]
    assert abs(raw_right.mean() - raw_left.mean()) > 2.0  # the input drifts by > 2 SD
    assert abs(right.mean() - left.mean()) < 0.3  # the output does not
    assert out[lesion].mean() > 4 * out[background].std()  # the lesion stands out
    assert np.isfinite(out).all() and np.abs(out).max() <= 10.0


@pytest.mark.parametrize("mode", ["paper", "zscore"])
def test_per_volume_modes_fit_nothing(mode):
    """Affine intensity changes (another scanner calibration) give the same output."""
    x, _ = _lesion_on_ramp(seed=1)
    cfg = IntensityConfig(mode=mode)
    np.testing.assert_allclose(normalize(3.0 * x + 100.0, "ct", SPACING, cfg),
                               normalize(x, "ct", SPACING, cfg), atol=2e-3)


def test_paper_on_flat_volume_and_odd_shapes():
    flat = foracchia(zscore(np.full((10, 13, 7), 3.0)), SPACING, IntensityConfig())
    assert np.isfinite(flat).all() and (flat == 0).all()
    x, _ = _lesion_on_ramp(shape=(11, 37, 9))  # tiles of unequal voxel counts
    out = foracchia(zscore(x), SPACING, IntensityConfig())
    assert out.shape == x.shape and np.isfinite(out).all()
