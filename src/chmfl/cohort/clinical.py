"""Clinical outcomes and the DM label (the paper's 24 DM / 24 no-DM, 3 excluded).

Two inputs are accepted:

* the TCIA sheet ``INFOclinical_STS.xlsx`` (sheet "Clinical Information", one row per
  patient, notes rows at the bottom; column names and values use en dashes), with the
  optional sheet "Outcome vector" (``LungMets`` 0/1);
* a CSV with at least ``patient_id`` (or ``id``) and ``dm`` (or ``label``) columns
  (optional: ``exclusion``, ``lung_mets``, ``event``, ``time_days``, ``days_to_outcome``,
  ``days_to_last_followup``, ``status``).

Label rules (``Outcome (recurrence, mets)``): any "Mets – <site>" is a distant metastasis
(dm = 1); "--" is no event (dm = 0); "Recurrence – local/regional" without metastasis is
excluded (dm = None), as the paper did. Besides the outcome columns, the scan offsets
(diagnosis to MRI, MRI to PET: the origin of the DM-free survival endpoint, ``cohort.endpoint``)
and three clinical covariates are read: age in years (capped at 90, the HIPAA safe-harbour
limit), grade and MSKCC histology type. Names, birth dates, sex and addresses never enter a
``ClinicalRecord``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from chmfl.cohort.label_check import LabelRow, check_label_rows
from chmfl.errors import ChmflError

EXCLUDED_RECURRENCE = "local/regional recurrence without distant metastasis"
NO_RECORD = "no clinical record"
UNRECOGNISED = "unrecognised outcome"
SHEET_LABELS = "'--', 'Mets - <site>', 'Recurrence - <site>' or empty"
MISSING_LABELS = ("", "na", "n/a", "nan", "none", "missing", "unknown", "?")  # a CSV dm cell: no label

# Normalised header (see _norm) -> field name.
_SHEET_COLUMNS = {
    "patient id": "patient_id",
    "outcome (recurrence, mets)": "outcome",
    "time - diagnosis to outcome (days)": "days_to_outcome",
    "status (ned, awd, d)": "status",
    "time - diagnosis to last follow-up (days)": "days_to_last_followup",
    "time - diagnosis to mri scan (days)": "days_diagnosis_to_mri",
    "time - mri scan to pet scan (days)": "days_mri_to_pet",
    "age": "age_years",
    "grade": "grade",
    "mskcc type": "mskcc_type",
}
AGE_CAP = 90.0  # ages above 89 are identifying (HIPAA safe harbour): recorded as 90
_SHEET_REQUIRED = ("patient_id", "outcome")
_CSV_ALIASES = {"id": "patient_id", "label": "dm"}
_CSV_OPTIONAL = (
    "exclusion", "lung_mets", "event", "time_days", "days_to_outcome",
    "days_to_last_followup", "status", "outcome", "days_diagnosis_to_mri", "days_mri_to_pet",
    "age_years", "grade", "mskcc_type",
)


@dataclass(frozen=True)
class ClinicalRecord:
    """One patient's outcome fields (no identifying data)."""

    patient_id: str
    dm: int | None  # 1 distant metastasis, 0 no event, None excluded / unknown
    exclusion: str = ""  # why dm is None; "" when included
    outcome: str = ""  # normalised outcome: "mets-lungs", "recurrence-local", "none", ...
    lung_mets: int | None = None  # the sheet's "Outcome vector" LungMets (19 / 32)
    event: int | None = None  # 1 when any outcome event (metastasis or recurrence) occurred
    time_days: float | None = None  # days to the outcome if event, else to last follow-up
    days_to_outcome: float | None = None
    days_to_last_followup: float | None = None
    status: str = ""  # NED / AWD / D at last follow-up
    days_diagnosis_to_mri: float | None = None  # negative: MRI before the biopsy
    days_mri_to_pet: float | None = None  # negative: PET before the MRI
    age_years: float | None = None  # at diagnosis, capped at AGE_CAP
    grade: str = ""  # "low" / "intermediate" / "high"; "" when not recorded
    mskcc_type: str = ""  # the sheet's MSKCC histology type, as written

    def as_row(self) -> dict:
        """The manifest columns of this record."""
        return {
            "dm": self.dm, "exclusion": self.exclusion, "outcome": self.outcome,
            "lung_mets": self.lung_mets, "event": self.event, "time_days": self.time_days,
            "days_to_outcome": self.days_to_outcome,
            "days_to_last_followup": self.days_to_last_followup, "status": self.status,
            "days_diagnosis_to_mri": self.days_diagnosis_to_mri,
            "days_mri_to_pet": self.days_mri_to_pet, "age_years": self.age_years,
            "grade": self.grade, "mskcc_type": self.mskcc_type,
        }


