"""The annotation-free floor suvmax-mtv: MTV by region growing from the hottest voxel, no contour read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from chmfl.data.cases import CaseData
from chmfl.methods.mtv import SuvmaxMTV, suvmax_mtv, suvmax_mtv_of
from chmfl.methods.registry import create, load_method
from chmfl.methods.spec import MethodRun
from synthetic import make_cases


def test_mtv_counts_the_region_connected_to_the_hottest_voxel():
    pet = np.ones((20, 20, 20))
    pet[2:6, 2:6, 2:6] = 10.0  # 64 voxels, hottest region
    pet[3, 3, 3] = 12.0
    pet[12:18, 12:18, 12:18] = 6.0  # 216 voxels >= 40 % of 12 but not connected: not counted
    pet[6, 6, 6] = 5.0  # diagonal neighbour of the corner (5, 5, 5): 26-connected, counted
    suvmax, mtv = suvmax_mtv_of(pet, (2.0, 2.0, 2.0))
    assert suvmax == 12.0
    assert mtv == pytest.approx(65 * 8 / 1000)


def test_never_reads_the_contour():
    cases = make_cases(8)
    blind = [dataclasses.replace(c, arrays=dataclasses.replace(c.load(), mask=None)) for c in cases]
    np.testing.assert_array_equal(suvmax_mtv(cases).to_numpy(), suvmax_mtv(blind).to_numpy())
    m = SuvmaxMTV().fit(blind)  # trains and predicts without any mask
    p = m.predict_proba(blind)
    assert p.shape == (8,) and np.all((p > 0) & (p < 1))
    assert m.transform_.source == "pet-box"


def test_save_load_predicts_the_same(tmp_path):
    cases = make_cases(10)
    m = create(MethodRun("suvmax-mtv")).fit(cases)
    m.save(tmp_path / "m")
    again = load_method(tmp_path / "m")
    assert isinstance(again, SuvmaxMTV)
    np.testing.assert_allclose(again.predict_proba(cases), m.predict_proba(cases))


def test_separates_the_synthetic_classes():
    from sklearn.metrics import roc_auc_score

    cases = make_cases(16)  # uptake and size carry the label
    y = [c.label for c in cases]
    assert roc_auc_score(y, SuvmaxMTV().fit(cases).predict_proba(cases)) > 0.9


def test_one_class_is_refused():
    cases = [CaseData(c.patient_id, 1, arrays=c.arrays) for c in make_cases(4)]
    with pytest.raises(Exception, match="one class"):
        SuvmaxMTV().fit(cases)


def test_options_come_from_the_run_spec():
    m = create(MethodRun("suvmax-mtv", model_kwargs={"fraction": 0.5, "C": 0.1}))
    assert (m.fraction, m.C) == (0.5, 0.1)
    with pytest.raises(Exception, match="no option threshold"):
        create(MethodRun("suvmax-mtv", model_kwargs={"threshold": 0.4}))
    with pytest.raises(Exception, match="no named size"):
        create(MethodRun("suvmax-mtv", size="demo"))
