"""Real STS patients as in-memory ``CaseArrays`` for radiomics tests, read with plain SimpleITK
and pydicom (independent of chmfl.io, so these tests do not hinge on the reader under test).

The GTV_Mass_CT RTSTRUCT polygons are filled slice by slice on the CT grid (pixel centres
inside the polygon), then ``preprocess_case`` puts CT, PET and mask on the isotropic box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from matplotlib.path import Path as Polygon

from chmfl.io.volume import Volume


def read_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def rasterise_rtstruct(rs_file: Path, ref: sitk.Image, roi_hint: str = "gtv") -> np.ndarray:
    """uint8 (z, y, x) mask on ``ref``'s grid of the first ROI whose name contains ``roi_hint``."""
    ds = pydicom.dcmread(str(rs_file))
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    number = next(n for n, name in names.items() if roi_hint in name.lower())
    roi = next(c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) == number)
    nx, ny, nz = ref.GetSize()
    mask = np.zeros((nz, ny, nx), np.uint8)
    yy, xx = np.mgrid[0:ny, 0:nx]
    centres = np.column_stack([xx.ravel(), yy.ravel()])
    for contour in roi.ContourSequence:
        pts = np.asarray(contour.ContourData, float).reshape(-1, 3)
        idx = np.array([ref.TransformPhysicalPointToContinuousIndex(tuple(p)) for p in pts])
        k = int(round(idx[:, 2].mean()))
        if 0 <= k < nz:
            inside = Polygon(idx[:, :2]).contains_points(centres).reshape(ny, nx)
            mask[k] ^= inside.astype(np.uint8)  # XOR: inner contours cut holes
    return mask


def load_patient(patient_dir: Path) -> tuple[Volume, Volume, Volume]:
    """CT (HU), PET (SUVbw as stored) and the CT tumour mask as ``Volume``s."""
    ct = read_series(patient_dir / "CT" / "image")
    pet = read_series(patient_dir / "PET" / "image")
    rs = next((patient_dir / "CT" / "mask").glob("*.dcm"))
    mask = Volume.from_sitk(ct).with_array(rasterise_rtstruct(rs, ct))
    return Volume.from_sitk(ct), Volume.from_sitk(pet), mask


def prepared_case(patient_dir: Path, voxel_mm: float = 4.0):
    """One patient through chmfl's preprocessing at ``voxel_mm`` (box 144x112x112 mm)."""
    from chmfl.preprocess.config import PrepareConfig
    from chmfl.preprocess.pipeline import preprocess_case

    ct, pet, mask = load_patient(patient_dir)
    return preprocess_case(patient_dir.name, ct, pet, mask, PrepareConfig(voxel_mm=voxel_mm))
