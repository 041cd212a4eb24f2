"""Handcrafted features of real STS patients (DICOM -> chmfl preprocessing -> features)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from radiomics_real_cases import prepared_case

from chmfl.data.cases import CaseData
from chmfl.radiomics import feature_table
from chmfl.radiomics.extract import feature_names

PATIENTS = ("STS_001", "STS_002", "STS_003", "STS_004", "STS_005", "STS_006")


def _check(arrays, feats):
    assert len(feats) == len(feature_names("ct")) + len(feature_names("pet"))
    bad = [k for k, v in feats.items() if not math.isfinite(v)]
    assert not bad, f"{arrays.patient_id}: non-finite {bad}"
    inside = arrays.mask > 0
    assert feats["pet_firstorder_Maximum"] == pytest.approx(float(arrays.pet_suv[inside].max()), rel=1e-6)
    assert feats["shape_VoxelVolume"] == pytest.approx(inside.sum() * np.prod(arrays.spacing))
    assert 0.3 < feats["shape_Solidity"] <= 1.0 + 1e-9
    assert -200 < feats["ct_firstorder_Median"] < 200  # soft tissue in HU


def test_one_patient_at_4mm(sts_dir):
    arrays = prepared_case(sts_dir / "STS_002", 4.0)
    table = feature_table([CaseData("STS_002", None, arrays=arrays)])
    _check(arrays, table.loc["STS_002"].to_dict())


@pytest.mark.slow  # ~45 s: reading six DICOM studies dominates
def test_six_patients_at_4mm(sts_dir):
    cases = [CaseData(p, None, arrays=prepared_case(sts_dir / p, 4.0)) for p in PATIENTS]
    assert cases[0].load().ct_hu.shape == (36, 28, 28)
    table = feature_table(cases)
    assert list(table.index) == list(PATIENTS)
    for case in cases:
        _check(case.load(), table.loc[case.patient_id].to_dict())


@pytest.mark.slow
def test_one_patient_at_1mm(sts_dir):
    arrays = prepared_case(sts_dir / "STS_002", 1.0)
    assert arrays.ct_hu.shape == (144, 112, 112)
    t0 = time.perf_counter()
    table = feature_table([CaseData("STS_002", None, arrays=arrays)])
    assert time.perf_counter() - t0 < 120
    _check(arrays, table.loc["STS_002"].to_dict())
