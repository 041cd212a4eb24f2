"""One method on one fold: fit on the training cases, predict the test cases, write the fold's
record (docs/results-format.md). A fold with ``done.json`` is finished and is read back
instead of re-run -- when its science (method run, training settings, seed) is this job's;
other runtime settings (device, precision, speed options) do not matter, other science is a
one-line error. An unfinished neural fold resumes from its per-epoch checkpoint.

Nested selection (``cv.nested``) uses the same jobs: an inner job (``light``) fits one
candidate on part of an outer training fold and records only its predictions and done.json;
the outer job then fits the picked candidate (``fit_run``) under the selecting run's label and
stores the selection record (``selection``) in its done.json.

Methods are used through their declared contract only (``methods.base.Method``): ``fit``,
``predict_all``, ``fit_info``, ``save``, and on the DM-free survival endpoint the declared
survival abilities (``cv.survival``)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chmfl.cv.record import PeakRSS
from chmfl.cv.survival import GRID_FILE, SURVIVAL_PRED_COLUMNS, grid_frame, survival_outputs
from chmfl.data.cases import CaseData
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.methods.base import FitContext, Method
from chmfl.methods.registry import create
from chmfl.methods.runtime import RuntimeConfig, is_main_process
from chmfl.methods.spec import MethodRun
from chmfl.methods.train_config import TRAIN_FIELDS, TrainConfig

PRED_COLUMNS = ["method", "repeat", "fold", "patient_id", "label", "probability"]


@dataclass(frozen=True)
class FoldJob:
    run: MethodRun
    repeat: int
    fold: int
    # the fold's seed, typed settings (science resolved as experiment < preset < method <
    # command line; runtime beside it, not part of the identity) and work folder
    ctx: FitContext
    pretrained: str | None  # weights file for this run, if any
    out: Path  # DIR/<label>/repeat_r/fold_k
    endpoint: str = "dm"  # the experiment's: "dm" or "dm-free-survival" (cv.survival)
    horizon_days: float | None = None  # DM label = DM within this many days (--horizon-days)
    test_box: str = "contour"  # how the test patients' boxes are placed: "contour" or "hotspot"
    # the contour regime's folder of this run and fold: its model saw the same training
    # patients, boxes and seed, so a hotspot job evaluates that model instead of refitting it
    fitted: Path | None = None
    # the cache's prepare_config.yaml, saved with the fold model so that 'chmfl predict'
    # prepares a raw study of a test patient exactly as the cache did
    preprocess: dict | None = None
    # the run fitted when it is not ``run``: the candidate a nested selection picked
    fit_run: MethodRun | None = None
    selection: Mapping[str, Any] | None = None  # that selection's record, for done.json
    light: bool = False  # an inner selection fold: predictions.csv and done.json only

    @property
    def label(self) -> str:
        """The run's label; ``LABEL@hotspot`` for test boxes placed without the contour."""
        return self.run.label if self.test_box == "contour" else f"{self.run.label}@{self.test_box}"

    @property
    def seed(self) -> int:
        return self.ctx.seed

    @property
    def train(self) -> TrainConfig:
        return self.ctx.train

    @property
    def runtime(self) -> RuntimeConfig:
        return self.ctx.runtime


def build_method(job: FoldJob, progress: bool = True) -> Method:
    """The job's method, built from its run spec (or the picked candidate's) and fit context."""
    return create(job.fit_run or job.run, dataclasses.replace(job.ctx, progress=progress), job.pretrained)


def identity(job: FoldJob, method: Method) -> dict[str, Any]:
    """What a fold's result *is*: the method run's science, the training science the method
    uses (None for methods without a network), the seed and the endpoint with its horizon (the
    labels) -- as JSON reads it back; for a selecting run also the candidate it fitted."""
    train = method.fit_info().train
    ident = {"run": job.run.science(), "train": None if train is None else train.to_dict(), "seed": job.seed,
             "endpoint": job.endpoint, "horizon_days": job.horizon_days}
    if job.test_box != "contour":  # records from before test boxes were a choice stay valid
        ident["test_box"] = job.test_box
    if job.fit_run is not None:
        ident["fit_run"] = job.fit_run.science()
    return json.loads(json.dumps(ident))


