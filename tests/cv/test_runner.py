"""Cross-validation runner on a synthetic cache: the results-folder contract, determinism,
resume after an interruption, finished folds not re-run, bad input refused cleanly."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from tests.synthetic import TINY, write_cache
from tests.synthetic import two_fold_experiment as _exp

from chmfl.accel.options import device_defaults
from chmfl.cli.main import main
from chmfl.cv import runner as runner_mod
from chmfl.cv.experiment import Experiment, MethodRun
from chmfl.cv.runner import RunOptions, run_experiment


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_cache(tmp_path_factory.mktemp("cache"), n=12)


@pytest.fixture(scope="module")
def finished(cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("res")
    exp = _exp(MethodRun("suvmax-volume"), MethodRun("chmfl", model_kwargs=TINY))
    run_experiment(exp, cache, out, RunOptions(seed=1, progress=False))
    return out


def test_results_folder_contract(finished):
    for name in ("config.yaml", "splits.json", "predictions.csv", "metrics.csv", "timing.csv", "summary.csv",
                 "comparisons.csv"):
        assert (finished / name).is_file(), name
    preds = pd.read_csv(finished / "predictions.csv")
    assert list(preds.columns) == ["method", "repeat", "fold", "patient_id", "label", "probability"]
    label = "chmfl[widths=[4, 8, 16, 32, 64],decoder_convs=[1, 1, 1, 1],decoder_kernel=3]"
    assert set(preds["method"]) == {"suvmax-volume", label}
    assert len(preds) == 2 * 12  # every included patient once per method; the excluded one never
    metrics = pd.read_csv(finished / "metrics.csv", dtype={"fold": str})
    assert list(metrics.columns) == ["method", "repeat", "fold", "metric", "value"]
    assert {"0", "1", "all"} <= set(metrics["fold"])
    assert {"auc", "accuracy", "dsc"} <= set(metrics["metric"])  # dsc from the segmenting method
    cfg = yaml.safe_load((finished / "config.yaml").read_text())
    assert cfg["data"]["n_patients"] == 12 and cfg["data"]["excluded"] == {"P012": "local recurrence only"}
    assert cfg["chmfl_version"] and "hardware" in cfg and cfg["options"]["seed"] == 1
    fold = finished / label / "repeat_0" / "fold_0"
    for name in ("done.json", "predictions.csv", "log.csv", "embeddings.csv", "model/config.json"):
        assert (fold / name).is_file(), name
    assert len(list((fold / "masks").glob("*.nii.gz"))) == 6
    assert not (fold / "work").exists()  # checkpoints removed once a fold is done
    done = json.loads((fold / "done.json").read_text())
    assert 0 < done["fit_cpu_s"] and done["fit_s"] > 0  # CPU seconds of the fit kept beside wall
    timing = pd.read_csv(finished / "timing.csv")
    assert (timing["fit_cpu_s"] > 0).all()


def test_same_run_twice_is_identical(finished, cache, tmp_path):
    exp = _exp(MethodRun("suvmax-volume"), MethodRun("chmfl", model_kwargs=TINY))
    run_experiment(exp, cache, tmp_path, RunOptions(seed=1, progress=False))
    a = pd.read_csv(finished / "predictions.csv")
    b = pd.read_csv(tmp_path / "predictions.csv")
    pd.testing.assert_frame_equal(a, b)
    assert json.loads((tmp_path / "splits.json").read_text()) == json.loads((finished / "splits.json").read_text())


def test_interrupted_run_resumes_and_skips_finished_folds(finished, cache, tmp_path, monkeypatch):
    exp = _exp(MethodRun("suvmax-volume"), MethodRun("chmfl", model_kwargs=TINY))
    real = runner_mod.run_fold
    calls = []

    def interrupt_after_two(job, train, test, progress=True):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(job.label)
        return real(job, train, test, progress)

    monkeypatch.setattr(runner_mod, "run_fold", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, cache, tmp_path, RunOptions(seed=1, progress=False))
    monkeypatch.setattr(runner_mod, "run_fold", real)
    done = sorted(tmp_path.glob("*/repeat_0/fold_*/done.json"))
    assert len(done) == 2
    stamps = [p.stat().st_mtime_ns for p in done]
    run_experiment(exp, cache, tmp_path, RunOptions(seed=1, progress=False))
    assert [p.stat().st_mtime_ns for p in done] == stamps  # finished folds were not re-run
    pd.testing.assert_frame_equal(pd.read_csv(finished / "predictions.csv"),
                                  pd.read_csv(tmp_path / "predictions.csv"))


def test_other_run_in_same_folder_is_refused(finished, cache):
    exp = _exp(MethodRun("suvmax-volume"))
    from chmfl.errors import ChmflError

    with pytest.raises(ChmflError, match="another run"):
        run_experiment(Experiment("custom", "t", exp.methods, folds=3), cache, finished,
                       RunOptions(seed=1, progress=False))


def test_cli_bad_input_one_line_no_output(tmp_path, capsys):
    out = tmp_path / "res"
    rc = main(["cv", "--data", str(tmp_path / "nope"), "--methods", "chmfl", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "manifest.csv" in err
    assert not out.exists()
    rc = main(["cv", "--data", str(tmp_path), "--methods", "no-such-method", "--out", str(out)])
    assert rc == 2 and "unknown method" in capsys.readouterr().err
    assert not out.exists()


def test_speed_options_flag_is_recorded_and_overridable(cache, tmp_path):
    out = tmp_path / "res"
    rc = main(["cv", "--data", str(cache), "--out", str(out), "--methods", "chmfl", "--folds", "2",
               "--repeats", "1", "--epochs", "1", "--speed-options", "--set", "inplace_abn=false", "--set", "batch_size=2",
               "--set", "precision=32", "--no-progress"])
    assert rc == 0
    done = json.loads((out / "chmfl" / "repeat_0" / "fold_0" / "done.json").read_text())
    runtime, train = done["runtime"], done["train"]
    assert runtime["split_concat"] and runtime["channels_last"] and runtime["fast_wgrad"] and runtime["inplace_act"]
    assert runtime["inplace_abn"] is False and runtime["precision"] == "32"  # --set wins
    assert train["batch_size"] == 2 and "precision" not in train  # the science, apart
    options = yaml.safe_load((out / "config.yaml").read_text())["options"]
    recorded = options["runtime"]
    assert recorded["split_concat"] is True and recorded["inplace_abn"] is False
    assert options["train"] == {"batch_size": 2}  # the science overrides, apart


def _fold_stamps(out):
    return {p: p.stat().st_mtime_ns for p in sorted(out.glob("*/repeat_0/fold_*/done.json"))}


def test_finished_fold_is_reused_when_only_runtime_settings_differ(cache, tmp_path, capsys):
    """Runtime settings (speed options, threads, precision routing) are not part of a result's
    identity: the same experiment with --speed-options reuses every finished fold; other
    science in the same folder is refused, naming what differs."""
    args = ["cv", "--data", str(cache), "--out", str(tmp_path), "--methods", "chmfl[size=demo],suvmax-volume",
            "--folds", "2", "--repeats", "1", "--epochs", "1", "--set", "batch_size=2", "--set", "precision=32",
            "--no-progress"]
    assert main(args) == 0
    stamps = _fold_stamps(tmp_path)
    assert len(stamps) == 4 and (tmp_path / "chmfl[size=demo]").is_dir()
    before = pd.read_csv(tmp_path / "predictions.csv")
    done = json.loads((tmp_path / "chmfl[size=demo]" / "repeat_0" / "fold_0" / "done.json").read_text())
    # by default every option faster on this device is on (device_defaults), and recorded
    rule = device_defaults("cpu")
    assert {k: done["runtime"][k] for k in rule} == rule and sum(rule.values()) >= 5, done["runtime"]
    settings = yaml.safe_load((tmp_path / "config.yaml").read_text())["settings"]["chmfl[size=demo]"]
    assert {k: settings["runtime"][k] for k in rule} == rule
    assert main([*args, "--speed-options", "--set", "num_threads=1"]) == 0
    assert _fold_stamps(tmp_path) == stamps  # not re-run
    assert main([*args, "--no-speed-options"]) == 0
    assert _fold_stamps(tmp_path) == stamps  # not re-run either
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "predictions.csv"), before)
    capsys.readouterr()
    assert main([*args, "--set", "lr=0.001"]) == 2  # science differs: refused, nothing re-run
    err = capsys.readouterr().err.strip()
    assert "other settings (lr)" in err and len(err.splitlines()) == 1
    assert _fold_stamps(tmp_path) == stamps


def test_cli_method_variants_and_bad_keys(cache, tmp_path, capsys):
    from chmfl.cv.experiment import parse_methods

    runs = parse_methods("chmfl[size=demo,seg_weight=0.3,precision=32],hc-rf[n_features=5]")
    assert [r.label for r in runs] == ["chmfl[size=demo,seg_weight=0.3]", "hc-rf[n_features=5]"]
    assert runs[0].train.to_dict() == {"seg_weight": 0.3} and runs[0].runtime.to_dict() == {"precision": "32"}
    assert runs[0].model_kwargs == {} and runs[1].model_kwargs == {"n_features": 5}
    for bad, why in (("chmfl[size=huge]", "no size 'huge'"), ("chmfl[nope=1]", "no option nope"),
                     ("chmfl[lr=fast]", "lr must be a float"), ("hc-rf[size=demo]", "no named size"),
                     ("chmfl[size=demo", "unbalanced brackets")):
        rc = main(["cv", "--data", str(cache), "--out", str(tmp_path / "x"), "--methods", bad])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and why in err, (bad, err)
    assert not (tmp_path / "x").exists()
    rc = main(["cv", "--data", str(cache), "--out", str(tmp_path / "x"), "--methods", "chmfl", "--set", "nope=1"])
    assert rc == 2 and "unknown training setting(s): nope" in capsys.readouterr().err


def test_fold_identity_carries_the_endpoint_and_reads_older_records(tmp_path):
    """The endpoint and its --horizon-days are part of what a fold *is*; a record written before
    they (and TrainConfig.objective) existed was a DM run with the default objective and is
    reused as it is."""
    from chmfl.cv.fold import _check_identity
    from chmfl.errors import ChmflError
    from chmfl.methods.train_config import TrainConfig

    run = MethodRun("chmfl").science()
    train = TrainConfig().to_dict()
    expected = {"run": run, "train": train, "seed": 3, "endpoint": "dm", "horizon_days": None}
    done = tmp_path / "done.json"
    older = {"run": run, "train": {k: v for k, v in train.items() if k != "objective"}, "seed": 3}
    done.write_text(json.dumps({"identity": older}))
    _check_identity(done, expected)  # reused
    for change, named in (({"endpoint": "dm-free-survival"}, "endpoint"), ({"horizon_days": 730.0}, "horizon_days"),
                          ({"train": {**train, "objective": "cox", "batch_size": 8}}, "batch_size, objective")):
        done.write_text(json.dumps({"identity": {**expected, **change}}))
        with pytest.raises(ChmflError, match=f"other settings \\({named}\\)"):
            _check_identity(done, expected)


def test_a_results_folder_is_not_continued_on_other_data(tmp_path):
    """Fold identities hold the science only: continuing a results folder on a cache prepared
    otherwise would mix its finished folds with folds on other inputs, so the run refuses (one
    line, nothing written) and the same cache continues as before."""
    from chmfl.errors import ChmflError

    cache = write_cache(tmp_path / "cache", n=12)
    exp, out = _exp(MethodRun("suvmax-volume")), tmp_path / "res"
    run_experiment(exp, cache, out, RunOptions(seed=1, progress=False))
    run_experiment(exp, cache, out, RunOptions(seed=1, progress=False))  # same data: continues
    before = (out / "config.yaml").read_text()
    (cache / "prepare_config.yaml").write_text("config: {voxel_mm: 2.0}\nhash: other\n")
    with pytest.raises(ChmflError, match="other data .*prepare h -> other"):
        run_experiment(exp, cache, out, RunOptions(seed=1, progress=False))
    assert (out / "config.yaml").read_text() == before  # the record is left as it was
