"""MOR + 3D CNN: the MOR part and the ER fusion, with a small stand-in for the CNN part."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from tests.synthetic import synthetic_cases

from chmfl.errors import ChmflError
from chmfl.methods.base import FitContext
from chmfl.methods.hybrid import MOR3DCNN
from chmfl.methods.registry import create
from chmfl.methods.runtime import settings
from chmfl.methods.spec import MethodRun
from chmfl.radiomics.evidential import er_binary

SMALL = {"population": 8, "generations": 3, "max_pareto": 4, "n_candidates": 12}


class FakeCNN:
    """Stands in for NeuralMethod: P(DM) from the PET mean inside the box, thresholded at the
    training median; saves one JSON number."""

    def __init__(self, name: str = "fake-cnn") -> None:
        self.name = name

    def fit(self, cases):
        self.fit_ids_ = [c.patient_id for c in cases]
        self.center_ = float(np.median([c.load().pet.mean() for c in cases]))
        return self

    def predict_proba(self, cases):
        x = np.array([c.load().pet.mean() for c in cases])
        return 1.0 / (1.0 + np.exp(-(x - self.center_) * 20.0))

    def save(self, directory):
        Path(directory).mkdir(parents=True)
        (Path(directory) / "fake.json").write_text(json.dumps({"center": self.center_}))

    @classmethod
    def load(cls, directory):
        m = cls()
        m.center_ = json.loads((Path(directory) / "fake.json").read_text())["center"]
        return m


@pytest.fixture(scope="module")
def split():
    cases = synthetic_cases(40, seed=0)  # the same cases as test_classical: features memoised
    return cases[:26], cases[26:]


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    return MOR3DCNN(seed=0, cnn=FakeCNN(), **SMALL).fit(train)


def test_fit_predict_and_er_fusion(split, fitted):
    train, test = split
    y = np.array([c.label for c in test])
    assert fitted.cnn_.fit_ids_ == [c.patient_id for c in train]  # the CNN trains on the same fold
    mor = fitted.mor_proba(test)
    assert roc_auc_score(y, mor) > 0.8
    p = fitted.predict_proba(test)
    expected = er_binary(np.vstack([mor, fitted.cnn_.predict_proba(test)]), [0.5, 0.5], [0.5, 0.5])
    np.testing.assert_allclose(p, expected)
    assert p.shape == (len(test),) and roc_auc_score(y, p) > 0.8
    assert 1 <= len(fitted.members_) <= SMALL["max_pareto"]
    assert fitted.member_weights_.sum() == pytest.approx(1.0)
    assert fitted.embed(test).shape == (len(test), len(fitted.transform_.kept))


def test_save_load_round_trip(split, fitted, tmp_path):
    _, test = split
    fitted.save(tmp_path / "model", extra={"trained_on": ["x"]})
    names = {p.name for p in (tmp_path / "model").iterdir()}
    assert names == {"config.json", "arrays.npz", "cnn"}
    with np.load(tmp_path / "model" / "arrays.npz", allow_pickle=False) as z:
        assert len(z.files) == 3 * len(fitted.members_)
    loaded = MOR3DCNN.load(tmp_path / "model", cnn_cls=FakeCNN)
    np.testing.assert_array_equal(loaded.predict_proba(test), fitted.predict_proba(test))
    assert loaded.get_params() == fitted.get_params()


def test_weights_and_errors(split):
    train, test = split
    with pytest.raises(ChmflError):
        MOR3DCNN(cnn=FakeCNN()).predict_proba(test)
    with pytest.raises(ChmflError):
        MOR3DCNN(cnn=FakeCNN(), **SMALL).fit([c for c in train if c.label == 0])
    cnn_only = MOR3DCNN(cnn=FakeCNN(), er_weights=(0.0, 1.0), er_reliabilities=(0.0, 1.0), **SMALL).fit(train)
    np.testing.assert_allclose(cnn_only.predict_proba(test), cnn_only.cnn_.predict_proba(test))


@pytest.mark.slow  # trains the real 3D CNN for one epoch (~20 s on 2 CPU cores)
def test_with_the_real_cnn(split, tmp_path):
    train, test = split
    train_cfg, runtime = settings({"epochs": 1, "accelerator": "cpu", "precision": "32"})
    ctx = FitContext(train_cfg, runtime, seed=0, workdir=tmp_path / "work", progress=False)
    m = create(MethodRun("mor-3dcnn", model_kwargs=SMALL), ctx).fit(train)
    p = m.predict_proba(test)
    assert p.shape == (len(test),) and np.isfinite(p).all()
    m.save(tmp_path / "model")
    assert (tmp_path / "model" / "cnn" / "weights.safetensors").is_file()
    np.testing.assert_array_equal(MOR3DCNN.load(tmp_path / "model").predict_proba(test), p)
