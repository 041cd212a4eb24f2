"""One synthetic patient through ``preprocess_case``: centre, alignment, mask, errors."""

from __future__ import annotations

import numpy as np
import pytest
from prep_synth import patient, sphere_volume

from chmfl.errors import ChmflError
from chmfl.io.volume import Volume
from chmfl.preprocess.box import mask_centroid
from chmfl.preprocess.config import QUANTUM, PrepareConfig
from chmfl.preprocess.localise import locate_tumour
from chmfl.preprocess.pipeline import preprocess_case

CENTER = (10.0, -20.0, 30.0)
SMALL = PrepareConfig(voxel_mm=2.0, box_mm=(48.0, 40.0, 40.0))


def _soft_tissue_ct(pet: Volume) -> Volume:
    """A CT of plain soft tissue (40 HU) over the PET's extent."""
    return pet.with_array(np.full(pet.shape, 40.0, np.float32))


def test_hotspot_finds_the_lesion_not_a_noise_spike():
    pet = sphere_volume((20, 20, 20), (4.0, 4.0, 4.0), (-40.0, -40.0, -40.0), (6.0, -5.0, 3.0), 10.0, 8.0, 1.0)
    arr = pet.array.copy()
    arr[2, 2, 2] = 30.0  # one hot voxel far away: smoothed away
    loc = locate_tumour(_soft_tissue_ct(pet), pet.with_array(arr), SMALL)
    assert loc.decision == "chosen" and np.linalg.norm(np.subtract(loc.centre_xyz, (6.0, -5.0, 3.0))) < 2.0


def test_hotspot_prefers_the_large_lesion_over_a_small_hotter_one():
    """A small very hot ball of soft tissue must not win over a large avid sarcoma."""
    shape, spacing, origin = (30, 30, 30), (4.0, 4.0, 4.0), (-60.0, -60.0, -60.0)
    big = sphere_volume(shape, spacing, origin, (-20.0, 0.0, 0.0), 25.0, 5.0, 1.0)
    small = sphere_volume(shape, spacing, origin, (35.0, 30.0, 30.0), 8.0, 25.0, 0.0)
    pet = big.with_array(np.maximum(big.array, small.array))
    loc = locate_tumour(_soft_tissue_ct(pet), pet, SMALL)
    assert np.linalg.norm(np.subtract(loc.centre_xyz, (-20.0, 0.0, 0.0))) < 3.0
    assert [c.suv_max > 20 for c in loc.candidates[:2]] == [False, True]  # both listed, ranked by excess


def test_mask_centroid_and_empty_mask():
    mask = sphere_volume((16, 16, 16), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), (15.0, 14.0, 13.0), 5.0, 1, 0, np.uint8)
    np.testing.assert_allclose(mask_centroid(mask), (15.0, 14.0, 13.0), atol=0.2)
    with pytest.raises(ChmflError, match="empty"):
        mask_centroid(mask.with_array(np.zeros_like(mask.array)))


def test_box_centred_on_the_tumour_and_pet_ct_aligned():
    ct, pet, mask = patient(center=CENTER)
    case = preprocess_case("P1", ct, pet, mask, SMALL)
    assert case.ct.shape == case.pet.shape == case.mask.shape == (24, 20, 20)
    assert case.meta["center_method"] == "mask"
    np.testing.assert_allclose(case.center, CENTER, atol=0.5)
    boxed_centre = mask_centroid(case.volume("mask"))
    np.testing.assert_allclose(boxed_centre, CENTER, atol=0.5)
    # CT and PET come from different grids; their lesions coincide in the box
    hot_pet = case.pet_suv > 4.5
    dense_ct = case.ct_hu > 40
    overlap = (hot_pet & dense_ct).sum() / max(hot_pet.sum(), dense_ct.sum())
    assert overlap > 0.75
    assert case.meta["mask_fraction_in_box"] == 1.0 and case.meta["hotspot_box_holds_tumour"]
    assert case.meta["hotspot_error_mm"] < 3.0 and case.meta["hotspot_decision"] == "chosen"


