"""The original TCIA layout: series found by tags, RTSTRUCTs matched by referenced UIDs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tcia_tree import make_tcia_tree

from chmfl.cohort.layouts import detect_layout, find_cases
from chmfl.cohort.tcia import case_from_series, choose_image, choose_roi, choose_structure
from chmfl.errors import ChmflError
from chmfl.io.dicom import SeriesInfo

PATIENT = "STS_019"  # the smallest patient of the release


def _info(uid, modality, description, pid="P1", frame="", refs=(), n=10, folder="/x"):
    files = tuple(Path(folder) / uid / f"{i}.dcm" for i in range(n))
    return SeriesInfo(uid, modality, pid, "study", frame, description, files, tuple(refs))


def test_selection_rules_on_every_original_series(shared_data):
    """Against the 612 series of the TCIA digest: one CT, one PT, and the description rule
    picks RTstruct_CT / RTstruct_PET among the six RTSTRUCTs (no UIDs in the digest)."""
    digest = pd.read_csv(shared_data / "sts-clinical" / "STS_nbia_series_digest.csv",
                         usecols=["Patient ID", "Series Instance UID", "Modality", "Series Description", "Image Count"])
    assert len(digest) == 612
    for pid, rows in digest.groupby("Patient ID"):
        series = [_info(r["Series Instance UID"], r["Modality"], r["Series Description"], pid,
                        n=int(r["Image Count"])) for _, r in rows.iterrows()]
        structures = [s for s in series if s.modality == "RTSTRUCT"]
        assert len(structures) == 6
        ct, pet = choose_image(series, "ct", structures), choose_image(series, "pet", structures)
        assert ct.modality == "CT" and pet.modality == "PT"
        assert choose_structure(ct, structures, "ct").series_description.lower() == "rtstruct_ct"
        assert choose_structure(pet, structures, "pet").series_description.lower() == "rtstruct_pet"


def test_reference_beats_description():
    ct = _info("ct1", "CT", "CT IMAGES", frame="F")
    wrong = _info("rs1", "RTSTRUCT", "RTstruct_CT", frame="F", refs=("other",), n=1)
    right = _info("rs2", "RTSTRUCT", "contours", frame="F", refs=("ct1",), n=1)
    assert choose_structure(ct, [wrong, right], "ct") is right


def test_ambiguous_structures_are_an_error():
    pet = _info("pt1", "PT", "PET AC", frame="F")
    a = _info("rs1", "RTSTRUCT", "RTstruct_PET", frame="F", n=1)
    b = _info("rs2", "RTSTRUCT", "PET contours", frame="F", n=1)
    with pytest.raises(ChmflError, match="2 RTSTRUCTs could contour the PET"):
        choose_structure(pet, [a, b], "pet")


def test_several_pet_series_prefer_attenuation_corrected():
    nac = _info("pt1", "PT", "PET NAC", n=300)
    ac = _info("pt2", "PT", "PET AC", n=200)
    assert choose_image([nac, ac], "pet") is ac


def test_roi_choice():
    assert choose_roi(["GTV_Mass_CT"]) == "GTV_Mass_CT"
    assert choose_roi(["GTV_Edema", "GTV_Mass"]) == "GTV_Mass"
    assert choose_roi(["a", "b"]) is None


def test_missing_pet_is_an_error():
    with pytest.raises(ChmflError, match="patient P1: no PT series"):
        case_from_series("P1", [_info("ct1", "CT", "CT")])


@pytest.fixture(scope="module")
def tcia_root(sts_dir, tmp_path_factory) -> Path:
    return make_tcia_tree(sts_dir, [PATIENT], tmp_path_factory.mktemp("tcia"))


def test_tcia_tree_found_by_tags(tcia_root, sts_dir):
    assert detect_layout(tcia_root) == "tcia"
    (case,) = find_cases(tcia_root)
    assert case.patient_id == PATIENT and case.layout == "tcia"
    assert "CT IMAGES" in case.ct.name and "PET AC" in case.pet.name
    masks = {m.drawn_on: m for m in case.masks}
    assert "RTstruct_CT" in str(masks["ct"].path) and masks["ct"].roi == "GTV_Mass_CT"
    assert "RTstruct_PET" in str(masks["pet"].path) and masks["pet"].roi == "GTV_Mass_PET"


def test_tcia_tree_prepares_like_the_ibsi_layout(tcia_root, sts_dir, tmp_path):
    """Same files, two layouts: identical cached arrays."""
    import shutil

    from chmfl.preprocess.cache_format import load_case
    from chmfl.preprocess.config import PrepareConfig
    from chmfl.preprocess.prepare import prepare_cohort

    ibsi = tmp_path / "ibsi"
    shutil.copytree(sts_dir / PATIENT, ibsi / PATIENT)
    config = PrepareConfig(voxel_mm=4.0, mask_from="pet")
    a = prepare_cohort(tcia_root, tmp_path / "a", config=config, progress=False)
    b = prepare_cohort(ibsi, tmp_path / "b", config=config, progress=False)
    ca = load_case(tmp_path / "a" / a.manifest.loc[0, "path"])
    cb = load_case(tmp_path / "b" / b.manifest.loc[0, "path"])
    for key in ("ct_hu", "pet_suv", "mask", "ct", "pet"):
        np.testing.assert_array_equal(getattr(ca, key), getattr(cb, key))
    assert ca.mask.sum() > 0
