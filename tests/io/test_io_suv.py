"""SUV rules on in-memory PET headers: formulas, decay, times, units, and refusals."""

from __future__ import annotations

import math

import pytest
from io_factory import pet_tags
from pydicom.dataset import Dataset

from chmfl.errors import ChmflError
from chmfl.io.suv import bsa_dubois_cm2, ibw_kg, lbm_james_kg, lbm_janma_kg, suv_factors

T_F18 = 6586.2


def header(**kw) -> Dataset:
    ds = Dataset()
    ds.SeriesDate = "20200131"
    ds.PatientSex = "M"
    pet_tags(ds, **kw)
    return ds


def bw_factor(uptake_s: float, dose=370e6, weight=70.0, half_life=T_F18) -> float:
    return weight * 1000.0 / (dose * 2.0 ** (-uptake_s / half_life))


def test_body_size_formulas_match_dicom_definitions():
    # James 1976 / DCM 126411, 70 kg, 175 cm: male 77 - 128 * 0.16
    assert lbm_james_kg(70, 1.75, "M") == pytest.approx(56.52)
    assert lbm_james_kg(70, 1.75, "F") == pytest.approx(74.9 - 148 * 0.16)
    assert lbm_james_kg(70, 1.75, "O") == pytest.approx((56.52 + 51.22) / 2)
    # DCM 126413: 48.0 + 1.06 (H - 152) / 45.5 + 0.91 (H - 152); the DRO's value for sex O
    assert ibw_kg(1.75, "M") == pytest.approx(72.38)
    assert ibw_kg(1.75, "F") == pytest.approx(66.43)
    assert ibw_kg(1.75, "O") == pytest.approx(69.405)
    assert bsa_dubois_cm2(70, 1.75) == pytest.approx(18481.4, abs=1)
    assert lbm_janma_kg(70, 1.75, "M") == pytest.approx(9270 * 70 / (6680 + 216 * 70 / 1.75**2))


def test_bqml_start_decays_dose_from_injection_to_series_time():
    factors, params = suv_factors([header(), header()])
    assert factors.tolist() == pytest.approx([bw_factor(3600)] * 2)
    assert params["scan_time_rule"] == "SeriesDate/SeriesTime" and params["uptake_s"] == 3600
    assert params["injection_datetime"] == "2020-01-31T08:00:00"


def test_admin_does_not_decay_and_needs_no_injection_time():
    ds = header(start=None)
    ds.DecayCorrection = "ADMIN"
    factors, params = suv_factors([ds])
    assert factors[0] == pytest.approx(bw_factor(0))
    assert params["decay_factor"] == 1.0


def test_none_decays_to_each_slice_and_averages_over_the_frame():
    a, b = header(), header()
    for ds in (a, b):
        ds.DecayCorrection = "NONE"
    b.AcquisitionTime = "091000"
    factors, _ = suv_factors([a, b])
    lam = math.log(2) / T_F18
    avg = (1 - math.exp(-lam * 120)) / (lam * 120)
    assert factors[0] == pytest.approx(70e3 / (370e6 * 2 ** (-3600 / T_F18) * avg))
    assert factors[1] == pytest.approx(70e3 / (370e6 * 2 ** (-4200 / T_F18) * avg))
    del b.ActualFrameDuration
    with pytest.raises(ChmflError, match=r"\(0018,1242\) ActualFrameDuration"):
        suv_factors([a, b])


def test_injection_before_midnight_and_datetime_preferred():
    ds = header(start="233000", series_time="003000")
    assert suv_factors([ds])[0][0] == pytest.approx(bw_factor(3600))
    ds = header(start="000000")
    ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime = "20200131083000"
    assert suv_factors([ds])[1]["uptake_s"] == 1800


def test_injection_after_the_scan_is_refused_not_wrapped():
    with pytest.raises(ChmflError, match=r"injection time 14:00:00 is after the scan time 09:00:00"):
        suv_factors([header(start="140000")])
    ds = header(start="000000")
    ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime = "19000101083000"
    assert suv_factors([ds])[1]["uptake_s"] == 1800  # anonymised date: time of day used


