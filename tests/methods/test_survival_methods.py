"""Survival methods: Cox against lifelines, save/load without pickles, RSF as sksurv predicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chmfl.data.cases import CaseData, Covariates, load_cases, survival_of
from chmfl.errors import ChmflError
from chmfl.methods.base import FitContext
from chmfl.methods.clinical import clinical_table
from chmfl.methods.registry import METHODS, create, load_method
from chmfl.methods.spec import MethodRun
from chmfl.methods.survival import breslow, cox_survival
from chmfl.methods.train_config import TrainConfig
from chmfl.preprocess.bundle import demo_cache_dir

BUNDLE = demo_cache_dir()
needs_bundle = pytest.mark.skipif(not (BUNDLE / "manifest.csv").is_file(), reason="no demo bundle")


def make(name: str, **model_kwargs):
    """Registered method ``name`` with these options, as a run spec builds it."""
    return create(MethodRun(name, model_kwargs=model_kwargs), FitContext(progress=False))


def test_breslow_survival_equals_lifelines():
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    time = rng.exponential(500 * np.exp(-x[:, 0])) + 1  # no ties: lifelines' Efron = Breslow
    event = rng.random(40) < 0.7
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "T": time, "E": event})
    cph = CoxPHFitter().fit(df, "T", "E")
    beta = cph.params_.to_numpy()
    times = np.sort(time)[[5, 10, 20, 30]]  # lifelines interpolates between its own step times
    base_t, base_h = breslow(time, event, x @ beta)
    ours = cox_survival(x @ beta, times, base_t, base_h)
    ref = cph.predict_survival_function(df[["a", "b"]], times=times).to_numpy().T
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)


def _fake_cases(n: int = 30) -> list[CaseData]:
    rng = np.random.default_rng(1)
    groups = ("mfh", "liposarcoma", "leiomyosarcoma", "other")
    out = []
    for i in range(n):
        grade = ("low", "intermediate", "high", "")[i % 4]
        risk = {"low": -1, "intermediate": 0, "high": 1, "": 0}[grade]
        t = float(np.round(rng.exponential(600 * np.exp(-risk))) + 1)
        out.append(CaseData(f"P{i:02d}", int(i % 3 != 0), time_days=t, event=int(i % 3 != 0),
                            covariates=Covariates(float(30 + i), grade, groups[i % 4])))
    return out


def test_clinical_table_and_cox_clinical_roundtrip(tmp_path):
    cases = _fake_cases()
    table = clinical_table(cases)
    assert list(table.columns) == ["age_years", "grade", "histology_liposarcoma", "histology_leiomyosarcoma", "histology_other"]
    assert table["grade"].isna().sum() == 7  # "" -> missing, imputed inside the fold
    m = make("cox-clinical").fit(cases)
    risk = m.predict_risk(cases)
    surv = m.predict_survival(cases, [365, 730])
    assert np.all(np.diff(surv, axis=1) <= 0) and np.all((surv > 0) & (surv <= 1))
    m.save(tmp_path / "model")
    loaded = load_method(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_risk(cases), risk)
    np.testing.assert_array_equal(loaded.predict_survival(cases, [365, 730]), surv)
    clf = make("clinical").fit(cases)
    assert clf.predict_proba(cases).shape == (len(cases),)
    assert set(clf.predict_all(cases)) == {"probability", "features"}  # a DM classifier
    with pytest.raises(ChmflError, match="risk score"):
        m.predict_proba(cases)  # a survival model gives no P(DM)
    assert set(m.predict_all(cases)) == {"risk", "features"}
    np.testing.assert_array_equal(m.predict_all(cases)["risk"], risk)


def test_registry_marks_survival_methods():
    assert {k for k, v in METHODS.items() if v.endpoint == "dm-free-survival"} >= {"cox-suvmax-volume", "cox-clinical", "rsf-hc"}


@needs_bundle
def test_cox_suvmax_volume_on_real_patients_matches_statsmodels():
    """Unpenalised, the fit is statsmodels' Breslow-ties Cox (the cohort has tied DM times,
    so lifelines, which uses Efron's ties, differs in the third digit)."""
    from statsmodels.duration.hazard_regression import PHReg

    cases = load_cases(BUNDLE, endpoint="dm-free-survival")
    m = make("cox-suvmax-volume", alpha=1e-9).fit(cases)
    time, event = survival_of(cases)
    ref = PHReg(time, m.embed(cases), status=event.astype(int), ties="breslow").fit().params
    np.testing.assert_allclose(m.coef_, ref, rtol=1e-5)


@needs_bundle
def test_rsf_hc_loads_and_predicts_as_sksurv(tmp_path):
    from sksurv.ensemble import RandomSurvivalForest
    from sksurv.util import Surv

    cases = load_cases(BUNDLE, endpoint="dm-free-survival")[:24]
    m = make("rsf-hc", n_estimators=20, n_features=5).fit(cases)
    X = m.embed(cases)
    time, event = survival_of(cases)
    ref = RandomSurvivalForest(n_estimators=20, min_samples_leaf=3, max_features="sqrt", random_state=0,
                               n_jobs=1).fit(X, Surv.from_arrays(event, time))
    np.testing.assert_allclose(m.predict_risk(cases), ref.predict(X), rtol=1e-10)
    times = ref.unique_times_[[2, 5, 9]]
    np.testing.assert_allclose(m.predict_survival(cases, times),
                               ref.predict_survival_function(X, return_array=True)[:, [2, 5, 9]], rtol=1e-10)
    m.save(tmp_path / "model")
    np.testing.assert_array_equal(load_method(tmp_path / "model").predict_risk(cases), m.predict_risk(cases))


@needs_bundle
def test_chmfl_surv_trains_predicts_and_reloads(tmp_path):
    cases = load_cases(BUNDLE, endpoint="dm-free-survival")[:10]
    small = {"widths": [4, 8, 16, 32, 64], "decoder_convs": [1, 1, 1, 1], "decoder_kernel": 3}
    m = create(MethodRun("chmfl-surv", model_kwargs=small),
               FitContext(TrainConfig(epochs=1, batch_size=5), progress=False))
    assert m.train.objective == "cox" and m.train.batch_size == 5 and m.model_kwargs["n_outputs"] == 1
    assert create(MethodRun("chmfl-surv")).train.batch_size == 8  # the paper's batch of 1 has no risk set
    assert "saliency" not in m.capabilities and {"predict_risk", "predict_survival"} <= m.capabilities
    m.fit(cases)
    risk = m.predict_risk(cases)
    out = m.predict_all(cases)
    assert risk.shape == (10,) and np.isfinite(risk).all() and out["mask"].shape[0] == 10
    np.testing.assert_allclose(out["risk"], risk, rtol=1e-5)
    surv = m.predict_survival(cases, [365, 730, 1095])
    assert np.all(np.diff(surv, axis=1) <= 0)
    assert set(m.diagnostics_) == {"train_c_eval_running", "train_c_eval_sample"}
    m.save(tmp_path / "model")
    loaded = load_method(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_risk(cases), risk, rtol=1e-5)
    np.testing.assert_allclose(loaded.predict_survival(cases, [730]), surv[:, 1:2], rtol=1e-5)
    assert loaded.train.objective == "cox"
