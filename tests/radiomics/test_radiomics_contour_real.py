"""``chmfl features`` on real STS patients against MIRP 2.7.0, the IBSI coordinators' software,
run once (outside the project) with the IBSI validation settings: CT 1 mm / PET 3 mm tricubic,
CT rounded, ROI trilinear >= 0.5, CT re-segmented to [-200, 200] HU, PET to SUV >= 0,
anti-aliasing off; GTV_Mass_CT on the CT, GTV_Mass_PET on the PET (see docs/methods.md)."""

from __future__ import annotations

import pytest

from chmfl.cohort.layouts import find_cases
from chmfl.radiomics.contour import load_contour_params, patient_features

MIRP = {  # (modality, feature) -> MIRP 2.7.0 value
    "STS_001": {("CT", "morph_volume"): 364491.90625, ("CT", "morph_vol_approx"): 364593.0,
                ("CT", "stat_min"): -78.0, ("CT", "stat_max"): 131.0, ("CT", "stat_mean"): 28.45314598083496,
                ("PET", "morph_volume"): 362944.125, ("PET", "morph_vol_approx"): 363825.0,
                ("PET", "stat_min"): 0.14124953746795654, ("PET", "stat_max"): 8.153398513793945,
                ("PET", "stat_mean"): 2.558786153793335},
    # PET: stat_max only; the mask-dependent values differ as MIRP 2.x resamples this PET RTSTRUCT
    # (its planes lie 0.02 mm off the slices) where chmfl rasterises it on the slices
    "STS_002": {("CT", "morph_volume"): 52922.5859375, ("CT", "morph_vol_approx"): 52975.0,
                ("CT", "stat_min"): -163.0, ("CT", "stat_max"): 200.0, ("CT", "stat_mean"): 58.94579315185547,
                ("PET", "stat_max"): 22.100540161132812},
}


def _check(sts_dir, pid):
    case = next(c for c in find_cases(sts_dir) if c.patient_id == pid)
    got = {(m, f): v for m, f, v in patient_features(case, load_contour_params())}
    for key, want in MIRP[pid].items():
        assert got[key] == pytest.approx(want, rel=1e-5), (pid, key)


def test_sts_002_matches_mirp(sts_dir):
    _check(sts_dir, "STS_002")


@pytest.mark.slow  # ~20 s: a 365 mL tumour on the 1 mm CT grid
def test_sts_001_matches_mirp(sts_dir):
    _check(sts_dir, "STS_001")
