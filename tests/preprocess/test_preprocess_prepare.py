"""``prepare_cohort`` and ``chmfl data prepare``: manifest, cache reuse, failures, real patients."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from prep_synth import nnunet_cohort

from chmfl.cli.main import main
from chmfl.cohort.clinical import NO_RECORD
from chmfl.data.cases import load_cases
from chmfl.errors import ChmflError
from chmfl.preprocess.cache_format import load_case
from chmfl.preprocess.config import PrepareConfig
from chmfl.preprocess.prepare import prepare_cohort
from chmfl.radiomics.contour import load_contour_params

CONFIG = PrepareConfig(voxel_mm=4.0)
REAL = ("STS_012", "STS_019", "STS_051")  # small patients: DM, no DM, excluded (recurrence)


@pytest.fixture
def cohort(tmp_path):
    return nnunet_cohort(tmp_path / "src", labels={"p1": 1, "p2": 0})  # p3 has no record


def test_manifest_and_cache(cohort, tmp_path):
    out = tmp_path / "cache"
    result = prepare_cohort(cohort, out, config=CONFIG, progress=False)
    df = result.manifest
    assert list(df.patient_id) == ["p1", "p2", "p3"]
    assert df.dm.tolist()[:2] == [1, 0] and df.dm.isna().tolist() == [False, False, True]
    assert df.exclusion.fillna("").tolist() == ["", "", NO_RECORD]
    for col in ("lung_mets", "event", "time_days", "path", "pad_fraction_ct"):
        assert col in df.columns
    cases = load_cases(out)
    assert [(c.patient_id, c.label) for c in cases] == [("p1", 1), ("p2", 0)]
    arrays = cases[0].load()
    assert arrays.ct.shape == (36, 28, 28) and arrays.mask.sum() > 0
    assert (out / CONFIG.hash() / "p3.npz").is_file()  # excluded patients are prepared too
    doc = yaml.safe_load((out / "prepare_config.yaml").read_text())
    assert doc["config_hash"] == CONFIG.hash() and doc["layout"] == "nnunet"
    assert PrepareConfig.from_dict(doc["config"]) == CONFIG and doc["chmfl_version"]
    assert doc["source"] == str(cohort.resolve())


def test_same_config_reuses_the_cache(cohort, tmp_path):
    out = tmp_path / "cache"
    first = prepare_cohort(cohort, out, config=CONFIG, progress=False)
    files = sorted((out / CONFIG.hash()).glob("*.npz"))
    stamps = [f.stat().st_mtime_ns for f in files]
    second = prepare_cohort(cohort, out, config=CONFIG, progress=False)
    assert sorted(first.computed) == ["p1", "p2", "p3"] and second.computed == []
    assert second.reused == ["p1", "p2", "p3"]
    assert [f.stat().st_mtime_ns for f in files] == stamps
    # a changed input file (other size) is prepared again, the others are reused
    ct = sitk.ReadImage(str(cohort / "imagesTr" / "p2_0000.nii.gz"))
    sitk.WriteImage(sitk.Cast(ct, sitk.sitkFloat32), str(cohort / "imagesTr" / "p2_0000.nii.gz"))
    third = prepare_cohort(cohort, out, config=CONFIG, progress=False)
    assert third.computed == ["p2"]
    window = PrepareConfig.from_dict({"voxel_mm": 4.0, "intensity": {"mode": "window"}})
    other = prepare_cohort(cohort, out, config=window, progress=False)
    assert len(other.computed) == 3 and len(list(out.glob("*/p1.npz"))) == 2


def test_two_workers_give_the_same_arrays(cohort, tmp_path):
    one = prepare_cohort(cohort, tmp_path / "a", config=CONFIG, progress=False)
    two = prepare_cohort(cohort, tmp_path / "b", config=CONFIG, workers=2, progress=False)
    assert sorted(two.computed) == sorted(one.computed)
    a, b = load_case(tmp_path / "a" / one.manifest.path[1]), load_case(tmp_path / "b" / two.manifest.path[1])
    np.testing.assert_array_equal(a.ct, b.ct)
    np.testing.assert_array_equal(a.mask, b.mask)


def _poison(cohort):
    path = cohort / "imagesTr" / "p2_0001.nii.gz"
    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img)
    arr[0, 0, 0] = np.nan
    bad = sitk.GetImageFromArray(arr)
    bad.CopyInformation(img)
    sitk.WriteImage(bad, str(path))


def test_failing_patient_leaves_no_cache(cohort, tmp_path):
    _poison(cohort)
    out = tmp_path / "cache"
    with pytest.raises(ChmflError, match="p2.*(NaN|not finite|infinite)") as err:
        prepare_cohort(cohort, out, config=CONFIG, progress=False)
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_skip_bad_lists_the_failure(cohort, tmp_path):
    _poison(cohort)
    result = prepare_cohort(cohort, tmp_path / "cache", config=CONFIG, skip_bad=True, progress=False)
    row = result.manifest.set_index("patient_id").loc["p2"]
    assert pd.isna(row.dm) and row.exclusion.startswith("prepare failed") and pd.isna(row.path)
    assert list(result.failed) == ["p2"]
    assert [c.patient_id for c in load_cases(tmp_path / "cache")] == ["p1"]


def test_cli_prepare_and_errors(cohort, tmp_path, capsys):
    out = tmp_path / "cache"
    assert main(["data", "prepare", str(cohort), "--out", str(out), "--voxel-mm", "4", "--no-progress",
                 "--intensity", "window"]) == 0
    printed = capsys.readouterr().out
    assert "3 patients: 1 DM, 1 no DM, 1 excluded" in printed and "features: 3 patients" in printed
    assert {c.feature_source for c in load_cases(out)} == {f"contour:{load_contour_params().hash()}"}
    (tmp_path / "empty").mkdir()
    assert main(["data", "prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "c2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "source folder is empty" in err
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("pid,outcome\np1,1\n")  # id,label are accepted aliases
    assert main(["data", "prepare", str(cohort), "--out", str(tmp_path / "c3"), "--clinical", str(bad_csv)]) == 2
    assert "lacks column" in capsys.readouterr().err and not (tmp_path / "c3").exists()


@pytest.fixture(scope="module")
def real_source(sts_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("sts3")
    for pid in REAL:
        shutil.copytree(sts_dir / pid, root / pid)
    return root


def test_real_patients_end_to_end(real_source, clinical_xlsx, tmp_path, capsys):
    out = tmp_path / "cache"
    assert main(["data", "prepare", str(real_source), "--out", str(out), "--clinical", str(clinical_xlsx),
                 "--voxel-mm", "4", "--workers", "1", "--no-progress"]) == 0
    df = load_cases(out, include_excluded=True)
    assert [(c.patient_id, c.label) for c in df] == [("STS_012", 1), ("STS_019", 0), ("STS_051", None)]
    for c in df:
        a = c.load()
        assert a.ct.shape == (36, 28, 28) and a.mask.dtype == np.uint8
        inside = a.mask.astype(bool)
        assert 0.5 < inside.sum() * 64 / 1000 / a.meta["mask_volume_ml"] < 1.5
        assert a.pet_suv[inside].mean() > 1.5 * a.pet_suv[~inside].mean()  # FDG-avid tumour
        assert -200 < np.median(a.ct_hu[inside]) < 200  # soft tissue
        centre = np.asarray(a.volume("mask").index_to_physical(np.argwhere(inside).mean(0)))
        assert np.linalg.norm(centre - np.asarray(a.center)) < 2.0
        # the full-contour feature table written with the cache: the whole contour, not the box
        assert c.feature_source.startswith("contour:") and c.features["ct_morph_volume"] > 0
        assert c.features["ct_morph_vol_approx"] / 1000 == pytest.approx(a.meta["mask_volume_ml"], rel=0.05)
    assert (out / "features.csv").is_file() and (out / "features.params.yaml").is_file()


def _ibsi_with(root, sts_dir, pid, ct_from, pet_from):
    """An IBSI-layout cohort of one real patient whose CT/ and PET/ folders hold the given series."""
    for folder, source in (("CT", ct_from), ("PET", pet_from)):
        shutil.copytree(sts_dir / pid / source / "image", root / pid / folder / "image")
    return root


@pytest.mark.parametrize("ct_from, pet_from, words", [
    ("PET", "CT", ("CT ", "DICOM Modality is PT", "expected CT")),  # swapped
    ("CT", "CT", ("PET ", "DICOM Modality is CT", "expected PT")),  # the CT twice
    ("PET", "PET", ("CT ", "DICOM Modality is PT")),  # the PET twice
])
def test_wrong_modality_in_the_cohort_is_refused(sts_dir, tmp_path, capsys, ct_from, pet_from, words):
    src = _ibsi_with(tmp_path / "src", sts_dir, "STS_012", ct_from, pet_from)
    out = tmp_path / "cache"
    assert main(["data", "prepare", str(src), "--out", str(out), "--voxel-mm", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chmfl: error: patient STS_012: "), err
    for word in words:
        assert word in err[0], err[0]
    assert not out.exists()


def test_swapped_nifti_channels_are_refused_by_values(cohort, tmp_path, capsys):
    images = cohort / "imagesTr"
    (images / "p2_0000.nii.gz").rename(images / "tmp.nii.gz")
    (images / "p2_0001.nii.gz").rename(images / "p2_0000.nii.gz")
    (images / "tmp.nii.gz").rename(images / "p2_0001.nii.gz")
    out = tmp_path / "cache"
    assert main(["data", "prepare", str(cohort), "--out", str(out), "--voxel-mm", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "patient p2: CT " in err and "not a CT in HU: no air" in err
    assert not out.exists()


def test_sheet_whose_ids_match_no_patient_is_refused(real_source, clinical_xlsx, tmp_path, capsys):
    """The real sheet with 'STS-012' for 'STS_012': every patient was excluded and the run ended 0."""
    sheet = pd.read_excel(clinical_xlsx, sheet_name="Clinical Information", dtype=object)
    sheet["Patient ID"] = sheet["Patient ID"].astype(str).str.replace("_", "-")
    sheet.to_excel(tmp_path / "dashes.xlsx", sheet_name="Clinical Information", index=False)
    out = tmp_path / "cache"
    assert main(["data", "prepare", str(real_source), "--out", str(out), "--clinical",
                 str(tmp_path / "dashes.xlsx"), "--voxel-mm", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "matches a patient of the images" in err
    assert "did you mean 'STS_012' for 'STS-012'" in err
    assert not out.exists()
