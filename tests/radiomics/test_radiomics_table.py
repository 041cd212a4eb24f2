"""case_features / feature_table: naming, memo, disk cache, keys."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chmfl.data.cases import CaseData
from chmfl.preprocess.cache_format import CaseArrays, save_case
from chmfl.radiomics import table as tbl
from chmfl.radiomics.extract import feature_names


def _arrays(pid: str, seed: int, radius: float = 3.0) -> CaseArrays:
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[:12, :12, :12] - 5.5
    mask = (zz**2 + yy**2 + xx**2 <= radius**2).astype(np.uint8)
    pet = (1 + 5 * mask + rng.normal(0, 0.3, mask.shape)).astype(np.float32)
    ct = (40 * mask + rng.normal(0, 10, mask.shape)).astype(np.float32)
    return CaseArrays(pid, ct, pet, ct, pet, mask, (2.0, 2.0, 2.0), (0.0, 0.0, 0.0))


@pytest.fixture
def counting(monkeypatch):
    tbl.clear_memo()
    calls = []
    real = tbl._compute

    def spy(case):
        calls.append(case.patient_id)
        return real(case)

    monkeypatch.setattr(tbl, "_compute", spy)
    yield calls
    tbl.clear_memo()


def test_case_features_names():
    feats = tbl.case_features(_arrays("A", 0))
    shape = [k for k in feats if k.startswith("shape_")]
    assert len(shape) == sum(k.startswith("shape_") for k in feature_names("ct"))
    assert len([k for k in feats if k.startswith("ct_")]) == len(feature_names("ct")) - len(shape)
    assert len([k for k in feats if k.startswith("pet_")]) == len(feature_names("pet"))
    assert feats["pet_firstorder_Maximum"] > feats["pet_firstorder_Mean"] > 1.0
    assert all(math.isfinite(v) for v in feats.values())


def test_table_memo_and_disk_cache(tmp_path, counting):
    cases = [CaseData(f"P{i}", i % 2, arrays=_arrays(f"P{i}", i)) for i in range(3)]
    first = tbl.feature_table(cases, cache_dir=tmp_path)
    assert list(first.index) == ["P0", "P1", "P2"] and first.index.name == "patient_id"
    assert counting == ["P0", "P1", "P2"]
    again = tbl.feature_table(cases[::-1], cache_dir=tmp_path)  # memo: nothing recomputed
    assert counting == ["P0", "P1", "P2"] and list(again.index) == ["P2", "P1", "P0"]
    tbl.clear_memo()
    from_disk = tbl.feature_table(cases, cache_dir=tmp_path)  # disk: nothing recomputed
    assert counting == ["P0", "P1", "P2"]
    np.testing.assert_allclose(from_disk.to_numpy(), first.to_numpy())
    assert len(list(tmp_path.glob("*.json"))) == 3


def test_changed_content_is_recomputed(tmp_path, counting):
    path = tmp_path / "P0.npz"
    save_case(path, _arrays("P0", 0))
    case = CaseData("P0", 1, path=path)
    key = tbl.case_key(case)
    tbl.feature_table([case])
    save_case(path, _arrays("P0", 0, radius=4.0))  # a re-prepared cache file
    assert tbl.case_key(case) != key
    table = tbl.feature_table([case])
    assert counting == ["P0", "P0"] and table.loc["P0", "shape_VoxelVolume"] > 0
    mem_a, mem_b = CaseData("X", 0, arrays=_arrays("X", 1)), CaseData("X", 0, arrays=_arrays("X", 2))
    assert tbl.case_key(mem_a) != tbl.case_key(mem_b)  # in-memory cases are keyed by content


def test_nan_for_cases_without_contour(counting):
    a = _arrays("E", 0)
    a.mask = np.zeros_like(a.mask)
    table = tbl.feature_table([CaseData("E", 0, arrays=a), CaseData("F", 1, arrays=_arrays("F", 1))])
    assert table.loc["E"].isna().all() and table.loc["F"].notna().all()


@pytest.mark.slow  # starting worker processes takes ~15 s here
def test_parallel_matches_serial(counting):
    cases = [CaseData(f"Q{i}", 0, arrays=_arrays(f"Q{i}", 10 + i)) for i in range(2)]
    serial = tbl.feature_table(cases)
    tbl.clear_memo()
    parallel = tbl.feature_table(cases, n_jobs=2)
    np.testing.assert_allclose(parallel.to_numpy(), serial.to_numpy())