def _stored_train(train: dict | None) -> dict | None:
    """A stored identity's training science with the fields added since at their defaults
    (a record from before ``objective`` existed trained with its default)."""
    if not train or set(train) - set(TRAIN_FIELDS):
        return train
    return {**TrainConfig().to_dict(), **train}


def _check_identity(done: Path, expected: dict[str, Any]) -> None:
    """Refuse to reuse a finished fold whose science differs (records from before the
    identity was stored are reused as they are; one without an endpoint was a DM run on the
    paper's labels)."""
    stored = json.loads(done.read_text()).get("identity")
    if stored is None:
        return
    stored = {**stored, "train": _stored_train(stored.get("train")), "endpoint": stored.get("endpoint", "dm"),
              "horizon_days": stored.get("horizon_days")}
    if stored == expected:
        return
    parts = [p for p in ("run", "train", "fit_run") if p in stored or p in expected]
    diff = sorted(k for part in parts for k in set(stored.get(part) or {}) | set(expected.get(part) or {})
                  if (stored.get(part) or {}).get(k) != (expected.get(part) or {}).get(k))
    diff += [k for k in ("seed", "endpoint", "horizon_days") if stored[k] != expected[k]]
    if stored.get("test_box") != expected.get("test_box"):
        diff.append("test_box")
    raise ChmflError(f"{done.parent} was run with other settings ({', '.join(diff)}); "
                     f"use a new --out (runtime settings alone may differ)")


def _write_masks_and_slices(job: FoldJob, cases: Sequence[CaseData], out: dict) -> list[dict]:
    """Predicted masks (NIfTI, box grid), 2D slices for figures, and per-patient seg metrics:
    in the box (against the contour's part inside it) and against the whole tumour (the part
    outside the box counts as missed), with the fraction of the tumour the box holds."""
    from chmfl.io.imageio import write_image
    from chmfl.stats import segmentation_metrics, whole_tumour_metrics

    seg_rows = []
    (job.out / "slices").mkdir(parents=True, exist_ok=True)
    for i, case in enumerate(cases):
        arr = case.load()
        truth, outside = case.truth()
        pred = out["mask"][i] if "mask" in out else None
        z = arr.ct.shape[0] // 2  # the box is centred on the tumour: its middle axial slice
        sl = {"ct": arr.ct[z], "spacing": np.asarray(arr.spacing[1:])}
        if arr.pet is not None:  # CT-only cohorts have none
            sl["pet"] = arr.pet[z]
        if arr.ct_hu is not None:  # the report shows CT in HU with a soft-tissue window
            sl["ct_hu"] = arr.ct_hu[z]
        if truth is not None:
            sl["mask"] = truth[z]
        if pred is not None:
            sl["pred_mask"] = pred[z]
            write_image(arr.volume("ct").with_array(pred.astype(np.uint8)),
                        job.out / "masks" / f"{case.patient_id}.nii.gz")
            if truth is not None:
                seg_rows.append({"patient_id": case.patient_id, **segmentation_metrics(pred, truth),
                                 **whole_tumour_metrics(pred, truth, outside)})
        if "saliency" in out:
            sl["saliency"] = out["saliency"][i][z]
        with atomic_path(job.out / "slices" / f"{case.patient_id}.npz") as tmp:
            np.savez_compressed(tmp, **sl)
    return seg_rows


