"""A small synthetic results folder (docs/results-format.md) with random predictions.

``make_results(root, methods, segmenting, minimal)``: 16 patients (8 DM), 2 folds, 2 repeats;
segmenting methods also get masks/, slices/*.npz (ct, pet, mask, pred_mask, saliency,
spacing) and embeddings.csv in every fold folder; ``minimal`` keeps only config.yaml,
splits.json, predictions.csv and metrics.csv.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from chmfl.cv.splits import make_splits, save_splits
from chmfl.methods.spec import MethodRun
from chmfl.stats import fold_rows, pooled_rows, segmentation_metrics

IDS = [f"STS_{i:03d}" for i in range(1, 17)]
LABELS = [i % 2 for i in range(16)]
SIZE = 24


def _disk(center: tuple[int, int], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return ((yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2).astype(np.uint8)


def _slices(rng: np.random.Generator, fold_dir: Path, pid: str) -> dict[str, float]:
    """Write slices/<pid>.npz and masks/<pid>.nii.gz; return the patient's segmentation metrics."""
    import SimpleITK as sitk

    gt = _disk((12, 12), 5)
    pred = _disk((12 + int(rng.integers(-2, 3)), 12 + int(rng.integers(-2, 3))), 4 + rng.random() * 2)
    ct = rng.normal(0, 1, (SIZE, SIZE)) + 2 * gt
    pet = rng.normal(0, 0.5, (SIZE, SIZE)) + 4 * gt
    saliency = np.exp(-(((np.mgrid[:SIZE, :SIZE] - 12.0) ** 2).sum(0)) / 30.0)
    (fold_dir / "slices").mkdir(parents=True, exist_ok=True)
    np.savez(fold_dir / "slices" / f"{pid}.npz", ct=ct.astype(np.float32), pet=pet.astype(np.float32), mask=gt,
             pred_mask=pred, saliency=saliency.astype(np.float32), spacing=np.array([1.0, 1.0]))
    (fold_dir / "masks").mkdir(exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(pred[None]), str(fold_dir / "masks" / f"{pid}.nii.gz"))
    return segmentation_metrics(pred, gt)


def _write_fold(rng, root: Path, method: str, r: int, fold: dict, segmenting: bool, minimal: bool):
    label = dict(zip(IDS, LABELS))
    test = fold["test"]
    y = np.array([label[p] for p in test])
    prob = 1 / (1 + np.exp(-(rng.normal(0, 1, len(y)) + 1.2 * (y - 0.5))))
    pred = pd.DataFrame({"method": method, "repeat": r, "fold": fold["fold"], "patient_id": test, "label": y,
                         "probability": prob})
    seg = []
    if not minimal:
        fdir = root / method / f"repeat_{r}" / f"fold_{fold['fold']}"
        fdir.mkdir(parents=True, exist_ok=True)
        pred.to_csv(fdir / "predictions.csv", index=False)
        if segmenting:
            seg = [_slices(rng, fdir, p) for p in test]
            feats = rng.normal(0, 1, (len(test), 8)) + y[:, None]
            emb = pd.DataFrame(feats, columns=[f"f{i}" for i in range(8)])
            emb.insert(0, "label", y)
            emb.insert(0, "patient_id", test)
            emb.to_csv(fdir / "embeddings.csv", index=False)
        (fdir / "done.json").write_text("{}")
    return pred, seg


def make_results(root: Path, methods=("hc-rf", "chmfl"), segmenting=("chmfl",), minimal=False,
                 experiment="table1", seed=0) -> Path:
    """``methods``: registry names or ``MethodRun`` specs (their labels name the results)."""
    rng = np.random.default_rng(seed)
    runs = [m if isinstance(m, MethodRun) else MethodRun(m) for m in methods]
    methods = [r.label for r in runs]
    root.mkdir(parents=True, exist_ok=True)
    splits = make_splits(IDS, LABELS, n_folds=2, repeats=2, seed=0)
    save_splits(splits, root / "splits.json")
    preds, metric_rows, timing = [], [], []
    for method in methods:
        for rep in splits["repeats"]:
            r, rep_preds, rep_seg = rep["repeat"], [], []
            for fold in rep["folds"]:
                pred, seg = _write_fold(rng, root, method, r, fold, method in segmenting, minimal)
                metric_rows += fold_rows(method, r, fold["fold"], pred, seg)
                rep_preds.append(pred)
                rep_seg += seg
                timing.append({"method": method, "repeat": r, "fold": fold["fold"], "fit_s": 10 + rng.random(),
                               "predict_s": rng.random(), "peak_rss_gb": 1.5, "epochs": 2, "device": "cpu",
                               "precision": "fp32"})
            allp = pd.concat(rep_preds)
            metric_rows += pooled_rows(method, r, allp, rep_seg)
            preds += rep_preds
    pd.concat(preds).to_csv(root / "predictions.csv", index=False)
    pd.DataFrame(metric_rows).to_csv(root / "metrics.csv", index=False)
    config = {  # the layout chmfl.cv.runner writes
        "chmfl_version": "0.1.0", "git_commit": "abc1234", "experiment": experiment,
        "spec": {"name": experiment, "reference": "chmfl", "folds": 2, "repeats": 2,
                 "methods": [r.to_dict() for r in runs]},
        "options": {"seed": 0, "epochs": 1, "repeats": 2, "folds": 2},
        "data": {"n_patients": 16, "n_dm": 8, "n_no_dm": 8, "excluded": {"STS_099": "local recurrence"}},
        "hardware": {"cpu": "test", "threads": 2, "gpu": None}, "versions": {"numpy": "x"},
        "started": "2024-01-01T00:00:00", "finished": "2024-01-01T01:00:00",
        "skipped": ["resnet18-petct[pretrained=resnet18]: no weights file given"],
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if not minimal:
        pd.DataFrame(timing).to_csv(root / "timing.csv", index=False)
    return root


@pytest.fixture
def results_factory():
    """``make_results`` itself, for tests that build their own variant of the folder."""
    return make_results


@pytest.fixture(scope="session")
def full_results(tmp_path_factory) -> Path:
    """The full synthetic folder (2 methods, chmfl segmenting), made once per session."""
    return make_results(tmp_path_factory.mktemp("results") / "run")


@pytest.fixture(scope="session")
def full_report(full_results):
    """The full synthetic folder with its report, built once per session (read it, don't modify it)."""
    from chmfl.report import build_report

    return full_results, build_report(full_results)
