"""All 51 real patients through ``chmfl data prepare`` (slow: about a minute on 2 cores)."""

from __future__ import annotations

import numpy as np
import pytest

from chmfl.data.cases import load_cases
from chmfl.preprocess.config import PrepareConfig
from chmfl.preprocess.prepare import prepare_cohort

pytestmark = pytest.mark.slow


def test_all_51_patients(sts_dir, clinical_xlsx, tmp_path):
    result = prepare_cohort(sts_dir, tmp_path / "cache", clinical_xlsx, PrepareConfig(voxel_mm=4.0),
                            workers=2, progress=False)
    df = result.manifest
    assert len(df) == 51 and not result.failed
    assert ((df.dm == 1).sum(), (df.dm == 0).sum(), df.dm.isna().sum()) == (24, 24, 3)
    assert (df.lung_mets == 1).sum() == 19
    assert (df.center_method == "mask").all()
    # the fixed box holds the whole CT contour of 28 patients; every box holds most of its tumour
    assert (df.mask_fraction_in_box == 1.0).sum() == 28 and df.mask_fraction_in_box.min() > 0.5
    included = df[df.dm.notna()]
    assert included.hotspot_error_mm.median() < 15.0  # the no-contour centre (docs/data.md)
    cases = load_cases(tmp_path / "cache")
    assert len(cases) == 48
    for case in cases:
        a = case.load()
        assert a.ct.shape == (36, 28, 28) and np.isfinite(a.ct).all() and np.isfinite(a.pet).all()
        assert a.mask.sum() > 0 and a.pet_suv.min() >= 0.0
    again = prepare_cohort(sts_dir, tmp_path / "cache", clinical_xlsx, PrepareConfig(voxel_mm=4.0),
                           progress=False)
    assert again.computed == [] and len(again.reused) == 51
