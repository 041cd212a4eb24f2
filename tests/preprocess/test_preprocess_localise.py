"""``locate_tumour`` on tiny synthetic whole bodies (``chmfl.synth.wholebody.tiny_study``):
physiological uptake hotter than the tumour, ambiguity, a tumour outside the CT, a PET
larger than the CT, and the user's centre or search box."""

from __future__ import annotations

import numpy as np
import pytest

from chmfl.errors import ChmflError
from chmfl.preprocess.config import PrepareConfig
from chmfl.preprocess.localise import LocalisationRefused, locate_tumour
from chmfl.preprocess.pipeline import preprocess_case
from chmfl.synth.phantom import Shape
from chmfl.synth.wholebody import tiny_study

CONFIG = PrepareConfig(voxel_mm=8.0)
THIGH = (95.0, 5.0, -200.0)  # right... LPS +x: the patient's left thigh
OTHER_THIGH = (-95.0, 5.0, -230.0)
HOT = {"grey": 14.0, "urine": 25.0, "myocardium": 15.0, "renal_pelvis": 12.0}


def _near(xyz, target, tol=10.0) -> bool:
    return float(np.linalg.norm(np.subtract(xyz, target))) <= tol


@pytest.fixture(scope="module")
def body():
    """Brain, bladder, heart and kidneys all hotter than a modest thigh sarcoma (SUV 5)."""
    return tiny_study(THIGH, tumour_suv=5.0, pet_mm=8.0, ct_mm=4.0, suv=HOT)


def test_organs_hotter_than_the_tumour_are_recognised_and_the_tumour_chosen(body):
    loc = locate_tumour(body.ct, body.pet, CONFIG)
    assert loc.decision == "chosen" and _near(loc.centre_xyz, THIGH)
    excluded = {c.excluded for c in loc.candidates if c.excluded}
    assert {"brain", "urine", "heart", "kidney"} <= excluded
    tumour = loc.candidates[0]
    assert all(c.suv_max > tumour.suv_max for c in loc.candidates if c.excluded in ("brain", "urine", "heart"))
    record = loc.to_dict()
    assert record["decision"] == "chosen" and record["candidates"][0]["excluded"] is None
    assert all(r["reasons"] for r in record["candidates"] if r["excluded"])


def test_without_anatomy_the_brain_wins(body):
    """The physiology rules are what saves the tumour: switched off, the brain is chosen."""
    plain = PrepareConfig.from_dict({**CONFIG.to_dict(), "hotspot": {"physiological": False}})
    loc = locate_tumour(body.ct, body.pet, plain)
    assert loc.best is not None and not _near(loc.best.centre_xyz, THIGH, 100.0)


def test_two_similar_candidates_are_refused_and_both_listed():
    twin = Shape("tumour:5.0", "ellipsoid", OTHER_THIGH, (25.0, 25.0, 25.0))
    study = tiny_study(THIGH, tumour_suv=5.0, pet_mm=8.0, ct_mm=4.0, extra=(twin,))
    loc = locate_tumour(study.ct, study.pet, CONFIG)
    assert loc.refused and loc.centre_xyz is None and "not clearly better" in loc.reason
    shown = loc.candidates[:2]
    assert {_near(c.centre_xyz, THIGH) for c in shown} == {True, False}
    assert any(_near(c.centre_xyz, OTHER_THIGH) for c in shown)
    line = loc.summary()
    assert "\n" not in line and line.count("SUVmax") >= 2 and " ml" in line
    with pytest.raises(LocalisationRefused, match="P1: cannot place the box without a contour") as err:
        preprocess_case("P1", study.ct, study.pet, None, CONFIG)
    assert err.value.localisation.refused
    # the user's search box picks one of them; a given centre is used as it is
    box = (0.0, 200.0, -100.0, 100.0, -300.0, -100.0)
    chosen = locate_tumour(study.ct, study.pet, CONFIG, search_box=box)
    assert chosen.decision == "chosen" and _near(chosen.centre_xyz, THIGH)
    case = preprocess_case("P1", study.ct, study.pet, None, CONFIG, search_box=box)
    assert case.meta["center_method"] == "hotspot" and _near(case.center, THIGH)
    assert case.meta["localisation"]["search_box"] == list(box)
    given = preprocess_case("P1", study.ct, study.pet, None, CONFIG, center_xyz=OTHER_THIGH)
    assert given.meta["center_method"] == "given" and given.center == OTHER_THIGH


def test_tumour_outside_the_ct_is_refused():
    """CT of the trunk only: the thigh tumour is in the PET but not the CT; what the CT
    holds is physiological, so nothing is chosen."""
    study = tiny_study(THIGH, tumour_suv=8.0, pet_mm=8.0, ct_mm=4.0, ct_z_range=(-60.0, 900.0))
    loc = locate_tumour(study.ct, study.pet, CONFIG)
    assert loc.refused and loc.centre_xyz is None
    assert not any(_near(c.centre_xyz, THIGH, 40.0) for c in loc.candidates)


def test_pet_larger_than_the_ct_searches_only_where_both_exist():
    """Issue 20: a whole-body PET with a CT of the thighs. The bladder and brain are hotter
    but outside the CT; the tumour inside it is chosen, and the box is mostly CT."""
    study = tiny_study(THIGH, tumour_suv=5.0, pet_mm=8.0, ct_mm=4.0, suv=HOT, ct_z_range=(-440.0, -80.0))
    loc = locate_tumour(study.ct, study.pet, CONFIG)
    assert loc.decision == "chosen" and _near(loc.centre_xyz, THIGH)
    assert loc.candidates[0].outside_ct == pytest.approx(0.0, abs=0.01)


def test_a_candidate_cut_by_the_ct_edge_is_refused():
    """The CT ends through the tumour: most of it lies beyond the CT, so no box is placed."""
    study = tiny_study(THIGH, tumour_suv=8.0, tumour_mm=40.0, pet_mm=8.0, ct_mm=4.0,
                       ct_z_range=(-440.0, -215.0))
    loc = locate_tumour(study.ct, study.pet, CONFIG)
    assert loc.refused and "outside the CT" in loc.reason
    assert loc.candidates[0].outside_ct > 0.5


def test_bad_search_box_and_no_overlap(body):
    with pytest.raises(ChmflError, match="XMIN XMAX YMIN YMAX ZMIN ZMAX"):
        locate_tumour(body.ct, body.pet, CONFIG, search_box=(10.0, 0.0, 0.0, 1.0, 0.0, 1.0))
    far = (5000.0, 5100.0, 0.0, 10.0, 0.0, 10.0)
    loc = locate_tumour(body.ct, body.pet, CONFIG, search_box=far)
    assert loc.refused and "do not overlap" in loc.reason and loc.candidates == ()
