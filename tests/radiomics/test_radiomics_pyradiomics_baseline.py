"""chmfl's extraction path against pyradiomics' own published baseline (pyradiomics-cases).

Each baseline CSV stores the settings it was made with (``diagnostics_Configuration_Settings``);
they are reproduced here and every feature of the class is compared (107 per case). All
agree to ~1e-12 relative except, for brain1 only, the mesh-based shape features (MeshVolume,
SurfaceArea, SurfaceVolumeRatio, Sphericity: up to 9e-4 relative). brain1's shape column was
made with pyradiomics 2.0.1; today's mesh reproduces an older baseline's brain1 surface area
(6438.8216) exactly and matches IBSI's phantom, and pyradiomics' own test suite accepts 3 %.
Those four are held to 0.2 %, everything else to 1e-5 relative.
"""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from chmfl.radiomics.extract import extract_with_params

CLASSES = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
MESH = {"shape_MeshVolume", "shape_SurfaceArea", "shape_SurfaceVolumeRatio", "shape_Sphericity"}
SETTING_KEYS = ("binWidth", "distances", "voxelArrayShift", "gldm_a", "weightingNorm", "label",
                "force2D", "minimumROIDimensions", "padDistance")


def _compare(pyradiomics_dir, case: str) -> list[str]:
    """Compare every baseline feature of ``case``; returns the mismatches."""
    image = sitk.ReadImage(str(pyradiomics_dir / f"{case}_image.nrrd"))
    mask = sitk.ReadImage(str(pyradiomics_dir / f"{case}_label.nrrd"))
    arr, msk = sitk.GetArrayFromImage(image).astype(np.float64), sitk.GetArrayFromImage(mask)
    box = tuple(slice(max(0, lo - 2), hi + 3) for lo, hi in zip(np.argwhere(msk).min(0), np.argwhere(msk).max(0)))
    arr, msk = arr[box], msk[box]  # pyradiomics crops to the ROI's bounding box itself
    bad, compared = [], 0
    for cls in CLASSES:
        base = pd.read_csv(pyradiomics_dir / "baseline" / f"baseline_{cls}.csv", index_col=0)[case]
        settings = ast.literal_eval(base["diagnostics_Configuration_Settings"])
        assert settings["resampledPixelSpacing"] is None and not settings["normalize"]
        params = {"imageType": {"Original": {}}, "featureClass": {cls: None},
                  "setting": {k: settings[k] for k in SETTING_KEYS}}
        feats = extract_with_params(arr, msk, image.GetSpacing()[::-1], params)
        for key, ref in base.items():
            if not key.startswith("original_"):
                continue
            name, ref = key.removeprefix("original_"), float(ref)
            rel = abs(feats[name] - ref) / max(abs(ref), 1e-12)
            compared += 1
            if rel > (2e-3 if name in MESH else 1e-5):
                bad.append(f"{name}: {feats[name]} vs {ref} (rel {rel:.2e})")
    assert compared >= 100
    return bad


@pytest.mark.parametrize("case", ["brain1", "brain2", "breast1"])
def test_baseline_all_classes(pyradiomics_dir, case):
    assert _compare(pyradiomics_dir, case) == []
