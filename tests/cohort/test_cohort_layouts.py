"""Layout detection and the patients found in each layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from chmfl.cohort.clinical import NO_RECORD, ClinicalRecord
from chmfl.cohort.layouts import attach_labels, default_clinical, detect_layout, find_cases
from chmfl.errors import ChmflError


def _nifti(path: Path, shape=(8, 8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros(shape, np.float32)), str(path))


def test_ibsi_release(sts_dir):
    assert detect_layout(sts_dir) == "ibsi"
    cases = find_cases(sts_dir)
    assert [c.patient_id for c in cases] == [f"STS_{i:03d}" for i in range(1, 52)]
    for case in cases:
        assert case.ct.name == "image" and case.ct.parent.name == "CT"
        assert {m.drawn_on for m in case.masks} == {"ct", "pet"}
        assert case.mask_for("pet").path.parent.parent.name == "PET"
        assert all(m.kind == "rtstruct" for m in case.masks)


def test_nnunet_layout(tmp_path):
    for cid in ("c1", "c2"):
        _nifti(tmp_path / "imagesTr" / f"{cid}_0000.nii.gz")
        _nifti(tmp_path / "imagesTr" / f"{cid}_0001.nii.gz")
    _nifti(tmp_path / "labelsTr" / "c1.nii.gz")
    _nifti(tmp_path / "imagesTs" / "t1_0000.nii.gz")
    _nifti(tmp_path / "imagesTs" / "t1_0001.nii.gz")
    (tmp_path / "labels.csv").write_text("patient_id,dm\nc1,1\n")
    assert detect_layout(tmp_path) == "nnunet"
    cases = {c.patient_id: c for c in find_cases(tmp_path)}
    assert sorted(cases) == ["c1", "c2", "t1"]
    assert cases["c1"].ct.name == "c1_0000.nii.gz" and cases["c1"].pet.name == "c1_0001.nii.gz"
    assert cases["c1"].masks[0].path.name == "c1.nii.gz" and cases["c1"].masks[0].kind == "labelmap"
    assert cases["c2"].masks == () and cases["t1"].mask_for("ct") is None
    assert default_clinical(tmp_path) == tmp_path / "labels.csv"


def test_nnunet_missing_channel(tmp_path):
    _nifti(tmp_path / "imagesTr" / "c1_0000.nii.gz")
    with pytest.raises(ChmflError, match="c1 .* needs _0000 .CT. and _0001 .PET."):
        find_cases(tmp_path)


def test_empty_and_unknown_layouts(tmp_path):
    with pytest.raises(ChmflError, match="source folder is empty"):
        detect_layout(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ChmflError, match="unknown layout"):
        detect_layout(tmp_path)
    with pytest.raises(ChmflError, match="not found"):
        detect_layout(tmp_path / "absent")


def test_ibsi_patient_without_pet(tmp_path):
    (tmp_path / "P1" / "CT" / "image").mkdir(parents=True)
    with pytest.raises(ChmflError, match="P1 has no PET/image"):
        find_cases(tmp_path)


def test_attach_labels_marks_missing_records(tmp_path):
    for cid in ("a", "b"):
        _nifti(tmp_path / "imagesTr" / f"{cid}_0000.nii.gz")
        _nifti(tmp_path / "imagesTr" / f"{cid}_0001.nii.gz")
    cases = attach_labels(find_cases(tmp_path), {"a": ClinicalRecord("a", 1)})
    assert cases[0].labels.dm == 1
    assert cases[1].labels.dm is None and cases[1].labels.exclusion == NO_RECORD
