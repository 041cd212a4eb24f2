"""DICOM series: find them in a folder tree, read one into a ``Volume`` (CT in HU, PET in SUV).

``scan_dicom_folder`` reads headers only and groups files by SeriesInstanceUID, so a
study in its original layout (e.g. TCIA) can be searched for its CT, PET and RTSTRUCT.
``read_dicom_series`` reads one series folder, checks it is one complete image series
(see ``slices.py`` for the geometry checks), applies RescaleSlope/Intercept per slice and,
for PET, converts to SUV (``suv.py``). Every problem is a one-line ChmflError naming the
folder and what is wrong. Meta never holds patient names, birth dates or addresses.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from chmfl.errors import ChmflError
from chmfl.io.dicom_values import number, text
from chmfl.io.slices import sort_slices
from chmfl.io.suv import suv_factors
from chmfl.io.volume import Volume

log = logging.getLogger(__name__)

IMAGE_MODALITIES = ("CT", "PT", "MR")
_SKIP_NAMES = {"DICOMDIR", "Thumbs.db", "desktop.ini"}
_SCAN_TAGS = ["SOPInstanceUID", "Modality", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
              "FrameOfReferenceUID", "SeriesDescription", "StructureSetROISequence",
              "ReferencedFrameOfReferenceSequence"]
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")  # such a file that does not parse is an error


@dataclass(frozen=True)
class SeriesInfo:
    """One series found by ``scan_dicom_folder`` (header values only; no pixels read)."""

    series_uid: str
    modality: str
    patient_id: str
    study_uid: str
    frame_of_reference_uid: str
    series_description: str
    files: tuple[Path, ...]
    referenced_series_uids: tuple[str, ...] = ()  # RTSTRUCT: image series it contours
    referenced_frame_of_reference_uids: tuple[str, ...] = ()  # RTSTRUCT
    roi_names: tuple[str, ...] = ()  # RTSTRUCT

    @property
    def folder(self) -> Path:
        """The deepest folder holding every file of the series."""
        return Path(os.path.commonpath([str(f.parent) for f in self.files]))


def read_dataset(path: Path, where: str, *, headers_only: bool, tags: list[str] | None = None) -> Dataset | None:
    """Read one file (only ``tags`` when given); None when it is not DICOM; ChmflError when
    DICOM but unreadable."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=headers_only, specific_tags=tags)
    except InvalidDicomError:
        pass  # no 'DICM' preamble: maybe an old file without it, maybe not DICOM at all
    except Exception as exc:  # noqa: BLE001 - any parse failure is a broken file
        raise ChmflError(f"{where}: unreadable or truncated DICOM file {path.name} "
                         f"({type(exc).__name__}: {_first_line(exc)})") from None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=headers_only, force=True, specific_tags=tags)
        if "SOPInstanceUID" in ds and "Modality" in ds:
            return ds
    except Exception:  # noqa: BLE001 - a forced read of a non-DICOM file may fail anyhow
        pass
    return None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else ""


def _series_files(folder: Path) -> list[Path]:
    where = f"DICOM series {folder}"
    if not folder.exists():
        raise ChmflError(f"{where}: folder does not exist")
    if not folder.is_dir():
        raise ChmflError(f"{where}: not a folder (pass the folder that holds the slices)")
    entries = sorted(folder.iterdir())
    files = [p for p in entries if p.is_file() and not p.name.startswith(".") and p.name not in _SKIP_NAMES]
    if not files:
        subdirs = [p.name for p in entries if p.is_dir()]
        hint = f" (it has subfolders {subdirs[:5]}: pass the one that holds the slices)" if subdirs else ""
        raise ChmflError(f"{where}: folder is empty{hint}")
    return files


def read_series_datasets(folder: Path, headers_only: bool) -> list[tuple[Path, Dataset]]:
    """(path, dataset) of the DICOM files of one image series folder (checked to be one
    single-frame image series; slices not yet sorted)."""
    where = f"DICOM series {folder}"
    files = _series_files(folder)
    found, skipped = [], []
    for path in files:
        ds = read_dataset(path, where, headers_only=headers_only)
        if ds is None and path.suffix.lower() in DICOM_SUFFIXES:
            raise ChmflError(f"{where}: {path.name} is not a readable DICOM file (corrupt, truncated "
                             "or not DICOM at all)")
        (skipped if ds is None else found).append((path, ds))
        if ds is not None and not headers_only:
            _check_complete(path, ds, where)
    if not found:
        raise ChmflError(f"{where}: no DICOM files among its {len(files)} file(s)")
    if skipped:
        log.warning("%s: ignored %d non-DICOM file(s), e.g. %s", where, len(skipped), skipped[0][0].name)
    found = _drop_localizers(found, where)
    _check_one_series(found, where)
    return found