def missing_record(patient_id: str) -> ClinicalRecord:
    """The record of a patient found in the images but absent from the clinical file."""
    return ClinicalRecord(patient_id, None, exclusion=NO_RECORD)


def _norm(text: object) -> str:
    """Lower-case, en/em dashes to '-', collapsed spaces: robust header/value matching."""
    s = str(text).replace("\u2013", "-").replace("\u2014", "-").replace("\u2212", "-")
    return re.sub(r"\s+", " ", s).strip().lower()


def _number(value: object) -> float | None:
    """A day count, or None for '--', 'N/A', empty cells."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        out = float(str(value).strip())
    except ValueError:
        return None
    return None if math.isnan(out) else out


def _age(value: object) -> float | None:
    age = _number(value)
    return None if age is None else min(age, AGE_CAP)


def _text(value: object) -> str:
    """A cell as stripped text; "" for empty, NaN, '--' and 'N/A'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    s = str(value).strip()
    return "" if _norm(s) in ("", "nan", "--", "-", "n/a") else s


def _binary(value: object, what: str, source: Path) -> int | None:
    num = _number(value)
    if num is None:
        return None
    if num not in (0.0, 1.0):
        raise ChmflError(f"{source}: {what} must be 0 or 1, got {value!r}")
    return int(num)


