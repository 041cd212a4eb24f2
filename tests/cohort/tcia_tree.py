"""A TCIA-like nested DICOM tree built from IBSI patients (for the 'tcia' layout tests).

Per patient, as in the original TCIA download: a PET-CT study with the CT and PT series and
their RTSTRUCTs, and an MR study with a T1 series, a PET-aligned T1 copy and RTSTRUCTs for
both. Folder names are opaque (the reader must go by tags); the PET RTSTRUCT loses its
series reference (so the description rule must find it); the aligned-MR RTSTRUCT shares the
PET frame of reference (so a frame-of-reference match alone would be ambiguous).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"


def _save(ds, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path)


def _copy_series(files: list[Path], dest: Path, **tags) -> str:
    """Copy image files into ``dest`` with new series/SOP UIDs and the given tags."""
    series_uid = generate_uid()
    for k, f in enumerate(sorted(files)):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for key, value in tags.items():
            setattr(ds, key, value)
        _save(ds, dest / f"1-{k + 1:03d}.dcm")
    return series_uid


def _copy_structure(rs: Path, dest: Path, description: str, series_uid: str | None,
                    frame_uid: str | None = None, study_uid: str | None = None) -> None:
    """Copy an RTSTRUCT with a new identity, pointing at ``series_uid`` (None: no reference)."""
    ds = pydicom.dcmread(rs)
    ds.SeriesInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesDescription = ds.StructureSetName = description
    if study_uid:
        ds.StudyInstanceUID = study_uid
    for ref in ds.ReferencedFrameOfReferenceSequence:
        if frame_uid:
            ref.FrameOfReferenceUID = frame_uid
        for study in ref.RTReferencedStudySequence:
            if series_uid is None:
                del study.RTReferencedSeriesSequence
            else:
                for s in study.RTReferencedSeriesSequence:
                    s.SeriesInstanceUID = series_uid
    if frame_uid:
        ds.FrameOfReferenceUID = frame_uid
        for roi in ds.StructureSetROISequence:
            roi.ReferencedFrameOfReferenceUID = frame_uid
    _save(ds, dest / "1-1.dcm")


def make_tcia_tree(ibsi_root: Path, patients: list[str], out: Path) -> Path:
    """Build the tree under ``out`` for ``patients`` of the IBSI folder; returns ``out``."""
    for n, pid in enumerate(patients):
        src = ibsi_root / pid
        subject = out / f"subject-{n}"
        petct, mr = subject / "09-07-2000-PET CT-80521", subject / "08-25-2000-MR-47251"
        for modality, desc, number in (("CT", "CT IMAGES - RESEARCH", 2), ("PET", "PET AC", 1)):
            shutil.copytree(src / modality / "image", petct / f"{number}.000000-{desc}-{n}1")
        ct_uid = pydicom.dcmread(next((src / "CT" / "image").iterdir())).SeriesInstanceUID
        pet_files = sorted((src / "PET" / "image").iterdir())
        pet_frame = pydicom.dcmread(pet_files[0]).FrameOfReferenceUID
        _copy_structure(src / "CT" / "mask" / "RS.dcm", petct / f"1.000000-RTstruct_CT-{n}2",
                        "RTstruct_CT", ct_uid)
        _copy_structure(src / "PET" / "mask" / "RS.dcm", petct / f"1.000000-RTstruct_PET-{n}3",
                        "RTstruct_PET", None)
        mr_study, mr_frame = generate_uid(), generate_uid()
        t1 = _copy_series(pet_files, mr / f"3.000000-AX T1-{n}4", Modality="MR", SOPClassUID=MR_IMAGE,
                          SeriesDescription="AX T1", StudyInstanceUID=mr_study, FrameOfReferenceUID=mr_frame)
        aligned = _copy_series(pet_files, mr / f"1.000000-Aligned_T1toPET_BOX-{n}5", Modality="MR",
                               SOPClassUID=MR_IMAGE, SeriesDescription="Aligned_T1toPET_BOX",
                               StudyInstanceUID=mr_study)
        _copy_structure(src / "CT" / "mask" / "RS.dcm", mr / f"1.000000-RTstruct_T1-{n}6",
                        "RTstruct_T1", t1, mr_frame, mr_study)
        _copy_structure(src / "PET" / "mask" / "RS.dcm", mr / f"1.000000-RTstruct_AlignedT1toPET-{n}7",
                        "RTstruct_AlignedT1toPET", aligned, pet_frame, mr_study)
    (out / "LICENSE.txt").write_text("not a DICOM file\n")
    return out