def _drop_localizers(found: list[tuple[Path, Dataset]], where: str) -> list[tuple[Path, Dataset]]:
    """Scout/localizer images stored in the series are not slices of the volume."""
    def is_localizer(ds: Dataset) -> bool:
        image_type = ds.get("ImageType") or []
        values = [image_type] if isinstance(image_type, str | bytes) else list(image_type)
        return any(text(v).upper() == "LOCALIZER" for v in values)

    kept = [(p, ds) for p, ds in found if not is_localizer(ds)]
    if kept and len(kept) < len(found):
        log.warning("%s: ignored %d localizer image(s)", where, len(found) - len(kept))
        return kept
    return found


def _check_complete(path: Path, ds: Dataset, where: str) -> None:
    """pydicom reads a truncated file silently: an image file without pixel data is one."""
    modality = text(ds.get("Modality")).upper()
    if "PixelData" not in ds and (not modality or modality in IMAGE_MODALITIES):
        raise ChmflError(f"{where}: unreadable or truncated DICOM file {path.name} "
                         f"(no {'Modality or ' if not modality else ''}pixel data)")


def _check_one_series(found: list[tuple[Path, Dataset]], where: str) -> None:
    for keyword, label in (("SeriesInstanceUID", "series (SeriesInstanceUID)"), ("Modality", "modalities")):
        values = {text(ds.get(keyword)) for _, ds in found}
        if len(values) > 1:
            shown = ", ".join(sorted(v or "<missing>" for v in values)[:4])
            raise ChmflError(f"{where}: mixed {label}: {len(values)} values ({shown}); "
                             "put each series in its own folder")
    modality = text(found[0][1].get("Modality")).upper()
    if modality not in IMAGE_MODALITIES:
        raise ChmflError(f"{where}: modality {modality or 'missing'!r} is not an image series "
                         f"({'/'.join(IMAGE_MODALITIES)} expected)")
    for path, ds in found:
        frames = number(ds.get("NumberOfFrames")) or 1
        if frames > 1:
            raise ChmflError(f"{where}: {path.name} is a multi-frame image ({int(frames)} frames); "
                             "only single-frame slices are supported")


def series_identity(folder: str | os.PathLike) -> dict:
    """Patient ID, frame of reference, series UID and modality of a series, from the first
    readable header."""
    folder = Path(folder)
    where = f"DICOM series {folder}"
    for path in _series_files(folder):
        ds = read_dataset(path, where, headers_only=True)
        if ds is not None:
            return {"patient_id": text(ds.get("PatientID")),
                    "frame_of_reference_uid": text(ds.get("FrameOfReferenceUID")),
                    "series_instance_uid": text(ds.get("SeriesInstanceUID")),
                    "modality": text(ds.get("Modality")).upper()}
    raise ChmflError(f"{where}: no DICOM files")


def read_dicom_series(folder: str | os.PathLike, *, suv: str = "bw", overrides: dict | None = None) -> Volume:
    """One image series folder as a Volume: CT in HU, PET in SUV ``suv``, MR as stored.

    ``overrides`` (PET only): weight_kg, dose_bq, injection_time (ISO), half_life_s,
    height_m, sex: values that replace (or supply missing) header values.
    """
    folder = Path(folder)
    where = f"DICOM series {folder}"
    found = read_series_datasets(folder, headers_only=False)
    order, geometry = sort_slices(found, where)
    ordered = [found[i] for i in order]
    array = np.empty(geometry.shape, dtype=np.float32)
    for k, (path, ds) in enumerate(ordered):
        array[k] = _rescaled_pixels(path, ds, geometry.shape[1:], where)
    meta = _meta(folder, [ds for _, ds in ordered])
    if meta["modality"] == "PT":
        factors, params = suv_factors([ds for _, ds in ordered], suv, overrides, where=where)
        array *= factors.astype(np.float32)[:, None, None]
        meta.update(units=f"SUV{suv}", suv_parameters=params)
        log.info("%s: PET to SUV%s with %s", where, suv, _describe(params))
    if not np.isfinite(array).all():
        raise ChmflError(f"{where}: pixel values are not finite after rescaling")
    return Volume(array, geometry.spacing, geometry.origin, geometry.direction, meta)


