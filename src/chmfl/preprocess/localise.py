"""Where is the tumour without a contour? ``locate_tumour``: candidates, physiology, decision.

The one code path for every box placed without a contour (``chmfl predict``, ``data prepare
--center hotspot``, the hotspot check recorded for contoured patients, cross-validation's
hotspot test boxes). Pure: CT (HU) and PET (SUV) ``Volume``s and a ``PrepareConfig`` in, a
``Localisation`` out; nothing is read or written, no model is used.

1. **Search region**: PET voxels whose centre lies inside the CT's extent (and inside the
   optional search box, LPS mm). PET beyond the CT (a whole-body PET with a thigh CT) is
   not searched: a box there would be CT padding.
2. **Candidates**: the smoothed SUV (Gaussian ``sigma_mm``) >= ``threshold_suv`` split into
   26-connected regions (over the whole PET, so a region cut by the CT's edge is known to
   be cut); each candidate is the part of a region inside the search region: its
   SUV-weighted centroid, SUVmax, volume and score = excess uptake
   sum(SUV - threshold) x voxel volume (SUV x ml; a TLG-like score: a large avid sarcoma
   beats a small hotter spot). Nothing >= threshold: regions >= ``fraction`` x the highest
   smoothed SUV instead.
3. **Physiological uptake** is recognised from the CT (``preprocess.anatomy``): urine
   (bladder, renal pelvis), brain, heart, liver, bowel, kidneys (a paired paravertebral region),
   uptake outside the body outline, and diffuse uptake (SUVmax under ``min_contrast`` x the
   median of a 15 mm shell around it: noise in the liver or marrow). Such candidates are
   listed but never chosen; organs are judged at the region's centroid and at its peak.
4. **Decision**: the best remaining candidate is chosen when it scores at least ``min_score``
   and ``margin`` times the next one, lies mostly inside the CT, and its box is mostly CT; otherwise the
   localisation is *refused* and the candidates are listed so that a person can choose
   (``chmfl predict --center`` / ``--search-box``).

On the IBSI crops (PET and CT 5 cm around the tumour) step 2's best candidate is the old
hotspot rule's region; docs/predict.md gives the measured accuracy and refusal counts.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from chmfl.errors import ChmflError
from chmfl.io.volume import Volume
from chmfl.preprocess import anatomy
from chmfl.preprocess.config import PrepareConfig
from chmfl.preprocess.geometry import Grid, box_grid, inside_fraction, inside_mask

MAX_RECORDED = 20  # candidates kept: the best 10 choosable and the best 10 excluded ones
SHOWN = 5  # candidates named in a refusal message
SHELL_MM = 15.0  # thickness of the shell whose median uptake is a candidate's background
SearchBox = tuple[float, float, float, float, float, float]  # XMIN XMAX YMIN YMAX ZMIN ZMAX, LPS mm


@dataclass(frozen=True)
class Candidate:
    """One candidate uptake region (its part inside the search region)."""

    centre_xyz: tuple[float, float, float]  # SUV-weighted centroid, LPS mm
    suv_max: float
    volume_ml: float
    score: float  # excess uptake above the threshold, SUV x ml
    outside_ct: float  # fraction of the whole region's excess uptake lying outside the CT
    background_suv: float = 0.0  # median smoothed SUV of a 15 mm shell around it
    excluded: str | None = None  # why it cannot be the tumour ("brain", "bladder", ...), or None
    reasons: tuple[str, ...] = ()

    def brief(self) -> str:
        x, y, z = self.centre_xyz
        tag = f" [{self.excluded}]" if self.excluded else ""
        return f"({x:.0f}, {y:.0f}, {z:.0f}) mm SUVmax {self.suv_max:.1f} {self.volume_ml:.0f} ml{tag}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["centre_xyz"] = [round(v, 1) for v in self.centre_xyz]
        d["reasons"] = list(self.reasons)
        for key in ("suv_max", "volume_ml", "score", "outside_ct", "background_suv"):
            d[key] = round(float(d[key]), 3)
        return d


@dataclass(frozen=True)
class Localisation:
    """The outcome: ranked candidates (choosable ones first), the decision and why."""

    decision: str  # "chosen" | "refused"
    reason: str
    candidates: tuple[Candidate, ...]
    centre_xyz: tuple[float, float, float] | None = None  # the chosen centre; None when refused
    search_box: SearchBox | None = None

    @property
    def refused(self) -> bool:
        return self.decision == "refused"

    @property
    def best(self) -> Candidate | None:
        """The best choosable candidate, chosen or not (None when there is none)."""
        return next((c for c in self.candidates if c.excluded is None), None)

    def summary(self, n: int = SHOWN) -> str:
        """One line: why, then the top ``n`` candidates."""
        shown = "; ".join(f"#{i + 1} {c.brief()}" for i, c in enumerate(self.candidates[:n]))
        return f"{self.reason}; candidates: {shown or 'none'}"

    def to_dict(self) -> dict:
        return {
            "decision": self.decision, "reason": self.reason,
            "centre_xyz": None if self.centre_xyz is None else [round(v, 2) for v in self.centre_xyz],
            "search_box": None if self.search_box is None else list(self.search_box),
            "candidates": [c.to_dict() for c in self.candidates],
        }


class _Region(NamedTuple):
    """Where a candidate is on the PET grid (what the physiology rules look at)."""

    sl: tuple  # bounding box (slices)
    part: np.ndarray  # bool over ``sl``: the region inside the search region
    core: np.ndarray  # bool over ``sl``: the part >= half its peak
    centroid: np.ndarray  # (z, y, x) index, SUV-weighted
    peak: np.ndarray  # (z, y, x) index of the smoothed maximum


class LocalisationRefused(ChmflError):
    """No box is placed: ``locate_tumour`` would not choose (``.localisation`` holds the
    candidates), or the box would lie mostly outside the CT (``.localisation`` None)."""

    def __init__(self, message: str, localisation: Localisation | None = None) -> None:
        super().__init__(message)
        self.localisation = localisation


def locate_tumour(ct: Volume, pet: Volume, config: PrepareConfig,
                  search_box: SearchBox | None = None) -> Localisation:
    """Find the tumour in a PET-CT without a contour, or refuse (see the module docstring)."""
    h = config.hotspot
    box = _check_box(search_box)
    suv = np.nan_to_num(np.asarray(pet.array, dtype=np.float32), nan=0.0)
    smooth = ndimage.gaussian_filter(suv, sigma=[h.sigma_mm / s for s in pet.spacing], mode="nearest")
    anat = anatomy.ct_anatomy(ct, pet)
    search = anat.in_ct & _box_mask(pet, box)
    if not search.any():
        where = "inside the search box" if box else "anywhere"
        return Localisation("refused", f"the PET and the CT do not overlap {where}", (), None, box)
    cands = _candidates(suv, smooth, search, anat, h.threshold_suv, pet)
    if not cands:
        level = h.fraction * float(smooth[search].max())
        if level > 0:
            cands = _candidates(suv, smooth, search, anat, level, pet)
    if h.physiological:
        cands = _physiology(cands, anat, h.min_contrast)
    free = sorted((c for _, c in cands if c.excluded is None), key=lambda c: -c.score)
    excluded = sorted((c for _, c in cands if c.excluded is not None), key=lambda c: -c.score)
    half = MAX_RECORDED // 2
    return _decide(tuple(free[:half] + excluded[:half]), ct, config, box)


def _check_box(box) -> SearchBox | None:
    if box is None:
        return None
    vals = tuple(float(v) for v in box)
    if len(vals) != 6 or not all(lo < hi for lo, hi in zip(vals[::2], vals[1::2])):
        raise ChmflError(f"search box must be XMIN XMAX YMIN YMAX ZMIN ZMAX (LPS mm, each min < max), got {box}")
    return vals  # type: ignore[return-value]


def _box_mask(pet: Volume, box: SearchBox | None) -> np.ndarray | bool:
    """Bool (z, y, x): PET voxel centres inside the search box (True everywhere without one).
    The box is a one-voxel Volume whose voxel is the box, so ``inside_mask`` does the work."""
    if box is None:
        return True
    lo, hi = np.asarray(box[::2]), np.asarray(box[1::2])  # (x, y, z)
    one = Volume(np.zeros((1, 1, 1), np.uint8), tuple((hi - lo)[::-1]), tuple((lo + hi) / 2.0))
    return inside_mask(one, Grid.like(pet))


def _candidates(suv, smooth, search, anat, level: float, pet: Volume) -> list[tuple[_Region, Candidate]]:
    """A (region, Candidate) for each region of ``smooth`` >= ``level`` reaching into
    ``search`` (the 2 x MAX_RECORDED with most excess uptake there; the rest are noise)."""
    labels, n = ndimage.label(smooth >= level, structure=np.ones((3, 3, 3)))
    if not n:
        return []
    voxel_ml = float(np.prod(pet.spacing)) / 1000.0
    inside = ndimage.sum_labels(np.clip(smooth - level, 0, None) * search, labels, np.arange(1, n + 1))
    top = set((np.argsort(-inside)[:2 * MAX_RECORDED] + 1).tolist())
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        region = labels[sl] == i if i in top else None
        part = None if region is None else region & search[sl]
        if part is None or not part.any():
            continue
        excess = np.clip(smooth[sl] - level, 0, None)
        total, in_ct = float(excess[region].sum()), float(excess[region & anat.in_ct[sl]].sum())
        w = np.clip(suv[sl][part], 0, None) + 1e-6
        start = np.array([s.start for s in sl], float)
        centroid = (np.argwhere(part) * w[:, None]).sum(axis=0) / w.sum() + start
        peak = np.asarray(np.unravel_index(int(np.argmax(np.where(part, smooth[sl], -np.inf))), part.shape)) + start
        core = part & (smooth[sl] >= 0.5 * float(smooth[sl][part].max()))
        cand = Candidate(
            centre_xyz=tuple(float(v) for v in pet.index_to_physical(centroid)),
            suv_max=float(suv[sl][part].max()), volume_ml=float(part.sum()) * voxel_ml,
            score=float(excess[part].sum()) * voxel_ml,
            outside_ct=1.0 - in_ct / total if total > 0 else 0.0,
            background_suv=_background(smooth, labels, i, sl, pet.spacing),
        )
        out.append((_Region(sl, part, core, centroid, peak), cand))
    return out


def _background(smooth: np.ndarray, labels: np.ndarray, i: int, sl: tuple, spacing: tuple) -> float:
    """Median smoothed SUV in a SHELL_MM shell around region ``i`` (its surroundings: muscle
    or fat for a limb tumour, the organ itself for a hot spot inside the liver)."""
    grow = [int(np.ceil(SHELL_MM / s)) for s in spacing]
    big = tuple(slice(max(0, a.start - g), min(n, a.stop + g)) for a, g, n in zip(sl, grow, smooth.shape))
    region = labels[big] == i
    near = ndimage.distance_transform_edt(~region, sampling=spacing) <= SHELL_MM
    shell = near & ~region & (labels[big] == 0)
    return float(np.median(smooth[big][shell])) if shell.any() else 0.0


def _physiology(cands: list[tuple[_Region, Candidate]], anat: anatomy.Anatomy,
                min_contrast: float) -> list[tuple[_Region, Candidate]]:
    """Mark candidates that are physiological uptake, diffuse, or outside the body as
    excluded (``Candidate.excluded``, with the reason)."""
    body = ndimage.binary_dilation(anat.body, iterations=2)
    out, sides = [], []
    for r, cand in cands:
        inside = bool(body[tuple(int(round(v)) for v in r.centroid)])
        why = _why_excluded(r, cand, anat, min_contrast) if inside else "outside the CT body outline"
        sides.append(next((v for v in (anatomy.kidney_side(anat, p) for p in (r.centroid, r.peak)) if v), 0)
                     if inside else 0)
        out.append((r, replace(cand, excluded=why.split(":")[0], reasons=(why,)) if why else cand))
    return _pair_kidneys(out, sides, anat)


def _why_excluded(r: _Region, cand: Candidate, anat: anatomy.Anatomy, min_contrast: float) -> str | None:
    """The first rule that takes the candidate for something other than a tumour."""
    if cand.suv_max < min_contrast * cand.background_suv:
        return (f"diffuse: SUVmax {cand.suv_max:.1f} is under {min_contrast:g}x the "
                f"{cand.background_suv:.1f} around it")
    c = r.centroid
    return (anatomy.urine(anat, c, r.sl, r.core) or anatomy.brain(anat, c, r.sl, r.part)
            or anatomy.heart(anat, c, r.sl, r.part) or anatomy.heart(anat, r.peak, r.sl, r.part)
            or anatomy.liver(anat, c, cand.suv_max) or anatomy.bowel(anat, c, cand.suv_max))


def _pair_kidneys(items: list[tuple[_Region, Candidate]], sides: list[int],
                  anat: anatomy.Anatomy) -> list[tuple[_Region, Candidate]]:
    """Two paravertebral candidates (>= 10 ml) on opposite sides, at similar heights (80 mm)
    and depths (50 mm), are the kidneys (a renal pelvis may already be "urine")."""
    sides = [s if cand.volume_ml >= 10.0 else 0 for s, (_, cand) in zip(sides, items)]
    kidneys = set()
    for i, j in itertools.combinations(range(len(items)), 2):
        if sides[i] and sides[j] == -sides[i]:
            gap = np.abs(items[i][0].centroid - items[j][0].centroid) * np.asarray(anat.grid.spacing)  # (z, y, x) mm
            if gap[0] <= 80.0 and gap[1] <= 50.0:
                kidneys |= {i, j}
    why = ("kidney: one of a pair beside the spine",)
    return [(r, replace(c, excluded="kidney", reasons=why) if k in kidneys and c.excluded is None else c)
            for k, (r, c) in enumerate(items)]


def _decide(cands: tuple[Candidate, ...], ct: Volume, config: PrepareConfig,
            box: SearchBox | None) -> Localisation:
    """Choose the best choosable candidate, or refuse and say why."""
    h = config.hotspot
    free = [c for c in cands if c.excluded is None]

    def refuse(why: str) -> Localisation:
        return Localisation("refused", why, cands, None, box)

    if not free:
        return refuse("no uptake outside physiological organs" if cands else "no uptake found")
    best = free[0]
    if best.score < h.min_score:
        return refuse(f"the best candidate is too weak (score {best.score:.1f} < {h.min_score:g} SUV x ml)")
    if best.outside_ct > h.max_outside_ct:
        return refuse(f"the best candidate lies {best.outside_ct:.0%} outside the CT")
    if len(free) > 1 and free[1].score * h.margin > best.score:
        return refuse(f"the best candidate is not clearly better than the next "
                      f"(score {best.score:.0f} vs {free[1].score:.0f}, needs x{h.margin:g})")
    ct_part = inside_fraction(ct, box_grid(best.centre_xyz, 4.0, config.box_mm))
    if ct_part < 1.0 - h.max_outside_ct:
        return refuse(f"the box around the best candidate would be {1 - ct_part:.0%} outside the CT")
    second = f", {best.score / free[1].score:.1f}x the next" if len(free) > 1 else ""
    why = f"largest excess uptake outside physiological organs (score {best.score:.0f}{second})"
    return Localisation("chosen", why, cands, best.centre_xyz, box)
