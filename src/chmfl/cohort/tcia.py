"""The original TCIA layout: a nested DICOM tree searched by tags, not by folder names.

A TCIA Soft-tissue-Sarcoma patient has two studies with 12 series: one CT, one PT, four MR
(T1, T2FS/STIR and their PET-aligned copies) and six RTSTRUCTs (one per image series). The
rules, checked against every description in ``STS_nbia_series_digest.csv``:

* images: the patient's CT series and PT series (MR is ignored). Should there be several of
  a kind, the one an RTSTRUCT refers to wins, then (PET) attenuation-corrected over "NAC",
  then the one with most slices.
* contours: the RTSTRUCT whose ReferencedSeriesInstanceUID is that image series. Without
  such a reference, among the RTSTRUCTs of the image's frame of reference (or all of the
  patient's, if none shares it), the one whose description has "CT" (resp. "PET"/"PT") as
  a word: "RTstruct_CT" and "RTstruct_PET", not "RTstruct_AlignedT1toPET".
* ROI: the only one, else the one whose name contains "mass" (GTV_Mass), else left to
  ``--roi``.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from chmfl.cohort.case import Case, MaskSource
from chmfl.errors import ChmflError

log = logging.getLogger(__name__)

_TOKENS = {"ct": ("ct",), "pet": ("pet", "pt")}
_MODALITY = {"ct": "CT", "pet": "PT"}


def _words(text: str) -> set[str]:
    return set(re.split(r"[^a-z0-9!]+", text.lower())) - {""}


def _referenced(info, structures: Sequence) -> bool:
    return any(info.series_uid in s.referenced_series_uids for s in structures)


def choose_image(series: Sequence, modality: str, structures: Sequence = ()):
    """The CT ("ct") or PT ("pet") series of one patient's series, or None."""
    found = [s for s in series if s.modality == _MODALITY[modality]]
    if len(found) <= 1:
        return found[0] if found else None

    def rank(s):
        nac = "nac" in _words(s.series_description) or "uncorrected" in s.series_description.lower()
        return (_referenced(s, structures), not nac, len(s.files), s.series_uid)

    choice = max(found, key=rank)
    log.info("patient %s: %d %s series, chose '%s'", choice.patient_id, len(found),
             _MODALITY[modality], choice.series_description)
    return choice


def choose_structure(image, structures: Sequence, modality: str):
    """The RTSTRUCT contouring ``image`` (by reference, else by description), or None."""
    if image is None:
        return None
    by_ref = [s for s in structures if image.series_uid in s.referenced_series_uids]
    if by_ref:
        return by_ref[0]
    same_frame = [
        s for s in structures
        if image.frame_of_reference_uid
        and image.frame_of_reference_uid in (s.frame_of_reference_uid, *s.referenced_frame_of_reference_uids)
    ]
    pool = same_frame or list(structures)
    named = [s for s in pool if _words(s.series_description) & set(_TOKENS[modality])]
    if len(named) > 1:
        raise ChmflError(
            f"patient {image.patient_id}: {len(named)} RTSTRUCTs could contour the {modality.upper()} "
            f"({', '.join(s.series_description for s in named)}); none refers to its series UID"
        )
    return named[0] if named else None


def choose_roi(roi_names: Sequence[str]) -> str | None:
    """The tumour ROI: the only one, else the one named '*mass*'; None when undecidable."""
    if len(roi_names) == 1:
        return roi_names[0]
    mass = [r for r in roi_names if "mass" in r.lower()]
    return mass[0] if len(mass) == 1 else None


def _single_folder(info, patient_id: str) -> Path:
    """The series' folder, which must hold that series only (the image reader reads folders)."""
    folder = info.folder
    others = [p for p in folder.iterdir() if p.is_file() and p not in set(info.files)
              and not p.name.startswith(".")]
    if others:
        raise ChmflError(
            f"patient {patient_id}: folder {folder} mixes the {info.modality} series with "
            f"{len(others)} other file(s); put each series in its own folder"
        )
    return folder


def case_from_series(patient_id: str, series: Sequence) -> Case:
    """One patient's ``Case`` from its scanned series (see the module docstring)."""
    structures = [s for s in series if s.modality == "RTSTRUCT"]
    images = {m: choose_image(series, m, structures) for m in ("ct", "pet")}
    missing = [_MODALITY[m] for m, s in images.items() if s is None]
    if missing:
        raise ChmflError(f"patient {patient_id}: no {' or '.join(missing)} series found")
    masks = []
    for modality, image in images.items():
        rt = choose_structure(image, structures, modality)
        if rt is not None:
            masks.append(MaskSource(rt.files[0], "rtstruct", modality, choose_roi(rt.roi_names)))
    return Case(
        patient_id,
        _single_folder(images["ct"], patient_id),
        _single_folder(images["pet"], patient_id),
        tuple(masks),
        "tcia",
    )


def find_tcia_cases(root: str | Path) -> list[Case]:
    """Every patient with a CT and a PT series under ``root`` (a TCIA-style DICOM tree)."""
    from chmfl.io.dicom import scan_dicom_folder

    by_patient: dict[str, list] = defaultdict(list)
    for info in scan_dicom_folder(root):
        if not info.patient_id:
            raise ChmflError(f"series {info.folder} has no (0010,0020) PatientID")
        by_patient[info.patient_id].append(info)
    return [case_from_series(pid, series) for pid, series in sorted(by_patient.items())]
