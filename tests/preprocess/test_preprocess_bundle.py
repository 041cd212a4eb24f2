"""The demo bundle in the package equals a fresh ``prepare`` of the same patients."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from chmfl.data.cases import load_cases, load_manifest
from chmfl.preprocess.bundle import BUNDLE_CONFIG, demo_cache_dir
from chmfl.preprocess.cache_format import load_case
from chmfl.preprocess.prepare import prepare_cohort

BUNDLE = demo_cache_dir()
pytestmark = pytest.mark.skipif(not (BUNDLE / "manifest.csv").is_file(),
                                reason="no demo bundle in src/chmfl/demo_data (run 'chmfl data bundle')")
PATIENTS = ("STS_012", "STS_019", "STS_051")


def test_bundle_content():
    df = load_manifest(BUNDLE)
    assert len(df) == 51
    assert ((df.dm == 1).sum(), (df.dm == 0).sum(), df.dm.isna().sum()) == (24, 24, 3)
    assert (df.lung_mets == 1).sum() == 19
    assert df.dmfs_days.notna().sum() == 51 and (df.dmfs_event == 1).sum() == 24  # DM-free survival
    doc = yaml.safe_load((BUNDLE / "prepare_config.yaml").read_text())
    assert doc["config_hash"] == BUNDLE_CONFIG.hash() and "/" not in doc["source"]
    licence = (BUNDLE / "LICENSE.txt").read_text()
    for needle in ("CC BY 3.0", "10.7937/K9/TCIA.2015.7GO2GSKS", "60(14):5471", "Clark"):
        assert needle in licence
    cases = load_cases(BUNDLE)
    assert len(cases) == 48
    first = cases[0].load()
    assert first.ct.shape == (36, 28, 28) and first.mask.sum() > 0
    size = sum(p.stat().st_size for p in BUNDLE.rglob("*") if p.is_file())
    assert size < 8e6


def test_bundle_carries_the_full_contour_table():
    """features.csv: IBSI features of the whole contour of all 51 patients (chmfl features on the raw DICOM)."""
    long = pd.read_csv(BUNDLE / "features.csv", dtype={"patient_id": str})
    assert long["patient_id"].nunique() == 51 and set(long["modality"]) == {"CT", "PET"}
    doc = yaml.safe_load((BUNDLE / "features.params.yaml").read_text())
    assert "/" not in doc["source"] and doc["interpolation"]["pet"]["voxel_mm"] == 3.0
    cases = load_cases(BUNDLE)
    assert {c.feature_source for c in cases} == {f"contour:{doc['params_hash']}"}
    big = next(c for c in cases if c.patient_id == "STS_013")  # the box keeps 67 % of this tumour
    inside = big.load().mask.sum() * 64.0
    assert big.features["ct_morph_vol_approx"] > 1.4 * inside


def test_bundle_matches_a_fresh_prepare(sts_dir, clinical_xlsx, tmp_path):
    src = tmp_path / "src"
    for pid in PATIENTS:
        shutil.copytree(sts_dir / pid, src / pid)
    fresh = prepare_cohort(src, tmp_path / "cache", clinical_xlsx, BUNDLE_CONFIG, progress=False)
    bundled = load_manifest(BUNDLE).set_index("patient_id")
    for row in fresh.manifest.itertuples():
        a = load_case(tmp_path / "cache" / row.path)
        b = load_case(BUNDLE / bundled.loc[row.patient_id, "path"])
        for key in ("ct", "pet", "ct_hu", "pet_suv", "mask"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=f"{row.patient_id} {key}")
        assert a.origin == b.origin and a.spacing == b.spacing
        for col in ("dm", "dmfs_days", "dmfs_event", "followup_days", "age_years", "histology_group"):
            want, got = getattr(row, col), bundled.loc[row.patient_id, col]
            assert (pd.isna(want) and pd.isna(got)) or want == got, (row.patient_id, col)


def test_bundle_survival_cohort_and_horizon_labels():
    from chmfl.data.cases import load_horizon_cases

    cases = load_cases(BUNDLE, endpoint="dm-free-survival")
    assert len(cases) == 51 and sum(c.event for c in cases) == 24
    assert all(c.label == c.event and c.time_days > 0 and c.covariates is not None for c in cases)
    binary = {c.patient_id: c for c in load_cases(BUNDLE)}
    assert all(binary[c.patient_id].label == c.event for c in cases if c.patient_id in binary)
    kept, counts = load_horizon_cases(BUNDLE, 730)
    assert (counts["dm"], counts["no_dm"], counts["unknown"]) == (23, 16, 9) and len(kept) == 39
    assert "STS_002" in counts["unknown_ids"]  # no DM, followed 486 days from PET
    assert {c.patient_id: c.label for c in kept}["STS_026"] == 0  # DM at 1192 days: free at 2 years
