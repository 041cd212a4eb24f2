"""Injected dose decayed to the time PET pixel values refer to (QIBA SUV pseudo-code, IBSI-SUV).

(0054,1102) DecayCorrection says which time that is:

* ``ADMIN``: values are decay corrected to the administration time: the dose as injected.
* ``START``: corrected to the scan start. Scan start = SeriesDate/Time when it is not after
  the earliest AcquisitionDate/Time; otherwise (a post-processed series) the GE private
  scan datetime (0009,100D); else, per slice, AcquisitionTime - FrameReferenceTime + the
  mean-count-rate time within the frame (QIBA "reliable in all cases"); else the earliest
  AcquisitionTime (QIBA), with a warning.
* ``NONE``: not decay corrected: each slice holds the mean activity over its own frame, so
  the dose is decayed to that slice's AcquisitionTime and averaged over ActualFrameDuration.

Injection time: (0018,1078) RadiopharmaceuticalStartDateTime when its uptake time is
plausible; else (0018,1072) RadiopharmaceuticalStartTime on the scan date, one day earlier
when that would be after the scan (injection before midnight) unless the uptake would then
exceed min(24 h, 10 half-lives) (an injection time after the scan: refused). A time of day alone is
refused for half-lives over a day (the uptake may exceed 24 h).

Dose in MBq: a (0018,1074) RadionuclideTotalDose below 1e5 is no plausible dose in Bq
(0.1 MBq) but a usual one in MBq, so it is read as MBq (with a warning).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

from chmfl.errors import ChmflError
from chmfl.io.dicom_values import (
    combine,
    number,
    parse_date,
    parse_datetime,
    parse_time,
    private_value,
    text,
)

log = logging.getLogger(__name__)

MBQ_LIMIT = 1e5  # a "Bq" dose below this is read as MBq
ONE_DAY = dt.timedelta(days=1)


def decayed_doses(headers: Sequence[Dataset], overrides: dict, where: str) -> tuple[np.ndarray, dict]:
    """Per-slice decayed dose (Bq) matching the slices' decay correction, and parameters used."""
    first = headers[0]
    rp = _radiopharmaceutical(first, where)
    dose = _dose_bq(rp, overrides, where)
    mode = text(first.get("DecayCorrection")).upper()
    params: dict = {"dose_bq": dose, "decay_correction": mode}
    if mode == "ADMIN":
        return np.full(len(headers), dose), {**params, "decay_factor": 1.0}
    if mode not in ("START", "NONE"):
        raise ChmflError(f"{where}: (0054,1102) DecayCorrection {mode or 'missing'!r} is not "
                         "START, ADMIN or NONE")
    half_life = _half_life(rp, overrides, where)
    params["half_life_s"] = half_life
    if mode == "START":
        scan, rule = scan_datetime(headers, half_life, where)
        inj = injection_datetime(rp, scan, half_life, overrides, where)
        uptake = (scan - inj).total_seconds()
        factor = 2.0 ** (-uptake / half_life)
        params.update(scan_datetime=scan.isoformat(), scan_time_rule=rule,
                      injection_datetime=inj.isoformat(), uptake_s=uptake, decay_factor=factor)
        return np.full(len(headers), dose * factor), params
    return _undecayed(headers, rp, dose, half_life, overrides, where, params)


def _undecayed(headers, rp, dose, half_life, overrides, where, params) -> tuple[np.ndarray, dict]:
    """DecayCorrection NONE: dose decayed to each slice's frame, averaged over the frame."""
    acq = acquisition_datetimes(headers)
    durations = [number(h.get("ActualFrameDuration")) for h in headers]
    if any(a is None for a in acq):
        raise ChmflError(f"{where}: DecayCorrection NONE needs (0008,0022)/(0008,0032) "
                         "AcquisitionDate/Time on every slice")
    if any(d is None or d <= 0 for d in durations):
        raise ChmflError(f"{where}: DecayCorrection NONE needs (0018,1242) ActualFrameDuration "
                         "on every slice")
    inj = injection_datetime(rp, min(acq), half_life, overrides, where)
    lam = math.log(2.0) / half_life
    factors = []
    for start, dur_ms in zip(acq, durations):
        frame = lam * dur_ms / 1000.0
        t0 = (start - inj).total_seconds()
        factors.append(2.0 ** (-t0 / half_life) * (-math.expm1(-frame)) / frame)
    params.update(injection_datetime=inj.isoformat(), decay_factor=float(np.mean(factors)),
                  scan_datetime=min(acq).isoformat(), scan_time_rule="per-slice AcquisitionTime")
    return dose * np.asarray(factors), params


