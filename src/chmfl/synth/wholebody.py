"""Whole-body-like PET-CT studies made from the cohort's cropped ones, for localisation tests.

The IBSI release crops every PET and CT to 5 cm around the tumour. ``embed_crop`` puts such
a crop, at its own patient coordinates, inside a synthetic body (``synth.phantom``) laid
out so that the tumour sits where the clinical sheet says it grew (thigh, buttock, calf,
arm, ...; ``SITE_ANCHORS``), with the synthetic limb's axis on the real limb of the crop.
Inside the crop the real images are kept (blended into the body over a 10 mm border, and
only where the real image shows the body), so the tumour, its real neighbourhood and its
real uptake are those of the patient; brain, heart, bladder, kidneys, liver and the rest
are synthetic. ``ct_fov`` sets what the CT covers: the whole PET range (``"body"``), only
the real crop (``"crop"``: the whole-body PET with a thigh CT of issue 20), or the legs
(``"legs"``: a tumour of the trunk or arm then lies outside the CT).

``tiny_study`` makes a coarse synthetic study with a spherical tumour instead of a crop,
for unit tests. ``write_study`` writes a study as DICOM (CT in HU, PET in SUVbw).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from chmfl.io.dicom_write import StudyIds, write_dicom_series
from chmfl.io.volume import Volume
from chmfl.preprocess.anatomy import block_mean
from chmfl.preprocess.geometry import Grid
from chmfl.synth.phantom import (
    BodyPlan,
    Shape,
    ct_from_labels,
    paint_labels,
    pet_from_labels,
    random_plan,
)

# site words of the clinical sheet -> body-frame anchor (X for the left side, Y, Z) and
# whether the anchor is a limb axis (the tumour is then placed on the real limb's axis)
SITE_ANCHORS: dict[str, tuple[tuple[float, float, float], bool]] = {
    "thigh": ((95.0, 5.0, -220.0), True), "quadricep": ((95.0, 5.0, -200.0), True),
    "adductor": ((95.0, 5.0, -150.0), True), "groin": ((80.0, -40.0, -40.0), False),
    "buttock": ((80.0, 95.0, -10.0), False), "pelvis": ((70.0, 60.0, 60.0), False),
    "knee": ((95.0, 15.0, -440.0), True), "poplit": ((95.0, 15.0, -440.0), True),
    "calf": ((95.0, 15.0, -620.0), True), "biceps": ((215.0, 0.0, 420.0), True),
    "arm": ((215.0, 0.0, 400.0), True), "hand": ((215.0, -10.0, -40.0), False),
    "parascap": ((85.0, 100.0, 470.0), False),
}
CT_FOVS = ("body", "crop", "legs")
CT_FOV_MM = 500.0  # CT reconstruction field of view (x and y)
PET_FOV_MM = 700.0
FEATHER_MM = 10.0


@dataclass(frozen=True)
class WholeBody:
    """A synthetic whole-body study: CT (HU), PET (SUV), the body plan, and what was done."""

    ct: Volume
    pet: Volume
    plan: BodyPlan
    info: dict


def site_anchor(site: str, tumour_x: float) -> tuple[tuple[float, float, float], bool]:
    """Body-frame anchor of a clinical-sheet site ("left thigh", "right parascapusular"); the
    side from the words left/right, else from the tumour's x (LPS +x is the patient's left)."""
    text = site.lower()
    key = next((k for k in SITE_ANCHORS if k in text), "thigh")
    (x, y, z), limb = SITE_ANCHORS[key]
    side = 1.0 if "left" in text else -1.0 if "right" in text else (1.0 if tumour_x >= 0 else -1.0)
    return (side * x, y, z), limb


def _limb_axis(ct_crop: Volume, tumour_xyz: np.ndarray) -> tuple[float, float] | None:
    """(x, y) LPS of the centroid of the body piece holding the tumour in the crop's CT slice."""
    from scipy import ndimage

    k = int(round(ct_crop.physical_to_index(tumour_xyz)[0]))
    k = min(max(k, 0), ct_crop.shape[0] - 1)
    labels, _ = ndimage.label(ct_crop.array[k] > -400)
    yx = np.round(ct_crop.physical_to_index(tumour_xyz)[1:]).astype(int)
    if not (0 <= yx[0] < labels.shape[0] and 0 <= yx[1] < labels.shape[1]) or labels[tuple(yx)] == 0:
        return None
    pts = np.argwhere(labels == labels[tuple(yx)])
    zyx = np.column_stack([np.full(len(pts), k), pts]).mean(axis=0)
    x, y, _ = ct_crop.index_to_physical(zyx)
    return float(x), float(y)


