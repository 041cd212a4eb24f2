"""One patient from Volumes to ``CaseArrays``: centre, box grid, resampling, intensities.

Pure: takes the CT (HU), PET (SUV) and optional tumour mask as ``Volume``s on their own
grids, returns the cached arrays; no file is read or written here.
"""

from __future__ import annotations

import numpy as np

from chmfl.errors import ChmflError
from chmfl.io.volume import Volume
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
from chmfl.preprocess.localise import Localisation, LocalisationRefused, SearchBox, locate_tumour


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
    ct: Volume, pet: Volume, mask_centre: tuple[float, float, float] | None, config: PrepareConfig,
    center_xyz: tuple[float, float, float] | None = None, search_box: SearchBox | None = None,
    patient_id: str = "",
) -> tuple[tuple[float, float, float], str, Localisation | None]:
    """The box centre (LPS mm), how it was found ("given", "mask" or "hotspot") and, for
    "hotspot", the ``Localisation`` (``preprocess.localise``); raises ``LocalisationRefused``
    when the tumour cannot be told apart without a contour."""
    if center_xyz is not None:
        return tuple(float(c) for c in center_xyz), "given", None  # type: ignore[return-value]
    if config.center == "mask" and mask_centre is None:
        raise ChmflError("center 'mask' asked for, but the case has no tumour contour")
    if mask_centre is not None and config.center in ("auto", "mask"):
        return mask_centre, "mask", None
    loc = locate_tumour(ct, pet, config, search_box)
    if loc.centre_xyz is None:
        who = f"patient {patient_id}: " if patient_id else ""
        raise LocalisationRefused(f"{who}cannot place the box without a contour: {loc.summary()}", loc)
    return loc.centre_xyz, "hotspot", loc


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


def _hotspot_check(ct: Volume, pet: Volume, points: np.ndarray, config: PrepareConfig
                   ) -> tuple[dict, Localisation]:
    """Where the no-contour rule would put the box (its best candidate when it refuses),
    how much of the tumour that box would hold, and whether the rule would refuse."""
    loc = locate_tumour(ct, pet, config)
    out: dict = {"hotspot_decision": loc.decision}
    if loc.best is None:
        return out, loc
    hot = np.asarray(loc.best.centre_xyz)
    inside = box_grid(tuple(hot), config.voxel_mm, config.box_mm).contains(points)
    return out | {
        "hotspot_center_xyz": [round(float(v), 2) for v in hot],
        "hotspot_error_mm": round(float(np.linalg.norm(hot - points.mean(axis=0))), 2),
        "hotspot_tumour_fraction": round(float(inside.mean()), 4),
        "hotspot_box_holds_tumour": bool(inside.all()),
    }, loc


def _box_images(ct: Volume, pet: Volume, center: tuple[float, float, float], config: PrepareConfig
                ) -> tuple[Grid, dict[str, np.ndarray], dict]:
    """CT and PET resampled onto the box around ``center`` and standardised (the network
    inputs and the raw HU / SUV), with how much of the box is padding."""
    grid = box_grid(center, config.voxel_mm, config.box_mm)
    constant = config.pad == "constant"
    ct_hu = resample_image(ct, grid, config.pad, config.ct_pad_hu if constant else 0.0)
    pet_suv = resample_image(pet, grid, config.pad, config.pet_pad_suv if constant else 0.0)
    pads = {"pad_fraction_ct": round(1.0 - inside_fraction(ct, grid), 4),
            "pad_fraction_pet": round(1.0 - inside_fraction(pet, grid), 4)}
    images = {
        "ct": normalize(ct_hu, "ct", grid.spacing, config.intensity),
        "pet": normalize(pet_suv, "pet", grid.spacing, config.intensity),
        "ct_hu": ct_hu,
        "pet_suv": pet_suv,
    }
    if config.quantize > 0:
        images = {k: quantize(v, QUANTUM[k] * config.quantize) for k, v in images.items()}
    return grid, images, pads


