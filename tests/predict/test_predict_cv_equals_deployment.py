"""CV equals deployment: a fold model of a ``--test-box hotspot`` run, given the raw DICOM of
one of its test patients through ``chmfl predict``'s ``Predictor``, returns the probability
the fold wrote for that patient (the bundled real cache; raw DICOM from the test data)."""

from __future__ import annotations

import pandas as pd
import pytest

from chmfl.cv.experiment import Experiment, MethodRun
from chmfl.cv.runner import RunOptions, run_experiment
from chmfl.predict.predict import PatientInput, Predictor
from chmfl.preprocess.bundle import demo_cache_dir


def test_hotspot_fold_model_predicts_a_raw_study_as_the_fold_did(sts_dir, tmp_path):
    exp = Experiment("custom", "cv = deployment", (MethodRun("suvmax-mtv"),), reference="suvmax-mtv", folds=3)
    out = run_experiment(exp, demo_cache_dir(), tmp_path / "res", RunOptions(seed=1, progress=False,
                                                                              test_box="hotspot"))
    fold = out / "suvmax-mtv@hotspot" / "repeat_0" / "fold_0"
    preds = pd.read_csv(fold / "predictions.csv", dtype={"patient_id": str}).head(2)
    predictor = Predictor(fold / "model")
    for row in preds.itertuples():
        study = sts_dir / row.patient_id
        record, _, _ = predictor.predict(PatientInput(row.patient_id, study / "CT" / "image", study / "PET" / "image"))
        assert record["preprocessing"]["center_method"] == "hotspot"
        assert record["probability"] == pytest.approx(row.probability, rel=1e-4, abs=1e-6), row.patient_id
