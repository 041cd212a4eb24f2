"""Labels from the TCIA clinical sheet and from a labels CSV."""

from __future__ import annotations

import pandas as pd
import pytest

from chmfl.cohort.clinical import (
    EXCLUDED_RECURRENCE,
    ClinicalRecord,
    label_counts,
    parse_outcome,
    read_clinical,
)
from chmfl.cohort.label_check import check_ids_match
from chmfl.errors import ChmflError


def test_real_sheet_label_counts(clinical_xlsx):
    records = read_clinical(clinical_xlsx)
    assert len(records) == 51  # the notes rows at the bottom are not patients
    counts = label_counts(records)
    assert (counts["dm"], counts["no_dm"], counts["excluded"]) == (24, 24, 3)
    assert (counts["lung_mets"], counts["no_lung_mets"]) == (19, 32)
    excluded = sorted(r.patient_id for r in records.values() if r.dm is None)
    assert all(records[p].exclusion == EXCLUDED_RECURRENCE for p in excluded)
    assert all(records[p].outcome.startswith("recurrence") for p in excluded)


def test_real_sheet_lung_mets_agree_with_outcome(clinical_xlsx):
    """The 'Outcome vector' sheet's LungMets is exactly 'Mets – lungs' in the main sheet."""
    records = read_clinical(clinical_xlsx)
    for r in records.values():
        assert r.lung_mets == int(r.outcome == "mets-lungs"), r.patient_id
        if r.lung_mets:
            assert r.dm == 1


def test_real_sheet_time_to_event(clinical_xlsx):
    records = read_clinical(clinical_xlsx)
    for r in records.values():
        assert r.status in ("NED", "AWD", "D")
        assert r.days_to_last_followup is not None and r.days_to_last_followup > 0
        if r.event:
            assert r.time_days == r.days_to_outcome <= r.days_to_last_followup
        else:
            assert r.days_to_outcome is None and r.time_days == r.days_to_last_followup
    assert sum(r.event == 1 for r in records.values()) == 27  # 24 metastases + 3 recurrences


def test_records_carry_no_identifying_fields(clinical_xlsx):
    record = next(iter(read_clinical(clinical_xlsx).values()))
    fields = set(record.__dataclass_fields__)
    assert not fields & {"name", "birth_date", "age", "sex", "address"}
    assert set(record.as_row()) <= fields


@pytest.mark.parametrize(
    ("value", "dm", "outcome"),
    [
        ("Mets \u2013 lungs", 1, "mets-lungs"),
        ("Mets - bones", 1, "mets-bones"),
        ("--", 0, "none"),
        ("Recurrence \u2013 local", None, "recurrence-local"),
        ("Recurrence \u2013 regional", None, "recurrence-regional"),
        (float("nan"), None, ""),
    ],
)
def test_parse_outcome(value, dm, outcome):
    got_dm, got_outcome, exclusion = parse_outcome(value)
    assert (got_dm, got_outcome) == (dm, outcome)
    assert bool(exclusion) == (dm is None)