def hotspot_case(patient_id: str, ct: Volume, pet: Volume, config: PrepareConfig,
                 search_box: SearchBox | None = None, loc: Localisation | None = None,
                 mask: Volume | None = None) -> CaseArrays:
    """The box a new study gets without a contour: ``locate_tumour``'s choice (``loc`` when
    already computed), refused (``LocalisationRefused``) when the localiser refuses or the box
    would be mostly CT padding. The one code path of ``chmfl predict`` and of the hotspot test
    boxes ``data prepare`` stores for cross-validation. ``mask`` (the contour, for evaluation
    only) is resampled onto the box with the fraction of the tumour it holds."""
    loc = loc or locate_tumour(ct, pet, config, search_box)
    who = f"patient {patient_id}: " if patient_id else ""
    if loc.centre_xyz is None:
        raise LocalisationRefused(f"{who}cannot place the box without a contour: {loc.summary()}", loc)
    grid, images, pads = _box_images(ct, pet, loc.centre_xyz, config)
    if pads["pad_fraction_ct"] > config.hotspot.max_outside_ct:
        x, y, z = loc.centre_xyz
        raise LocalisationRefused(f"{who}the box around ({x:.0f}, {y:.0f}, {z:.0f}) mm lies "
                                  f"{pads['pad_fraction_ct']:.0%} outside the CT, no prediction is made on padding", loc)
    meta: dict = {"center_method": "hotspot", "config_hash": config.hash(), **pads, "localisation": loc.to_dict()}
    boxed = None
    if mask is not None:
        points = mask_points(mask)
        boxed = resample_mask(mask, grid)
        meta.update(mask_volume_ml=round(len(points) * float(np.prod(mask.spacing)) / 1000.0, 3),
                    mask_fraction_in_box=round(float(grid.contains(points).mean()), 4) if len(points) else 0.0,
                    mask_box_voxels=int(boxed.sum()))
    return CaseArrays(patient_id=patient_id, **images, mask=boxed, spacing=grid.spacing, origin=grid.origin,
                      direction=grid.direction, center=loc.centre_xyz, meta=meta)


def _stored_hotspot(patient_id: str, ct: Volume, pet: Volume, mask: Volume, config: PrepareConfig,
                    loc: Localisation) -> tuple[CaseArrays | None, str]:
    """The hotspot test box a contoured patient keeps beside its contour box (for
    ``chmfl cv --test-box hotspot``), or None and why the localiser refused."""
    try:
        return hotspot_case(patient_id, ct, pet, config, loc=loc, mask=mask), "chosen"
    except LocalisationRefused as exc:
        return None, f"refused: {str(exc).split(': ', 1)[-1]}"


def preprocess_case(
    patient_id: str,
    ct: Volume,
    pet: Volume,
    mask: Volume | None,
    config: PrepareConfig,
    center_xyz: tuple[float, float, float] | None = None,
    search_box: SearchBox | None = None,
) -> CaseArrays:
    """Resample CT, PET (and mask) onto the box around the tumour and standardise them.

    Without a contour or ``center_xyz`` the box is ``hotspot_case``'s (where ``locate_tumour``
    finds the tumour, inside ``search_box`` when given; its record is ``meta["localisation"]``).
    With a contour the box is centred on it, and the hotspot box a new study would get is kept
    beside it (``CaseArrays.hotspot``; ``meta["hotspot_box"]`` says "chosen" or why refused)."""
    for name, vol in (("CT", ct), ("PET", pet), ("mask", mask)):
        if vol is not None:
            _check_finite(patient_id, name, vol)
    points = None if mask is None else mask_points(mask)  # (n, 3) LPS of mask voxels
    if points is not None and len(points) == 0:
        raise ChmflError(f"patient {patient_id}: the tumour contour is empty")
    if points is None and center_xyz is None and config.center != "mask":
        return hotspot_case(patient_id, ct, pet, config, search_box)  # a new study: chmfl predict
    centre = None if points is None else tuple(float(v) for v in points.mean(axis=0))
    center, how, loc = choose_center(ct, pet, centre, config, center_xyz, search_box, patient_id)
    grid, images, pads = _box_images(ct, pet, center, config)
    meta: dict = {"center_method": how, "config_hash": config.hash(), **pads}
    if loc is not None:
        meta["localisation"] = loc.to_dict()
    boxed, hotspot = None, None
    if mask is not None:
        boxed, mask_meta = _mask_in_box(mask, points, grid, patient_id)
        meta.update(mask_meta)
        check, hot_loc = _hotspot_check(ct, pet, points, config)
        meta.update(check)
        hotspot, meta["hotspot_box"] = _stored_hotspot(patient_id, ct, pet, mask, config, hot_loc)
    return CaseArrays(
        patient_id=patient_id,
        **images,
        mask=boxed,
        spacing=grid.spacing,
        origin=grid.origin,
        direction=grid.direction,
        center=center,
        meta=meta,
        hotspot=hotspot,
    )
