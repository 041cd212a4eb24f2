"""DICOM series reading: geometry (checked against SimpleITK), HU, meta, and every refusal."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from io_factory import (
    SECRET_ADDRESS,
    SECRET_BIRTH,
    SECRET_NAME,
    new_ids,
    square,
    write_rtstruct,
    write_series,
)

from chmfl.errors import ChmflError
from chmfl.io.dicom import read_dicom_series, scan_dicom_folder


def _pixels(nz=6, ny=12, nx=10, seed=0):
    return np.random.default_rng(seed).integers(-1000, 2000, size=(nz, ny, nx)).astype(np.int16)


@pytest.mark.parametrize(
    "iop",
    [(1, 0, 0, 0, 1, 0), (0.8, 0.6, 0, -0.6, 0.8, 0), (1, 0, 0, 0, 0, -1)],
    ids=["axial", "rotated", "coronal"],
)
def test_geometry_and_hu_match_simpleitk(tmp_path, iop):
    pixels = _pixels()
    write_series(tmp_path / "ct", pixels, iop=iop, spacing=(2.5, 0.7, 0.9), slope=2.0, intercept=-1024)
    vol = read_dicom_series(tmp_path / "ct")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "ct")))
    ref = reader.Execute()
    assert vol.shape == pixels.shape
    np.testing.assert_allclose(vol.spacing, ref.GetSpacing()[::-1], atol=1e-4)
    np.testing.assert_allclose(vol.origin, ref.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(vol.direction, ref.GetDirection(), atol=1e-5)
    np.testing.assert_array_equal(vol.array, sitk.GetArrayFromImage(ref).astype(np.float32))
    np.testing.assert_array_equal(vol.array, pixels * 2.0 - 1024)  # HU, slices sorted


def test_meta_has_uids_in_slice_order_and_no_patient_names(tmp_path):
    ids = new_ids("PAT7")
    write_series(tmp_path / "ct", _pixels(), ids=ids)
    vol = read_dicom_series(tmp_path / "ct")
    m = vol.meta
    assert (m["modality"], m["patient_id"], m["units"]) == ("CT", "PAT7", "HU")
    assert m["series_instance_uid"] == ids["series"] and m["frame_of_reference_uid"] == ids["frame"]
    assert m["study_instance_uid"] == ids["study"] and m["sop_class_uid"].endswith(".1.2")
    z = [float(pydicom.dcmread(p).ImagePositionPatient[2])
         for uid in m["sop_instance_uids"] for p in (tmp_path / "ct").iterdir()
         if pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID == uid]
    assert z == sorted(z) and len(z) == vol.shape[0]
    text = repr(m)
    for secret in (SECRET_NAME, "Secretname", SECRET_BIRTH, SECRET_ADDRESS):
        assert secret not in text


def _expect(folder, *words):
    with pytest.raises(ChmflError) as info:
        read_dicom_series(folder)
    msg = str(info.value)
    assert "\n" not in msg and str(folder) in msg
    for word in words:
        assert word in msg, msg
    return msg


def test_refuses_missing_and_empty_folders(tmp_path):
    _expect(tmp_path / "nope", "does not exist")
    (tmp_path / "empty").mkdir()
    _expect(tmp_path / "empty", "empty")
    (tmp_path / "nested" / "ct").mkdir(parents=True)
    _expect(tmp_path / "nested", "subfolders")


def test_refuses_text_files_but_ignores_a_stray_one(tmp_path, caplog):
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "notes.txt").write_text("not dicom\n" * 50)
    _expect(tmp_path / "txt", "no DICOM files")
    write_series(tmp_path / "ct", _pixels())
    (tmp_path / "ct" / "README.txt").write_text("hello")
    assert read_dicom_series(tmp_path / "ct").shape[0] == 6
    assert "non-DICOM" in caplog.text


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_refuses_truncated_file(tmp_path, keep):
    paths = write_series(tmp_path / "ct", _pixels())
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: int(len(data) * keep)])
    _expect(tmp_path / "ct", paths[2].name)


def test_refuses_mixed_series_and_modalities(tmp_path):
    write_series(tmp_path / "mix", _pixels(3))
    write_series(tmp_path / "other", _pixels(3, seed=1), origin=(-8, -8, 40))
    for p in (tmp_path / "other").iterdir():
        shutil.copy(p, tmp_path / "mix" / f"b_{p.name}")
    _expect(tmp_path / "mix", "mixed series")
    ids = new_ids()
    write_series(tmp_path / "mod", _pixels(3), ids=ids)
    ds = pydicom.dcmread(next((tmp_path / "mod").iterdir()))
    ds.Modality = "MR"
    ds.save_as(tmp_path / "mod" / "zz.dcm")
    _expect(tmp_path / "mod", "mixed modalities")


def test_refuses_missing_and_duplicate_slices(tmp_path):
    paths = write_series(tmp_path / "gap", _pixels(6))
    by_z = sorted(paths, key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))
    by_z[3].unlink()
    _expect(tmp_path / "gap", "missing slice", "median gap 2.000")
    paths = write_series(tmp_path / "dup", _pixels(4))
    ds = pydicom.dcmread(paths[0])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "dup" / "copy.dcm")
    _expect(tmp_path / "dup", "duplicate slice position")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 0.995, 0.0998]), ["ImageOrientationPatient"]),
        (lambda ds: setattr(ds, "PixelSpacing", [1.5, 1.0]), ["PixelSpacing"]),
        (lambda ds: delattr(ds, "ImagePositionPatient"), ["(0020,0032)"]),
    ],
    ids=["orientation", "spacing", "no-position"],
)
def test_refuses_inconsistent_slices(tmp_path, change, words):
    paths = write_series(tmp_path / "ct", _pixels(4))
    ds = pydicom.dcmread(paths[1])
    change(ds)
    ds.save_as(paths[1])
    _expect(tmp_path / "ct", *words)


def test_refuses_inconsistent_size_single_slice_and_tilt(tmp_path):
    write_series(tmp_path / "size", _pixels(3))
    write_series(tmp_path / "big", _pixels(1, 14, 10), ids=None, origin=(-8, -8, 16))
    ds = pydicom.dcmread(next((tmp_path / "big").iterdir()))
    ref = pydicom.dcmread(next((tmp_path / "size").iterdir()), stop_before_pixels=True)
    ds.SeriesInstanceUID = ref.SeriesInstanceUID
    ds.save_as(tmp_path / "size" / "big.dcm")
    _expect(tmp_path / "size", "inconsistent image size")
    write_series(tmp_path / "one", _pixels(1))
    _expect(tmp_path / "one", "only one image slice")
    paths = write_series(tmp_path / "tilt", _pixels(5))
    for p in paths:  # shear the stack along y as a 20 degree gantry tilt does
        ds = pydicom.dcmread(p)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + (z - 10.0) * 0.36, z]
        ds.save_as(p)
    _expect(tmp_path / "tilt", "sheared")


def test_refuses_non_image_modality(tmp_path):
    ids = new_ids()
    write_rtstruct(tmp_path / "rs" / "rs.dcm", ids, {"GTV": [square(0, 4, 0, 4, 10)]})
    _expect(tmp_path / "rs", "RTSTRUCT", "not an image series")


def test_scan_groups_series_and_reads_rtstruct_references(tmp_path):
    ids_ct = new_ids("P1")
    write_series(tmp_path / "P1" / "ct", _pixels(3), ids=ids_ct)
    write_series(tmp_path / "P1" / "pet", _pixels(4, seed=3).clip(0, None), modality="PT",
                 ids=new_ids("P1", frame=ids_ct["frame"]))
    write_rtstruct(tmp_path / "P1" / "rs" / "rs.dcm", ids_ct,
                   {"GTV_Mass_CT": [square(0, 4, 0, 4, 12)], "Body": [square(-6, 6, -6, 6, 12)]})
    (tmp_path / "P1" / "notes.txt").write_text("x")
    found = scan_dicom_folder(tmp_path)
    assert [s.modality for s in found] == ["CT", "PT", "RTSTRUCT"]
    ct, pet, rs = found
    assert len(ct.files) == 3 and len(pet.files) == 4 and ct.folder == tmp_path / "P1" / "ct"
    assert rs.referenced_series_uids == (ids_ct["series"],)
    assert rs.referenced_frame_of_reference_uids == (ids_ct["frame"],)
    assert rs.roi_names == ("GTV_Mass_CT", "Body") and rs.frame_of_reference_uid == ids_ct["frame"]
    assert {s.patient_id for s in found} == {"P1"}


def test_compressed_slices_decode_with_pydicom_or_gdcm(tmp_path, monkeypatch):
    pixels = _pixels(3)
    for path in write_series(tmp_path / "rle", pixels, slope=2.0, intercept=-1024):
        ds = pydicom.dcmread(path)
        ds.compress(pydicom.uid.RLELossless)
        ds.save_as(path)
    np.testing.assert_array_equal(read_dicom_series(tmp_path / "rle").array, pixels * 2.0 - 1024)

    def no_handler(self):
        raise RuntimeError("no pixel data handler")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(no_handler))
    np.testing.assert_array_equal(read_dicom_series(tmp_path / "rle").array, pixels * 2.0 - 1024)


def test_a_localizer_in_the_series_is_ignored(tmp_path, caplog):
    paths = write_series(tmp_path / "ct", _pixels(4))
    ds = pydicom.dcmread(paths[0])
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "ct" / "scout.dcm")
    assert read_dicom_series(tmp_path / "ct").shape == (4, 12, 10)
    assert "localizer" in caplog.text