def _radiopharmaceutical(ds: Dataset, where: str) -> Dataset:
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    if not seq:
        return Dataset()
    if len(seq) > 1:
        log.warning("%s: %d radiopharmaceuticals listed; using the first", where, len(seq))
    return seq[0]


def _dose_bq(rp: Dataset, overrides: dict, where: str) -> float:
    if "dose_bq" in overrides:
        return float(overrides["dose_bq"])
    raw = number(rp.get("RadionuclideTotalDose"))
    if raw is None:
        raise ChmflError(f"{where}: (0018,1074) RadionuclideTotalDose is missing (in (0054,0016) "
                         "RadiopharmaceuticalInformationSequence); supply the injected dose with --dose-bq")
    if raw <= 0:
        raise ChmflError(f"{where}: (0018,1074) RadionuclideTotalDose is {raw:g} (not positive); "
                         "supply the injected dose with --dose-bq")
    if raw < MBQ_LIMIT:
        log.warning("%s: RadionuclideTotalDose %g is implausible in Bq; read as %g MBq", where, raw, raw)
        return raw * 1e6
    return raw


def _half_life(rp: Dataset, overrides: dict, where: str) -> float:
    if "half_life_s" in overrides:
        return float(overrides["half_life_s"])
    value = number(rp.get("RadionuclideHalfLife"))
    if value is None or value <= 0:
        raise ChmflError(f"{where}: (0018,1075) RadionuclideHalfLife is missing or not positive; "
                         "supply it with --half-life-s (F-18: 6586.2 s, Ga-68: 4057.7 s)")
    return value


def acquisition_datetimes(headers: Sequence[Dataset]) -> list[dt.datetime | None]:
    """Each slice's acquisition start; a date far (> 1 day) from the series date is not trusted."""
    out = []
    for h in headers:
        series_date = parse_date(h.get("SeriesDate")) or parse_date(h.get("StudyDate"))
        value = parse_datetime(h.get("AcquisitionDateTime"))
        if value is None:
            time = parse_time(h.get("AcquisitionTime"))
            value = combine(parse_date(h.get("AcquisitionDate")) or series_date, time)
        if value is not None and series_date is not None and abs(value.date() - series_date) > ONE_DAY:
            value = dt.datetime.combine(series_date, value.time())  # anonymised acquisition date
        out.append(value)
    return out


def scan_datetime(headers: Sequence[Dataset], half_life: float, where: str) -> tuple[dt.datetime, str]:
    """The scan start that DecayCorrection START refers to, and the rule that gave it."""
    first = headers[0]
    date = parse_date(first.get("SeriesDate")) or parse_date(first.get("AcquisitionDate")) \
        or parse_date(first.get("StudyDate"))
    series = combine(date, parse_time(first.get("SeriesTime")))
    acq = [a for a in acquisition_datetimes(headers) if a is not None]
    earliest = min(acq) if acq else None
    if series is not None and (earliest is None or series <= earliest):
        return series, "SeriesDate/SeriesTime"
    ge = parse_datetime(private_value(first, 0x0009100D, "GEMS_PETD"))
    if ge is not None:
        return ge, "GE private scan datetime (0009,100D)"
    back = _back_computed(headers, half_life)
    if back is not None:
        return back, "AcquisitionTime - FrameReferenceTime + frame mean-count time"
    if earliest is not None:
        log.warning("%s: SeriesTime after AcquisitionTime and no frame timing; scan start taken "
                    "as the earliest AcquisitionTime %s", where, earliest.isoformat())
        return earliest, "earliest AcquisitionTime"
    raise ChmflError(f"{where}: no scan time: (0008,0021)/(0008,0031) SeriesDate/SeriesTime and "
                     "(0008,0022)/(0008,0032) AcquisitionDate/Time are missing")