def plan_for(ct_crop: Volume, tumour_xyz: tuple[float, float, float], site: str, seed: int) -> BodyPlan:
    """A body plan placing the crop's tumour at its clinical site."""
    rng = np.random.default_rng(seed)
    t = np.asarray(tumour_xyz, float)
    (ax, ay, az), limb = site_anchor(site, t[0])
    plan = random_plan((0.0, 0.0, 0.0), rng)
    k = plan.scale
    axis = _limb_axis(ct_crop, t) if limb else None
    x0, y0 = (axis[0] - k * ax, axis[1] - k * ay) if axis else (t[0] - k * ax, t[1] - k * ay)
    z0 = t[2] - k * (az + rng.uniform(-40.0, 40.0))
    return replace(plan, origin=(float(x0), float(y0), float(z0)))


def _lattice(crop: Volume, lo: np.ndarray, hi: np.ndarray) -> Grid:
    """An identity-direction grid on ``crop``'s voxel lattice covering [lo, hi] (LPS)."""
    sp = np.asarray(crop.spacing[::-1], float)  # (x, y, z)
    first = np.asarray(crop.origin) + np.floor((lo - np.asarray(crop.origin)) / sp) * sp
    n = np.ceil((hi - first) / sp).astype(int) + 1
    return Grid(tuple(int(v) for v in n[::-1]), tuple(crop.spacing), tuple(float(v) for v in first))  # type: ignore[arg-type]


def _ramp(crop: Volume) -> np.ndarray:
    """Blend weight over the crop: 1 inside, falling to 0 over FEATHER_MM at its faces."""
    w = np.ones(crop.shape, np.float32)
    for axis, (n, s) in enumerate(zip(crop.shape, crop.spacing)):
        i = np.arange(n)
        edge = np.minimum(i + 0.5, n - 0.5 - i) * s / FEATHER_MM
        shape = [1, 1, 1]
        shape[axis] = n
        w *= np.clip(edge, 0.0, 1.0).reshape(shape)
    return w


def paste(body: np.ndarray, grid: Grid, crop: Volume, weight: np.ndarray) -> None:
    """Blend ``crop`` into ``body`` (on ``grid``, the same voxel lattice) in place."""
    offset = np.rint((np.asarray(crop.origin) - np.asarray(grid.origin)) / np.asarray(grid.spacing[::-1])).astype(int)
    lo = offset[::-1]  # (z, y, x)
    src = [slice(max(0, -a), max(0, min(n, m - a))) for a, n, m in zip(lo, crop.shape, grid.shape)]
    if any(s.stop <= s.start for s in src):
        return  # the crop lies outside this grid
    dst = [slice(s.start + a, s.stop + a) for s, a in zip(src, lo)]
    w = weight[tuple(src)]
    region = body[tuple(dst)]
    region *= 1.0 - w
    region += w * np.asarray(crop.array, np.float32)[tuple(src)]


def _ct_grid(pet_grid: Grid, ct_crop: Volume, plan: BodyPlan) -> Grid:
    """The whole-body CT's grid: the PET's z range, a CT_FOV_MM square around the body."""
    pz = pet_grid.origin[2], pet_grid.origin[2] + (pet_grid.shape[0] - 1) * pet_grid.spacing[0]
    half = CT_FOV_MM / 2.0
    lo = np.array([plan.origin[0] - half, plan.origin[1] - half, pz[0]])
    hi = np.array([plan.origin[0] + half, plan.origin[1] + half, pz[1]])
    return _lattice(ct_crop, lo, hi)


def embed_crop(ct_crop: Volume, pet_crop: Volume, tumour_xyz: tuple[float, float, float], site: str,
               seed: int, ct_fov: str = "body", ct_step: int = 1) -> WholeBody:
    """A whole-body study around a cropped PET-CT (see the module docstring); ``ct_step`` > 1
    makes the CT's pixels that many times larger (block means of the crop's; for fast tests)."""
    if ct_fov not in CT_FOVS:
        raise ValueError(f"ct_fov must be one of {CT_FOVS}")
    fine = ct_crop
    if ct_step > 1:
        ct_crop = block_mean(ct_crop, (1, ct_step, ct_step))
    plan = plan_for(ct_crop, tumour_xyz, site, seed)
    rng = np.random.default_rng(seed + 1)
    feet = min(tumour_xyz[2] - 250.0, plan.to_lps((0, 0, -500.0))[2])
    half = PET_FOV_MM / 2.0
    lo = np.array([plan.origin[0] - half, plan.origin[1] - half, feet])
    hi = np.array([plan.origin[0] + half, plan.origin[1] + half, plan.vertex_z + 20.0])
    pet_grid = _lattice(pet_crop, lo, hi)
    labels, names = paint_labels(plan, pet_grid)
    pet = pet_from_labels(labels, names, plan, pet_grid.spacing, rng)
    del labels
    real = np.asarray(pet_crop.array, np.float32)
    paste(pet, pet_grid, pet_crop, _ramp(pet_crop) * np.clip(real / 0.3, 0.0, 1.0))
    ct_grid = _ct_grid(pet_grid, ct_crop, plan)
    labels, names = paint_labels(plan, ct_grid)
    ct = ct_from_labels(labels, names, plan, rng)
    del labels
    paste(ct, ct_grid, ct_crop, _ramp(ct_crop) * (np.asarray(ct_crop.array) > -400).astype(np.float32))
    info = {"site": site, "seed": seed, "ct_fov": "body", "body_origin": list(plan.origin), "scale": plan.scale,
            "suv": dict(plan.suv), "tumour_xyz": [float(v) for v in tumour_xyz]}
    study = WholeBody(ct_grid.volume(ct), pet_grid.volume(pet), plan, info)
    return with_ct(study, fine, ct_fov)


