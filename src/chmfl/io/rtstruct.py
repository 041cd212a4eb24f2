"""RTSTRUCT contours to a uint8 mask on a reference image grid.

Rasterisation semantics: a voxel is inside when its centre lies inside the polygon, in
continuous voxel-index coordinates of the reference grid (scanline even-odd test, checked
against matplotlib.path in the tests). Contours
are grouped by plane; within a plane they are combined with the even-odd rule (XOR), so a
contour inside another is a hole. Each grid slice takes the nearest contour plane within
half a slice (or half the gap between contour planes, when contours are sparser than the
slices). Contours must be parallel to the image slices.

Errors (ChmflError, one line): not an RTSTRUCT; frame of reference or patient differs from
the image's; ROI missing (the present ones are listed); ROI without closed contours; mask
empty after rasterisation.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from chmfl.errors import ChmflError
from chmfl.io.dicom_values import text
from chmfl.io.volume import Volume

log = logging.getLogger(__name__)

DEFAULT_ROI = "GTV"  # default: the first ROI whose name contains GTV (any case)
PLANE_TOL = 0.1  # a contour's points may lie this many slices off its plane


@dataclass(frozen=True)
class RoiContours:
    """The closed contours of one ROI, in patient coordinates (LPS mm), with its identity."""

    name: str
    frame_of_reference_uid: str
    patient_id: str
    contours: tuple[np.ndarray, ...]  # each (N, 3) x, y, z
    source: str


def _read(path: str | os.PathLike) -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise ChmflError(f"RTSTRUCT {path}: file does not exist")
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a broken file
        raise ChmflError(f"RTSTRUCT {path}: unreadable ({type(exc).__name__})") from None
    if text(ds.get("Modality")).upper() != "RTSTRUCT" or "StructureSetROISequence" not in ds:
        raise ChmflError(f"RTSTRUCT {path}: not an RTSTRUCT, or truncated (Modality "
                         f"{text(ds.get('Modality'))!r}, no StructureSetROISequence)")
    return ds


def structure_references(ds: Dataset) -> dict:
    """ROI names and the image series / frames of reference an RTSTRUCT dataset refers to."""
    series, frames = [], []
    for ref in ds.get("ReferencedFrameOfReferenceSequence") or []:
        frames.append(text(ref.get("FrameOfReferenceUID")))
        for study in ref.get("RTReferencedStudySequence") or []:
            for s in study.get("RTReferencedSeriesSequence") or []:
                series.append(text(s.get("SeriesInstanceUID")))
    for roi in ds.get("StructureSetROISequence") or []:
        frames.append(text(roi.get("ReferencedFrameOfReferenceUID")))
    names = tuple(text(r.get("ROIName")) for r in ds.get("StructureSetROISequence") or [])
    return {"series": tuple(dict.fromkeys(s for s in series if s)),
            "frames_of_reference": tuple(dict.fromkeys(f for f in frames if f)),
            "roi_names": names}


def list_rois(path: str | os.PathLike) -> list[str]:
    """Names of the ROIs in an RTSTRUCT file, in file order."""
    return list(structure_references(_read(path))["roi_names"])


def select_roi(names: list[str], roi: str | None, where: str) -> str:
    """An exact name, else the first name matching regex ``roi`` (default GTV, any case;
    without ``roi`` a structure set holding a single ROI gives that ROI)."""
    if roi is not None and roi in names:
        return roi
    pattern = DEFAULT_ROI if roi is None else roi
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ChmflError(f"{where}: --roi {pattern!r} is not a valid regular expression ({exc})") from None
    matches = [n for n in names if regex.search(n)]
    if not matches and roi is None and len(names) == 1:
        log.info("%s: no ROI name contains GTV; using the only ROI %r", where, names[0])
        return names[0]
    if not matches:
        raise ChmflError(f"{where}: no ROI matches {pattern!r}; ROIs present: {names}")
    if len(matches) > 1:
        log.warning("%s: ROIs %s match %r; using %r", where, matches, pattern, matches[0])
    return matches[0]


def load_roi_contours(
    path: str | os.PathLike, roi: str | None = None, *, frame_of_reference_uid: str = "", patient_id: str = ""
) -> RoiContours:
    """The chosen ROI's closed contours, checked against the image's frame of reference/patient.

    An ROI whose frame of reference UID differs from the image's is refused, except when
    that UID is not among the frames the structure set declares (an inconsistent file, as
    STS_046's CT RTSTRUCT) and the declared one is the image's: then it is used, with a
    warning.
    """
    ds = _read(path)
    where = f"RTSTRUCT {path}"
    rs_patient = text(ds.get("PatientID"))
    if patient_id and rs_patient and rs_patient != patient_id:
        raise ChmflError(f"{where}: belongs to patient {rs_patient!r}, the image to {patient_id!r}")
    rois = list(ds.StructureSetROISequence)
    name = select_roi([text(r.get("ROIName")) for r in rois], roi, where)
    item = next(r for r in rois if text(r.get("ROIName")) == name)
    refs = structure_references(ds)
    frame = text(item.get("ReferencedFrameOfReferenceUID")) or next(iter(refs["frames_of_reference"]), "")
    if frame_of_reference_uid and frame and frame != frame_of_reference_uid:
        declared = {text(r.get("FrameOfReferenceUID")) for r in ds.get("ReferencedFrameOfReferenceSequence") or []}
        if frame not in declared and frame_of_reference_uid in declared:
            log.warning("%s: ROI %r names frame of reference %s, which the structure set does not "
                        "declare; it declares the image's frame %s: using it", where, name, frame,
                        frame_of_reference_uid)
            frame = frame_of_reference_uid
        else:
            raise ChmflError(f"{where}: ROI {name!r} is in frame of reference {frame}, the image in "
                             f"{frame_of_reference_uid}; they cannot be overlaid")
    number = text(item.get("ROINumber"))
    contours = []
    for rc in ds.get("ROIContourSequence") or []:
        if text(rc.get("ReferencedROINumber")) != number:
            continue
        for c in rc.get("ContourSequence") or []:
            points = _contour_points(c)
            kind = text(c.get("ContourGeometricType")).upper()
            if kind == "CLOSED_PLANAR" and points.size >= 9 and points.size % 3 == 0 and np.isfinite(points).all():
                contours.append(points.reshape(-1, 3))
    if not contours:
        raise ChmflError(f"{where}: ROI {name!r} has no closed planar contours")
    return RoiContours(name, frame, rs_patient, tuple(contours), str(path))


def _contour_points(contour: Dataset) -> np.ndarray:
    """ContourData as floats, parsed from the raw text (pydicom's DS objects are slow)."""
    raw = contour.get_item("ContourData")
    if raw is None:
        return np.zeros(0)
    value = raw.value
    if isinstance(value, bytes):
        try:
            return np.array(value.decode("ascii").replace("\x00", " ").split("\\"), dtype=float)
        except ValueError:
            return np.zeros(0)
    return np.asarray([float(v) for v in (value or [])], dtype=float)


def rasterise(roi: RoiContours, reference: Volume) -> np.ndarray:
    """uint8 (z, y, x) mask of ``roi`` on ``reference``'s grid (see the module docstring)."""
    where = f"RTSTRUCT {roi.source}"
    planes: dict[float, list[np.ndarray]] = {}
    for points in roi.contours:
        idx = reference.physical_to_index(points)  # (N, 3) continuous (z, y, x)
        if np.ptp(idx[:, 0]) > PLANE_TOL:
            raise ChmflError(f"{where}: ROI {roi.name!r} has contours that are not parallel to the "
                             "image slices (oblique to the image grid)")
        planes.setdefault(round(float(idx[:, 0].mean()), 3), []).append(idx[:, 1:])
    nz, ny, nx = reference.shape
    mask = np.zeros((nz, ny, nx), dtype=np.uint8)
    positions = np.array(sorted(planes))
    gap = float(np.median(np.diff(positions))) if len(positions) > 1 else 1.0
    tol = max(0.5, gap / 2.0) + 1e-6
    for k in range(nz):
        nearest = positions[np.argmin(np.abs(positions - k))]
        if abs(nearest - k) <= tol:
            for poly in planes[float(nearest)]:
                mask[k] ^= _fill(poly, (ny, nx))
    outside = int(np.sum((positions < -tol) | (positions > nz - 1 + tol)))
    if outside:
        log.warning("%s: %d of %d contour planes of %r lie outside the image grid",
                    where, outside, len(positions), roi.name)
    if not mask.any():
        raise ChmflError(f"{where}: ROI {roi.name!r} gives an empty mask on the image grid "
                         "(contours outside the image or smaller than a voxel)")
    return mask


def _fill(poly_yx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 mask of the voxel centres inside one polygon given in (row, column) indices.

    Scanline even-odd rule: along each row of centres, count the polygon edges crossed
    to the right (half-open in y, so a vertex on the row counts once).
    """
    ny, nx = shape
    out = np.zeros(shape, dtype=np.uint8)
    y0, x0 = poly_yx[:, 0], poly_yx[:, 1]
    y1, x1 = np.roll(y0, -1), np.roll(x0, -1)
    rows = np.arange(max(int(np.ceil(y0.min())), 0), min(int(np.floor(y0.max())), ny - 1) + 1)
    if rows.size == 0:
        return out
    yy = rows[:, None].astype(float)  # (R, 1)
    crosses = (y0 > yy) != (y1 > yy)  # (R, E)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = np.where(crosses, x0 + (yy - y0) * (x1 - x0) / (y1 - y0), np.inf)
    xc.sort(axis=1)
    counts = crosses.sum(axis=1)
    cols = np.arange(nx, dtype=float)
    for row, cuts, n in zip(rows, xc, counts):
        if n:
            right = n - np.searchsorted(cuts[:n], cols, side="right")  # crossings right of centre
            out[row] = right % 2
    return out


def read_rtstruct_mask(path: str | os.PathLike, reference: Volume, roi: str | None = None) -> Volume:
    """The ROI of an RTSTRUCT (exact name or regex; default first matching GTV) as a uint8
    mask on ``reference``'s grid, after checking frame of reference and patient."""
    contours = load_roi_contours(
        path, roi,
        frame_of_reference_uid=text(reference.meta.get("frame_of_reference_uid")),
        patient_id=text(reference.meta.get("patient_id")),
    )
    mask = rasterise(contours, reference)
    meta = {"source": str(path), "modality": "MASK", "roi_name": contours.name,
            "patient_id": contours.patient_id or text(reference.meta.get("patient_id")),
            "frame_of_reference_uid": contours.frame_of_reference_uid}
    return Volume(mask, reference.spacing, reference.origin, reference.direction, meta)
