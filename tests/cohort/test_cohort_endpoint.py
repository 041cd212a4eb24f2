"""DM-free survival from the PET scan, horizon labels and covariate coding (cohort.endpoint)."""

from __future__ import annotations

import pytest

from chmfl.cohort.clinical import ClinicalRecord, read_clinical
from chmfl.cohort.endpoint import (
    UNKNOWN,
    covariate_row,
    dm_by_horizon,
    dm_free_survival,
    histology_group,
)
from chmfl.errors import ChmflError

# Hand-checked from INFOclinical_STS.xlsx: (diagnosis->MRI, MRI->PET, outcome day or last
# follow-up) -> days from PET, event.
HAND = {
    "STS_001": (269.0, 1),  # Mets - arms at 266; MRI -7, PET +4: PET 3 days before biopsy
    "STS_007": (235.0, 1),  # Mets - bones at 251; MRI +30, PET -14 -> offset 16
    "STS_002": (486.0, 0),  # no event, last follow-up 501; offset -10 + 25 = 15
    "STS_020": (362.0, 0),  # regional recurrence (not DM): censored at follow-up 377 - 15
    "STS_034": (814.0, 0),  # local recurrence, died: censored at 838 - 24 (cause-specific)
    "STS_026": (1192.0, 1),  # Mets - spine at 1196; offset -10 + 14 = 4
}


def test_endpoint_hand_checked_on_the_sheet(clinical_xlsx):
    records = read_clinical(clinical_xlsx)
    for pid, (days, event) in HAND.items():
        e = dm_free_survival(records[pid])
        assert (e.dmfs_days, e.dmfs_event) == (days, event), pid
    ends = [dm_free_survival(r) for r in records.values()]
    assert sum(e.dmfs_event == 1 for e in ends) == 24 and all(e.dmfs_days > 0 for e in ends)
    # every DM patient of the binary cohort is an event, every no-DM patient censored
    assert all(dm_free_survival(r).dmfs_event == r.dm for r in records.values() if r.dm is not None)


def test_horizon_labels_at_two_years(clinical_xlsx):
    records = read_clinical(clinical_xlsx)
    labels = [dm_by_horizon(e.dmfs_days, e.dmfs_event, 730)
              for e in (dm_free_survival(r) for r in records.values() if r.dm is not None)]
    assert (labels.count(1), labels.count(0), labels.count(None)) == (23, 16, 9)


@pytest.mark.parametrize(("days", "event", "want"), [
    (100, 1, 1), (730, 1, 1), (731, 1, 0), (800, 0, 0), (730, 0, 0), (500, 0, None), (None, None, None),
])
def test_dm_by_horizon(days, event, want):
    assert dm_by_horizon(days, event, 730) == want


def test_endpoint_unknown_and_errors():
    assert dm_free_survival(None) == UNKNOWN
    no_offset = ClinicalRecord("X", 0, outcome="none", days_to_last_followup=500.0)
    assert dm_free_survival(no_offset) == UNKNOWN
    before_scan = ClinicalRecord("Y", 1, outcome="mets-lungs", days_to_outcome=10.0,
                                 days_to_last_followup=500.0, days_diagnosis_to_mri=5.0, days_mri_to_pet=20.0)
    with pytest.raises(ChmflError, match="Y"):
        dm_free_survival(before_scan)
    with pytest.raises(ChmflError):
        dm_by_horizon(100, 1, 0)


def test_histology_groups_and_covariates(clinical_xlsx):
    assert histology_group("MFH") == "mfh" and histology_group("Liposarcoma") == "liposarcoma"
    assert histology_group("Synovial sarcoma") == "other" and histology_group("") == ""
    rows = [covariate_row(r) for r in read_clinical(clinical_xlsx).values()]
    counts = {g: sum(r["histology_group"] == g for r in rows) for g in ("mfh", "liposarcoma", "leiomyosarcoma", "other")}
    assert counts == {"mfh": 17, "liposarcoma": 11, "leiomyosarcoma": 10, "other": 13}
    assert sum(r["grade"] == "" for r in rows) == 3 and all(0 < r["age_years"] <= 90 for r in rows)


def test_labels_csv_carries_times_and_covariates(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("patient_id,dm,outcome,days_to_outcome,days_to_last_followup,days_diagnosis_to_mri,"
                    "days_mri_to_pet,age_years,grade,mskcc_type\nA,1,mets-lungs,300,900,-5,10,95,High,MFH\n")
    rec = read_clinical(path)["A"]
    assert (rec.age_years, rec.grade, rec.mskcc_type) == (90.0, "high", "MFH")  # age capped at 90
    assert dm_free_survival(rec).dmfs_days == 295.0
