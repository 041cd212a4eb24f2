"""``chmfl convert`` end to end: good inputs write image (+ mask); every broken input exits
non-zero with one stderr line and leaves no file behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from io_factory import new_ids, square, write_rtstruct, write_series

from chmfl.cli.main import main
from chmfl.io.imageio import read_image


def _ct(tmp_path, ids=None):
    ids = ids or new_ids("P1")
    pixels = np.full((5, 12, 10), 40, dtype=np.int16)
    write_series(tmp_path / "ct", pixels, ids=ids, intercept=-1024)
    return tmp_path / "ct", ids


def _pet(tmp_path, **pet):
    ids = new_ids("P1")
    write_series(tmp_path / "pet", np.full((4, 8, 8), 1000, dtype=np.int16), modality="PT", ids=ids,
                 slope=2.0, pet=pet)
    return tmp_path / "pet", ids


def _fails(capsys, tmp_path, args, *words):
    out = tmp_path / "out"
    rc = main(["convert", *[str(a) for a in args], str(out / "img.nii.gz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0
    assert len(err) == 1 and err[0].startswith("chmfl: error: "), err
    for word in words:
        assert word in err[0], err[0]
    assert not out.exists(), list(out.rglob("*"))
    return err[0]


def test_ct_with_rtstruct_writes_image_and_mask(tmp_path, capsys):
    folder, ids = _ct(tmp_path)
    rs = write_rtstruct(tmp_path / "rs.dcm", ids, {"GTV": [square(-4.5, -0.5, -5.5, -1.5, 12.0)]})
    out = tmp_path / "out"
    rc = main(["convert", str(folder), str(out / "ct.nii.gz"), "--rtstruct", str(rs)])
    assert rc == 0
    assert "ct_mask.nii.gz" in capsys.readouterr().out
    image, mask = read_image(out / "ct.nii.gz"), read_image(out / "ct_mask.nii.gz")
    assert np.all(image.array == 40 - 1024) and image.same_grid(mask)
    assert mask.array.sum() == 4 * 4 and mask.array[1].sum() == 16
    assert sorted(p.name for p in out.iterdir()) == ["ct.nii.gz", "ct_mask.nii.gz"]


def test_pet_overrides_supply_the_missing_dose(tmp_path, capsys):
    folder, _ = _pet(tmp_path, dose=None)
    _fails(capsys, tmp_path, [folder], "(0018,1074) RadionuclideTotalDose", "--dose-bq")
    rc = main(["convert", str(folder), str(tmp_path / "pet.nii.gz"), "--dose-bq", "370e6"])
    assert rc == 0
    suv = read_image(tmp_path / "pet.nii.gz").array
    expected = 2000.0 * 70e3 / (370e6 * 2 ** (-3600 / 6586.2))
    np.testing.assert_allclose(suv, expected, rtol=1e-5)


def test_broken_series_folders(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _fails(capsys, tmp_path, [tmp_path / "empty"], "empty")
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "a.txt").write_text("hello, not DICOM")
    _fails(capsys, tmp_path, [tmp_path / "txt"], "no DICOM files")
    (tmp_path / "txt" / "b.dcm").write_text("hello, not DICOM either")
    _fails(capsys, tmp_path, [tmp_path / "txt"], "b.dcm is not a readable DICOM file")
    folder, _ = _ct(tmp_path)
    files = sorted(folder.iterdir())
    files[1].write_bytes(files[1].read_bytes()[:-100])
    _fails(capsys, tmp_path, [folder], files[1].name)


def test_mixed_missing_and_duplicate_slices(tmp_path, capsys):
    folder, _ = _ct(tmp_path)
    write_series(tmp_path / "b", np.zeros((2, 12, 10)), origin=(-8, -8, 60))
    for p in (tmp_path / "b").iterdir():
        shutil.copy(p, folder / f"b_{p.name}")
    _fails(capsys, tmp_path, [folder], "mixed series")
    shutil.rmtree(tmp_path / "ct")
    folder, _ = _ct(tmp_path)
    middle = next(p for p in folder.iterdir() if float(pydicom.dcmread(p).ImagePositionPatient[2]) == 14.0)
    dup = pydicom.dcmread(middle)
    middle.unlink()
    _fails(capsys, tmp_path, [folder], "missing slice")
    dup.SOPInstanceUID = pydicom.uid.generate_uid()
    dup.ImagePositionPatient[2] = 16.0
    dup.save_as(folder / "dup.dcm")
    _fails(capsys, tmp_path, [folder], "duplicate slice position")


@pytest.mark.parametrize(("pet", "tag"), [({"weight": None}, "(0010,1030) PatientWeight"),
                                          ({"start": None}, "(0018,1072) RadiopharmaceuticalStartTime")])
def test_pet_without_weight_or_injection_time(tmp_path, capsys, pet, tag):
    folder, _ = _pet(tmp_path, **pet)
    _fails(capsys, tmp_path, [folder], tag)


def test_rtstruct_problems(tmp_path, capsys):
    folder, ids = _ct(tmp_path)
    good = [square(-4.5, -0.5, -5.5, -1.5, 12.0)]
    other_frame = write_rtstruct(tmp_path / "a.dcm", ids, {"GTV": good}, frame="1.2.3.4.5")
    _fails(capsys, tmp_path, [folder, "--rtstruct", other_frame], "frame of reference")
    other_patient = write_rtstruct(tmp_path / "b.dcm", ids, {"GTV": good}, patient_id="P2")
    _fails(capsys, tmp_path, [folder, "--rtstruct", other_patient], "patient")
    rs = write_rtstruct(tmp_path / "c.dcm", ids, {"GTV": good, "Empty": [], "Far": [square(90, 99, 90, 99, 12)]})
    _fails(capsys, tmp_path, [folder, "--rtstruct", rs, "--roi", "Liver"], "['GTV', 'Empty', 'Far']")
    _fails(capsys, tmp_path, [folder, "--rtstruct", rs, "--roi", "Empty"], "no closed planar contours")
    _fails(capsys, tmp_path, [folder, "--rtstruct", rs, "--roi", "Far"], "empty mask")
    _fails(capsys, tmp_path, [folder, "--mask-out", tmp_path / "out" / "m.nii.gz"], "needs --rtstruct")


def test_nan_image_and_bad_output_name(tmp_path, capsys):
    arr = np.ones((4, 5, 6), np.float32)
    arr[2, 2, 2] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "nan.nii.gz"))
    _fails(capsys, tmp_path, [tmp_path / "nan.nii.gz"], "nan.nii.gz", "NaN")
    folder, _ = _ct(tmp_path)
    rc = main(["convert", str(folder), str(tmp_path / "out" / "img.png")])
    assert rc != 0 and "unsupported format" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_real_process_prints_one_line(tmp_path):
    """Outside pytest's log capture too: a failure prints exactly one stderr line."""
    folder, ids = _pet(tmp_path)
    rs = write_rtstruct(tmp_path / "rs.dcm", ids, {"GTV": []})
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    run = subprocess.run([sys.executable, "-m", "chmfl.cli", "convert", str(folder), str(tmp_path / "o.nii.gz"),
                          "--rtstruct", str(rs)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [run.stderr.strip()] and "no closed planar" in run.stderr
    assert not (tmp_path / "o.nii.gz").exists()


@pytest.mark.parametrize("patient", ["STS_001", "STS_019"])
def test_real_sts_patients_ct_and_pet_end_to_end(sts_dir, tmp_path, capsys, patient):
    base, out = sts_dir / patient, tmp_path / "out"
    for modality, roi in (("CT", "GTV_Mass_CT"), ("PET", "GTV_Mass_PET")):
        rc = main(["convert", str(base / modality / "image"), str(out / f"{modality}.nii.gz"),
                   "--rtstruct", str(base / modality / "mask" / "RS.dcm"), "--roi", roi])
        assert rc == 0, capsys.readouterr().err
    ct, pet = read_image(out / "CT.nii.gz"), read_image(out / "PET.nii.gz")
    ct_mask, pet_mask = read_image(out / "CT_mask.nii.gz"), read_image(out / "PET_mask.nii.gz")
    ct_ml = ct_mask.array.sum() * np.prod(ct.spacing) / 1000
    pet_ml = pet_mask.array.sum() * np.prod(pet.spacing) / 1000
    assert ct_ml > 1 and pet_ml > 1
    assert abs(ct_ml - pet_ml) / ct_ml < 0.25, (ct_ml, pet_ml)
    assert -200 < np.median(ct.array[ct_mask.array > 0]) < 200  # soft tissue, HU
    suv = pet.array[pet_mask.array > 0]
    assert 1.0 < suv.max() < 60 and suv.min() >= 0  # SUVbw
