"""PET pixel values to SUV, vendor-neutral (QIBA SUV pseudo-code and the IBSI-SUV manual).

``suv_factors`` returns, for every slice, the number that turns the rescaled pixel value
(``RescaleSlope * stored + RescaleIntercept``, slope per slice) into SUV of the asked type:

* ``BQML``: activity concentration. SUV = A * N / D(t), with D(t) the injected dose decayed
  to the time the pixels refer to (``decay.py``) and N the patient size normaliser.
* ``CNTS`` (Philips): private (7053,1000) SUV scale factor gives SUVbw directly; else
  (7053,1009) activity concentration scale factor gives Bq/ml and the BQML rule applies.
* ``GML`` / ``CM2ML``: already SUV; the type stored is (0054,1006) SUVType (default BW for
  GML, BSA for CM2ML) and is converted: SUV_asked = SUV_stored * N_asked / N_stored.

Normalisers N (DICOM PS3.16 DCM 126410-126413, heights in cm): body weight (g); lean body
mass James 1976 ("LBMJAMES128"): M 1.10 W - 128 (W/H)^2, F 1.07 W - 148 (W/H)^2; ideal body
weight: M 48.0 + 1.06 (H - 152), F 45.5 + 0.91 (H - 152); body surface area (DuBois,
cm^2): 71.84 W^0.425 H^0.725. Sex "O" (other) uses the mean of the male and female values
(IBSI-SUV). Janmahasatian LBM is read from files that store it but not offered as output.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from pydicom.dataset import Dataset

from chmfl.errors import ChmflError
from chmfl.io import decay
from chmfl.io.dicom_values import number, private_value, text

log = logging.getLogger(__name__)

SUV_TYPES = ("bw", "lbm", "bsa", "ibw")
OVERRIDE_KEYS = ("weight_kg", "dose_bq", "injection_time", "half_life_s", "height_m", "sex")
_STORED_TYPES = {"BW": "bw", "LBMJAMES128": "lbm", "LBM": "lbm", "LBMJANMA": "lbmjanma",
                 "IBW": "ibw", "BSA": "bsa"}
_FLAG = {"weight_kg": "--weight-kg", "height_m": "--height-m", "sex": "--sex"}


@dataclass(frozen=True)
class Patient:
    """Body size used by the SUV normalisers (kg, m, 'M'/'F'/'O'); None when unknown."""

    weight_kg: float | None
    height_m: float | None
    sex: str | None


def _by_sex(male: float, female: float, sex: str) -> float:
    return {"M": male, "F": female}.get(sex, (male + female) / 2.0)


def lbm_james_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass, James 1976 (DICOM 'LBMJAMES128'), in kg."""
    ratio = (weight_kg / (height_m * 100.0)) ** 2
    return _by_sex(1.10 * weight_kg - 128.0 * ratio, 1.07 * weight_kg - 148.0 * ratio, sex)


def lbm_janma_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Lean body mass, Janmahasatian 2005 (DICOM 'LBMJANMA'), in kg; BMI in kg/m^2."""
    bmi = weight_kg / height_m**2
    return _by_sex(9270.0 * weight_kg / (6680.0 + 216.0 * bmi),
                   9270.0 * weight_kg / (8780.0 + 244.0 * bmi), sex)


def ibw_kg(height_m: float, sex: str) -> float:
    """Ideal body weight (DICOM DCM 126413), in kg."""
    h = height_m * 100.0
    return _by_sex(48.0 + 1.06 * (h - 152.0), 45.5 + 0.91 * (h - 152.0), sex)


def bsa_dubois_cm2(weight_kg: float, height_m: float) -> float:
    """Body surface area, DuBois & DuBois 1916, in cm^2."""
    return 0.007184 * weight_kg**0.425 * (height_m * 100.0) ** 0.725 * 1e4


def _need(patient: Patient, field: str, why: str, where: str) -> float | str:
    value = getattr(patient, field)
    if value is None:
        tag = {"weight_kg": "(0010,1030) PatientWeight", "height_m": "(0010,1020) PatientSize",
               "sex": "(0010,0040) PatientSex ('M', 'F' or 'O')"}[field]
        raise ChmflError(f"{where}: {tag} is missing or invalid, needed for {why}; "
                         f"supply it with {_FLAG[field]}")
    return value


def normaliser(kind: str, patient: Patient, where: str) -> float:
    """N for SUV type ``kind``: grams for bw/lbm/lbmjanma/ibw, cm^2 for bsa."""
    why = f"SUV{kind}"
    if kind == "bw":
        return 1000.0 * _need(patient, "weight_kg", why, where)
    if kind == "ibw":
        out = 1000.0 * ibw_kg(_need(patient, "height_m", why, where), _need(patient, "sex", why, where))
    elif kind == "bsa":
        out = bsa_dubois_cm2(_need(patient, "weight_kg", why, where), _need(patient, "height_m", why, where))
    else:
        formula = lbm_james_kg if kind == "lbm" else lbm_janma_kg
        args = [_need(patient, f, why, where) for f in ("weight_kg", "height_m", "sex")]
        out = 1000.0 * formula(*args)
    if not out > 0:
        raise ChmflError(f"{where}: SUV{kind} normaliser is {out:.4g} (not positive) for {patient}")
    return out


def patient_from(ds: Dataset, overrides: dict, where: str) -> Patient:
    """Weight/height/sex from the header, each replaced by its override when given."""
    weight = overrides.get("weight_kg", number(ds.get("PatientWeight")))
    height = overrides.get("height_m", number(ds.get("PatientSize")))
    sex = text(overrides.get("sex", ds.get("PatientSex"))).upper()[:1] or None
    weight = float(weight) if weight is not None and float(weight) > 0 else None
    height = float(height) if height is not None and float(height) > 0 else None
    if height is not None and height > 3.0:  # centimetres written where metres are due
        log.warning("%s: PatientSize %.4g read as cm (DICOM wants m)", where, height)
        height /= 100.0
    if weight is not None and weight > 500.0:
        raise ChmflError(f"{where}: (0010,1030) PatientWeight {weight:g} kg is implausible; "
                         "supply the weight with --weight-kg")
    return Patient(weight, height, sex if sex in ("M", "F", "O") else None)


def check_overrides(overrides: dict | None) -> dict:
    """Validate the override dict (keys of ``OVERRIDE_KEYS``; numbers positive)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise ChmflError(f"unknown SUV override(s) {unknown}; known: {list(OVERRIDE_KEYS)}")
    for key in ("weight_kg", "dose_bq", "half_life_s", "height_m"):
        if key in overrides and not (isinstance(overrides[key], int | float) and overrides[key] > 0):
            raise ChmflError(f"override {key}={overrides[key]!r} must be a positive number")
    return overrides


