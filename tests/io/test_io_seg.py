"""DICOM SEG writing: read back with highdicom/pydicom gives the same mask on the same slices."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest
from io_factory import SECRET_ADDRESS, SECRET_BIRTH, SECRET_NAME, new_ids, write_series

from chmfl.errors import ChmflError
from chmfl.io.dicom import read_dicom_series
from chmfl.io.rtstruct import read_rtstruct_mask
from chmfl.io.seg import write_dicom_seg
from chmfl.io.volume import Volume


def _read_back(path, ct: Volume) -> np.ndarray:
    seg = hd.seg.segread(path)
    frames = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=ct.meta["sop_instance_uids"], segment_numbers=[1])
    return frames[..., 0]  # (slices, rows, columns)


def test_seg_round_trip_on_a_synthetic_ct(tmp_path):
    ids = new_ids("P42")
    pixels = np.random.default_rng(2).integers(-100, 100, size=(5, 12, 10))
    write_series(tmp_path / "ct", pixels, ids=ids)
    ct = read_dicom_series(tmp_path / "ct")
    mask = np.zeros(ct.shape, np.uint8)
    mask[1:4, 3:9, 2:6] = 1
    mask[2, 5, 3] = 0
    out = write_dicom_seg(ct.with_array(mask), tmp_path / "ct", tmp_path / "out" / "seg.dcm", label="GTV")
    np.testing.assert_array_equal(_read_back(out, ct), mask)
    ds = pydicom.dcmread(out)
    assert ds.Modality == "SEG" and ds.SegmentSequence[0].SegmentLabel == "GTV"
    assert ds.FrameOfReferenceUID == ids["frame"] and ds.PatientID == "P42"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == ids["series"]
    raw = out.read_bytes()
    for secret in (SECRET_NAME, "Secretname", SECRET_BIRTH, SECRET_ADDRESS):
        assert secret.encode() not in raw
    assert [p.name for p in out.parent.iterdir()] == ["seg.dcm"]


def test_seg_refuses_other_grids_and_empty_masks(tmp_path):
    write_series(tmp_path / "ct", np.zeros((4, 8, 8)))
    ct = read_dicom_series(tmp_path / "ct")
    with pytest.raises(ChmflError, match="does not match the series"):
        write_dicom_seg(Volume(np.ones((4, 8, 7), np.uint8), ct.spacing, ct.origin), tmp_path / "ct",
                        tmp_path / "a.dcm")
    with pytest.raises(ChmflError, match="mask is empty"):
        write_dicom_seg(ct.with_array(np.zeros(ct.shape, np.uint8)), tmp_path / "ct", tmp_path / "b.dcm")
    assert not (tmp_path / "a.dcm").exists() and not (tmp_path / "b.dcm").exists()


@pytest.mark.slow
def test_seg_round_trip_on_a_real_ct(sts_dir, tmp_path):
    patient = sts_dir / "STS_001"
    ct = read_dicom_series(patient / "CT" / "image")
    mask = read_rtstruct_mask(patient / "CT" / "mask" / "RS.dcm", ct, "GTV_Mass_CT")
    out = write_dicom_seg(mask, patient / "CT" / "image", tmp_path / "seg.dcm")
    np.testing.assert_array_equal(_read_back(out, ct), mask.array)


def test_seg_of_an_sts_patient_is_valid_dicom(sts_dir, tmp_path):
    """The IBSI release's StudyID 'IBSI_1_STS_002_CT' (17 characters, SH allows 16) and the
    one-component name 'STS_002' made pydicom and highdicom warn, and dciodvfy report an error
    and the retired PN form: the SEG now holds values DICOM allows, with no warning."""
    import shutil
    import subprocess
    import warnings

    ct_dir = sts_dir / "STS_002" / "CT" / "image"
    ct = read_dicom_series(ct_dir)
    mask = np.zeros(ct.shape, np.uint8)
    mask[ct.shape[0] // 2, 100:120, 100:120] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = write_dicom_seg(ct.with_array(mask), ct_dir, tmp_path / "seg.dcm")
    ds = pydicom.dcmread(out)
    assert str(ds.PatientName) == "STS_002^" and ds.StudyID == "IBSI_1_STS_002_C"
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    report = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True).stderr
    assert not [ln for ln in report.splitlines() if ln.startswith(("Error", "Warning"))], report
