"""Nested selection: the declared grid is typed and checked, the inner CV picks on the outer
training fold alone (permuting the outer test labels changes no pick and no inner score), the
picks and inner scores are recorded (done.json, selection.csv, report), only outer
predictions reach the tables, and inner jobs resume and run in parallel like outer ones."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.synthetic import synthetic_cases

from chmfl.cli.main import main
from chmfl.cv import runner as runner_mod
from chmfl.cv.experiment import Experiment, MethodRun, parse_experiment
from chmfl.cv.fold import FoldJob
from chmfl.cv.nested import InnerPlan, choose, selection_metric
from chmfl.cv.runner import RunOptions, run_experiment
from chmfl.errors import ChmflError
from chmfl.methods.base import FitContext
from chmfl.methods.selection import Selection
from chmfl.preprocess.cache_format import save_case
from chmfl.stats import auc_score

GRID = {"grid": {"model_kwargs": {"C": [0.0001, 0.01, 1.0]}}, "inner_folds": 3}
SELECTING = MethodRun.from_dict({"method": "suvmax-volume", "select": GRID})


def write_noisy_cache(root, n: int = 30, seed: int = 3, flip: set[str] = frozenset()):
    """A cache of ``synthetic_cases`` (labels only partly predictable from SUV and size);
    the labels of the patients in ``flip`` are inverted."""
    rows = []
    for case in synthetic_cases(n, seed=seed):
        save_case(root / "h" / f"{case.patient_id}.npz", case.arrays)
        label = 1 - case.label if case.patient_id in flip else case.label
        rows.append({"patient_id": case.patient_id, "dm": label, "exclusion": "", "path": f"h/{case.patient_id}.npz"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    (root / "prepare_config.yaml").write_text("config: {voxel_mm: 4.0}\nhash: h\n")
    return root


def _exp(folds: int = 3, repeats: int = 1) -> Experiment:
    return Experiment("custom", "nested", (MethodRun("suvmax-volume"), SELECTING), reference="suvmax-volume",
                      folds=folds, repeats=repeats)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_noisy_cache(tmp_path_factory.mktemp("noisy"))


@pytest.fixture(scope="module")
def nested(cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("nested")
    run_experiment(_exp(repeats=2), cache, out, RunOptions(seed=1, progress=False))
    return out


# --- the declared grid -------------------------------------------------------------------------
def test_select_block_is_typed_and_ordered():
    entry = {"method": "chmfl", "size": "demo",
             "select": {"grid": {"train": {"lr": ["1e-3", 0.01]}, "model_kwargs": {"decoder_kernel": [1, 3]}},
                        "metric": "auc", "inner_folds": 4}}
    run = MethodRun.from_dict(entry)
    assert run.label == "chmfl[size=demo,select=lr+decoder_kernel]"
    assert [c.label for c in run.candidates()] == [  # first key varies slowest
        "chmfl[size=demo,lr=0.001,decoder_kernel=1]", "chmfl[size=demo,lr=0.001,decoder_kernel=3]",
        "chmfl[size=demo,lr=0.01,decoder_kernel=1]", "chmfl[size=demo,lr=0.01,decoder_kernel=3]"]
    assert all(c.select is None for c in run.candidates())
    assert MethodRun.from_dict(run.to_dict()) == run  # stored in config.yaml / done.json and read back
    assert "select" not in MethodRun("chmfl").to_dict()  # records of runs without a selection unchanged
    assert selection_metric(run.select) == "auc" and selection_metric(SELECTING.select, "dm") == "auc"


@pytest.mark.parametrize("select, why", [
    ({"grid": {"train": {"precision": ["32", "bf16"]}}}, "runtime setting"),
    ({"grid": {"train": {"lrate": [1, 2]}}}, "not a training setting"),
    ({"grid": {"train": {"lr": ["fast", 0.1]}}}, "lr must be a float"),
    ({"grid": {"model_kwargs": {"C": [1.0]}}}, "at least two candidates"),
    ({"grid": {"model_kwargs": {"C": [1.0, 1.0]}}}, "lists a value twice"),
    ({"grid": {"model_kwargs": {"C": [1.0, 2.0]}}, "inner_folds": 1}, "inner_folds must be"),
    ({"grid": {"model_kwargs": {"C": [1.0, 2.0]}}, "metric": "accuracy"}, "select metric"),
    ({"grid": {"params": {"C": [1.0, 2.0]}}}, "unknown parts: params"),
    ({"grid": {"model_kwargs": {"C": [1.0, 2.0]}}, "folds": 3}, "unknown keys: folds"),
    ({"grid": {}}, "needs a grid"),
])
def test_bad_select_blocks_are_one_line_errors(select, why):
    with pytest.raises(ChmflError, match=why):
        MethodRun.from_dict({"method": "suvmax-volume", "select": select})


def test_select_is_checked_when_the_experiment_is_read():
    with pytest.raises(ChmflError, match="no option nope"):  # each candidate is built once
        parse_experiment({"methods": [{"method": "suvmax-volume", "select": {"grid": {"model_kwargs": {"nope": [1, 2]}}}}]})
    with pytest.raises(ChmflError, match="both fixed and in the select grid"):
        MethodRun.from_dict({"method": "suvmax-volume", "model_kwargs": {"C": 1.0}, "select": GRID})
    with pytest.raises(ChmflError, match="c_index needs survival times"):
        selection_metric(Selection.from_dict({**GRID, "metric": "c_index"}), "dm")


def _frame(labels, probs):
    return pd.DataFrame({"label": labels, "probability": probs})


def test_choose_takes_the_best_mean_inner_score_and_the_first_on_a_tie(tmp_path):
    run = MethodRun.from_dict({"method": "suvmax-volume", "select": {"grid": {"model_kwargs": {"C": [1.0, 2.0, 3.0]}},
                                                                     "inner_folds": 2}})
    outer = FoldJob(run, 0, 0, FitContext(seed=7), None, tmp_path)
    plan = InnerPlan(outer, {}, {"seed": 7}, (), (), "auc")
    y = [0, 0, 1, 1]
    perfect, half, inverted = _frame(y, [0.1, 0.2, 0.8, 0.9]), _frame(y, [0.1, 0.8, 0.2, 0.9]), _frame(y, [0.9, 0.8, 0.2, 0.1])
    record = choose(plan, [half, perfect, perfect, half, inverted, inverted])  # candidate-major; half: AUC 3/4
    assert [c["score"] for c in record["candidates"]] == [0.875, 0.875, 0.0]
    assert record["pick"] == 0 and record["picked"] == "C=1.0"  # tie: the earlier candidate
    assert record["candidates"][0]["scores"] == [0.75, 1.0]
    record = choose(plan, [inverted, half, perfect, perfect, half, half])
    assert record["pick"] == 1


# --- a nested run --------------------------------------------------------------------------------
def test_nested_run_records_every_pick_and_reports_outer_predictions_only(nested):
    sel = pd.read_csv(nested / "selection.csv")
    assert len(sel) == 2 * 3 * 3  # repeats x outer folds x candidates
    for (_, _), g in sel.groupby(["repeat", "fold"]):
        assert g["picked"].sum() == 1
        assert g.loc[g["picked"], "score"].iloc[0] == g["score"].max()
        assert g.loc[g["picked"], "candidate"].iloc[0] == g.loc[g["score"] == g["score"].max(), "candidate"].min()
    assert sel["score"].nunique() > 1  # the candidates do differ on this cohort
    label = SELECTING.label
    fold = nested / label / "repeat_1" / "fold_2"
    done = json.loads((fold / "done.json").read_text())
    record = done["selection"]
    picked = record["candidates"][record["pick"]]
    assert done["identity"]["fit_run"]["model_kwargs"] == picked["settings"]["model_kwargs"]
    assert json.loads((fold / "model" / "config.json").read_text())["params"]["C"] == picked["settings"]["model_kwargs"]["C"]
    # inner scores recomputed from the inner predictions, and the inner split is of the outer training fold only
    inner = json.loads((fold / "inner" / "splits.json").read_text())
    outer = json.loads((nested / "splits.json").read_text())["repeats"][1]["folds"][2]
    assert sorted(p for f in inner["repeats"][0]["folds"] for p in f["test"]) == sorted(outer["train"])
    for c in record["candidates"]:
        for i, s in enumerate(c["scores"]):
            p = pd.read_csv(fold / "inner" / f"candidate_{c['candidate']}" / f"fold_{i}" / "predictions.csv")
            assert not set(p["patient_id"]) & set(outer["test"])
            assert s == pytest.approx(auc_score(p["label"], p["probability"]))
    preds = pd.read_csv(nested / "predictions.csv")
    assert preds.groupby(["method", "repeat"]).size().to_dict() == {
        (m, r): 30 for m in ("suvmax-volume", label) for r in (0, 1)}  # outer predictions only
    timing = pd.read_csv(nested / "timing.csv")
    assert set(timing["method"]) == {"suvmax-volume", label} and len(timing) == 12
    cfg = yaml.safe_load((nested / "config.yaml").read_text())
    assert cfg["spec"]["methods"][1]["select"]["grid"]["model_kwargs"]["C"] == [0.0001, 0.01, 1.0]


def test_report_shows_the_picks(nested):
    from chmfl.report import build_report

    paths = build_report(nested)
    picks = pd.read_csv(nested / "tables" / "selection_picks.csv")
    sel = pd.read_csv(nested / "selection.csv")
    assert len(picks) == 6 and list(picks["pick"]) == list(sel.loc[sel["picked"], "settings"])
    counts = pd.read_csv(nested / "tables" / "selection_counts.csv")
    assert counts["picked"].sum() == 6
    assert "Nested selection" in paths.html.read_text()


def test_outer_test_labels_do_not_reach_the_choice(cache, nested, tmp_path):
    """Invert the labels of outer fold 0's test patients (repeat 0) and run again on the same
    splits: fold 0's inner scores and pick are unchanged to the last bit, while the folds that
    train on those patients see the change (so the check can fail)."""
    splits = json.loads((nested / "splits.json").read_text())
    test0 = set(splits["repeats"][0]["folds"][0]["test"])
    flipped = write_noisy_cache(tmp_path / "flipped", flip=test0)
    out = tmp_path / "res"
    out.mkdir()
    shutil.copy(nested / "splits.json", out / "splits.json")
    run_experiment(_exp(repeats=2), flipped, out, RunOptions(seed=1, progress=False))
    a, b = pd.read_csv(nested / "selection.csv"), pd.read_csv(out / "selection.csv")
    key = (a["repeat"] == 0) & (a["fold"] == 0)
    pd.testing.assert_frame_equal(a[key].drop(columns="inner_fit_s"), b[key].drop(columns="inner_fit_s"))
    assert not a.loc[~key, "inner_scores"].equals(b.loc[~key, "inner_scores"])


def _stamps(out):
    return {p: p.stat().st_mtime_ns for p in sorted(out.rglob("done.json"))}


def test_nested_run_resumes_and_runs_in_parallel_alike(cache, nested, tmp_path, monkeypatch):
    stamps = _stamps(nested)
    assert len(stamps) == 2 * 3 * (1 + 1 + 3 * 3)  # outer plain + outer refit + candidates x inner folds
    calls = []
    real = runner_mod.run_fold
    monkeypatch.setattr(runner_mod, "run_fold", lambda job, *a, **k: calls.append(job) or real(job, *a, **k))
    run_experiment(_exp(repeats=2), cache, nested, RunOptions(seed=1, progress=False))
    assert _stamps(nested) == stamps  # every inner and outer fold read back, none re-fitted
    monkeypatch.undo()
    out = tmp_path / "par"  # repeat 0 alone: the same split (seed 1 + 0)
    run_experiment(_exp(repeats=1), cache, out, RunOptions(seed=1, progress=False, parallel_folds=2))
    for name in ("selection.csv", "predictions.csv"):
        a, b = pd.read_csv(nested / name), pd.read_csv(out / name)
        a = a[a["repeat"] == 0].reset_index(drop=True)
        cols = [c for c in a.columns if c != "inner_fit_s"]
        pd.testing.assert_frame_equal(a[cols], b[cols])


def test_selection_refuses_what_would_make_it_meaningless(cache, tmp_path, capsys):
    deep = MethodRun.from_dict({"method": "suvmax-volume", "select": {**GRID, "inner_folds": 12}})
    with pytest.raises(ChmflError, match="12 inner folds need 12 patients of each label"):
        run_experiment(Experiment("custom", "t", (deep,), folds=3), cache, tmp_path / "a", RunOptions(progress=False))
    lr = MethodRun.from_dict({"method": "chmfl", "select": {"grid": {"train": {"lr": [0.1, 0.01]}}}})
    with pytest.raises(ChmflError, match="selects lr, which the command line also sets"):
        run_experiment(Experiment("custom", "t", (lr,), folds=3), cache, tmp_path / "b",
                       RunOptions(train={"lr": 0.001}, progress=False))
    # another grid into the same results folder: the finished outer folds are refused
    other = MethodRun.from_dict({"method": "suvmax-volume", "select": {**GRID, "grid": {"model_kwargs": {"C": [5.0, 9.0]}}}})
    run_experiment(_exp(), cache, tmp_path / "c", RunOptions(seed=1, progress=False))
    with pytest.raises(ChmflError, match="other settings"):
        run_experiment(Experiment("custom", "t", (MethodRun("suvmax-volume"), other), folds=3), cache,
                       tmp_path / "c", RunOptions(seed=1, progress=False))


def test_robust_preset_is_refused_with_its_new_name(cache, tmp_path, capsys):
    rc = main(["cv", "--data", str(cache), "--out", str(tmp_path / "x"), "--methods", "suvmax-volume",
               "--preset", "robust"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--preset sample-bn-aug" in err
    assert not (tmp_path / "x").exists()
    from chmfl.methods.train_config import preset_settings

    assert preset_settings("sample-bn-aug") == {"bn_eval": "sample", "augment": True}


def test_inner_seeds_are_shared_by_candidates_and_differ_by_fold(nested):
    seeds = {}
    for done in (nested / SELECTING.label / "repeat_0" / "fold_0" / "inner").rglob("done.json"):
        rec = json.loads(done.read_text())
        seeds.setdefault(done.parent.name, set()).add(rec["seed"])
    assert all(len(s) == 1 for s in seeds.values()) and len({next(iter(s)) for s in seeds.values()}) == 3
    assert all(0 <= next(iter(s)) < 2**31 for s in seeds.values())
    assert np.isfinite(list(next(iter(s)) for s in seeds.values())).all()