def parse_outcome(value: object) -> tuple[int | None, str, str]:
    """Map an ``Outcome (recurrence, mets)`` cell to (dm, normalised outcome, exclusion)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, "", "no outcome recorded"
    s = _norm(value)
    if s in ("--", "-", "none", "no event", ""):
        return 0, "none", ""
    parts = [p.strip() for p in s.split("-", 1)]
    kind, site = parts[0], (parts[1] if len(parts) > 1 else "")
    tag = f"{kind}-{site.replace(' ', '_')}" if site else kind
    if kind in ("mets", "metastasis", "metastases", "distant metastasis"):
        return 1, tag, ""
    if kind == "recurrence":
        return None, tag, EXCLUDED_RECURRENCE
    return None, tag, f"{UNRECOGNISED} '{value}'"


def read_clinical(path: str | Path) -> dict[str, ClinicalRecord]:
    """Read the TCIA sheet (.xlsx) or a labels CSV into records keyed by patient id."""
    path = Path(path)
    if not path.is_file():
        raise ChmflError(f"clinical file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xls"):
        return read_sts_sheet(path)
    if suffix in (".csv", ".tsv"):
        return read_labels_csv(path)
    raise ChmflError(f"clinical file {path}: expected .xlsx or .csv, got '{suffix}'")


def _sheet_table(path: Path) -> pd.DataFrame:
    try:
        book = pd.ExcelFile(path)
    except Exception as exc:  # openpyxl raises many types for bad files
        raise ChmflError(f"cannot read clinical sheet {path}: {type(exc).__name__}") from exc
    sheet = next((s for s in book.sheet_names if _norm(s) == "clinical information"), book.sheet_names[0])
    df = pd.read_excel(book, sheet, dtype=object)
    df = df.rename(columns={c: _SHEET_COLUMNS.get(_norm(c), c) for c in df.columns})
    missing = [c for c in _SHEET_REQUIRED if c not in df.columns]
    if missing:
        raise ChmflError(
            f"clinical sheet {path} (sheet '{sheet}') lacks column(s) {missing}; "
            "expected 'Patient ID' and 'Outcome (recurrence, mets)'"
        )
    ids = df["patient_id"]
    # The table ends at the first empty id cell; notes rows follow it.
    end = next((i for i, v in enumerate(ids) if v is None or _norm(v) in ("", "nan")), len(df))
    return df.iloc[:end]


def _lung_mets_sheet(path: Path) -> dict[str, int]:
    book = pd.ExcelFile(path)
    sheet = next((s for s in book.sheet_names if _norm(s) == "outcome vector"), None)
    if sheet is None:
        return {}
    df = pd.read_excel(book, sheet, dtype=object)
    df = df.rename(columns={c: _norm(c) for c in df.columns})
    if "patient id" not in df.columns or "lungmets" not in df.columns:
        return {}
    return {
        str(r["patient id"]).strip(): int(r["lungmets"])
        for _, r in df.iterrows() if _number(r["lungmets"]) is not None
    }


def read_sts_sheet(path: str | Path) -> dict[str, ClinicalRecord]:
    """Records from ``INFOclinical_STS.xlsx`` (see the module docstring for the rules)."""
    path = Path(path)
    df = _sheet_table(path)
    check_label_rows(_sheet_label_rows(df), f"clinical sheet {path}", "'Outcome (recurrence, mets)'", SHEET_LABELS)
    lung = _lung_mets_sheet(path)
    records: dict[str, ClinicalRecord] = {}
    for _, row in df.iterrows():
        pid = str(row["patient_id"]).strip()
        dm, outcome, exclusion = parse_outcome(row["outcome"])
        to_outcome = _number(row.get("days_to_outcome"))
        to_followup = _number(row.get("days_to_last_followup"))
        event = None if outcome == "" else int(outcome != "none")
        status = row.get("status")
        status = "" if status is None or pd.isna(status) else str(status).strip()
        records[pid] = ClinicalRecord(
            patient_id=pid, dm=dm, exclusion=exclusion, outcome=outcome,
            lung_mets=lung.get(pid, int(outcome == "mets-lungs") if outcome else None),
            event=event, time_days=to_outcome if event else to_followup,
            days_to_outcome=to_outcome, days_to_last_followup=to_followup,
            status=status, **_times_and_covariates(row),
        )
    if not records:
        raise ChmflError(f"clinical sheet {path} has no patient rows")
    return records


def _times_and_covariates(row) -> dict:
    """The scan offsets and covariates of one sheet or CSV row (absent columns: empty)."""
    return {
        "days_diagnosis_to_mri": _number(row.get("days_diagnosis_to_mri")),
        "days_mri_to_pet": _number(row.get("days_mri_to_pet")),
        "age_years": _age(row.get("age_years")),
        "grade": _text(row.get("grade")).lower(),
        "mskcc_type": _text(row.get("mskcc_type")),
    }


def read_labels_csv(path: str | Path) -> dict[str, ClinicalRecord]:
    """Records from a CSV with ``patient_id`` and ``dm`` (0/1/empty) columns."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, sep=None, engine="python")
    except Exception as exc:
        raise ChmflError(f"cannot read labels CSV {path}: {type(exc).__name__}") from exc
    df = df.rename(columns={c: _norm(c).replace(" ", "_") for c in df.columns})
    df = df.rename(columns={a: c for a, c in _CSV_ALIASES.items() if a in df.columns and c not in df.columns})
    missing = [c for c in ("patient_id", "dm") if c not in df.columns]
    if missing:
        raise ChmflError(f"labels CSV {path} lacks column(s) {missing}; found {list(df.columns)}")
    check_label_rows(_csv_label_rows(df), f"labels CSV {path}", "dm", "0, 1 or empty (NA)")
    records: dict[str, ClinicalRecord] = {}
    for row in df.to_dict("records"):
        pid = row["patient_id"].strip()
        if not pid:
            continue
        dm = _binary(row["dm"], f"dm of {pid}", path)
        extra = {k: row.get(k, "") for k in _CSV_OPTIONAL}
        exclusion = extra["exclusion"].strip() or ("" if dm is not None else "no DM label in CSV")
        records[pid] = ClinicalRecord(
            patient_id=pid, dm=dm, exclusion=exclusion if dm is None else "",
            outcome=extra["outcome"].strip(),
            lung_mets=_binary(extra["lung_mets"], f"lung_mets of {pid}", path),
            event=_binary(extra["event"], f"event of {pid}", path),
            time_days=_number(extra["time_days"]),
            days_to_outcome=_number(extra["days_to_outcome"]),
            days_to_last_followup=_number(extra["days_to_last_followup"]),
            status=extra["status"].strip(), **_times_and_covariates(extra),
        )
    if not records:
        raise ChmflError(f"labels CSV {path} has no patient rows")
    return records