def test_no_contour_uses_the_pet_hotspot():
    ct, pet, _ = patient(center=CENTER)
    case = preprocess_case("P1", ct, pet, None, SMALL)
    assert case.mask is None and case.meta["center_method"] == "hotspot"
    np.testing.assert_allclose(case.center, CENTER, atol=3.0)
    assert case.meta["localisation"]["decision"] == "chosen"
    with pytest.raises(ChmflError, match="no tumour contour"):
        preprocess_case("P1", ct, pet, None, PrepareConfig(voxel_mm=2.0, center="mask"))


def test_given_centre_and_mask_outside_the_box():
    ct, pet, mask = patient(center=CENTER)
    case = preprocess_case("P1", ct, pet, mask, SMALL, center_xyz=(12.0, -20.0, 30.0))
    assert case.meta["center_method"] == "given" and case.center == (12.0, -20.0, 30.0)
    with pytest.raises(ChmflError, match="P1: the tumour mask lies entirely outside the box"):
        preprocess_case("P1", ct, pet, mask, SMALL, center_xyz=(500.0, 0.0, 0.0))


def test_padding_fraction_recorded():
    ct, pet, mask = patient(center=CENTER)
    big = PrepareConfig(voxel_mm=4.0, pad="constant")  # 112 x 112 x 144 mm: larger than the images
    case = preprocess_case("P1", ct, pet, mask, big)
    ct_extent = np.asarray(ct.shape) * np.asarray(ct.spacing)  # (96, 72, 72) mm
    expected = 1.0 - np.prod(np.minimum(ct_extent, (144.0, 112.0, 112.0)) / (144.0, 112.0, 112.0))
    assert case.meta["pad_fraction_ct"] == pytest.approx(expected, abs=0.03)
    assert (case.ct_hu == -1000.0).mean() == pytest.approx(case.meta["pad_fraction_ct"], abs=1e-3)
    assert (case.pet_suv == 0.0).mean() == pytest.approx(case.meta["pad_fraction_pet"], abs=1e-3)
    edge = preprocess_case("P1", ct, pet, mask, PrepareConfig(voxel_mm=4.0))
    assert edge.ct_hu.min() > -200.0 and edge.meta["pad_fraction_ct"] == case.meta["pad_fraction_ct"]


def test_nan_input_is_refused():
    ct, pet, mask = patient(center=CENTER)
    bad = pet.array.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ChmflError, match="P1: PET image has 1 NaN/inf"):
        preprocess_case("P1", ct, pet.with_array(bad), mask, SMALL)


def test_stored_values_are_quantised():
    ct, pet, mask = patient(center=CENTER)
    case = preprocess_case("P1", ct, pet, mask, SMALL)
    for key, step in QUANTUM.items():
        values = getattr(case, key) / step
        np.testing.assert_array_equal(values, np.round(values))
    exact = preprocess_case("P1", ct, pet, mask, PrepareConfig(voxel_mm=2.0, box_mm=SMALL.box_mm, quantize=0.0))
    np.testing.assert_allclose(case.pet_suv, exact.pet_suv, atol=QUANTUM["pet_suv"] / 2 + 1e-7)
    np.testing.assert_allclose(case.ct_hu, exact.ct_hu, atol=QUANTUM["ct_hu"] / 2 + 1e-5)


@pytest.mark.parametrize("mode", ["paper", "window", "zscore"])
def test_intensity_modes_end_to_end(mode):
    ct, pet, mask = patient(center=CENTER)
    config = PrepareConfig.from_dict({**SMALL.to_dict(), "intensity": {"mode": mode}})
    case = preprocess_case("P1", ct, pet, mask, config)
    assert np.isfinite(case.ct).all() and np.isfinite(case.pet).all()
    inside = case.mask.astype(bool)
    assert case.pet[inside].mean() - case.pet[~inside].mean() > (0.5 if mode == "window" else 1.0)


def test_integer_ct_is_accepted():
    ct, pet, mask = patient(center=CENTER)
    ct16 = Volume(ct.array.astype(np.int16), ct.spacing, ct.origin, ct.direction)
    case = preprocess_case("P1", ct16, pet, mask, SMALL)
    assert case.ct_hu.dtype == np.float32
