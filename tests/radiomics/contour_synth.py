"""A tiny synthetic nnU-Net-style cohort (NIfTI CT, PET, tumour label) for ``chmfl features`` tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk


def _ball(shape, spacing, origin, centre, radius):
    z, y, x = np.indices(shape, dtype=float)
    pts = np.stack([origin[0] + x * spacing[2], origin[1] + y * spacing[1], origin[2] + z * spacing[0]], -1)
    return np.linalg.norm(pts - np.asarray(centre), axis=-1) <= radius


def _write(arr: np.ndarray, spacing, origin, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    img.SetOrigin(tuple(float(o) for o in origin))
    sitk.WriteImage(img, str(path))


def write_patient(root: Path, pid: str, seed: int = 0, radius: float = 9.0, label: np.ndarray | None = None,
                  with_label: bool = True) -> None:
    """CT (2.5 x 1.5 x 1.5 mm, HU) and PET (3 x 4 x 4 mm, SUV) of a hot dense ball; label on the CT grid."""
    rng = np.random.default_rng(seed)
    centre = (2.0 * seed, -3.0, 40.0)
    ct_sp, ct_shape, ct_org = (2.5, 1.5, 1.5), (16, 24, 24), (-18.0 + 2.0 * seed - 0.2, -21.0, 20.0)
    pet_sp, pet_shape, pet_org = (3.0, 4.0, 4.0), (14, 10, 10), (-20.0 + 2.0 * seed, -23.0, 19.0)
    ball = _ball(ct_shape, ct_sp, ct_org, centre, radius)
    ct = (np.where(ball, 60.0, 20.0) + rng.normal(0, 15, ct_shape)).astype(np.int16)
    pet = (np.where(_ball(pet_shape, pet_sp, pet_org, centre, radius), 6.0 + seed, 1.0)
           + np.abs(rng.normal(0, 0.2, pet_shape))).astype(np.float32)
    _write(ct, ct_sp, ct_org, root / "imagesTr" / f"{pid}_0000.nii.gz")
    _write(pet, pet_sp, pet_org, root / "imagesTr" / f"{pid}_0001.nii.gz")
    if with_label:
        lab = ball.astype(np.uint8) if label is None else label.astype(np.uint8)
        _write(lab, ct_sp, ct_org, root / "labelsTr" / f"{pid}.nii.gz")


def cohort(root: Path, ids=("p1", "p2")) -> Path:
    for k, pid in enumerate(ids):
        write_patient(root, pid, seed=k)
    return root
