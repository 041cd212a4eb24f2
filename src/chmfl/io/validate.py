"""Is this image the modality it is given as? One place for the checks that refuse a PET passed
as the CT (or the reverse), one series given as both, and values no CT or SUV PET can have.

What can tell, in order (the first that fails names the input and what is wrong):

* the DICOM Modality tag (``CT`` / ``PT``) of a series folder;
* the DICOM units: a CT series never carries the PET Series module's (0054,1001) Units
  (BQML, GML, CNTS, ...); a PET's units are checked when it is converted to SUV (``suv.py``);
* the values, which are all that NIfTI/NRRD files can offer:

  - CT in HU: air (about -1000 HU) around or inside the body, so at least ``CT_AIR_FRACTION``
    of the voxels lie at or below ``CT_AIR_HU``; and no more than 1 % above ``CT_MAX_HU``
    (3071, the top of a 12-bit CT; a few metal voxels above it are fine). Padding outside the
    scanner's field of view (-2048, -3024 on some vendors) is below any threshold here and
    allowed.
  - PET in SUV: no more than ``PET_NEGATIVE_FRACTION`` of the voxels below ``PET_MIN_SUV``
    (reconstruction noise stays above it; HU of air and fat do not), some value above 0, and
    nothing above ``PET_MAX_SUV`` (hot bladders reach about 100; activity concentrations in
    Bq/ml are in the thousands).

On the 51 STS patients: CT 6.8-61 % of the voxels at or below -900 HU, 99th percentile 121-1260 HU;
PET SUV minimum 0, maximum 3.4-52.8; CT and PET carry the same PatientID and StudyInstanceUID.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from chmfl.errors import ChmflError
from chmfl.io.volume import Volume

CT_AIR_HU = -500.0
CT_AIR_FRACTION = 0.001
CT_MAX_HU = 3071.0
PET_MIN_SUV = -1.0
PET_NEGATIVE_FRACTION = 0.01
PET_MAX_SUV = 1000.0
# (0054,1001) Units values of the PET Series module (DICOM PS3.3 C.8.9.1.1.3)
PET_UNITS = ("CNTS", "CM2", "CM2ML", "PCNT", "CPS", "BQML", "MGMINML", "UMOLMINML",
             "MLMING", "MLG", "1CM", "UMOLML", "PROPCNTS", "PROPCPS", "MLMINML", "MLML", "GML",
             "STDDEV")
_DICOM_MODALITY = {"ct": "CT", "pet": "PT"}
_NAMES = {"CT": "a CT", "PT": "a PET", "MR": "an MR"}


def check_modality(volume: Volume, expected: str | None, where: str) -> None:
    """Refuse ``volume`` where it cannot be a ``expected`` ("ct" | "pet") image in HU / SUV.

    ``expected`` None: the volume is checked against the modality its own DICOM tag declares
    (``chmfl convert``); an image file without one is not checked. ``where`` names the input
    in the one-line error (e.g. "--ct /data/ct.nii.gz").
    """
    declared = str(volume.meta.get("modality") or "").upper()
    if expected is None:
        expected = {v: k for k, v in _DICOM_MODALITY.items()}.get(declared)
        if expected is None:
            return
    if expected not in _DICOM_MODALITY:
        raise ValueError(f"expected must be 'ct' or 'pet', not {expected!r}")
    want = _DICOM_MODALITY[expected]
    _check_tag(declared, expected, where)
    units = str(volume.meta.get("series_units") or "").upper()
    if want == "CT" and units in PET_UNITS:
        raise ChmflError(f"{where}: a CT series with the PET (0054,1001) Units {units}: not a CT in HU")
    problem = ct_value_problem(volume.array) if expected == "ct" else pet_value_problem(volume.array)
    if problem:
        raise ChmflError(f"{where}: {problem}{_swap_hint(expected)}")


def _check_tag(declared: str, expected: str, where: str) -> None:
    want = _DICOM_MODALITY[expected]
    if declared and declared != want:
        raise ChmflError(f"{where}: DICOM Modality is {declared} ({_NAMES.get(declared, 'not a')} series), "
                         f"expected {want}{_swap_hint(expected)}")


def _swap_hint(expected: str) -> str:
    other = "PET" if expected == "ct" else "CT"
    return f" (is it the {other}?)"


def ct_value_problem(array: np.ndarray) -> str:
    """Why ``array`` cannot be a CT in HU, or "" when it can."""
    a = np.asarray(array, dtype=np.float32)
    if a.size == 0:
        return "the image is empty"
    air = float(np.mean(a <= CT_AIR_HU))
    if air < CT_AIR_FRACTION:
        return (f"not a CT in HU: no air (voxels at or below {CT_AIR_HU:g} HU: {100 * air:.2g} %; "
                f"values {a.min():.4g} to {a.max():.4g})")
    high = float(np.mean(a > CT_MAX_HU))
    if high > 0.01:
        return (f"not a CT in HU: {100 * high:.2g} % of the voxels above {CT_MAX_HU:g} HU "
                f"(values up to {a.max():.4g})")
    return ""


def pet_value_problem(array: np.ndarray) -> str:
    """Why ``array`` cannot be a PET in SUV, or "" when it can."""
    a = np.asarray(array, dtype=np.float32)
    if a.size == 0:
        return "the image is empty"
    negative = float(np.mean(a < PET_MIN_SUV))
    if negative > PET_NEGATIVE_FRACTION:
        return (f"not a PET in SUV: {100 * negative:.2g} % of the voxels below {PET_MIN_SUV:g} "
                f"(values down to {a.min():.4g}, as HU of air and fat)")
    top = float(a.max())
    if top <= 0:
        return "not a PET in SUV: no voxel above 0"
    if top > PET_MAX_SUV:
        return (f"not a PET in SUV: values up to {top:.4g} (SUV stays below {PET_MAX_SUV:g}; "
                "activity in Bq/ml, or wrong dose/weight in the header?)")
    return ""


def read_as(path: str | os.PathLike, expected: str | None, where: str, *, suv: str = "bw",
            overrides: dict | None = None) -> Volume:
    """``read_image`` of an input given as ``expected`` ("ct" | "pet" | None: as its tag says),
    refused before its pixels are read when its DICOM Modality tag says otherwise (a PET
    passed as the CT would otherwise fail in the SUV conversion it never needed, or not at
    all), and after, when its values cannot be that modality (``check_modality``)."""
    from chmfl.io.dicom import series_identity
    from chmfl.io.imageio import read_image

    path = Path(path)
    if expected is not None and path.is_dir():
        _check_tag(series_identity(path).get("modality", ""), expected, where)
    volume = read_image(path, suv=suv, overrides=overrides)
    check_modality(volume, expected, where)
    return volume


def check_distinct(ct_path: str | os.PathLike, pet_path: str | os.PathLike, ct_where: str, pet_where: str) -> None:
    """Refuse one file or folder given as both the CT and the PET."""
    if Path(ct_path).resolve() == Path(pet_path).resolve():
        raise ChmflError(f"{ct_where} and {pet_where} are the same {'folder' if Path(ct_path).is_dir() else 'file'}: "
                         "give the CT and the PET")


def check_pair(ct: Volume, pet: Volume, ct_where: str, pet_where: str) -> None:
    """Refuse one DICOM series given as both images (a copy in two folders), and a CT and a
    PET whose DICOM headers name different patients."""
    uid_ct, uid_pet = ct.meta.get("series_instance_uid"), pet.meta.get("series_instance_uid")
    if uid_ct and uid_ct == uid_pet:
        raise ChmflError(f"{ct_where} and {pet_where} are the same series (SeriesInstanceUID {uid_ct}): "
                         "give the CT and the PET")
    pid_ct, pid_pet = ct.meta.get("patient_id"), pet.meta.get("patient_id")
    if pid_ct and pid_pet and pid_ct != pid_pet:
        raise ChmflError(f"{ct_where} is patient {pid_ct!r} but {pet_where} is patient {pid_pet!r}")