def test_series_time_after_acquisition_uses_ge_then_frame_timing_then_earliest():
    ds = header()
    ds.SeriesTime = "113000"  # post-processed series
    ds.AcquisitionTime = "090500"
    ds[0x0009100D] = pydicom_dt("20200131090000")
    assert suv_factors([ds])[1]["scan_datetime"] == "2020-01-31T09:00:00"
    del ds[0x0009100D]
    ds.FrameReferenceTime = 300000 + 60000  # 5 min after the series start, + ~half the frame
    params = suv_factors([ds])[1]
    assert params["scan_time_rule"].startswith("AcquisitionTime - FrameReferenceTime")
    assert abs(params["uptake_s"] - 3600) < 1.0
    del ds.FrameReferenceTime
    assert suv_factors([ds])[1]["scan_datetime"] == "2020-01-31T09:05:00"


def pydicom_dt(value: str):
    from pydicom.dataelem import DataElement

    return DataElement(0x0009100D, "DT", value)


def test_dose_in_mbq_is_recognised(caplog):
    assert suv_factors([header(dose=370.0)])[0][0] == pytest.approx(bw_factor(3600))
    assert "read as 370 MBq" in caplog.text


@pytest.mark.parametrize(
    ("kw", "tag", "flag"),
    [
        ({"dose": None}, "(0018,1074) RadionuclideTotalDose", "--dose-bq"),
        ({"dose": -5.0}, "(0018,1074) RadionuclideTotalDose", "--dose-bq"),
        ({"weight": None}, "(0010,1030) PatientWeight", "--weight-kg"),
        ({"weight": 0.0}, "(0010,1030) PatientWeight", "--weight-kg"),
        ({"start": None}, "(0018,1072) RadiopharmaceuticalStartTime", "--injection-time"),
    ],
    ids=["no-dose", "negative-dose", "no-weight", "zero-weight", "no-injection-time"],
)
def test_missing_values_name_the_tag_and_the_override(kw, tag, flag):
    with pytest.raises(ChmflError) as info:
        suv_factors([header(**kw)], where="PET series X")
    assert tag in str(info.value) and flag in str(info.value) and "PET series X" in str(info.value)


def test_overrides_supply_missing_values():
    ds = header(dose=None, weight=None, start=None)
    factors, params = suv_factors(
        [ds], overrides={"dose_bq": 370e6, "weight_kg": 70.0, "injection_time": "2020-01-31T08:00:00"})
    assert factors[0] == pytest.approx(bw_factor(3600))
    assert params["weight_kg"] == 70.0
    with pytest.raises(ChmflError, match="unknown SUV override"):
        suv_factors([header()], overrides={"weight": 70})
    with pytest.raises(ChmflError, match="ISO"):
        suv_factors([header()], overrides={"injection_time": "yesterday"})


def test_gml_is_converted_between_suv_types():
    ds = header()
    ds.Units = "GML"
    assert suv_factors([ds], "bw")[0][0] == 1.0
    lbm = suv_factors([ds], "lbm")[0][0]
    assert lbm == pytest.approx(56.52 / 70)
    ds.SUVType = "LBMJAMES128"  # stored SUVlbm -> SUVbw
    assert suv_factors([ds], "bw")[0][0] == pytest.approx(70 / 56.52)
    ds.PatientSex = ""
    with pytest.raises(ChmflError, match=r"\(0010,0040\) PatientSex.*--sex"):
        suv_factors([ds], "bw")
    ds.Units = "CM2ML"
    with pytest.raises(ChmflError, match="must be BSA"):
        suv_factors([ds], "bw")


def test_units_and_corrections_that_cannot_give_suv():
    ds = header()
    ds.Units = "CNTS"
    with pytest.raises(ChmflError, match=r"\(7053,1000\)"):
        suv_factors([ds])
    ds.Units = "PROPCNTS"
    with pytest.raises(ChmflError, match="PROPCNTS"):
        suv_factors([ds])
    ds = header()
    ds.CorrectedImage = ["DECY", "NORM"]
    with pytest.raises(ChmflError, match="not attenuation corrected"):
        suv_factors([ds])
    ds = header()
    ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife = 78.4 * 3600  # Zr-89
    with pytest.raises(ChmflError, match="uptake over 24 h"):
        suv_factors([ds])
    with pytest.raises(ChmflError, match="unknown SUV type"):
        suv_factors([header()], "sul")