def test_labels_csv(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("patient_id,dm,lung_mets\nA,1,1\nB,0,0\nC,,0\n")
    records = read_clinical(path)
    assert records["A"] == ClinicalRecord("A", 1, lung_mets=1)
    assert records["B"].dm == 0
    assert records["C"].dm is None and records["C"].exclusion


def test_labels_csv_missing_column(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("patient,label\nA,1\n")
    with pytest.raises(ChmflError, match="lacks column"):
        read_clinical(path)


def test_labels_csv_bad_value(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("patient_id,dm\nA,2\n")
    with pytest.raises(ChmflError, match=r"dm is not a label in row 2 \(A: '2'\); expected 0, 1"):
        read_clinical(path)


def test_labels_csv_non_label_is_an_error_naming_the_rows(tmp_path):
    """'yes' was read as a missing label: the patient was excluded as if unlabelled."""
    path = tmp_path / "labels.csv"
    path.write_text("patient_id,dm\nA,1\nB,yes\nC,0\nD,metastasis\n")
    with pytest.raises(ChmflError, match=r"row 3 \(B: 'yes'\), row 5 \(D: 'metastasis'\)"):
        read_clinical(path)


def test_labels_csv_missing_label_stays_an_exclusion(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("patient_id,dm\nA,1\nB,NA\nC,\nD,0\n")
    records = read_clinical(path)
    assert records["B"].dm is None and records["B"].exclusion == "no DM label in CSV"
    assert records["C"].dm is None and records["C"].exclusion == "no DM label in CSV"


def test_labels_csv_contradicting_duplicate_is_an_error(tmp_path):
    """Listed twice, the later row silently won: a DM patient could end up labelled no-DM."""
    path = tmp_path / "labels.csv"
    path.write_text("patient_id,dm\nA,1\nB,0\nA,0\n")
    with pytest.raises(ChmflError, match=r"listed twice with different labels: A in rows 2 \(DM\), 4 \(no DM\)"):
        read_clinical(path)


def test_labels_csv_agreeing_duplicate_is_kept(tmp_path, caplog):
    path = tmp_path / "labels.csv"
    path.write_text("patient_id,dm\nA,1\nB,0\nA,1\n")
    assert read_clinical(path)["A"].dm == 1
    assert "A (rows 2, 4)" in caplog.text


def _sheet(path, rows):
    pd.DataFrame(rows, columns=["Patient ID", "Outcome (recurrence, mets)"]).to_excel(
        path, sheet_name="Clinical Information", index=False)
    return path


def test_sheet_duplicates_and_non_labels_name_excel_rows(tmp_path):
    dup = _sheet(tmp_path / "dup.xlsx", [("STS_001", "Mets \u2013 lungs"), ("STS_002", "--"), ("STS_001", "--")])
    with pytest.raises(ChmflError, match=r"STS_001 in rows 2 \(DM\), 4 \(no DM\)"):
        read_clinical(dup)
    odd = _sheet(tmp_path / "odd.xlsx", [("STS_001", "Mets \u2013 lungs"), ("STS_002", "yes")])
    with pytest.raises(ChmflError, match=r"not a label in row 3 \(STS_002: 'yes'\)"):
        read_clinical(odd)
    missing = _sheet(tmp_path / "missing.xlsx", [("STS_001", "--"), ("STS_002", None)])
    assert read_clinical(missing)["STS_002"].exclusion == "no outcome recorded"


def test_ids_matching_none_suggest_the_close_ones():
    with pytest.raises(ChmflError, match=r"none of its 2 patient ids .*did you mean 'STS_003' for 'STS-003', "
                                         r"'STS_010' for 'sts-10'\?$"):
        check_ids_match(["STS_001", "STS_003", "STS_010"], ["STS-003", "sts-10"], "clinical file x.xlsx")
    check_ids_match(["STS_001", "STS_003"], ["STS_003", "STS_999"], "x")  # some match: unmatched are excluded
    with pytest.raises(ChmflError, match=r"images: A1, B2\)$"):  # nothing close: no guess
        check_ids_match(["A1", "B2"], ["zzzz"], "x")


def test_sheet_without_expected_columns(tmp_path):
    path = tmp_path / "sheet.xlsx"
    pd.DataFrame({"Patient ID": ["STS_001"], "Grade": ["High"]}).to_excel(
        path, sheet_name="Clinical Information", index=False)
    with pytest.raises(ChmflError, match=r"lacks column.*outcome"):
        read_clinical(path)


def test_unknown_clinical_format(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text("{}")
    with pytest.raises(ChmflError, match="expected .xlsx or .csv"):
        read_clinical(path)


def test_time_horizon_is_hn_cnns_rule(tmp_path):
    """DM within the horizon -> 1; no DM within it but followed past it (or DM later) -> 0;
    no event and followed less -> excluded; a DM event without a date -> excluded."""
    from chmfl.cohort.clinical import apply_horizon

    csv = tmp_path / "labels.csv"
    csv.write_text("id,label,event,days_to_outcome,days_to_last_followup\n"
                   "early,1,1,400,900\nlate,1,1,1000,1200\nfollowed,0,0,,800\nshort,0,0,,500\n"
                   "undated,1,1,,300\nexcluded,,0,,900\n")
    rec = apply_horizon(read_clinical(csv), 730)
    assert {k: r.dm for k, r in rec.items()} == {"early": 1, "late": 0, "followed": 0, "short": None,
                                                 "undated": None, "excluded": None}
    assert rec["short"].exclusion == "no event, followed under 730 days"
    assert rec["undated"].exclusion == "DM event without a date"
