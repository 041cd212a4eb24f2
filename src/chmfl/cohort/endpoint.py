"""DM-free survival from the PET scan, horizon labels, and the clinical covariates' coding.

The endpoint (docs/data.md, "DM-free survival"):

* **origin**: the day of the FDG-PET/CT scan, i.e. diagnosis (biopsy) + the sheet's
  "diagnosis to MRI" + "MRI to PET" offsets. The prediction is made from that scan, so the
  clock starts when the information it uses exists (a clock started at biopsy would credit
  the model with the days before its own input was taken);
* **event**: the first distant metastasis ("Mets – <site>"), at diagnosis-to-outcome minus the
  PET offset;
* **censored** at last follow-up (diagnosis-to-last-follow-up minus the PET offset) for
  everyone else: patients without an event, death without DM, and local/regional recurrence
  without DM (cause-specific: a competing or non-distant event is not a DM, the patient is
  simply no longer known DM-free afterwards).

All 51 patients of the sheet can enter; the paper's 24 / 24 binary cohort is unchanged
(``ClinicalRecord.dm``). ``dm_by_horizon`` turns the endpoint into a binary label at a horizon
in days with "unknown" for patients censored before it (issue 14's censoring-aware labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chmfl.cohort.clinical import ClinicalRecord
from chmfl.errors import ChmflError

ENDPOINT = "dm-free-survival"

# MSKCC histology grouping used as a covariate (docs/data.md): the sheet's MSKCC types
# (Kattan et al. 2002 nomogram categories) with the small ones pooled, so a 51-patient Cox
# model estimates 3 contrasts, not 6. Reference level: "mfh" (the largest group).
HISTOLOGY_GROUPS = ("mfh", "liposarcoma", "leiomyosarcoma", "other")
_MSKCC_TO_GROUP = {
    "mfh": "mfh", "malignant fibrous histiocytoma": "mfh",
    "undifferentiated pleomorphic sarcoma": "mfh",
    "liposarcoma": "liposarcoma", "leiomyosarcoma": "leiomyosarcoma",
}
GRADES = {"low": 1.0, "intermediate": 2.0, "high": 3.0}


@dataclass(frozen=True)
class Endpoint:
    """One patient's DM-free survival from the PET scan (days) and its event indicator."""

    pet_offset_days: float | None  # diagnosis -> PET
    dmfs_days: float | None  # PET -> first DM (event) or last follow-up (censored)
    dmfs_event: int | None  # 1 DM observed, 0 censored; None: the endpoint is unknown
    followup_days: float | None  # PET -> last follow-up (or death)

    def as_row(self) -> dict:
        return {"pet_offset_days": self.pet_offset_days, "dmfs_days": self.dmfs_days,
                "dmfs_event": self.dmfs_event, "followup_days": self.followup_days}


UNKNOWN = Endpoint(None, None, None, None)


def pet_offset(record: ClinicalRecord) -> float | None:
    """Days from diagnosis to the PET scan (MRI offset + MRI-to-PET offset); None if unknown."""
    a, b = record.days_diagnosis_to_mri, record.days_mri_to_pet
    return None if a is None or b is None else a + b


def dm_free_survival(record: ClinicalRecord | None) -> Endpoint:
    """The endpoint of one record (see the module docstring); ``UNKNOWN`` where the sheet lacks
    the PET offset, the outcome or the times. A DM dated on or before the PET scan, or a
    follow-up ending before it, is an error naming the patient."""
    if record is None or not record.outcome:
        return UNKNOWN
    offset = pet_offset(record)
    followup = record.days_to_last_followup
    if offset is None or followup is None:
        return UNKNOWN
    fu = followup - offset
    if record.dm == 1:
        if record.days_to_outcome is None:
            return UNKNOWN
        days, event = record.days_to_outcome - offset, 1
    else:  # no event, local/regional recurrence, death without DM: censored at last follow-up
        days, event = fu, 0
    if days <= 0 or fu <= 0:
        raise ChmflError(f"patient {record.patient_id}: DM-free survival from the PET scan is "
                         f"{days:g} days (follow-up {fu:g}): the outcome precedes the scan")
    return Endpoint(offset, days, event, fu)


def dm_by_horizon(dmfs_days: float | None, dmfs_event: int | None, horizon_days: float) -> int | None:
    """1: DM on or before the horizon; 0: DM-free at the horizon (followed up to it or beyond,
    or a DM after it); None: censored before the horizon (unknown) or no endpoint."""
    if horizon_days <= 0:
        raise ChmflError(f"horizon must be a positive number of days, got {horizon_days}")
    if dmfs_days is None or dmfs_event is None or math.isnan(float(dmfs_days)):
        return None
    if dmfs_event == 1 and dmfs_days <= horizon_days:
        return 1
    if dmfs_days >= horizon_days:
        return 0
    return None


def histology_group(mskcc_type: str) -> str:
    """The MSKCC type's group in ``HISTOLOGY_GROUPS`` ("" when the type is not recorded)."""
    key = " ".join(str(mskcc_type).lower().split())
    if not key:
        return ""
    return _MSKCC_TO_GROUP.get(key, "other")


def covariate_row(record: ClinicalRecord | None) -> dict:
    """The manifest's covariate columns: age, grade and the histology group."""
    if record is None:
        return {"age_years": None, "grade": "", "mskcc_type": "", "histology_group": ""}
    return {"age_years": record.age_years, "grade": record.grade, "mskcc_type": record.mskcc_type,
            "histology_group": histology_group(record.mskcc_type)}
