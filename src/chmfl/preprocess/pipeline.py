"""One patient from Volumes to ``CaseArrays``: centre, box grid, resampling, intensities.

Pure: takes the CT (HU), PET (SUV) and optional tumour mask as ``Volume``s on their own
grids, returns the cached arrays; no file is read or written here.
"""

from __future__ import annotations

import numpy as np

from chmfl.errors import ChmflError
from chmfl.io.volume import Volume
from chmfl.preprocess.box import pet_hotspot
from chmfl.preprocess.cache_format import CaseArrays
from chmfl.preprocess.config import QUANTUM, PrepareConfig
from chmfl.preprocess.geometry import (
    Grid,
    box_grid,
    inside_fraction,
    mask_points,
    resample_image,
    resample_mask,
)
from chmfl.preprocess.intensity import normalize


def quantize(x: np.ndarray, step: float) -> np.ndarray:
    """Round to multiples of ``step`` (a power of two: exact in float32), in place."""
    x *= 1.0 / step
    np.round(x, out=x)
    x *= step
    return x


def _check_finite(patient_id: str, name: str, volume: Volume) -> None:
    arr = np.asarray(volume.array)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ChmflError(f"patient {patient_id}: {name} image has {bad} NaN/inf voxel(s)")


def choose_center(
    pet: Volume, mask_centre: tuple[float, float, float] | None, config: PrepareConfig,
    center_xyz: tuple[float, float, float] | None = None,
) -> tuple[tuple[float, float, float], str]:
    """The box centre (LPS mm) and how it was found: "given", "mask" or "hotspot"."""
    if center_xyz is not None:
        return tuple(float(c) for c in center_xyz), "given"  # type: ignore[return-value]
    if config.center == "mask" and mask_centre is None:
        raise ChmflError("center 'mask' asked for, but the case has no tumour contour")
    if mask_centre is not None and config.center in ("auto", "mask"):
        return mask_centre, "mask"
    return _hotspot(pet, config), "hotspot"


def _mask_in_box(mask: Volume, points: np.ndarray, grid: Grid, patient_id: str) -> tuple[np.ndarray, dict]:
    """The mask on the box grid and how much of the tumour the box holds."""
    inside = grid.contains(points)
    if not inside.any():
        raise ChmflError(f"patient {patient_id}: the tumour mask lies entirely outside the box")
    boxed = resample_mask(mask, grid)
    voxel_ml = float(np.prod(mask.spacing)) / 1000.0
    return boxed, {
        "mask_volume_ml": round(len(points) * voxel_ml, 3),
        "mask_fraction_in_box": round(float(inside.mean()), 4),
        "mask_box_voxels": int(boxed.sum()),
    }


def _hotspot(pet: Volume, config: PrepareConfig) -> tuple[float, float, float]:
    h = config.hotspot
    return pet_hotspot(pet, h.sigma_mm, h.threshold_suv, h.fraction)


def _hotspot_check(pet: Volume, points: np.ndarray, config: PrepareConfig) -> dict:
    """Where the no-contour rule would put the box, and how much of the tumour it would hold."""
    hot = np.asarray(_hotspot(pet, config))
    inside = box_grid(tuple(hot), config.voxel_mm, config.box_mm).contains(points)
    return {
        "hotspot_center_xyz": [round(float(v), 2) for v in hot],
        "hotspot_error_mm": round(float(np.linalg.norm(hot - points.mean(axis=0))), 2),
        "hotspot_tumour_fraction": round(float(inside.mean()), 4),
        "hotspot_box_holds_tumour": bool(inside.all()),
    }


def preprocess_case(
    patient_id: str,
    ct: Volume,
    pet: Volume,
    mask: Volume | None,
    config: PrepareConfig,
    center_xyz: tuple[float, float, float] | None = None,
) -> CaseArrays:
    """Resample CT, PET (and mask) onto the box around the tumour and standardise them."""
    for name, vol in (("CT", ct), ("PET", pet), ("mask", mask)):
        if vol is not None:
            _check_finite(patient_id, name, vol)
    points = None if mask is None else mask_points(mask)  # (n, 3) LPS of mask voxels
    if points is not None and len(points) == 0:
        raise ChmflError(f"patient {patient_id}: the tumour contour is empty")
    centre = None if points is None else tuple(float(v) for v in points.mean(axis=0))
    center, how = choose_center(pet, centre, config, center_xyz)
    grid = box_grid(center, config.voxel_mm, config.box_mm)
    constant = config.pad == "constant"
    ct_hu = resample_image(ct, grid, config.pad, config.ct_pad_hu if constant else 0.0)
    pet_suv = resample_image(pet, grid, config.pad, config.pet_pad_suv if constant else 0.0)
    meta: dict = {
        "center_method": how,
        "config_hash": config.hash(),
        "pad_fraction_ct": round(1.0 - inside_fraction(ct, grid), 4),
        "pad_fraction_pet": round(1.0 - inside_fraction(pet, grid), 4),
    }
    boxed = None
    if mask is not None:
        boxed, mask_meta = _mask_in_box(mask, points, grid, patient_id)
        meta.update(mask_meta)
        meta.update(_hotspot_check(pet, points, config))
    images = {
        "ct": normalize(ct_hu, "ct", grid.spacing, config.intensity),
        "pet": normalize(pet_suv, "pet", grid.spacing, config.intensity),
        "ct_hu": ct_hu,
        "pet_suv": pet_suv,
    }
    if config.quantize > 0:
        images = {k: quantize(v, QUANTUM[k] * config.quantize) for k, v in images.items()}
    return CaseArrays(
        patient_id=patient_id,
        **images,
        mask=boxed,
        spacing=grid.spacing,
        origin=grid.origin,
        direction=grid.direction,
        center=center,
        meta=meta,
    )
