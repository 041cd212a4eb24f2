"""Image panels from each fold's ``slices/<patient_id>.npz`` (axial slice through the box centre):
saliency / feature-map overlays on CT and PET (Fig 6) and predicted masks beside the ground
truth (Fig S2). Arrays are read with ``allow_pickle=False``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from chmfl.report.figures import FigureOut
from chmfl.report.load import Results

N_PATIENTS = 2


def slice_files(res: Results, method: str) -> dict[str, Path]:
    """patient_id -> npz of ``method``'s first repeat that has slices (each patient is tested once per repeat)."""
    for r in res.repeats:
        files = {f.stem: f for _, _, d in res.fold_dirs(method, r) for f in sorted((d / "slices").glob("*.npz"))}
        if files:
            return files
    return {}


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _keys(path: Path) -> set[str]:
    with np.load(path, allow_pickle=False) as z:
        return set(z.files)


def _methods_with(res: Results, key: str) -> dict[str, dict[str, Path]]:
    out = {}
    for m in res.methods:
        files = slice_files(res, m)
        if files and key in _keys(next(iter(files.values()))):
            out[m] = files
    return out


def _labels(res: Results) -> dict[str, int]:
    if res.predictions is None:
        return {}
    return dict(zip(res.predictions["patient_id"], res.predictions["label"].astype(int)))


def pick_patients(candidates: set[str], labels: dict[str, int], n: int = N_PATIENTS) -> list[str]:
    """Up to ``n`` patients, alternating DM and no DM when labels are known; sorted ids otherwise."""
    ordered = sorted(candidates)
    by_label = [[p for p in ordered if labels.get(p) == lab] for lab in (1, 0)]
    picked = [p for pair in zip(*by_label) for p in pair][:n]
    return picked + [p for p in ordered if p not in picked][: n - len(picked)]


# CT display window in HU: soft tissue (level 40, width 400), where a sarcoma and the muscle
# and fat around it differ; the network's [-1000, 1000] HU input range shows them as one grey.
SOFT_TISSUE_HU = (-160.0, 240.0)


def _gray(ax, image: np.ndarray, aspect: float, title: str = "", window: tuple[float, float] | None = None) -> None:
    """``image`` in grey: between ``window`` (HU), or its 1st and 99th percentiles."""
    lo, hi = window or (np.percentile(image, [1, 99]) if image.size else (0, 1))
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, aspect=aspect, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)


def _ct(ax, arrays: dict[str, np.ndarray], aspect: float, title: str = "") -> None:
    """The CT slice in HU with the soft-tissue window where the slice file has HU (newer runs);
    else the network input between its percentiles."""
    if "ct_hu" in arrays:
        _gray(ax, arrays["ct_hu"], aspect, title, SOFT_TISSUE_HU)
    else:
        _gray(ax, arrays["ct"], aspect, title)


def _ct_caption(arrays: dict[str, np.ndarray]) -> str:
    if "ct_hu" in arrays:
        lo, hi = SOFT_TISSUE_HU
        return f"CT in HU with a soft-tissue window (level 40, width 400: {lo:g} to {hi:g} HU)"
    return "CT as the network saw it, between its 1st and 99th percentiles (this run stored no HU slices)"


def _aspect(arrays: dict[str, np.ndarray]) -> float:
    sp = arrays.get("spacing")
    return float(sp[0]) / float(sp[1]) if sp is not None and len(sp) == 2 and float(sp[1]) > 0 else 1.0


def _row_label(ax, pid: str, labels: dict[str, int]) -> None:
    lab = {1: "DM", 0: "no DM"}.get(labels.get(pid, -1), "label ?")
    ax.text(-0.04, 0.5, f"{pid}\n{lab}", transform=ax.transAxes, ha="right", va="center", fontsize=8)


def saliency_figure(res: Results) -> FigureOut | str:
    """CT, PET and each method's saliency map over the CT slice, for up to two patients (Fig 6)."""
    files = _methods_with(res, "saliency")
    if not files:
        return "no slices/*.npz with a 'saliency' array: no feature-map figure (Fig 6)"
    labels = _labels(res)
    patients = pick_patients(set.intersection(*(set(f) for f in files.values())), labels)
    if not patients:
        return "no patient has saliency slices from every method: no feature-map figure (Fig 6)"
    cols = 2 + len(files)
    fig = Figure(figsize=(2.3 * cols, 2.5 * len(patients)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(patients), cols))
    for row, pid in zip(axes, patients):
        first = _load(next(iter(files.values()))[pid])
        aspect = _aspect(first)
        _ct(row[0], first, aspect, "CT")
        _gray(row[1], first.get("pet", np.zeros_like(first["ct"])), aspect, "PET" if "pet" in first else "no PET")
        _row_label(row[0], pid, labels)
        for ax, (m, f) in zip(row[2:], files.items()):
            arrays = _load(f[pid])
            sal = arrays["saliency"].astype(float)
            span = sal.max() - sal.min()
            _ct(ax, arrays, aspect, m)
            ax.imshow((sal - sal.min()) / span if span > 0 else np.zeros_like(sal), cmap="jet", alpha=0.45,
                      vmin=0, vmax=1, aspect=aspect, interpolation="bilinear")
    return FigureOut("saliency", "Feature-map / saliency overlays (Fig 6)", fig,
                     f"Axial slice through the box centre. {_ct_caption(first)}; PET as the network saw it. Each "
                     "method's saliency, scaled to [0, 1] per image, over the CT slice: blue low, red high.")


def _overlay(ax, mask: np.ndarray, color: str, aspect: float) -> None:
    ax.imshow(np.ma.masked_where(mask == 0, mask), cmap=ListedColormap([color]), alpha=0.45, aspect=aspect,
              interpolation="nearest")


def _contour(ax, mask: np.ndarray) -> None:
    if mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors="lime", linewidths=0.8)


def segmentation_figure(res: Results) -> FigureOut | str:
    """CT, PET, ground truth and each method's predicted mask, for up to two patients (Fig S2)."""
    files = _methods_with(res, "pred_mask")
    if not files:
        return "no slices/*.npz with a 'pred_mask' array (no segmenting method): no segmentation figure (Fig S2)"
    labels = _labels(res)
    common = set.intersection(*(set(f) for f in files.values()))
    with_gt = {p for p in common if "mask" in _keys(next(iter(files.values()))[p])}
    patients = pick_patients(with_gt, labels)
    if not patients:
        return "no patient has a ground-truth mask and predictions from every segmenting method (Fig S2)"
    cols = 3 + len(files)
    fig = Figure(figsize=(2.3 * cols, 2.5 * len(patients)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(patients), cols))
    for row, pid in zip(axes, patients):
        first = _load(next(iter(files.values()))[pid])
        aspect, gt = _aspect(first), first["mask"] != 0
        _ct(row[0], first, aspect, "CT")
        _gray(row[1], first.get("pet", np.zeros_like(first["ct"])), aspect, "PET" if "pet" in first else "no PET")
        _ct(row[2], first, aspect, "Ground truth")
        _overlay(row[2], gt.astype(np.uint8), "lime", aspect)
        _row_label(row[0], pid, labels)
        for ax, (m, f) in zip(row[3:], files.items()):
            pred = _load(f[pid])["pred_mask"] != 0
            _ct(ax, first, aspect, m)
            _overlay(ax, pred.astype(np.uint8), "red", aspect)
            _contour(ax, gt)
    return FigureOut("segmentation", "Segmentation overlays (Fig S2)", fig,
                     f"Axial slice through the box centre. {_ct_caption(first)}. Ground truth in green; each "
                     "method's predicted mask in red with the ground-truth outline in green.")