def apply_horizon(records: dict[str, ClinicalRecord], days: float) -> dict[str, ClinicalRecord]:
    """The DM label at a time horizon, hn_cnn's rule (Mateus et al. 2023, ``parse_data.py``):
    dm = 1 for a DM event within ``days`` of diagnosis; dm = 0 for no event within ``days``
    when the patient was followed at least ``days`` (or had the event later); patients
    without an event followed less than ``days`` are excluded. Needs ``event`` and
    ``time_days`` (days to the event, or to last follow-up without one). A DM event with no
    date is excluded here (hn_cnn's comparison ``NaN <= days`` labels it 0)."""
    out = {}
    for pid, r in records.items():
        if r.dm is None:
            out[pid] = r  # excluded in the clinical file: stays excluded
            continue
        if r.event is None:
            raise ChmflError(f"patient {pid}: a time horizon needs the 'event' column (0/1)")
        time = r.days_to_outcome if r.event and r.days_to_outcome is not None else r.time_days
        followed = r.days_to_last_followup if r.days_to_last_followup is not None else r.time_days
        if r.event and time is None:
            dm, why = None, "DM event without a date"
        elif r.event and time <= days:
            dm, why = 1, ""
        elif r.event or (followed is not None and followed >= days):
            dm, why = 0, ""
        else:
            dm, why = None, f"no event, followed under {days:g} days"
        out[pid] = replace(r, dm=dm, exclusion=why)
    return out


def label_counts(records: dict[str, ClinicalRecord]) -> dict[str, int]:
    """Counts of dm = 1, dm = 0, excluded, and lung_mets = 1 / 0 (for logs and tests)."""
    recs = list(records.values())
    return {
        "dm": sum(r.dm == 1 for r in recs),
        "no_dm": sum(r.dm == 0 for r in recs),
        "excluded": sum(r.dm is None for r in recs),
        "lung_mets": sum(r.lung_mets == 1 for r in recs),
        "no_lung_mets": sum(r.lung_mets == 0 for r in recs),
    }


def _sheet_label_rows(df: pd.DataFrame) -> list[LabelRow]:
    """The outcome cell of each sheet row as a ``LabelRow`` (Excel row numbers: header = 1)."""
    rows = []
    for index, pid, value in zip(df.index, df["patient_id"], df["outcome"]):
        dm, _, exclusion = parse_outcome(value)
        rows.append(LabelRow(int(index) + 2, str(pid).strip(), dm, str(value),
                             exclusion.startswith(UNRECOGNISED)))
    return rows


def _csv_label_rows(df: pd.DataFrame) -> list[LabelRow]:
    """The dm cell of each CSV row with an id as a ``LabelRow`` (header = row 1): 0 or 1, a
    missing label (``MISSING_LABELS``), or anything else, which is not a label."""
    rows = []
    for index, pid, value in zip(df.index, df["patient_id"], df["dm"]):
        if not str(pid).strip():
            continue
        text = str(value).strip()
        num = None if _norm(text) in MISSING_LABELS else _number(text)
        not_label = _norm(text) not in MISSING_LABELS and num not in (0.0, 1.0)
        rows.append(LabelRow(int(index) + 2, str(pid).strip(), None if num is None else int(num), text, not_label))
    return rows
