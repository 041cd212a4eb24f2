"""Methods read the cache's full-contour table (CACHE/features.csv) when the cases carry it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import yaml

from chmfl.data.cases import load_cases
from chmfl.errors import ChmflError
from chmfl.methods.classical import suvmax_volume
from chmfl.radiomics.table import feature_table
from chmfl.radiomics.transform import fit_feature_transform
from synthetic import make_cases, write_cache


def _with_features(cases, source="contour:abc"):
    out = []
    for k, c in enumerate(cases):
        feats = {"pet_stat_max": 5.0 + k, "ct_morph_volume": 1000.0 * (k + 1), "ct_stat_mean": float(k % 3)}
        out.append(dataclasses.replace(c, features=feats, feature_source=source))
    return out


def test_load_cases_attaches_the_cache_table(tmp_path):
    root = write_cache(tmp_path / "cache", n=4)
    rows = [(f"P{i:03d}", mod, feat, float(i) + (0.5 if mod == "PET" else 0.0))
            for i in range(5) for mod in ("CT", "PET") for feat in ("stat_max", "morph_volume")]
    pd.DataFrame(rows, columns=["patient_id", "modality", "feature", "value"]).to_csv(root / "features.csv", index=False)
    (root / "features.params.yaml").write_text(yaml.safe_dump({"params_hash": "0123456789abcdef"}))
    cases = load_cases(root)
    assert cases[2].features == {"ct_morph_volume": 2.0, "ct_stat_max": 2.0, "pet_morph_volume": 2.5, "pet_stat_max": 2.5}
    assert {c.feature_source for c in cases} == {"contour:0123456789abcdef"}
    table = feature_table(cases)
    assert table.attrs["source"] == "contour:0123456789abcdef"
    assert table.loc["P003", "pet_stat_max"] == 3.5


def test_without_a_table_the_box_is_used(tmp_path):
    cases = load_cases(write_cache(tmp_path / "cache", n=2))
    assert all(c.features is None for c in cases)
    assert suvmax_volume(cases).attrs["source"] == "box"


def test_suvmax_volume_reads_the_full_contour_table():
    cases = _with_features(make_cases(4))
    table = suvmax_volume(cases)
    assert table.attrs["source"] == "contour:abc"
    np.testing.assert_allclose(table["suvmax"], [5, 6, 7, 8])
    np.testing.assert_allclose(table["log_volume_ml"], np.log([1, 2, 3, 4]))


def test_mixed_tables_are_refused():
    cases = make_cases(4)
    mixed = _with_features(cases[:2]) + cases[2:]
    with pytest.raises(ChmflError, match="mix feature tables"):
        feature_table(mixed)


def test_a_transform_refuses_another_table():
    cases = make_cases(6)
    fitted = fit_feature_transform(feature_table(_with_features(cases)))
    assert fitted.source == "contour:abc"
    assert type(fitted).from_dict(fitted.to_dict()) == fitted  # recorded in saved models
    other = feature_table(_with_features(cases, "contour:other"))
    with pytest.raises(ChmflError, match="fitted on the contour:abc table"):
        fitted.apply(other)
