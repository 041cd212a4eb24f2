"""Order the slices of one DICOM image series and derive (and check) its 3D geometry.

Slices are sorted by their position along the normal n = row x column of
ImageOrientationPatient. The volume geometry follows ITK: origin = ImagePositionPatient of
the first sorted slice; direction columns = (row, column, n); spacing (z, y, x) = (median
gap along n, PixelSpacing[0] (between rows), PixelSpacing[1] (between columns)).

The series is refused (ChmflError naming the folder, file and values) when slices disagree
on orientation, size or pixel spacing, when two share a position, when a gap differs from
the median gap (a missing slice shows as a gap of about twice the median), or when slices
are sheared (gantry tilt), since a regular grid could not hold them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from chmfl.errors import ChmflError
from chmfl.io.dicom_values import number

GAP_RTOL = 0.05  # a gap may differ from the median gap by 5 %
DUPLICATE_MM = 1e-3  # positions closer than this are the same slice


@dataclass(frozen=True)
class Geometry:
    """Grid of a sorted series: spacing (z, y, x) mm, origin LPS (x, y, z), ITK direction."""

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    shape: tuple[int, int, int]


def _floats(ds: Dataset, keyword: str, count: int, path: Path, where: str) -> np.ndarray:
    raw = ds.get(keyword)
    if raw is None:
        values = []
    elif isinstance(raw, str | bytes) or not hasattr(raw, "__len__"):
        values = [number(raw)]
    else:
        values = [number(v) for v in raw]
    if len(values) != count or any(v is None for v in values):
        tag = {"ImagePositionPatient": "(0020,0032)", "ImageOrientationPatient": "(0020,0037)",
               "PixelSpacing": "(0028,0030)"}[keyword]
        raise ChmflError(f"{where}: {path.name} has no valid {tag} {keyword} ({raw!r})")
    return np.asarray(values, dtype=float)


def _frame(ds: Dataset, path: Path, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """(position, orientation, pixel spacing, (rows, columns)) of one slice, checked."""
    pos = _floats(ds, "ImagePositionPatient", 3, path, where)
    iop = _floats(ds, "ImageOrientationPatient", 6, path, where)
    spacing = _floats(ds, "PixelSpacing", 2, path, where)
    size = (int(ds.get("Rows") or 0), int(ds.get("Columns") or 0))
    if min(size) < 1:
        raise ChmflError(f"{where}: {path.name} has no valid (0028,0010)/(0028,0011) Rows/Columns")
    if np.any(spacing <= 0):
        raise ChmflError(f"{where}: {path.name} has a non-positive PixelSpacing {spacing.tolist()}")
    row, col = iop[:3], iop[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-2 or abs(np.linalg.norm(col) - 1) > 1e-2 or abs(row @ col) > 1e-2:
        raise ChmflError(f"{where}: {path.name} has an invalid ImageOrientationPatient {iop.tolist()}")
    return pos, iop, spacing, size


def sort_slices(slices: Sequence[tuple[Path, Dataset]], where: str) -> tuple[list[int], Geometry]:
    """Order (indices into ``slices``) along the slice normal, and the checked geometry."""
    frames = [_frame(ds, path, where) for path, ds in slices]
    _check_same(slices, frames, where)
    _, iop, pixel, (rows, cols) = frames[0]
    row = iop[:3] / np.linalg.norm(iop[:3])
    col = iop[3:] - (iop[3:] @ row) * row
    col /= np.linalg.norm(col)
    normal = np.cross(row, col)
    positions = np.array([f[0] for f in frames])
    along = positions @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    if len(order) < 2:
        raise ChmflError(f"{where}: only one image slice; a 3D volume needs at least two")
    names = [slices[i][0].name for i in order]
    dz = _check_gaps(along[order], names, where)
    _check_shear(positions[order], row, col, pixel, where)
    direction = np.stack([row, col, normal], axis=1)  # columns = index axes (x, y, z)
    geometry = Geometry(
        spacing=(float(dz), float(pixel[0]), float(pixel[1])),
        origin=tuple(float(v) for v in positions[order[0]]),
        direction=tuple(float(v) for v in direction.ravel()),
        shape=(len(order), rows, cols),
    )
    return order, geometry


def _check_same(slices, frames, where: str) -> None:
    """Every slice must share orientation, rows/columns and pixel spacing with the first."""
    first_path = slices[0][0].name
    _, iop0, px0, size0 = frames[0]
    for (path, _), (_, iop, px, size) in zip(slices[1:], frames[1:]):
        if size != size0:
            raise ChmflError(f"{where}: inconsistent image size: {first_path} is {size0[0]}x{size0[1]}, "
                             f"{path.name} is {size[0]}x{size[1]} (rows x columns)")
        if not np.allclose(iop, iop0, atol=1e-4):
            raise ChmflError(f"{where}: inconsistent ImageOrientationPatient: {first_path} "
                             f"{iop0.round(5).tolist()} vs {path.name} {iop.round(5).tolist()}")
        if not np.allclose(px, px0, rtol=1e-4, atol=1e-5):
            raise ChmflError(f"{where}: inconsistent PixelSpacing: {first_path} {px0.tolist()} vs "
                             f"{path.name} {px.tolist()}")


def _check_gaps(along: np.ndarray, names: list[str], where: str) -> float:
    """Median slice gap; refuse duplicates and gaps that differ from it."""
    gaps = np.diff(along)
    for i in np.flatnonzero(gaps < DUPLICATE_MM):
        raise ChmflError(f"{where}: duplicate slice position {along[i]:.3f} mm along the normal "
                         f"({names[i]} and {names[i + 1]})")
    median = float(np.median(gaps))
    for i in np.flatnonzero(np.abs(gaps - median) > GAP_RTOL * median):
        ratio = gaps[i] / median
        kind = f"missing slice(s) (~{round(ratio) - 1})" if ratio > 1.5 else "non-uniform slice spacing"
        raise ChmflError(f"{where}: {kind}: gap of {gaps[i]:.3f} mm between {names[i]} "
                         f"({along[i]:.3f} mm) and {names[i + 1]} ({along[i + 1]:.3f} mm), "
                         f"median gap {median:.3f} mm")
    return median


def _check_shear(positions: np.ndarray, row, col, pixel, where: str) -> None:
    """Slices must be stacked along the normal (no gantry tilt): in-plane offsets < 1/2 pixel."""
    drift_x = np.abs((positions - positions[0]) @ row).max()
    drift_y = np.abs((positions - positions[0]) @ col).max()
    if drift_x > 0.5 * pixel[1] or drift_y > 0.5 * pixel[0]:
        raise ChmflError(f"{where}: slices are sheared (in-plane drift {drift_x:.2f}/{drift_y:.2f} mm "
                         "along rows/columns; gantry tilt?); resample the series before use")
