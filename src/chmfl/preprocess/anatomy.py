"""CT anatomy on the PET grid: where the CT exists, the body outline, lungs, bone, the
cranial cavity, the body midline and the spine. Pure functions of ``Volume``s.

``locate_tumour`` (``preprocess.localise``) uses these to tell physiological FDG uptake
(urine, brain, heart, liver, kidneys) from a tumour with rules that rest on gross anatomy only,
not on a trained model:

* **brain**: uptake inside the skull, i.e. inside a closed ring of bone in axial slices
  (per-slice holes of the bone mask, >= 15 cm2, brain-like density), or >= 300 ml of
  uptake more than 100 mm above the lung apices;
* **heart**: uptake between the two lungs (lung on both sides of it in its own slices);
* **liver**: mild uptake (SUVmax <= 5) right of the spine under the right lung base;
* **bowel**: mild uptake (SUVmax <= 6) deep in the abdominal cavity, in front of the spine;
* **urine** (bladder, renal pelvis, ureter): a hot core of water density (median <= 18
  HU), or up to 30 HU (or contrast-dense) on the pelvic midline between pelvic bones;
* **kidneys**: a left-right pair of regions beside the spine (paravertebral), at similar
  heights.

Everything is computed at the PET's own voxel size (a few mm): the CT is block-averaged to
about that size and linearly resampled onto the PET grid, so thresholds in HU act on
partial-volume averages (bone > 200 HU, air < -400 HU).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from chmfl.io.volume import Volume
from chmfl.preprocess.geometry import Grid, inside_mask, resample_image

AIR_HU = -400.0  # below: air or lung (partial volume included)
BONE_HU = 200.0  # above: bone (cortical and cancellous, at PET voxel size)
URINE_HU = (-20.0, 18.0)  # median density of a hot core that can only be urine
FLUID_HU = (-20.0, 30.0)  # water-like (with partial volume): urine when on the pelvic midline
CONTRAST_HU = 150.0  # excreted iodinated contrast in the bladder
BRAIN_HU = (10.0, 80.0)  # mean density of an intracranial cavity slice
MIN_CAVITY_MM2 = 1500.0  # a cranial cavity slice is larger than any marrow or canal hole
MIN_LUNG_ML = 500.0  # lung components (bowel gas pockets are smaller)
MIN_BODY_ML = 10.0  # body components smaller than this are noise or table parts
CT_PAD_HU = -1024.0


def block_mean(volume: Volume, factors: tuple[int, int, int]) -> Volume:
    """Average non-overlapping blocks of ``factors`` (z, y, x) voxels (SimpleITK BinShrink):
    a coarser Volume whose voxel centres are the block centres (anti-aliasing before a fine
    CT is sampled on the coarse PET grid)."""
    if all(f == 1 for f in factors) or any(s < f for s, f in zip(volume.shape, factors)):
        return volume
    import SimpleITK as sitk

    image = volume.to_sitk()
    if image.GetPixelID() != sitk.sitkFloat32:
        image = sitk.Cast(image, sitk.sitkFloat32)
    return Volume.from_sitk(sitk.BinShrink(image, [int(f) for f in factors[::-1]]))


def ct_on_grid(ct: Volume, reference: Volume) -> tuple[np.ndarray, np.ndarray]:
    """CT HU on ``reference``'s grid (-1024 outside the CT) and where the CT exists (bool)."""
    factors = tuple(max(1, int(r // c)) for r, c in zip(reference.spacing, ct.spacing))
    coarse = block_mean(ct, factors)  # type: ignore[arg-type]
    grid = Grid.like(reference)
    hu = resample_image(coarse, grid, pad="constant", pad_value=CT_PAD_HU)
    return hu, inside_mask(coarse, grid)


_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)  # 4-connected within a slice, none across


def _holes(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels of the per-slice holes of ``mask`` (background pieces of a slice that do not
    touch its edge), numbered 1..n over the volume; each label lies in one slice."""
    labels, n = ndimage.label(~mask, structure=_IN_PLANE)
    edge = np.unique(np.concatenate([labels[:, 0].ravel(), labels[:, -1].ravel(),
                                     labels[:, :, 0].ravel(), labels[:, :, -1].ravel()]))
    keep = np.ones(n + 1, bool)
    keep[edge] = False
    keep[0] = False
    remap = np.zeros(n + 1, np.int32)
    remap[keep] = np.arange(1, int(keep.sum()) + 1)
    return remap[labels], int(keep.sum())


def _fill_slices(mask: np.ndarray) -> np.ndarray:
    """Fill holes in each axial slice (lungs, bowel gas and the skull's inside become body)."""
    holes, _ = _holes(mask)
    return mask | (holes > 0)


def _large_components(mask: np.ndarray, min_voxels: float, rel: float = 0.0) -> np.ndarray:
    """Keep 3D components of at least ``min_voxels`` and ``rel`` x the largest one."""
    labels, n = ndimage.label(mask)
    if not n:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    keep = (sizes >= min_voxels) & (sizes >= rel * sizes.max())
    return keep[labels - 1] & (labels > 0)


@dataclass(frozen=True)
class Anatomy:
    """CT-derived masks on the PET grid ((z, y, x), bool unless said) and per-slice landmarks."""

    grid: Volume  # the PET geometry (array unused)
    hu: np.ndarray  # CT HU, float32, CT_PAD_HU outside the CT
    in_ct: np.ndarray  # voxel centre inside the CT's extent
    body: np.ndarray  # inside the CT body outline (per-slice holes filled)
    lungs: np.ndarray
    bone: np.ndarray
    cavity: np.ndarray  # cranial cavity (inside closed bone rings of brain density)

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.grid.spacing)) / 1000.0

    def phys(self, zyx: np.ndarray) -> np.ndarray:
        """LPS (x, y, z) mm of (z, y, x) indices."""
        return self.grid.index_to_physical(np.asarray(zyx, float))

    def lung_z_range(self) -> tuple[float, float] | None:
        """Lowest and highest patient z (mm) holding lung, or None without lungs."""
        zs = np.flatnonzero(self.lungs.any(axis=(1, 2)))
        if not zs.size:
            return None
        ends = [float(self.phys(np.array([k, 0.0, 0.0]))[2]) for k in (zs[0], zs[-1])]
        return min(ends), max(ends)

    def slice_z(self, k: float) -> float:
        """Patient z (mm) of slice index ``k`` (axial slices)."""
        return float(self.phys(np.array([k, 0.0, 0.0]))[2])


def ct_anatomy(ct: Volume, pet: Volume) -> Anatomy:
    """The masks of ``Anatomy`` from a CT (HU) on the grid of ``pet``."""
    hu, in_ct = ct_on_grid(ct, pet)
    voxel_ml = float(np.prod(pet.spacing)) / 1000.0
    body = _large_components(_fill_slices((hu > AIR_HU) & in_ct), MIN_BODY_ML / voxel_ml)
    lungs = _large_components((hu < AIR_HU) & body, MIN_LUNG_ML / voxel_ml, rel=0.2)
    bone = (hu > BONE_HU) & body
    cavity = _cranial_cavity(hu, bone, pet.spacing)
    return Anatomy(_geometry(pet), hu, in_ct, body, lungs, bone, cavity)


def _geometry(volume: Volume) -> Volume:
    """A Volume holding only ``volume``'s geometry (a 1-voxel array)."""
    return Volume(np.zeros((1, 1, 1), np.uint8), volume.spacing, volume.origin, volume.direction)


def _cranial_cavity(hu: np.ndarray, bone: np.ndarray, spacing: tuple) -> np.ndarray:
    """Per axial slice: holes enclosed by bone, large and of brain density."""
    holes, n = _holes(bone)
    if not n:
        return np.zeros_like(bone)
    flat = holes.ravel()
    count = np.bincount(flat, minlength=n + 1)
    mean = np.bincount(flat, weights=hu.ravel(), minlength=n + 1) / np.maximum(count, 1)
    area = count * float(spacing[1] * spacing[2])
    keep = (area >= MIN_CAVITY_MM2) & (mean >= BRAIN_HU[0]) & (mean <= BRAIN_HU[1])
    keep[0] = False
    return keep[holes]


def body_piece(anat: Anatomy, k: int, yx: tuple[float, float]) -> np.ndarray | None:
    """The connected piece of slice ``k``'s body outline holding point ``yx`` (the trunk, a
    leg, an arm), as a 2D bool mask; None when the point is outside the body."""
    labels, _ = ndimage.label(anat.body[k])
    y, x = (int(round(v)) for v in yx)
    if not (0 <= y < labels.shape[0] and 0 <= x < labels.shape[1]) or labels[y, x] == 0:
        return None
    return labels == labels[y, x]


def _extent(mask2d: np.ndarray, axis: int) -> tuple[int, int]:
    idx = np.flatnonzero(mask2d.any(axis=axis))
    return int(idx[0]), int(idx[-1])


def _sign(anat: Anatomy, axis: int) -> float:
    """+1 when array axis ``axis`` (1: rows, 2: columns) runs along patient +y / +x."""
    d = np.asarray(anat.grid.direction, float).reshape(3, 3)
    return float(np.sign(d[2 - axis, 2 - axis]) or 1.0)


def brain(anat: Anatomy, c: np.ndarray, sl: tuple, part: np.ndarray) -> str | None:
    """Why the region is the brain, or None: mostly inside the skull's bone rings, or (when
    the rings are not closed at this voxel size) a large region high above the lung apices."""
    frac = float(anat.cavity[sl][part].mean())
    if frac >= 0.4:
        return f"brain: {frac:.0%} of it inside the skull"
    lungs = anat.lung_z_range()
    volume = float(part.sum()) * anat.voxel_ml
    if lungs and volume >= 300.0 and anat.slice_z(c[0]) > lungs[1] + 100.0:
        return f"brain: {volume:.0f} ml of uptake in the head, above the lungs"
    return None


def liver(anat: Anatomy, c: np.ndarray, suv_max: float) -> str | None:
    """Why the region is normal liver, or None: below the right lung base (within 220 mm),
    right of the spine, and no hotter than normal liver gets (SUVmax <= 5)."""
    lungs = anat.lung_z_range()
    _, _, spine = _piece_and_spine(anat, c)
    if suv_max > 5.0 or not lungs or spine is None:
        return None
    right = (c[2] - spine[1]) * anat.grid.spacing[2] * _sign(anat, 2) < -20.0  # patient right is -x
    if right and lungs[0] - 220.0 <= anat.slice_z(c[0]) <= lungs[0] + 60.0:
        return "liver: right upper abdomen under the lung base, SUVmax <= 5"
    return None


def heart(anat: Anatomy, c: np.ndarray, sl: tuple, part: np.ndarray) -> str | None:
    """Why the region is the heart, or None: in the mediastinum, i.e. within 70 mm of the
    spine's left-right position, in front of it, with lung on both sides in its own rows."""
    k, piece, spine = _piece_and_spine(anat, c)
    if spine is None or not anat.lungs[k].any() or float(anat.lungs[sl][part].mean()) > 0.3:
        return None
    sy, sx = anat.grid.spacing[1], anat.grid.spacing[2]
    if abs(c[2] - spine[1]) * sx > 70.0 or (c[1] - spine[0]) * _sign(anat, 1) * sy > -20.0:
        return None
    band = slice(max(0, int(c[1] - 20.0 / sy)), int(c[1] + 20.0 / sy) + 1)
    cols = np.flatnonzero((anat.lungs[k] & piece)[band].any(axis=0))
    gap = 5.0 / sx
    if (cols < c[2] - gap).any() and (cols > c[2] + gap).any():
        return "heart: in the mediastinum, between the lungs"
    return None


def _piece_and_spine(anat: Anatomy, c: np.ndarray) -> tuple[int, np.ndarray | None, tuple[float, float] | None]:
    """Point ``c``'s slice index, the body piece holding it (``body_piece``) and that piece's
    vertebral body (``_spine``); None for either where there is none."""
    k = int(round(c[0]))
    piece = body_piece(anat, k, (c[1], c[2]))
    return k, piece, _spine(anat, k, piece) if piece is not None else None


def _spine(anat: Anatomy, k: int, piece: np.ndarray) -> tuple[float, float] | None:
    """(row, column) of the vertebral body in slice ``k``: bone within 25 mm of the body
    piece's left-right middle, in its posterior half; None without one (limbs, head)."""
    lo, hi = _extent(piece, 0)
    top, bottom = _extent(piece, 1)
    rows = np.arange(piece.shape[0])
    posterior = (rows - (top + bottom) / 2.0) * _sign(anat, 1) >= 0
    cols = np.abs(np.arange(piece.shape[1]) - (lo + hi) / 2.0) * anat.grid.spacing[2] <= 25.0
    pts = np.argwhere(anat.bone[k] & piece & posterior[:, None] & cols[None, :])
    if len(pts) < 2:
        return None
    return float(pts[:, 0].mean()), float(pts[:, 1].mean())


def bowel(anat: Anatomy, c: np.ndarray, suv_max: float) -> str | None:
    """Why the region is bowel or stomach uptake, or None: mild (SUVmax <= 6), inside the
    abdominal cavity (from 30 mm above to 330 mm below the lung bases, in front of the spine,
    within 130 mm of it left-right, >= 15 mm deep in the body)."""
    lungs = anat.lung_z_range()
    _, piece, spine = _piece_and_spine(anat, c)
    if suv_max > 6.0 or not lungs or spine is None:
        return None
    sy, sx = anat.grid.spacing[1], anat.grid.spacing[2]
    if not lungs[0] - 330.0 <= anat.slice_z(c[0]) <= lungs[0] + 30.0:
        return None
    if (c[1] - spine[0]) * _sign(anat, 1) * sy > -15.0 or abs(c[2] - spine[1]) * sx > 130.0:
        return None
    depth = ndimage.distance_transform_edt(piece, sampling=(sy, sx))[int(round(c[1])), int(round(c[2]))]
    return "bowel: mild uptake in the abdominal cavity" if depth >= 15.0 else None


def urine(anat: Anatomy, c: np.ndarray, sl: tuple, core: np.ndarray) -> str | None:
    """Why the region is excreted tracer in urine, or None.

    FDG is excreted into the urine; a tumour's avid core is solid tissue (its necrotic or
    myxoid parts are cold). So a hot core of water density is urine (bladder, renal pelvis,
    ureter) wherever it lies; on the IBSI crops every tumour core has a median >= 21 HU and
    every bladder <= 23 HU. Between 18 and 30 HU, or with excreted contrast (> 150 HU), the
    region must also sit on the pelvic midline (``_pelvic_midline``).
    """
    hu = float(np.median(anat.hu[sl][core]))
    if URINE_HU[0] <= hu <= URINE_HU[1]:
        return f"urine: hot fluid ({hu:.0f} HU)"
    if (URINE_HU[0] <= hu <= FLUID_HU[1] or hu >= CONTRAST_HU) and _pelvic_midline(anat, c):
        return f"urine: bladder on the pelvic midline ({hu:.0f} HU)"
    return None


def _pelvic_midline(anat: Anatomy, c: np.ndarray) -> bool:
    """The point lies on the trunk's midline, with bone on both sides, below the lungs."""
    k = int(round(c[0]))
    piece = body_piece(anat, k, (c[1], c[2]))
    if piece is None:
        return False
    lo, hi = _extent(piece, 0)
    sx = anat.grid.spacing[2]
    lungs = anat.lung_z_range()
    if (hi - lo + 1) * sx < 220.0 or abs(c[2] - (lo + hi) / 2.0) * sx > 40.0:
        return False
    if lungs and anat.slice_z(c[0]) > lungs[0]:
        return False
    rows = slice(max(0, int(c[1] - 80.0 / anat.grid.spacing[1])), int(c[1] + 80.0 / anat.grid.spacing[1]) + 1)
    cols = np.flatnonzero((anat.bone[k] & piece)[rows].any(axis=0))
    gap = 25.0 / sx
    return bool((cols < c[2] - gap).any() and (cols > c[2] + gap).any())


def kidney_side(anat: Anatomy, c: np.ndarray) -> int:
    """-1 / +1 for a region beside the spine (25-140 mm to the lower / higher column side,
    within 70 mm front-to-back, from 60 mm above to 250 mm below the lung bases) where a
    kidney lies, 0 otherwise (also without lungs in the CT: no level to judge by)."""
    _, _, spine = _piece_and_spine(anat, c)
    if spine is None:
        return 0
    dy = (c[1] - spine[0]) * anat.grid.spacing[1]
    dx = (c[2] - spine[1]) * anat.grid.spacing[2]
    lungs = anat.lung_z_range()
    if not lungs or not (lungs[0] - 250.0 <= anat.slice_z(c[0]) <= lungs[0] + 60.0):
        return 0
    return int(np.sign(dx)) if 25.0 <= abs(dx) <= 140.0 and abs(dy) <= 70.0 else 0
