"""Checks of a clinical file's labels before they are trusted: a patient listed twice with
different labels, a value that is not a label, and a file whose ids match none of the images.

Each is an error (``ChmflError``) that names the file and the rows, counted as a spreadsheet
counts them (the header is row 1); only a label that is missing (an empty cell, ``NA``) is an
exclusion, with its reason, as before. Rows are checked all at once, so one message lists
every bad row (the first few, and how many more).
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chmfl.errors import ChmflError

log = logging.getLogger(__name__)
SHOWN = 5  # rows named in one message; the rest are counted


@dataclass(frozen=True)
class LabelRow:
    """One row's label as read: its row number, patient id, dm (None: none), the cell as
    written, and whether the cell holds something that is not a label at all."""

    row: int
    patient_id: str
    dm: int | None
    value: str
    not_a_label: bool = False


def _listed(items: Sequence[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _dm_name(dm: int | None) -> str:
    return {1: "DM", 0: "no DM"}.get(dm, "no label")


def check_label_rows(rows: Iterable[LabelRow], source: str, column: str, expected: str) -> None:
    """Refuse non-labels and contradictory duplicates among ``rows`` (see the module docstring).

    ``source`` names the file ("labels CSV x.csv"), ``column`` the label column, ``expected``
    what a label looks like ("0, 1 or empty")."""
    rows = list(rows)
    bad = [f"row {r.row} ({r.patient_id}: {r.value!r})" for r in rows if r.not_a_label]
    if bad:
        raise ChmflError(f"{source}: {column} is not a label in {_listed(bad)}; expected {expected}")
    by_id: dict[str, list[LabelRow]] = {}
    for r in rows:
        by_id.setdefault(r.patient_id, []).append(r)
    clashes = [f"{pid} in rows {', '.join(f'{r.row} ({_dm_name(r.dm)})' for r in group)}"
               for pid, group in by_id.items() if len(group) > 1 and len({r.dm for r in group}) > 1]
    if clashes:
        raise ChmflError(f"{source}: patient listed twice with different labels: {_listed(clashes)}")
    repeated = [f"{pid} (rows {', '.join(str(r.row) for r in group)})"
                for pid, group in by_id.items() if len(group) > 1]
    if repeated:
        log.warning("%s: patient listed more than once with the same label: %s", source, _listed(repeated))


def _key(pid: str) -> str:
    """An id with case, separators and leading zeros of numbers ignored: STS-003 ~ sts_3."""
    parts = re.split(r"[^0-9a-z]+", pid.lower())
    return "".join(p.lstrip("0") or "0" if p.isdigit() else p for p in parts if p)


def check_ids_match(image_ids: Sequence[str], sheet_ids: Sequence[str], source: str) -> None:
    """Refuse a clinical file none of whose ids names a patient of the images, suggesting the
    ids it probably means (same id up to case, separators or leading zeros, else the closest)."""
    if not image_ids or not sheet_ids or set(image_ids) & set(sheet_ids):
        return
    keys = {_key(i): i for i in image_ids}
    pairs = [(s, keys[_key(s)]) for s in sheet_ids if _key(s) in keys]
    if not pairs:
        pairs = [(s, m[0]) for s in sheet_ids if (m := difflib.get_close_matches(s, image_ids, 1, 0.6))]
    hint = f"; did you mean {_listed([f'{b!r} for {a!r}' for a, b in pairs])}?" if pairs else ""
    raise ChmflError(f"{source}: none of its {len(set(sheet_ids))} patient ids matches a patient of the "
                     f"images (sheet: {_listed(sorted(set(sheet_ids)))}; images: "
                     f"{_listed(sorted(image_ids))}){hint}")
