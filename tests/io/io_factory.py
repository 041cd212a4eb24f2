"""Tiny synthetic DICOM series and RTSTRUCTs for the io tests (written with pydicom).

Every dataset carries a patient name, birth date and address so tests can check that none
of them reaches chmfl's outputs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"
PET_CLASS = "1.2.840.10008.5.1.4.1.1.128"
RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
SECRET_NAME = "Secretname^Jane"
SECRET_BIRTH = "19411231"
SECRET_ADDRESS = "7 Hidden Lane"


def _dataset(sop_class: str, modality: str, ids: dict) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = SECRET_NAME
    ds.PatientBirthDate = SECRET_BIRTH
    ds.PatientAddress = SECRET_ADDRESS
    ds.PatientID = ids["patient_id"]
    ds.PatientSex = "M"
    ds.StudyInstanceUID = ids["study"]
    ds.SeriesInstanceUID = ids["series"]
    ds.FrameOfReferenceUID = ids["frame"]
    ds.StudyDate = ds.SeriesDate = "20200131"
    ds.StudyTime = "090000"
    ds.SeriesNumber = 1
    return ds


def new_ids(patient_id: str = "P001", frame: str | None = None) -> dict:
    return {"patient_id": patient_id, "study": generate_uid(), "series": generate_uid(),
            "frame": frame or generate_uid()}


def pet_tags(ds: Dataset, *, dose: float | None = 370e6, weight: float | None = 70.0,
             start: str | None = "080000", series_time: str = "090000") -> None:
    """BQML, DecayCorrection START, injection at ``start`` on the series date."""
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["ATTN", "DECY"]
    ds.SeriesTime = ds.AcquisitionTime = series_time
    ds.AcquisitionDate = ds.SeriesDate
    ds.ActualFrameDuration = 120000
    ds.PatientSize = 1.75
    if weight is not None:
        ds.PatientWeight = weight
    rp = Dataset()
    rp.RadionuclideHalfLife = 6586.2
    if dose is not None:
        rp.RadionuclideTotalDose = dose
    if start is not None:
        rp.RadiopharmaceuticalStartTime = start
    ds.RadiopharmaceuticalInformationSequence = Sequence([rp])


def write_series(
    folder: Path,
    pixels: np.ndarray,
    *,
    modality: str = "CT",
    ids: dict | None = None,
    spacing: tuple[float, float, float] = (2.0, 1.0, 1.0),
    origin: tuple[float, float, float] = (-8.0, -8.0, 10.0),
    iop: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    slope: float = 1.0,
    intercept: float = 0.0,
    pet: dict | None = None,
) -> list[Path]:
    """Write (z, y, x) int pixels as one single-frame slice per file, in shuffled file order."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = ids or new_ids()
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(row, col)
    paths = []
    order = np.random.default_rng(0).permutation(len(pixels))  # files not in slice order
    for k in range(len(pixels)):
        ds = _dataset(PET_CLASS if modality == "PT" else CT_CLASS, modality, ids)
        if modality == "PT":
            pet_tags(ds, **(pet or {}))
        ds.InstanceNumber = k + 1
        pos = np.asarray(origin, float) + k * spacing[0] * normal
        ds.ImagePositionPatient = [f"{v:.4f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.SliceThickness = spacing[0]
        ds.Rows, ds.Columns = pixels.shape[1:]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        ds.PixelData = np.ascontiguousarray(pixels[k], dtype=np.int16).tobytes()
        path = folder / f"IM{order[k]:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def square(x0: float, x1: float, y0: float, y1: float, z: float) -> list[float]:
    """ContourData of an axis-aligned rectangle at height z (patient mm)."""
    pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return [float(v) for x, y in pts for v in (x, y, z)]


def write_rtstruct(
    path: Path, ids: dict, rois: dict[str, list[list[float]]], *, frame: str | None = None,
    patient_id: str | None = None,
) -> Path:
    """An RTSTRUCT with one ROI per entry of ``rois`` (name -> list of ContourData)."""
    ds = _dataset(RTSTRUCT_CLASS, "RTSTRUCT", {**ids, "series": generate_uid()})
    if patient_id is not None:
        ds.PatientID = patient_id
    frame = frame or ids["frame"]
    del ds.FrameOfReferenceUID
    ds.StructureSetLabel = "test"
    ds.StructureSetDate = dt.date(2020, 1, 31).strftime("%Y%m%d")
    ref = Dataset()
    ref.FrameOfReferenceUID = frame
    study = Dataset()
    study.ReferencedSOPInstanceUID = ids["study"]
    series = Dataset()
    series.SeriesInstanceUID = ids["series"]
    study.RTReferencedSeriesSequence = Sequence([series])
    ref.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref])
    ds.StructureSetROISequence = Sequence()
    ds.ROIContourSequence = Sequence()
    for number, (name, contours) in enumerate(rois.items(), start=1):
        item = Dataset()
        item.ROINumber = number
        item.ROIName = name
        item.ReferencedFrameOfReferenceUID = frame
        ds.StructureSetROISequence.append(item)
        rc = Dataset()
        rc.ReferencedROINumber = number
        rc.ContourSequence = Sequence()
        for data in contours:
            c = Dataset()
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(data) // 3
            c.ContourData = data
            rc.ContourSequence.append(c)
        ds.ROIContourSequence.append(rc)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
