"""Write a tumour mask as a DICOM Segmentation (binary SEG, highdicom) referencing its CT series.

The mask must lie on the CT series' own grid (as ``read_dicom_series`` returns it); frame k
of the SEG refers to the k-th slice in that order. The SEG copies the CT's patient and
study identifiers, but its PatientName is replaced by the PatientID and birth date and
address are left empty (chmfl outputs carry patient IDs only); a source value DICOM cannot
hold (an over-long StudyID) is cut to the length DICOM allows. ``dciodvfy`` (dicom3tools) finds nothing to
report in the SEG of an STS patient.
"""

from __future__ import annotations

import os
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.datadict import tag_for_keyword
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
_SHORT_STRINGS = ("StudyID", "AccessionNumber")  # SH attributes highdicom copies from the source
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
    sources = [_for_the_seg(found[i][1]) for i in order]
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
    for keyword in _IDENTIFYING:
        if keyword in seg:
            delattr(seg, keyword)
    seg.PatientBirthDate = ""
    with atomic_path(out_path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return out_path


def _for_the_seg(ds: Dataset) -> Dataset:
    """The source slice as highdicom should copy it into the SEG (in memory only): the type-2
    study/patient attributes it copies present (sloppy files may lack them); PatientName
    replaced by the PatientID as a family name with the explicit '^' of a one-component name
    (DICOM PS3.5 6.2; without it dciodvfy calls it the retired form and highdicom warns), so
    the real name never enters the SEG; and a short string (SH, at most 16 characters) copied
    from the source cut to 16 where it is longer, as in the IBSI release, whose StudyID
    'IBSI_1_STS_002_CT' has 17 (left empty, dciodvfy misses the Study ID a DICOMDIR needs;
    the StudyInstanceUID ties the SEG to its study either way)."""
    for keyword in _STUDY_TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    if "PatientName" in ds:
        del ds["PatientName"]
    ds.PatientName = f"{text(ds.get('PatientID')) or 'anonymous'}^"
    for keyword in _SHORT_STRINGS:
        raw = ds.get_item(keyword)  # raw bytes: reading the value would make pydicom warn
        value = raw.value if raw is not None else b""
        if isinstance(value, bytes | bytearray):
            value = value.decode("latin-1")
        value = str(value or "").strip()
        if len(value) > 16:
            del ds[tag_for_keyword(keyword)]  # assigning over it would convert (and warn) first
            setattr(ds, keyword, value[:16])
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
