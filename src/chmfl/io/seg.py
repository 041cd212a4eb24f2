"""Write a tumour mask as a DICOM Segmentation (binary SEG, highdicom) referencing its CT series.

The mask must lie on the CT series' own grid (as ``read_dicom_series`` returns it); frame k
of the SEG refers to the k-th slice in that order. The SEG copies the CT's patient and
study identifiers, but its PatientName is replaced by the PatientID and birth date and
address are left empty (chmfl outputs carry patient IDs only).
"""

from __future__ import annotations

import os
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from chmfl import __version__
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.io.dicom import read_series_datasets
from chmfl.io.dicom_values import text
from chmfl.io.slices import sort_slices
from chmfl.io.volume import Volume

_STUDY_TYPE2 = ("PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
                "StudyDate", "StudyTime", "ReferringPhysicianName")
_IDENTIFYING = ("PatientBirthDate", "PatientBirthTime", "PatientAddress", "OtherPatientNames",
                "PatientMotherBirthName", "PatientTelephoneNumbers")


def write_dicom_seg(
    mask: Volume,
    ct_series_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    label: str = "Tumour",
    algorithm: str = "chmfl",
) -> Path:
    """Write ``mask`` (uint8 {0,1} on the CT grid) as a binary DICOM SEG; returns ``out_path``."""
    ct_dir, out_path = Path(ct_series_dir), Path(out_path)
    where = f"DICOM SEG {out_path}"
    found = read_series_datasets(ct_dir, headers_only=False)
    order, geometry = sort_slices(found, f"DICOM series {ct_dir}")
    sources = [_with_study_defaults(found[i][1]) for i in order]
    grid = Volume(np.zeros((1, 1, 1)), geometry.spacing, geometry.origin, geometry.direction)
    if tuple(mask.shape) != geometry.shape or not (
        np.allclose(mask.spacing, grid.spacing, atol=1e-3) and np.allclose(mask.origin, grid.origin, atol=1e-3)
        and np.allclose(mask.direction, grid.direction, atol=1e-3)
    ):
        raise ChmflError(f"{where}: the mask grid {mask.shape} does not match the series {ct_dir} "
                         f"{geometry.shape}; resample the mask onto the series grid first")
    binary = (np.asarray(mask.array) > 0).astype(np.uint8)  # (slices, rows, columns)
    if not binary.any():
        raise ChmflError(f"{where}: the mask is empty; nothing to write")
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=binary,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_description(label, algorithm)],
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="chmfl",
        manufacturer_model_name="chmfl",
        software_versions=__version__,
        device_serial_number="0",
        series_description=f"{label} ({algorithm})"[:64],
    )
    seg.PatientName = text(seg.get("PatientID")) or "anonymous"
    for keyword in _IDENTIFYING:
        if keyword in seg:
            delattr(seg, keyword)
    seg.PatientBirthDate = ""
    with atomic_path(out_path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return out_path


def _with_study_defaults(ds: Dataset) -> Dataset:
    """highdicom copies these type-2 study/patient attributes; sloppy files may lack them."""
    for keyword in _STUDY_TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def _description(label: str, algorithm: str) -> hd.seg.SegmentDescription:
    return hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=algorithm, version=__version__, family=codes.DCM.ArtificialIntelligence
        ),
    )
