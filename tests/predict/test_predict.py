"""Predicting a new patient from a saved model: real DICOM, no contour, mask on the CT grid,
DICOM SEG that reads back, clean refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pydicom
import pytest
from tests.predict.conftest import _small_cache

from chmfl.cli.main import main
from chmfl.cv.runner import RunOptions
from chmfl.cv.train import train_final
from chmfl.io.imageio import read_image, write_image


def test_real_dicom_patient_without_contour(model_dir, sts_dir, tmp_path, capsys):
    ct_dir, pet_dir = sts_dir / "STS_001" / "CT" / "image", sts_dir / "STS_001" / "PET" / "image"
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model_dir), "--pet", str(pet_dir), "--ct", str(ct_dir),
                 "--out", str(out)]) == 0
    rec = json.loads((out / "prediction.json").read_text())
    assert rec["patient_id"] == "STS_001" and 0.0 <= rec["probability"] <= 1.0
    assert rec["preprocessing"]["center_method"] == "hotspot"  # no contour given
    ct = read_image(ct_dir)
    mask = read_image(out / "mask.nii.gz")
    assert mask.shape == ct.shape
    np.testing.assert_allclose(mask.spacing, ct.spacing, atol=1e-4)
    np.testing.assert_allclose(mask.origin, ct.origin, atol=1e-3)
    np.testing.assert_allclose(mask.direction, ct.direction, atol=1e-6)
    text = json.dumps(rec)
    assert "Name" not in text and "BirthDate" not in text
    if rec.get("dicom_seg"):
        import highdicom as hd

        seg = hd.seg.segread(out / "mask_seg.dcm")
        ds = pydicom.dcmread(out / "mask_seg.dcm")
        assert ds.Modality == "SEG" and ds.PatientID == "STS_001"
        arr = seg.get_volume().array if hasattr(seg, "get_volume") else None
        assert arr is None or arr.sum() == mask.array.sum()


def test_nifti_inputs_and_given_centre(model_dir, sts_dir, tmp_path):
    ct = read_image(sts_dir / "STS_002" / "CT" / "image")
    pet = read_image(sts_dir / "STS_002" / "PET" / "image")
    write_image(ct, tmp_path / "ct.nii.gz")
    write_image(pet, tmp_path / "pet.nii.gz")
    centre = ct.index_to_physical(np.array(ct.shape) / 2)
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model_dir), "--pet", str(tmp_path / "pet.nii.gz"),
                 "--ct", str(tmp_path / "ct.nii.gz"), "--center", ",".join(f"{v:.2f}" for v in centre),
                 "--patient-id", "P2", "--out", str(out)]) == 0
    rec = json.loads((out / "prediction.json").read_text())
    assert rec["patient_id"] == "P2" and rec["preprocessing"]["center_method"] == "given"
    assert read_image(out / "mask.nii.gz").shape == ct.shape
    assert not (out / "mask_seg.dcm").exists()  # the CT was not DICOM


def test_not_a_model_is_refused_cleanly(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("[1, 2]")
    (tmp_path / "ct.nii.gz").write_bytes(b"")
    out = tmp_path / "pred"
    rc = main(["predict", "--model", str(tmp_path / "m"), "--pet", str(tmp_path / "ct.nii.gz"),
               "--ct", str(tmp_path / "ct.nii.gz"), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "not a chmfl model" in err
    assert not out.exists()


def test_survival_model_writes_risk_and_dm_free_probabilities(sts_dir, tmp_path):
    """A Cox model trained with 'chmfl train' predicts a new patient's risk score and its
    DM-free probabilities at 1, 2 and 3 years from the PET scan."""
    cache = _small_cache(tmp_path / "cache")
    model = train_final("cox-suvmax-volume", cache, tmp_path / "model", RunOptions(progress=False))
    pdir = sts_dir / "STS_001"
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model), "--pet", str(pdir / "PET" / "image"),
                 "--ct", str(pdir / "CT" / "image"), "--rtstruct", str(pdir / "CT" / "mask" / "RS.dcm"),
                 "--out", str(out)]) == 0
    rec = json.loads((out / "prediction.json").read_text())
    assert "probability" not in rec and np.isfinite(rec["risk"]) and rec["endpoint"] == "dm-free-survival"
    s = [rec["dm_free_probability"][k] for k in ("365d", "730d", "1095d")]
    assert 0.0 <= s[2] <= s[1] <= s[0] <= 1.0


def _refused(capsys, args, out, *words) -> str:
    rc = main(["predict", *map(str, args), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("chmfl: error: "), err
    for word in words:
        assert word in err[0], err[0]
    assert not out.exists(), list(out.rglob("*"))
    return err[0]


@pytest.mark.parametrize("pet_from, ct_from, words", [
    ("CT", "PET", ("--ct", "DICOM Modality is PT", "expected CT")),  # swapped
    ("CT", "CT", ("same folder",)),  # the CT given twice
    ("PET", "PET", ("same folder",)),  # the PET given twice
])
def test_wrong_modality_dicom_is_refused(model_dir, sts_dir, tmp_path, capsys, pet_from, ct_from, words):
    """Swapped, the model said P(DM) = 0.99999 for STS_001 (0.444 the right way round)."""
    patient = sts_dir / "STS_001"
    _refused(capsys, ["--model", model_dir, "--pet", patient / pet_from / "image",
                      "--ct", patient / ct_from / "image"], tmp_path / "pred", *words)


def test_a_copy_of_the_ct_given_as_the_pet_is_refused(model_dir, sts_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(sts_dir / "STS_001" / "CT" / "image", copy)
    _refused(capsys, ["--model", model_dir, "--pet", copy, "--ct", sts_dir / "STS_001" / "CT" / "image"],
             tmp_path / "pred", "--pet", "DICOM Modality is CT", "expected PT")


def test_wrong_modality_nifti_is_refused_by_values(model_dir, sts_dir, tmp_path, capsys):
    for name in ("CT", "PET"):
        write_image(read_image(sts_dir / "STS_003" / name / "image"), tmp_path / f"{name}.nii.gz")
    ct, pet = tmp_path / "CT.nii.gz", tmp_path / "PET.nii.gz"
    _refused(capsys, ["--model", model_dir, "--pet", ct, "--ct", pet], tmp_path / "pred",
             f"--ct {pet}", "not a CT in HU", "no air")
    shutil.copy(ct, tmp_path / "CT2.nii.gz")
    _refused(capsys, ["--model", model_dir, "--pet", tmp_path / "CT2.nii.gz", "--ct", ct], tmp_path / "pred",
             "--pet", "not a PET in SUV")


def test_a_train_output_folder_works_as_the_model(model_dir, sts_dir, tmp_path):
    """'chmfl train --out OUT' prints OUT/model; OUT itself is accepted too."""
    assert model_dir.name == "model"
    patient = sts_dir / "STS_001"
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model_dir.parent), "--pet", str(patient / "PET" / "image"),
                 "--ct", str(patient / "CT" / "image"), "--out", str(out)]) == 0
    assert json.loads((out / "prediction.json").read_text())["model"]["path"] == str(model_dir.resolve())


def test_prediction_logs_one_line_per_fact(model_dir, sts_dir, tmp_path, caplog, recwarn):
    """Nine highdicom INFO lines per prediction, pydicom's 'value length exceeds 16 for VR SH'
    (StudyID 'IBSI_1_STS_002_CT'), highdicom's PersonName warning for 'STS_002', and weight,
    height and sex in the SUV line: all gone; the DICOM SEG holds valid values instead."""
    import logging

    caplog.set_level(logging.INFO)
    patient = sts_dir / "STS_002"
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model_dir), "--pet", str(patient / "PET" / "image"),
                 "--ct", str(patient / "CT" / "image"), "--out", str(out)]) == 0
    assert not [r for r in caplog.records if r.name.startswith(("highdicom", "lightning"))]
    assert not [str(w.message) for w in recwarn if "pydicom" in w.filename or "highdicom" in w.filename]
    suv = [r.getMessage() for r in caplog.records if "PET to SUV" in r.getMessage()]
    assert len(suv) == 1 and not any(k in suv[0] for k in ("weight", "height", "sex"))
    if (out / "mask_seg.dcm").exists():
        ds = pydicom.dcmread(out / "mask_seg.dcm")
        assert str(ds.PatientName) == "STS_002^" and ds.StudyID == "IBSI_1_STS_002_C"