def run_fold(job: FoldJob, train: Sequence[CaseData], test: Sequence[CaseData],
             progress: bool = True) -> pd.DataFrame:
    """Fit, predict and record one fold; returns its prediction rows."""
    done = job.out / "done.json"
    method = build_method(job, progress)
    expected = identity(job, method)
    if done.is_file():
        _check_identity(done, expected)
        return pd.read_csv(job.out / "predictions.csv", dtype={"patient_id": str})
    job.out.mkdir(parents=True, exist_ok=True)
    with PeakRSS() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        method, model_from = _fitted(job, method, train)
        fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        t1 = time.perf_counter()
        out = method.predict_all(test, saliency=not job.light)
        preds, grid = _prediction_rows(job, method, train, test, out)
        predict_s = time.perf_counter() - t1
    if not is_main_process():  # a DDP rank > 0: rank 0 writes the fold's record
        return preds
    if job.light:
        _write_csv(preds, job.out / "predictions.csv")
    else:
        _write_record(job, method, train, test, out, preds)
        if grid is not None:
            _write_csv(grid_frame(preds["patient_id"], grid), job.out / GRID_FILE)
    info = method.fit_info()
    record = {
        "method": job.label, "repeat": job.repeat, "fold": job.fold, "seed": job.seed,
        # fit_cpu_s: CPU seconds of this process (all its threads) during the fit -- on a
        # shared machine the honest cost, where fit_s (wall) grows with the others' load
        "fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "predict_s": predict_s, "peak_rss_gb": mem.peak_gb,
        "epochs": len(info.history) if info.history else None,
        "identity": expected,
        "train": None if info.train is None else info.train.to_dict(),
        "runtime": None if info.runtime is None else info.runtime.to_dict(),
        "n_train": len(train), "n_test": len(test), "diagnostics": info.diagnostics,
        "test_box": job.test_box, "model_from": model_from,
        **({"device": info.device, "precision": info.precision} if info.precision else {}),
        **({"selection": dict(job.selection)} if job.selection is not None else {}),
    }
    with atomic_path(done) as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    shutil.rmtree(job.out / "work", ignore_errors=True)  # checkpoints are not needed once done
    return preds


def _prediction_rows(job: FoldJob, method: Method, train: Sequence[CaseData], test: Sequence[CaseData],
                     out: dict) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The fold's predictions.csv rows: P(DM) per test patient on the DM endpoint; risk, risk
    group and DM-free probabilities on the survival endpoint (with the Brier-grid
    probabilities of a method that predicts them, else None)."""
    grid = None
    if job.endpoint == "dm":
        preds = pd.DataFrame({"patient_id": [c.patient_id for c in test], "label": [c.label for c in test],
                              "probability": np.asarray(out["probability"], dtype=float)})
    else:
        preds, grid = survival_outputs(method, train, test, out)
    preds.insert(0, "method", job.label)
    preds.insert(1, "repeat", job.repeat)
    preds.insert(2, "fold", job.fold)
    return preds[PRED_COLUMNS if job.endpoint == "dm" else SURVIVAL_PRED_COLUMNS], grid


def _fitted(job: FoldJob, method: Method, train: Sequence[CaseData]) -> tuple[Method, str | None]:
    """``method`` fitted on ``train``; or, for a job that only changes the test boxes, the
    contour regime's saved fold model (same training patients, contour boxes and seed: the
    two regimes then differ in the test boxes alone) and where it came from."""
    src = job.fitted
    if src is not None and (src / "done.json").is_file() and (src / "model").is_dir():
        from chmfl.methods.registry import load_method

        return load_method(src / "model"), str(src)
    return method.fit(train), None


def _write_record(job: FoldJob, method: Method, train: Sequence[CaseData], test: Sequence[CaseData],
                  out: dict, preds: pd.DataFrame) -> None:
    """The fold's model (with the cache's preprocessing, for ``chmfl predict``), masks,
    slices, predictions, segmentation metrics, embeddings and log."""
    extra = {"trained_on": [c.patient_id for c in train], "test_box": job.test_box}
    method.save(job.out / "model", extra=extra | ({"preprocess": job.preprocess} if job.preprocess else {}))
    seg_rows = _write_masks_and_slices(job, test, out)
    _write_csv(preds, job.out / "predictions.csv")
    if seg_rows:
        _write_csv(pd.DataFrame(seg_rows), job.out / "seg_metrics.csv")
    if "features" in out:
        feats = pd.DataFrame(out["features"], columns=[f"f{i}" for i in range(out["features"].shape[1])])
        ids = pd.DataFrame({"patient_id": [c.patient_id for c in test], "label": [c.label for c in test]})
        _write_csv(pd.concat([ids, feats], axis=1), job.out / "embeddings.csv")
    history = method.fit_info().history
    if history:
        _write_csv(pd.DataFrame(history), job.out / "log.csv")


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
