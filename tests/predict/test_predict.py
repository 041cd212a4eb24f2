"""Predicting a new patient from a saved model: real DICOM, no contour, mask on the CT grid,
DICOM SEG that reads back, clean refusals."""

from __future__ import annotations

import json

import numpy as np
import pydicom
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
