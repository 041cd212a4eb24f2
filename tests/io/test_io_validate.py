"""A PET given as the CT (or the reverse), one series given twice, values no CT or SUV PET has:
refused by ``io.validate`` on tiny synthetic volumes and series, and on ``chmfl convert``."""

from __future__ import annotations

import numpy as np
import pytest
from io_factory import new_ids, write_series

from chmfl.cli.main import main
from chmfl.errors import ChmflError
from chmfl.io.validate import (
    check_distinct,
    check_modality,
    check_pair,
    ct_value_problem,
    pet_value_problem,
    read_as,
)
from chmfl.io.volume import Volume

RNG = np.random.default_rng(0)


def _ct_array(shape=(6, 16, 16)) -> np.ndarray:
    """Soft tissue around 40 HU with air in front of the body."""
    a = RNG.normal(40, 20, shape).astype(np.float32)
    a[:, :3] = -1000
    return a


def _pet_array(shape=(6, 16, 16)) -> np.ndarray:
    a = np.abs(RNG.normal(0.5, 0.2, shape)).astype(np.float32)
    a[2:4, 6:10, 6:10] = 8.0
    return a


def _vol(array, **meta) -> Volume:
    return Volume(array, (2.0, 1.0, 1.0), (0.0, 0.0, 0.0), meta=meta)


def test_value_rules_tell_ct_from_pet():
    ct, pet = _ct_array(), _pet_array()
    assert ct_value_problem(ct) == "" and pet_value_problem(pet) == ""
    assert "no air" in ct_value_problem(pet)  # a PET in SUV has nothing near -1000
    assert "below -1" in pet_value_problem(ct)  # a CT in HU is mostly negative outside the body
    assert "up to" in pet_value_problem(pet * 20000)  # activity in Bq/ml, not SUV
    assert "no air" in ct_value_problem(pet * 20000)
    dense = ct.copy()
    dense[:, 8:] = 5000  # half the voxels above any HU a CT stores
    assert "above 3071" in ct_value_problem(dense)
    assert "no voxel above 0" in pet_value_problem(np.zeros((4, 4, 4)))
    padded = ct.copy()
    padded[:, :, :2] = -3024  # outside the field of view on some scanners: still a CT
    assert ct_value_problem(padded) == ""


def test_check_modality_names_the_input_and_the_fault():
    with pytest.raises(ChmflError, match=r"^--ct x\.nii: not a CT in HU: no air .*\(is it the PET\?\)$"):
        check_modality(_vol(_pet_array()), "ct", "--ct x.nii")
    with pytest.raises(ChmflError, match=r"^--pet y: DICOM Modality is CT \(a CT series\), expected PT"):
        check_modality(_vol(_pet_array(), modality="CT"), "pet", "--pet y")
    with pytest.raises(ChmflError, match="PET .* Units BQML"):
        check_modality(_vol(_ct_array(), modality="CT", series_units="BQML"), "ct", "--ct z")
    check_modality(_vol(_ct_array(), modality="CT"), "ct", "--ct z")
    check_modality(_vol(_pet_array()), None, "image")  # an image file says nothing: not checked
    with pytest.raises(ChmflError, match="not a PET in SUV"):  # its own tag is the expectation
        check_modality(_vol(_ct_array(), modality="PT"), None, "series s")


def test_pair_checks(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    with pytest.raises(ChmflError, match="same folder"):
        check_distinct(a, tmp_path / "." / "a", "--ct a", "--pet a")
    ct = _vol(_ct_array(), series_instance_uid="1.2", patient_id="P1")
    with pytest.raises(ChmflError, match="same series"):
        check_pair(ct, _vol(_pet_array(), series_instance_uid="1.2", patient_id="P1"), "--ct a", "--pet b")
    with pytest.raises(ChmflError, match="patient 'P1' but --pet b is patient 'P2'"):
        check_pair(ct, _vol(_pet_array(), series_instance_uid="1.3", patient_id="P2"), "--ct a", "--pet b")
    check_pair(ct, _vol(_pet_array(), series_instance_uid="1.3", patient_id="P1"), "--ct a", "--pet b")


def _series(tmp_path, name, modality, pixels, **kw):
    write_series(tmp_path / name, pixels, modality=modality, ids=new_ids("P1"), **kw)
    return tmp_path / name


def test_read_as_refuses_a_pet_series_as_the_ct_before_reading_pixels(tmp_path):
    # no dose: converting it to SUV would fail with a misleading message; the tag speaks first
    pet = _series(tmp_path, "pet", "PT", np.full((3, 8, 8), 1000, np.int16), pet={"dose": None})
    with pytest.raises(ChmflError, match=r"^--ct .*pet: DICOM Modality is PT \(a PET series\), expected CT"):
        read_as(pet, "ct", f"--ct {pet}")
    ct = _series(tmp_path, "ct", "CT", np.full((3, 8, 8), 24, np.int16), intercept=-1024)
    with pytest.raises(ChmflError, match="DICOM Modality is CT"):
        read_as(ct, "pet", f"--pet {ct}")
    assert read_as(ct, "ct", "--ct").meta["modality"] == "CT"


def _convert_fails(capsys, tmp_path, args, *words):
    out = tmp_path / "out"
    rc = main(["convert", *map(str, args[:1]), str(out / "img.nii.gz"), *map(str, args[1:])])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    for word in words:
        assert word in err[0], err[0]
    assert not out.exists()


def test_convert_refuses_a_series_whose_values_contradict_its_tag(tmp_path, capsys):
    # tagged CT, but no air anywhere: PET counts stored under a CT header
    lying = _series(tmp_path, "lying", "CT", np.full((3, 8, 8), 900, np.int16))
    _convert_fails(capsys, tmp_path, [lying], "not a CT in HU", "no air")
    ct = _series(tmp_path, "ct", "CT", np.full((3, 8, 8), 24, np.int16), intercept=-1024)
    _convert_fails(capsys, tmp_path, [ct, "--weight-kg", "70"], "--weight-kg apply to a PET series only")
    _convert_fails(capsys, tmp_path, [ct, "--suv", "lbm"], "--suv apply to a PET series only")
