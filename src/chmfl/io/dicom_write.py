"""Write a ``Volume`` as a DICOM image series (CT in HU, or PET in SUVbw), with pydicom.

For test studies chmfl makes itself (``synth.wholebody``): one single-frame file per slice,
the geometry of the Volume (ImagePositionPatient, ImageOrientationPatient, PixelSpacing),
CT as signed 16-bit HU (slope 1, intercept 0), PET as 16-bit values with a per-slice
RescaleSlope and Units GML / SUVType BW (so ``read_dicom_series`` returns the SUV as
written), decay and attenuation corrected. CT and PET of one study share the study and
frame-of-reference UIDs given. Patient name = patient ID; no birth date or address.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from chmfl import __version__
from chmfl.errors import ChmflError
from chmfl.io.volume import Volume

SOP_CLASS = {"CT": "1.2.840.10008.5.1.4.1.1.2", "PT": "1.2.840.10008.5.1.4.1.1.128"}


@dataclass(frozen=True)
class StudyIds:
    """Identifiers shared by the series of one study."""

    patient_id: str
    study_uid: str = field(default_factory=generate_uid)
    frame_uid: str = field(default_factory=generate_uid)
    date: str = "20000101"
    time: str = "100000"
    weight_kg: float = 70.0  # PatientWeight (the SUVbw normaliser the PET values imply)


def _base(ids: StudyIds, modality: str, series_uid: str, number: int, description: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SOP_CLASS[modality]
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SOP_CLASS[modality]
    ds.Modality = modality
    ds.PatientID = ds.PatientName = ids.patient_id
    ds.StudyInstanceUID, ds.SeriesInstanceUID = ids.study_uid, series_uid
    ds.FrameOfReferenceUID = ids.frame_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ids.date
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ids.time
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.Manufacturer = f"chmfl {__version__} (synthetic)"
    ds.PatientPosition = "HFS"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def _pet_tags(ds: Dataset, ids: StudyIds) -> None:
    ds.Units = "GML"
    ds.SUVType = "BW"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["ATTN", "DECY"]
    ds.PatientWeight = ids.weight_kg
    ds.ActualFrameDuration = 120000
    rp = Dataset()
    rp.Radiopharmaceutical = "FDG -- fluorodeoxyglucose"
    rp.RadionuclideHalfLife = 6586.2
    rp.RadionuclideTotalDose = 370e6
    rp.RadiopharmaceuticalStartTime = "090000"
    ds.RadiopharmaceuticalInformationSequence = Sequence([rp])


def _stored(values: np.ndarray, modality: str) -> tuple[np.ndarray, float]:
    """(int16 pixels, RescaleSlope) for one slice."""
    if modality == "CT":
        return np.clip(np.rint(values), -32768, 32767).astype(np.int16), 1.0
    if (values < 0).any():
        raise ChmflError("PET SUV must be >= 0 to be written as DICOM")
    top = float(values.max())
    slope = top / 32767.0 if top > 0 else 1.0
    return np.rint(values / slope).astype(np.int16), slope


def write_dicom_series(volume: Volume, folder: str | os.PathLike, modality: str, ids: StudyIds, *,
                       series_number: int = 1, description: str = "") -> list[Path]:
    """Write ``volume`` (CT HU or PET SUVbw, (z, y, x)) as one file per slice into ``folder``."""
    if modality not in SOP_CLASS:
        raise ChmflError(f"modality must be CT or PT, got {modality!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d = np.asarray(volume.direction, float).reshape(3, 3)
    orientation = [f"{v:.6f}" for v in (*d[:, 0], *d[:, 1])]
    series_uid = generate_uid()
    paths = []
    for k in range(volume.shape[0]):
        ds = _base(ids, modality, series_uid, series_number, description)
        if modality == "PT":
            _pet_tags(ds, ids)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = k + 1
        position = volume.index_to_physical(np.array([k, 0.0, 0.0]))
        ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
        ds.ImageOrientationPatient = orientation
        ds.PixelSpacing = [f"{volume.spacing[1]:.6f}", f"{volume.spacing[2]:.6f}"]
        ds.SliceThickness = f"{volume.spacing[0]:.6f}"
        ds.Rows, ds.Columns = volume.shape[1:]
        pixels, slope = _stored(np.asarray(volume.array[k], dtype=np.float64), modality)
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", "0"
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
        path = folder / f"{modality}{k + 1:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
