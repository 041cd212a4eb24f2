"""HC+RF and the SUVmax + volume floor on generated patients whose DM label depends on SUVmax
and tumour volume; persistence without pickles; fitting sees training cases only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from tests.synthetic import synthetic_cases

from chmfl.data.cases import CaseData
from chmfl.errors import ChmflError
from chmfl.methods.base import FitContext
from chmfl.methods.classical import ForestArrays, HandcraftedRF, SuvmaxVolume
from chmfl.methods.registry import create
from chmfl.methods.spec import MethodRun
from chmfl.preprocess.cache_format import CaseArrays


@pytest.fixture(scope="module")
def split():
    cases = synthetic_cases(40, seed=0)
    return cases[:26], cases[26:]


def _state(m) -> str:
    return json.dumps({k: (v.tolist() if isinstance(v, np.ndarray) else repr(v)) for k, v in vars(m).items()},
                      sort_keys=True, default=str)


def _assert_safe_folder(path):
    assert {p.name for p in path.iterdir()} <= {"config.json", "arrays.npz"}
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["kind"] == "chmfl-method"
    if (path / "arrays.npz").exists():
        with np.load(path / "arrays.npz", allow_pickle=False) as z:  # raises on object arrays
            assert all(z[k].dtype != object for k in z.files)


def test_suvmax_volume(split, tmp_path):
    train, test = split
    m = SuvmaxVolume(name="suvmax-volume", seed=0).fit(train)
    p = m.predict_proba(test)
    y = np.array([c.label for c in test])
    assert p.shape == (len(test),) and roc_auc_score(y, p) > 0.85
    from sklearn.linear_model import LogisticRegression

    Xtr = m.embed(train)
    lr = LogisticRegression(class_weight="balanced", random_state=0).fit(Xtr, [c.label for c in train])
    np.testing.assert_allclose(p, lr.predict_proba(m.embed(test))[:, 1], atol=1e-12)
    np.testing.assert_allclose(Xtr.mean(0), 0, atol=1e-12)  # scaled with training statistics
    m.save(tmp_path / "model", extra={"trained_on": [c.patient_id for c in train]})
    _assert_safe_folder(tmp_path / "model")
    np.testing.assert_array_equal(SuvmaxVolume.load(tmp_path / "model").predict_proba(test), p)


def test_hc_rf(split, tmp_path):
    train, test = split
    m = create(MethodRun("hc-rf", model_kwargs={"n_estimators": 100, "n_features": 6}), FitContext(seed=1))
    assert isinstance(m, HandcraftedRF) and m.name == "hc-rf"
    m.fit(train)
    before = _state(m)
    p = m.predict_proba(test)
    assert _state(m) == before  # predicting changes nothing learned
    y = np.array([c.label for c in test])
    assert p.shape == (len(test),) and roc_auc_score(y, p) > 0.8
    emb = m.embed(test)
    assert emb.shape == (len(test), 6) and len(m.transform_.kept) == 6
    m.save(tmp_path / "model")
    _assert_safe_folder(tmp_path / "model")
    np.testing.assert_array_equal(HandcraftedRF.load(tmp_path / "model").predict_proba(test), p)


def test_fit_depends_on_training_cases_only(split):
    train, test = split
    a = HandcraftedRF(seed=2, n_estimators=50).fit(train)
    b = HandcraftedRF(seed=2, n_estimators=50).fit(train)
    b.predict_proba(test[:4])  # other test cases seen by b only
    np.testing.assert_array_equal(a.predict_proba(test), b.predict_proba(test))
    moved = HandcraftedRF(seed=2, n_estimators=50).fit(train[:-3])
    assert moved.transform_ != a.transform_  # the transform is learned from the fold given


def test_forest_arrays_match_sklearn():
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 5))
    y = (X[:, 0] + rng.normal(0, 0.5, 50) > 0).astype(int)
    rf = RandomForestClassifier(n_estimators=30, class_weight="balanced", random_state=0).fit(X, y)
    Xt = rng.normal(size=(20, 5))
    np.testing.assert_allclose(ForestArrays.from_sklearn(rf).predict_proba(Xt), rf.predict_proba(Xt), atol=1e-12)


def test_errors(split, tmp_path):
    train, _ = split
    with pytest.raises(ChmflError):
        SuvmaxVolume().predict_proba(train)
    with pytest.raises(ChmflError):
        HandcraftedRF().fit([c for c in train if c.label == 1])
    arrays = train[0].load()
    no_mask = CaseData("NM", 1, arrays=CaseArrays("NM", arrays.ct, arrays.pet, arrays.ct_hu, arrays.pet_suv,
                                                    None, arrays.spacing, arrays.origin))
    with pytest.raises(ChmflError, match="contour"):
        SuvmaxVolume().fit([*train, no_mask])
    with pytest.raises(ChmflError):
        SuvmaxVolume.load(tmp_path)  # not a model folder
