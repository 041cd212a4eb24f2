"""Tiny synthetic patients for unit tests: a bright 'tumour' whose size and uptake carry the label."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from chmfl.cv.experiment import Experiment, MethodRun
from chmfl.data.cases import CaseData
from chmfl.preprocess.cache_format import CaseArrays, save_case

# A CHMFL small enough to train in a second, and one quick epoch: the runner tests' settings
TINY = {"widths": [4, 8, 16, 32, 64], "decoder_convs": [1, 1, 1, 1], "decoder_kernel": 3}
TRAIN = {"epochs": 1, "batch_size": 2, "precision": "32"}


def two_fold_experiment(*runs: MethodRun) -> Experiment:
    """A 2-fold experiment of ``runs`` with TRAIN, the last run the reference."""
    return Experiment("custom", "test", runs, reference=runs[-1].label, folds=2, train=TRAIN)


def make_case(pid: str, label: int, shape=(16, 16, 16), seed: int = 0) -> CaseArrays:
    """A box with a sphere whose radius and SUV grow with the label (plus noise)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    c = np.array(shape) / 2 + rng.uniform(-1.5, 1.5, 3)
    r = (3.0 if label else 2.0) + rng.uniform(-0.5, 0.5)
    mask = (((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) <= r * r).astype(np.uint8)
    suv = 1.0 + rng.normal(0, 0.2, shape) + mask * (6.0 if label else 3.0)
    hu = rng.normal(0, 30, shape) + mask * 40.0
    return CaseArrays(
        patient_id=pid, ct=(hu / 100).astype(np.float32), pet=(suv / 5).astype(np.float32),
        ct_hu=hu.astype(np.float32), pet_suv=suv.astype(np.float32), mask=mask,
        spacing=(4.0, 4.0, 4.0), origin=(0.0, 0.0, 0.0), center=(32.0, 32.0, 32.0),
    )


def make_cases(n: int = 8, shape=(16, 16, 16), seed: int = 0) -> list[CaseData]:
    """``n`` labelled in-memory cases, half DM."""
    return [CaseData(f"P{i:03d}", i % 2, arrays=make_case(f"P{i:03d}", i % 2, shape, seed + i))
            for i in range(n)]


def synthetic_cases(n: int, seed: int = 0, size: int = 16, spacing: float = 4.0) -> list[CaseData]:
    """Spherical tumours in 16^3 boxes; DM when SUV peak and radius are high (plus noise)."""
    rng = np.random.default_rng(seed)
    peaks = rng.uniform(3.0, 15.0, n)
    radii = rng.uniform(2.0, 5.5, n)
    score = (peaks - 9.0) / 3.5 + (radii - 3.75) + rng.normal(0, 0.4, n)
    labels = (score > np.median(score)).astype(int)
    zz, yy, xx = np.mgrid[:size, :size, :size] - (size - 1) / 2
    d2 = zz**2 + yy**2 + xx**2
    cases = []
    for i in range(n):
        mask = (d2 <= radii[i] ** 2).astype(np.uint8)
        pet = (1.0 + rng.normal(0, 0.1, d2.shape) + peaks[i] * np.exp(-d2 / (2 * radii[i] ** 2))).astype(np.float32)
        ct = (np.where(mask > 0, 40.0, 0.0) + rng.normal(0, 15.0, d2.shape)).astype(np.float32)
        arrays = CaseArrays(f"SYN_{i:03d}", ct, pet, ct, pet, mask, (spacing,) * 3, (0.0, 0.0, 0.0))
        cases.append(CaseData(f"SYN_{i:03d}", int(labels[i]), arrays=arrays))
    return cases


def with_hotspot_box(case: CaseArrays, refused: bool = False) -> CaseArrays:
    """``case`` with a stored hotspot test box as ``data prepare`` keeps it: the box shifted by
    6 voxels in x (so a part of the tumour falls outside) and its PET 1.5x hotter, so that
    results in the two regimes differ; or the localiser's refusal."""
    meta = {**case.meta, "mask_volume_ml": float(case.mask.sum()) * 0.064, "mask_fraction_in_box": 1.0}
    if refused:
        return dataclasses.replace(case, meta=meta | {"hotspot_box": "refused: not clearly better than the next"})
    shift = lambda a: np.roll(a, 6, axis=2)  # noqa: E731
    mask = shift(case.mask)
    mask[:, :, :6] = 0
    hot = dataclasses.replace(case, ct=shift(case.ct), pet=shift(case.pet) * 1.5, ct_hu=shift(case.ct_hu),
                              pet_suv=shift(case.pet_suv) * 1.5, mask=mask,
                              meta={"center_method": "hotspot", "mask_volume_ml": meta["mask_volume_ml"],
                                    "mask_fraction_in_box": round(float(mask.sum()) / float(case.mask.sum()), 4)})
    return dataclasses.replace(case, meta=meta | {"hotspot_box": "chosen", "hotspot_error_mm": 12.0}, hotspot=hot)


def write_cache(root: Path, n: int = 12, shape=(16, 16, 16), n_excluded: int = 1,
                hotspot: bool = False, refused: tuple[int, ...] = (3,)) -> Path:
    """A cache folder as 'chmfl data prepare' writes it: npz files, manifest.csv, prepare_config.yaml;
    with ``hotspot``, each patient's hotspot test box too (patients ``refused``: the localiser refused)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n + n_excluded):
        pid = f"P{i:03d}"
        excluded = i >= n
        label = i % 2
        case = make_case(pid, label, shape, i)
        if hotspot:
            case = with_hotspot_box(case, i in refused)
        save_case(root / "h" / f"{pid}.npz", case)
        rows.append({"patient_id": pid, "dm": None if excluded else label,
                     "exclusion": "local recurrence only" if excluded else "",
                     "path": f"h/{pid}.npz"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    (root / "prepare_config.yaml").write_text("config: {voxel_mm: 4.0}\nhash: h\n")
    return root


def neural_method(name: str, model: str, model_kwargs: dict | None = None, settings: dict | None = None,
                  **kwargs):
    """A ``NeuralMethod`` whose science and runtime settings come from one flat dict (routed by
    name, as ``--set`` does)."""
    from chmfl.methods.neural import NeuralMethod
    from chmfl.methods.runtime import settings as split

    train, runtime = split(settings)
    return NeuralMethod(name, model, model_kwargs, train, runtime, **kwargs)