def _back_computed(headers: Sequence[Dataset], half_life: float) -> dt.datetime | None:
    """Scan start from the earliest slice's frame timing (QIBA), or None without timing."""
    lam = math.log(2.0) / half_life
    best = None
    for h, acq in zip(headers, acquisition_datetimes(headers)):
        ref_ms, dur_ms = number(h.get("FrameReferenceTime")), number(h.get("ActualFrameDuration"))
        if acq is None or not ref_ms or not dur_ms or ref_ms <= 0 or dur_ms <= 0:
            continue
        frame = lam * dur_ms / 1000.0
        mean_count = math.log(frame / -math.expm1(-frame)) / lam  # s after frame start
        estimate = acq - dt.timedelta(seconds=ref_ms / 1000.0 - mean_count)
        if best is None or acq < best[0]:
            best = (acq, estimate)
    return None if best is None else best[1]


def injection_datetime(
    rp: Dataset, scan: dt.datetime, half_life: float, overrides: dict, where: str
) -> dt.datetime:
    """Injection time for a scan at ``scan`` (see the module docstring for the rules)."""
    if "injection_time" in overrides:
        return _override_time(overrides["injection_time"], scan)
    full = parse_datetime(rp.get("RadiopharmaceuticalStartDateTime"))
    tod = parse_time(rp.get("RadiopharmaceuticalStartTime")) or (full.time() if full else None)
    if full is not None:
        uptake = scan - full
        if dt.timedelta(0) <= uptake <= max(ONE_DAY, dt.timedelta(seconds=10 * half_life)):
            return full
        if half_life > ONE_DAY.total_seconds():
            raise ChmflError(f"{where}: (0018,1078) RadiopharmaceuticalStartDateTime {full.isoformat()} "
                             f"gives an implausible uptake time {uptake} before the scan at "
                             f"{scan.isoformat()}; supply --injection-time")
        log.warning("%s: RadiopharmaceuticalStartDateTime %s is %s before the scan (dates "
                    "anonymised?); using its time of day", where, full.isoformat(), uptake)
        return _same_day_or_before(scan, full.time(), half_life, where)
    if tod is None:
        raise ChmflError(f"{where}: (0018,1072) RadiopharmaceuticalStartTime and (0018,1078) "
                         "RadiopharmaceuticalStartDateTime are missing; supply the injection time "
                         "with --injection-time (ISO, e.g. 2020-01-31T09:15:00)")
    if half_life > ONE_DAY.total_seconds():
        raise ChmflError(f"{where}: only (0018,1072) RadiopharmaceuticalStartTime is given and the "
                         f"half-life ({half_life / 3600:.1f} h) allows uptake over 24 h; supply "
                         "--injection-time or (0018,1078) RadiopharmaceuticalStartDateTime")
    return _same_day_or_before(scan, tod, half_life, where)


def _same_day_or_before(scan: dt.datetime, tod: dt.time, half_life: float, where: str) -> dt.datetime:
    """Injection at time of day ``tod``; refuse a wrap past midnight that gives an uptake over
    min(24 h, 10 half-lives) (an injection time after the scan, not a night injection)."""
    inj = _before(scan, tod)
    uptake = scan - inj
    if uptake > min(ONE_DAY, dt.timedelta(seconds=10 * half_life)):
        raise ChmflError(f"{where}: injection time {tod.isoformat()} is after the scan time "
                         f"{scan.time().isoformat()} (taking it as the day before gives an implausible "
                         f"uptake of {uptake}); check (0018,1072) RadiopharmaceuticalStartTime or "
                         "supply --injection-time")
    return inj


def _before(scan: dt.datetime, tod: dt.time) -> dt.datetime:
    """The last ``tod`` at or before ``scan`` (injection before midnight -> previous day)."""
    inj = dt.datetime.combine(scan.date(), tod)
    return inj - ONE_DAY if inj > scan else inj


def _override_time(value: object, scan: dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    s = str(value).strip()
    try:
        return dt.datetime.fromisoformat(s).replace(tzinfo=None)
    except ValueError:
        pass
    try:
        return _before(scan, dt.time.fromisoformat(s))
    except ValueError:
        raise ChmflError(f"--injection-time {s!r} is not an ISO datetime (e.g. 2020-01-31T09:15:00) "
                         "or time of day (09:15)") from None
