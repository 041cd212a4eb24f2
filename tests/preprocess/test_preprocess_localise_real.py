"""``locate_tumour`` on real patients of the cohort embedded in synthetic whole bodies
(``chmfl.synth.wholebody.embed_crop``): the box centre within 30 mm of the contour, or a
refusal that lists the tumour. Skips without ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest

from chmfl.io.imageio import read_image
from chmfl.io.rtstruct import read_rtstruct_mask
from chmfl.preprocess.config import PrepareConfig
from chmfl.preprocess.geometry import mask_points
from chmfl.preprocess.localise import locate_tumour
from chmfl.synth.wholebody import embed_crop

MAX_MISSES = 10  # benchmarks/bench_localise.py at full resolution: 8 of 51 (docs/predict.md)
SITES = {"STS_001": "left thigh", "STS_003": "right buttock", "STS_037": "right parascapusular"}


def _patient(sts_dir, pid):
    folder = sts_dir / pid
    ct, pet = read_image(folder / "CT" / "image"), read_image(folder / "PET" / "image")
    return ct, pet, mask_points(read_rtstruct_mask(folder / "CT" / "mask" / "RS.dcm", ct))


def _outcome(loc, points) -> str:
    """"hit" (chosen within 30 mm), "listed" (refused, tumour among the 5 named) or "miss"."""
    centroid = points.mean(axis=0)
    if loc.centre_xyz is not None:
        return "hit" if np.linalg.norm(np.subtract(loc.centre_xyz, centroid)) <= 30.0 else "miss"
    near = [np.linalg.norm(np.subtract(c.centre_xyz, centroid)) <= 30.0 for c in loc.candidates[:5]]
    return "listed" if any(near) else "miss"


@pytest.mark.parametrize("pid", sorted(SITES))
def test_tumour_found_in_a_whole_body(sts_dir, pid):
    ct, pet, points = _patient(sts_dir, pid)
    seed = int(pid[-3:])
    body = embed_crop(ct, pet, tuple(points.mean(axis=0)), SITES[pid], seed, ct_fov="body", ct_step=2)
    loc = locate_tumour(body.ct, body.pet, PrepareConfig())
    assert _outcome(loc, points) == "hit", loc.summary()
    assert {"brain", "urine", "heart"} <= {c.excluded for c in loc.candidates}


def test_whole_body_pet_with_the_cropped_ct(sts_dir):
    """Issue 20's case: STS_001's CT covers the thigh only, the PET the whole body."""
    ct, pet, points = _patient(sts_dir, "STS_001")
    study = embed_crop(ct, pet, tuple(points.mean(axis=0)), "left thigh", 1, ct_fov="crop")
    assert study.ct is ct and study.pet.shape[0] > 3 * pet.shape[0]
    loc = locate_tumour(study.ct, study.pet, PrepareConfig())
    assert _outcome(loc, points) == "hit", loc.summary()


@pytest.mark.slow
def test_all_51_embedded(sts_dir, clinical_xlsx):
    """Every patient in a whole body: hits or refusals that list the tumour (the numbers are
    in docs/predict.md; benchmarks/bench_localise.py measures them)."""
    import pandas as pd

    sheet = pd.read_excel(clinical_xlsx)
    sites = dict(zip(sheet["Patient ID"].astype(str), sheet["Site of primary STS"].astype(str)))
    outcomes = []
    for folder in sorted(p for p in sts_dir.iterdir() if p.is_dir()):
        ct, pet, points = _patient(sts_dir, folder.name)
        body = embed_crop(ct, pet, tuple(points.mean(axis=0)), sites[folder.name], int(folder.name[-3:]),
                          ct_step=2)
        outcomes.append(_outcome(locate_tumour(body.ct, body.pet, PrepareConfig()), points))
    assert len(outcomes) == 51 and outcomes.count("miss") <= MAX_MISSES, outcomes