def _stored_type(ds: Dataset, units: str, where: str) -> str:
    raw = text(ds.get("SUVType")).upper()
    if units == "CM2ML":
        if raw and raw != "BSA":
            raise ChmflError(f"{where}: Units CM2ML with (0054,1006) SUVType {raw!r} (must be BSA)")
        return "bsa"
    if not raw:
        return "bw"
    if raw not in _STORED_TYPES or raw == "BSA":
        raise ChmflError(f"{where}: (0054,1006) SUVType {raw!r} is not usable with Units GML "
                         f"(known: BW, LBMJAMES128, LBMJANMA, IBW)")
    return _STORED_TYPES[raw]


def _philips_factor(ds: Dataset, element: int) -> float | None:
    value = number(private_value(ds, 0x70530000 | element, "philips"))
    return value if value is not None and value > 0 else None


def suv_factors(
    headers: Sequence[Dataset], suv: str = "bw", overrides: dict | None = None, *, where: str = "PET series"
) -> tuple[np.ndarray, dict]:
    """Per-slice multipliers from rescaled PET values to SUV ``suv``, and the parameters used.

    ``headers`` are the slices in volume order. Raises ChmflError naming the missing or
    invalid tag (and the override that can supply it).
    """
    if suv not in SUV_TYPES:
        raise ChmflError(f"unknown SUV type {suv!r}; choose one of {', '.join(SUV_TYPES)}")
    overrides = check_overrides(overrides)
    first = headers[0]
    units = text(first.get("Units")).upper()
    patient = patient_from(first, overrides, where)
    params: dict = {"units": units, "suv_type": suv, **asdict(patient)}
    _check_corrections(first, where)
    if units in ("GML", "CM2ML"):
        stored = _stored_type(first, units, where)
        ratio = 1.0 if stored == suv else normaliser(suv, patient, where) / normaliser(stored, patient, where)
        params.update(stored_suv_type=stored, scale=ratio)
        return np.full(len(headers), ratio), params
    if units == "CNTS":
        suv_scale = [_philips_factor(h, 0x1000) for h in headers]
        act_scale = [_philips_factor(h, 0x1009) for h in headers]
        if all(s is not None for s in suv_scale):
            ratio = 1.0 if suv == "bw" else normaliser(suv, patient, where) / normaliser("bw", patient, where)
            params.update(philips_suv_scale=suv_scale[0], scale=ratio)
            return np.asarray(suv_scale, dtype=float) * ratio, params
        if not all(a is not None for a in act_scale):
            raise ChmflError(f"{where}: Units CNTS needs the Philips private SUV scale factor "
                             "(7053,1000) or activity concentration scale factor (7053,1009) on every slice")
        params["philips_activity_scale"] = act_scale[0]
        to_bqml = np.asarray(act_scale, dtype=float)
    elif units == "BQML":
        to_bqml = np.ones(len(headers))
    else:
        raise ChmflError(f"{where}: (0054,1001) Units {units or 'missing'!r} cannot be converted to SUV "
                         "(supported: BQML, GML, CM2ML, Philips CNTS)")
    dose, dose_params = decay.decayed_doses(headers, overrides, where)
    params.update(dose_params)
    return to_bqml * normaliser(suv, patient, where) / dose, params


def _check_corrections(ds: Dataset, where: str) -> None:
    """Refuse images that are not attenuation corrected (SUV would be meaningless)."""
    corrected = ds.get("CorrectedImage")
    if corrected is None:
        return
    items = [corrected] if isinstance(corrected, str | bytes) else list(corrected)
    values = {v for item in items for v in text(item).upper().split("\\") if v}
    if values and "ATTN" not in values:
        raise ChmflError(f"{where}: (0028,0051) CorrectedImage {sorted(values)} lacks ATTN: the PET is "
                         "not attenuation corrected, so SUV cannot be computed")
