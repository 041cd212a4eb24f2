"""One method on one fold: fit on the training cases, predict the test cases, write the fold's
record (docs/results-format.md). A fold with ``done.json`` is finished and is read back
instead of re-run; an unfinished neural fold resumes from its per-epoch checkpoint."""

from __future__ import annotations

import inspect
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chmfl.cv.experiment import MethodRun
from chmfl.cv.record import PeakRSS
from chmfl.data.cases import CaseData
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.methods.registry import METHODS, create, resolve
from chmfl.methods.training import is_main_process

PRED_COLUMNS = ["method", "repeat", "fold", "patient_id", "label", "probability"]


@dataclass(frozen=True)
class FoldJob:
    run: MethodRun
    repeat: int
    fold: int
    seed: int
    train: dict[str, Any]  # resolved training overrides (experiment + method + CLI)
    pretrained: str | None  # weights file for this run, if any
    out: Path  # DIR/<label>/repeat_r/fold_k

    @property
    def label(self) -> str:
        return self.run.label


def build_method(job: FoldJob, progress: bool = True):
    """Instantiate the job's method, passing only the run options its class accepts."""
    info = METHODS[job.run.method]
    accepted = inspect.signature(resolve(info.target)).parameters
    model_kwargs = {**info.kwargs.get("model_kwargs", {}), **job.run.model_kwargs}
    if job.pretrained:
        model_kwargs["pretrained"] = job.pretrained
    offered = {"seed": job.seed, "workdir": job.out / "work", "train": job.train,
               "progress": progress, "model_kwargs": model_kwargs}
    kwargs = {k: v for k, v in offered.items() if k in accepted and (k != "model_kwargs" or v)}
    return create(job.run.method, **kwargs)


def _outputs(method, cases: Sequence[CaseData]) -> dict[str, np.ndarray]:
    if hasattr(method, "predict_all"):
        return method.predict_all(cases)
    out = {"probability": np.asarray(method.predict_proba(cases), dtype=float)}
    if hasattr(method, "embed"):
        try:
            out["features"] = np.asarray(method.embed(cases), dtype=float)
        except (ChmflError, NotImplementedError):
            pass
    return out


def _write_masks_and_slices(job: FoldJob, cases: Sequence[CaseData], out: dict) -> list[dict]:
    """Predicted masks (NIfTI, box grid), 2D slices for figures, and per-patient seg metrics."""
    from chmfl.io.imageio import write_image
    from chmfl.stats import segmentation_metrics

    seg_rows = []
    (job.out / "slices").mkdir(parents=True, exist_ok=True)
    for i, case in enumerate(cases):
        arr = case.load()
        pred = out["mask"][i] if "mask" in out else None
        z = arr.ct.shape[0] // 2  # the box is centred on the tumour: its middle axial slice
        sl = {"ct": arr.ct[z], "pet": arr.pet[z], "spacing": np.asarray(arr.spacing[1:])}
        if arr.mask is not None:
            sl["mask"] = arr.mask[z]
        if pred is not None:
            sl["pred_mask"] = pred[z]
            write_image(arr.volume("ct").with_array(pred.astype(np.uint8)),
                        job.out / "masks" / f"{case.patient_id}.nii.gz")
            if arr.mask is not None:
                seg_rows.append({"patient_id": case.patient_id, **segmentation_metrics(pred, arr.mask)})
        if "saliency" in out:
            sl["saliency"] = out["saliency"][i][z]
        with atomic_path(job.out / "slices" / f"{case.patient_id}.npz") as tmp:
            np.savez_compressed(tmp, **sl)
    return seg_rows


def run_fold(job: FoldJob, train: Sequence[CaseData], test: Sequence[CaseData],
             progress: bool = True) -> pd.DataFrame:
    """Fit, predict and record one fold; returns its prediction rows."""
    done = job.out / "done.json"
    if done.is_file():
        return pd.read_csv(job.out / "predictions.csv", dtype={"patient_id": str})
    job.out.mkdir(parents=True, exist_ok=True)
    method = build_method(job, progress)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        method.fit(train)
        fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        out = _outputs(method, test)
        predict_s = time.perf_counter() - t1
    preds = pd.DataFrame({
        "method": job.label, "repeat": job.repeat, "fold": job.fold,
        "patient_id": [c.patient_id for c in test], "label": [c.label for c in test],
        "probability": np.asarray(out["probability"], dtype=float),
    })[PRED_COLUMNS]
    if not is_main_process():  # a DDP rank > 0: rank 0 writes the fold's record
        return preds
    method.save(job.out / "model")
    seg_rows = _write_masks_and_slices(job, test, out)
    _write_csv(preds, job.out / "predictions.csv")
    if seg_rows:
        _write_csv(pd.DataFrame(seg_rows), job.out / "seg_metrics.csv")
    if "features" in out:
        feats = pd.DataFrame(out["features"], columns=[f"f{i}" for i in range(out["features"].shape[1])])
        ids = pd.DataFrame({"patient_id": [c.patient_id for c in test], "label": [c.label for c in test]})
        emb = pd.concat([ids, feats], axis=1)
        _write_csv(emb, job.out / "embeddings.csv")
    history = getattr(method, "history_", None)
    if history:
        _write_csv(pd.DataFrame(history), job.out / "log.csv")
    train_cfg = getattr(method, "train", None)
    record = {
        "method": job.label, "repeat": job.repeat, "fold": job.fold, "seed": job.seed,
        "fit_s": fit_s, "predict_s": predict_s, "peak_rss_gb": mem.peak_gb,
        "epochs": len(history) if history else None,
        "train": train_cfg.to_dict() if hasattr(train_cfg, "to_dict") else None,
        "n_train": len(train), "n_test": len(test),
        "diagnostics": getattr(method, "diagnostics_", None),
        **getattr(method, "run_info_", {}),
    }
    with atomic_path(done) as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    shutil.rmtree(job.out / "work", ignore_errors=True)  # checkpoints are not needed once done
    return preds


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
