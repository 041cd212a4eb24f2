"""Tiny synthetic PET/CT/mask Volumes and a NIfTI cohort for the preprocess tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from chmfl.io.volume import Volume


def grid_points(shape, spacing, origin) -> np.ndarray:
    """LPS (x, y, z) of every voxel centre of an identity-direction grid, shape (*shape, 3)."""
    z, y, x = np.indices(shape, dtype=float)
    return np.stack([origin[0] + x * spacing[2], origin[1] + y * spacing[1], origin[2] + z * spacing[0]], -1)


def sphere_volume(shape, spacing, origin, center_xyz, radius_mm, inside=1.0, outside=0.0,
                  dtype=np.float32, direction=None) -> Volume:
    """A ball of ``radius_mm`` around ``center_xyz`` on the given grid."""
    pts = grid_points(shape, spacing, origin)
    ball = np.linalg.norm(pts - np.asarray(center_xyz), axis=-1) <= radius_mm
    arr = np.where(ball, inside, outside).astype(dtype)
    if direction is None:
        return Volume(arr, spacing, origin)
    return Volume(arr, spacing, origin, direction)


def patient(center=(10.0, -20.0, 30.0), radius=12.0, seed=0, ct_shape=(24, 48, 48), pet_shape=(24, 12, 12)):
    """(ct HU, pet SUV, mask) of one synthetic patient: a hot, denser ball in soft tissue.

    CT and PET have different grids (CT 4 x 1.5 x 1.5 mm, PET 4 x 6 x 6 mm, shifted origins),
    both covering the ball.
    """
    rng = np.random.default_rng(seed)
    c = np.asarray(center)
    ct_sp, pet_sp = (4.0, 1.5, 1.5), (4.0, 6.0, 6.0)
    ct_org = tuple(c - np.asarray(ct_shape[::-1]) * np.asarray(ct_sp[::-1]) / 2 + 0.3)
    pet_org = tuple(c - np.asarray(pet_shape[::-1]) * np.asarray(pet_sp[::-1]) / 2 - 1.1)
    ct = sphere_volume(ct_shape, ct_sp, ct_org, c, radius, 60.0, 20.0)
    ct = ct.with_array((ct.array + rng.normal(0, 10, ct_shape)).astype(np.int16))
    pet = sphere_volume(pet_shape, pet_sp, pet_org, c, radius, 8.0, 1.0)
    pet = pet.with_array((pet.array + np.abs(rng.normal(0, 0.1, pet_shape))).astype(np.float32))
    mask = sphere_volume(ct_shape, ct_sp, ct_org, c, radius, 1, 0, np.uint8)
    return ct, pet, mask


def with_air(ct: np.ndarray, rows: int = 3) -> np.ndarray:
    """``ct`` with its first ``rows`` rows at -1000 HU: the air in front of the body that every
    real CT holds (files without it are refused as not a CT, ``io.validate``)."""
    out = ct.copy()
    out[:, :rows, :] = -1000
    return out


def write_nifti(volume: Volume, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(volume.to_sitk(), str(path))
    return path


def nnunet_cohort(root: Path, ids=("p1", "p2", "p3"), labels: dict | None = None) -> Path:
    """An nnU-Net-style folder of synthetic patients, with ``labels.csv`` when ``labels``."""
    for k, pid in enumerate(ids):
        ct, pet, mask = patient(center=(5.0 * k, -3.0, 40.0 + k), seed=k)
        ct = ct.with_array(with_air(ct.array))
        write_nifti(ct, root / "imagesTr" / f"{pid}_0000.nii.gz")
        write_nifti(pet, root / "imagesTr" / f"{pid}_0001.nii.gz")
        write_nifti(mask, root / "labelsTr" / f"{pid}.nii.gz")
    if labels is not None:
        rows = "".join(f"{pid},{'' if dm is None else dm}\n" for pid, dm in labels.items())
        (root / "labels.csv").write_text("patient_id,dm\n" + rows)
    return root
