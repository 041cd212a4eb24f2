"""extract_features on tiny generated volumes: names, axis order, small contours, solidity."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from chmfl.radiomics.extract import (
    MIN_VOXELS,
    convex_hull_features,
    extract_features,
    feature_names,
    load_params,
    params_hash,
)


def _blob(shape=(12, 14, 16), seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(50.0, 20.0, shape)
    mask = np.zeros(shape, np.uint8)
    mask[3:9, 4:10, 5:13] = 1
    return image, mask


def test_settings_files():
    ct, pet = load_params("ct"), load_params("pet")
    assert ct["setting"]["binWidth"] == 25 and pet["setting"]["binWidth"] == 0.25
    for p in (ct, pet):
        assert p["setting"]["resampledPixelSpacing"] is None  # the cache grid is already isotropic
        assert p["setting"]["force2D"] is False and p["setting"]["weightingNorm"] is None
        assert {"firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"} <= set(p["featureClass"])
    assert "shape" in ct["featureClass"] and "shape" not in pet["featureClass"]
    assert len(params_hash()) == 16


def test_names_and_values_are_floats():
    image, mask = _blob()
    feats = extract_features(image, mask, (1.0, 1.0, 1.0), "ct")
    assert tuple(feats) == feature_names("ct")
    assert {"firstorder_Skewness", "shape_Solidity", "shape_Sphericity", "glcm_Contrast", "ngtdm_Busyness"} <= set(feats)
    assert all(isinstance(v, float) and math.isfinite(v) for v in feats.values())
    assert logging.getLogger("radiomics").level >= logging.ERROR  # pyradiomics' chatter is off


def test_spacing_is_zyx():
    """A 6 x 6 x 8 voxel box: with spacing (z, y, x) = (2, 1, 0.5) mm its longest side is z
    (12 mm), with (0.5, 1, 2) mm it is x (16 mm). For n voxels of size s along the major axis,
    pyradiomics' MajorAxisLength = 4 sqrt(var) = 4 sqrt((n^2 - 1) / 12) s."""
    image, mask = _blob()
    feats = extract_features(image, mask, (2.0, 1.0, 0.5), "ct")
    assert feats["shape_VoxelVolume"] == pytest.approx(6 * 2.0 * 6 * 1.0 * 8 * 0.5)
    assert feats["shape_MajorAxisLength"] == pytest.approx(4 * math.sqrt(35 / 12) * 2.0)
    swapped = extract_features(image, mask, (0.5, 1.0, 2.0), "ct")
    assert swapped["shape_MajorAxisLength"] == pytest.approx(4 * math.sqrt(63 / 12) * 2.0)


def test_small_or_missing_contour_gives_nan():
    image, mask = _blob()
    tiny = np.zeros_like(mask)
    tiny.flat[: MIN_VOXELS - 1] = 1
    for m in (tiny, None):
        feats = extract_features(image, m, (1.0, 1.0, 1.0), "pet")
        assert tuple(feats) == feature_names("pet") and all(math.isnan(v) for v in feats.values())


def test_pet_resegmentation_can_empty_the_roi():
    image, mask = _blob()
    feats = extract_features(-np.abs(image) - 1.0, mask, (1.0, 1.0, 1.0), "pet")  # every SUV < 0
    assert all(math.isnan(v) for v in feats.values())


def test_solidity_convex_and_concave():
    """A voxel cube's marching-cubes mesh is convex (solidity 1). An L-shaped prism (6 x 6 voxel
    section less a 3 x 3 corner): the mesh joins face midpoints, so its section is 27 - 0.5
    (chamfers) and the hull's 36 - 6.125 (notch cut between (2, 5.5) and (5.5, 2)) - 0.375."""
    image = np.full((10, 10, 10), 100.0)
    cube = np.zeros((10, 10, 10), np.uint8)
    cube[2:8, 2:8, 2:8] = 1
    ell = cube.copy()
    ell[2:8, 5:8, 5:8] = 0
    s_cube = extract_features(image, cube, (1.0, 1.0, 1.0), "ct")["shape_Solidity"]
    s_ell = extract_features(image, ell, (1.0, 1.0, 1.0), "ct")["shape_Solidity"]
    assert s_cube == pytest.approx(1.0, abs=1e-9)
    assert s_ell == pytest.approx(26.5 / 29.5, abs=0.01)


def test_flat_contour_has_no_hull():
    flat = np.zeros((5, 5, 5), np.uint8)
    flat[2, 1:4, 1:4] = 1
    out = convex_hull_features(flat, (1, 1, 1), 9.0, 18.0)
    assert math.isfinite(out["shape_Solidity"])  # a 1-voxel-thick slab still spans 3D (half-voxel faces)
    assert all(math.isnan(v) for v in convex_hull_features(np.zeros((3, 3, 3)), (1, 1, 1), 0.0, 0.0).values())


def test_a_sphere_gives_real_axis_features():
    """A sphere's equal principal axes made pyradiomics' eigvals return complex conjugates
    (imaginary parts ~1e-16): the axis features were cast to float with a ComplexWarning."""
    import warnings

    zz, yy, xx = np.mgrid[:16, :16, :16] - 7.5
    mask = (zz**2 + yy**2 + xx**2 <= 5.25**2).astype(np.uint8)  # 624 voxels: complex axes before
    image = np.where(mask > 0, 40.0, 0.0) + np.random.default_rng(0).normal(0, 15.0, mask.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        feats = extract_features(image, mask, (4.0, 4.0, 4.0), "ct")
    assert feats["shape_Elongation"] == pytest.approx(1.0) and feats["shape_Flatness"] == pytest.approx(1.0)
    assert all(isinstance(v, float) for v in feats.values())
