"""Convert one series (DICOM folder or image file) to an image file, with an optional RTSTRUCT
mask on the same grid. What ``chmfl convert`` runs.

Everything that can fail is done before anything is written: the RTSTRUCT and its ROI are
checked against the series' frame of reference and patient before pixels are read, and
both outputs are written to temporaries that are renamed only when both are complete.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.io.imageio import WRITE_SUFFIXES, write_image_now
from chmfl.io.validate import read_as
from chmfl.io.volume import Volume

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvertResult:
    """What ``convert_series`` wrote."""

    image: Path
    mask: Path | None
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    modality: str
    units: str
    roi_name: str = ""
    mask_ml: float = 0.0


def default_mask_path(out: Path) -> Path:
    """OUT.nii.gz -> OUT_mask.nii.gz (same folder and format)."""
    name = out.name
    suffix = next((s for s in sorted(WRITE_SUFFIXES, key=len, reverse=True) if name.lower().endswith(s)), "")
    stem = name[: len(name) - len(suffix)] if suffix else name
    return out.with_name(f"{stem}_mask{suffix}")


def _check_output(path: Path, what: str) -> None:
    if not any(path.name.lower().endswith(s) for s in WRITE_SUFFIXES):
        raise ChmflError(f"{what} {path}: unsupported format (write: {', '.join(WRITE_SUFFIXES)})")
    if path.is_dir():
        raise ChmflError(f"{what} {path}: is a folder")


def convert_series(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    rtstruct: str | os.PathLike | None = None,
    roi: str | None = None,
    mask_out: str | os.PathLike | None = None,
    suv: str = "bw",
    overrides: dict | None = None,
) -> ConvertResult:
    """Read ``source`` (PET converted to SUV ``suv``), write it to ``out`` and, with an
    RTSTRUCT, its ROI mask to ``mask_out`` (default OUT_mask.<ext>). All or nothing."""
    from chmfl.io.dicom import series_identity
    from chmfl.io.rtstruct import load_roi_contours, rasterise

    source, out = Path(source), Path(out)
    _check_output(out, "output")
    if mask_out is not None and rtstruct is None:
        raise ChmflError(f"--mask-out {mask_out} needs --rtstruct")
    mask_path = None
    if rtstruct is not None:
        mask_path = Path(mask_out) if mask_out is not None else default_mask_path(out)
        _check_output(mask_path, "mask output")
        if mask_path.resolve() == out.resolve():
            raise ChmflError(f"mask output {mask_path} is the same file as the image output")
    contours = None
    if rtstruct is not None:
        ident = series_identity(source) if source.is_dir() else {}
        if not ident:
            log.warning("%s is not a DICOM series: the RTSTRUCT's frame of reference cannot be checked", source)
        contours = load_roi_contours(rtstruct, roi, frame_of_reference_uid=ident.get("frame_of_reference_uid", ""),
                                     patient_id=ident.get("patient_id", ""))
    volume = read_as(source, None, f"series {source}", suv=suv, overrides=overrides)
    if (overrides or suv != "bw") and volume.meta.get("modality") != "PT":
        given = [f"--{k.replace('_', '-')}" for k in overrides or {}] + (["--suv"] if suv != "bw" else [])
        raise ChmflError(f"series {source}: {', '.join(given)} apply to a PET series only; this is "
                         f"{volume.meta.get('modality') or 'an image file'}")
    mask = None
    if contours is not None:
        meta = {"roi_name": contours.name, "modality": "MASK", "source": str(rtstruct)}
        mask = Volume(rasterise(contours, volume), volume.spacing, volume.origin, volume.direction, meta)
    with atomic_path(out) as tmp_image:
        write_image_now(volume, tmp_image, shown=out)
        if mask is not None:
            with atomic_path(mask_path) as tmp_mask:
                write_image_now(mask, tmp_mask, shown=mask_path)
    ml = float(mask.array.sum() * np.prod(volume.spacing) / 1000.0) if mask is not None else 0.0
    return ConvertResult(out, mask_path, volume.shape, volume.spacing, volume.meta.get("modality", ""),
                         volume.meta.get("units", ""), contours.name if contours else "", ml)
