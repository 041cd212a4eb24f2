"""Small parsers for DICOM values: numbers, dates, times, datetimes, private tags.

DICOM stores these as text (DS, IS, DA, TM, DT); files in the wild add spaces, colons
(ACR-NEMA times), time-zone suffixes or, for private tags read as UN, raw bytes. These
helpers turn them into Python values or ``None`` and never raise.
"""

from __future__ import annotations

import datetime as dt
import re

from pydicom.dataset import Dataset
from pydicom.tag import Tag

_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$")
_DT = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?$")


def text(value: object) -> str:
    """A DICOM value as stripped text ('' for None; bytes decoded as ASCII)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="ignore")
    return str(value).replace("\x00", "").strip()


def number(value: object) -> float | None:
    """A DS/IS value (or its text/bytes) as float; None when absent or not a finite number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        out = float(value)
    else:
        s = text(value)
        if not s:
            return None
        try:
            out = float(s.split("\\")[0])
        except ValueError:
            return None
    return out if out == out and abs(out) != float("inf") else None


def parse_time(value: object) -> dt.time | None:
    """A TM value ('HHMMSS.FFFFFF', 'HHMM', 'HH:MM:SS') as a time; None if absent/invalid."""
    m = _TM.match(text(value).replace(":", ""))
    if not m:
        return None
    hh, mm, ss, frac = m.groups()
    try:
        micro = int((frac or "0").ljust(6, "0"))
        return dt.time(int(hh), int(mm or 0), min(int(ss or 0), 59), micro)
    except ValueError:
        return None


def parse_date(value: object) -> dt.date | None:
    """A DA value ('YYYYMMDD', or 'YYYY.MM.DD' of old files) as a date; None if absent/invalid."""
    s = text(value).replace(".", "").replace("-", "")
    if len(s) != 8 or not s.isdigit():
        return None
    try:
        return dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
    except ValueError:
        return None


def parse_datetime(value: object) -> dt.datetime | None:
    """A DT value as a naive datetime (time-zone suffix dropped); None without date and hour."""
    m = _DT.match(text(value))
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, _tz = m.groups()
    if hh is None:
        return None
    try:
        micro = int((frac or "0").ljust(6, "0"))
        return dt.datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), min(int(ss or 0), 59), micro)
    except ValueError:
        return None


def combine(date: dt.date | None, time: dt.time | None) -> dt.datetime | None:
    """Date + time, or None when either is missing."""
    if date is None or time is None:
        return None
    return dt.datetime.combine(date, time)


def private_value(ds: Dataset, tag: int, creator_hint: str) -> object | None:
    """Value of a private element, or None.

    When the block's private creator (gggg,00xx) is present it must contain
    ``creator_hint`` (case-insensitive); files without a creator are accepted, as in the
    SUV reference objects.
    """
    tag = Tag(tag)
    if tag not in ds:
        return None
    creator_tag = Tag(tag.group, (tag.element >> 8) & 0xFF)
    if creator_tag in ds:
        creator = text(ds[creator_tag].value).lower()
        if creator and creator_hint.lower() not in creator:
            return None
    return ds[tag].value