def with_ct(study: WholeBody, ct_crop: Volume, ct_fov: str) -> WholeBody:
    """The same study with a CT covering ``ct_fov``: "body" (as made), "crop" (``ct_crop``,
    the real cropped CT, itself) or "legs" (the body CT from 60 mm above the hip joints down)."""
    if ct_fov == "body":
        return study
    if ct_fov == "crop":
        ct = ct_crop
    elif ct_fov == "legs":
        top = study.plan.to_lps((0.0, 0.0, 60.0))[2]
        z = study.ct.origin[2] + np.arange(study.ct.shape[0]) * study.ct.spacing[0]
        keep = int(np.searchsorted(z, top, side="right"))
        if keep < 1:
            raise ValueError("the legs CT would be empty")
        ct = Volume(study.ct.array[:keep], study.ct.spacing, study.ct.origin, study.ct.direction)
    else:
        raise ValueError(f"ct_fov must be one of {CT_FOVS}")
    return replace(study, ct=ct, info={**study.info, "ct_fov": ct_fov})


def tiny_study(tumour: tuple[float, float, float] = (95.0, 5.0, -200.0), tumour_suv: float = 6.0,
               tumour_mm: float = 25.0, *, seed: int = 0, pet_mm: float = 6.0, ct_mm: float = 3.0,
               z_range: tuple[float, float] = (-450.0, 900.0), ct_z_range: tuple[float, float] | None = None,
               suv: dict | None = None, extra: tuple[Shape, ...] = ()) -> WholeBody:
    """A coarse synthetic whole-body study with a spherical tumour (radius ``tumour_mm``, SUV
    ``tumour_suv``) at body-frame ``tumour`` (the body frame is LPS here); ``z_range`` is the
    PET's and ``ct_z_range`` (default: the same) the CT's extent in z; ``suv`` overrides
    physiological uptake (keys of ``BodyPlan.suv``)."""
    rng = np.random.default_rng(seed)
    uptake = dict(BodyPlan((0, 0, 0)).suv) | (suv or {})
    ball = Shape(f"tumour:{tumour_suv}", "ellipsoid", tumour, (tumour_mm,) * 3)
    plan = BodyPlan((0.0, 0.0, 0.0), 1.0, tuple(uptake.items()), 1.0, (ball, *extra))

    def grid(step_xy: float, fov: float, zr: tuple[float, float]) -> Grid:
        n_xy = int(fov / step_xy)
        nz = int((zr[1] - zr[0]) / pet_mm) + 1
        return Grid((nz, n_xy, n_xy), (pet_mm, step_xy, step_xy), (-fov / 2, -fov / 2, zr[0]))

    pet_grid = grid(pet_mm, PET_FOV_MM, z_range)
    labels, names = paint_labels(plan, pet_grid)
    pet = pet_from_labels(labels, names, plan, pet_grid.spacing, rng)
    ct_grid = grid(ct_mm, CT_FOV_MM, ct_z_range or z_range)
    labels, names = paint_labels(plan, ct_grid)
    ct = ct_from_labels(labels, names, plan, rng)
    return WholeBody(ct_grid.volume(ct), pet_grid.volume(pet), plan, {"tumour_xyz": list(tumour)})


def write_study(study: WholeBody, folder: str | Path, patient_id: str) -> tuple[Path, Path]:
    """Write the study as DICOM: ``folder/CT`` (HU) and ``folder/PET`` (SUVbw); returns both."""
    folder = Path(folder)
    ids = StudyIds(re.sub(r"[^A-Za-z0-9_-]", "_", patient_id))
    write_dicom_series(study.ct, folder / "CT", "CT", ids, series_number=2, description="synthetic whole-body CT")
    write_dicom_series(study.pet, folder / "PET", "PT", ids, series_number=3, description="synthetic whole-body PET")
    return folder / "CT", folder / "PET"