def _rescaled_pixels(path: Path, ds: Dataset, shape: tuple, where: str) -> np.ndarray:
    """RescaleSlope * stored + RescaleIntercept for one slice (float64); compressed slices
    pydicom cannot decode are tried with GDCM."""
    slope = number(ds.get("RescaleSlope"))
    intercept = number(ds.get("RescaleIntercept")) or 0.0
    if "RescaleIntercept" not in ds and text(ds.get("Modality")).upper() == "CT":
        log.warning("%s: %s has no (0028,1052) RescaleIntercept; stored values taken as HU", where, path.name)
    slope = 1.0 if slope is None else slope
    if slope == 0:
        raise ChmflError(f"{where}: {path.name} has (0028,1053) RescaleSlope 0")
    try:
        pixels = ds.pixel_array.astype(np.float64) * slope + intercept
    except Exception as exc:  # noqa: BLE001 - truncated or undecodable pixel data
        pixels = _decode_with_gdcm(path, ds)
        if pixels is None:
            raise ChmflError(f"{where}: cannot read the pixel data of {path.name} "
                             f"({type(exc).__name__}: {_first_line(exc)})") from None
    if pixels.shape != tuple(shape):
        raise ChmflError(f"{where}: {path.name} pixel array has shape {pixels.shape}, expected "
                         f"{tuple(shape)} (colour or multi-frame data?)")
    return pixels


def _decode_with_gdcm(path: Path, ds: Dataset) -> np.ndarray | None:
    """Rescaled pixels of a compressed slice pydicom cannot decode (GDCM, via SimpleITK)."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or not syntax.is_compressed:
        return None
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))  # GDCM applies RescaleSlope/Intercept itself
    except RuntimeError:
        return None
    array = sitk.GetArrayFromImage(image)
    return array[0].astype(np.float64) if array.ndim == 3 and array.shape[0] == 1 else None


def _meta(folder: Path, headers: list[Dataset]) -> dict:
    first = headers[0]
    modality = text(first.get("Modality")).upper()
    return {
        "source": str(folder),
        "modality": modality,
        "units": "HU" if modality == "CT" else "",
        "series_units": text(first.get("Units")).upper(),  # (0054,1001), PET series only
        "patient_id": text(first.get("PatientID")),
        "series_instance_uid": text(first.get("SeriesInstanceUID")),
        "study_instance_uid": text(first.get("StudyInstanceUID")),
        "frame_of_reference_uid": text(first.get("FrameOfReferenceUID")),
        "sop_class_uid": text(first.get("SOPClassUID")),
        "sop_instance_uids": [text(ds.get("SOPInstanceUID")) for ds in headers],
        "series_description": text(first.get("SeriesDescription")),
        "manufacturer": text(first.get("Manufacturer")),
    }


def _describe(params: dict) -> str:
    """The SUV parameters for the log: body weight, height and sex stay out of it (they are in
    the volume's ``suv_parameters``, which no log or output prints)."""
    keys = ("units", "stored_suv_type", "dose_bq", "half_life_s",
            "decay_correction", "injection_datetime", "scan_datetime", "scan_time_rule", "decay_factor",
            "philips_suv_scale", "philips_activity_scale", "scale")
    parts = []
    for key in keys:
        value = params.get(key)
        if value is not None:
            parts.append(f"{key}={value:.6g}" if isinstance(value, float) else f"{key}={value}")
    return ", ".join(parts)


def scan_dicom_folder(root: str | os.PathLike) -> list[SeriesInfo]:
    """Every DICOM series under ``root`` (headers only), sorted by patient, modality, UID."""
    root = Path(root)
    if not root.is_dir():
        raise ChmflError(f"DICOM folder {root}: not a folder")
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    skipped = 0
    for path in _walk(root):
        try:
            ds = read_dataset(path, f"DICOM folder {root}", headers_only=True, tags=_SCAN_TAGS)
        except ChmflError as exc:
            log.warning("%s", exc)
            ds = None
        if ds is None or "SeriesInstanceUID" not in ds:
            skipped += 1
            continue
        groups.setdefault(text(ds.SeriesInstanceUID), []).append((path, ds))
    if skipped:
        log.debug("DICOM folder %s: skipped %d non-DICOM or unreadable file(s)", root, skipped)
    infos = [_series_info(uid, items) for uid, items in groups.items()]
    return sorted(infos, key=lambda s: (s.patient_id, s.modality, s.series_uid))


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name not in _SKIP_NAMES:
                yield Path(dirpath) / name


def _series_info(uid: str, items: list[tuple[Path, Dataset]]) -> SeriesInfo:
    first = items[0][1]
    modality = text(first.get("Modality")).upper()
    info = dict(
        series_uid=uid,
        modality=modality,
        patient_id=text(first.get("PatientID")),
        study_uid=text(first.get("StudyInstanceUID")),
        frame_of_reference_uid=text(first.get("FrameOfReferenceUID")),
        series_description=text(first.get("SeriesDescription")),
        files=tuple(sorted(p for p, _ in items)),
    )
    if modality == "RTSTRUCT":
        from chmfl.io.rtstruct import structure_references

        refs = structure_references(first)
        info.update(referenced_series_uids=refs["series"], roi_names=refs["roi_names"],
                    referenced_frame_of_reference_uids=refs["frames_of_reference"])
        info["frame_of_reference_uid"] = info["frame_of_reference_uid"] or next(iter(refs["frames_of_reference"]), "")
    return SeriesInfo(**info)
