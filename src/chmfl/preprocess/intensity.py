"""Intensity standardisation and contrast enhancement, per volume (nothing fitted on data).

Modes (``IntensityConfig.mode``):

* ``"paper"``: z-score over the box, then the luminosity and contrast normalisation of
  Foracchia, Grisan & Ruggeri (2005, the paper's ref. [38]) in 3D. The box is split into
  equal tiles of about ``tile_mm``; in each, the mean and standard deviation of all voxels
  give a first estimate, interpolated (linearly, between tile centres) to every voxel; the
  *background* is then the voxels within ``background_threshold`` local standard deviations
  of the local mean (their Mahalanobis criterion: the tumour and other outliers drop out),
  and its per-tile mean L and standard deviation C, interpolated the same way (L continued
  linearly up to the box faces), give the output (z - L) / max(C, min_local_std), clipped
  to +-clip. As in Foracchia et al., statistics are taken on a coarse grid and interpolated.
  This removes slow (low-frequency) intensity drifts and equalises contrast, while lesions
  that differ from their background stay high.
* ``"window"``: fixed maps. CT: clip to ``ct_window_hu`` and scale to [-1, 1]; PET:
  SUV / ``pet_scale_suv`` clipped to [0, pet_max].
* ``"zscore"``: (x - mean) / std over the box, clipped to +-clip.
"""

from __future__ import annotations

import numpy as np

from chmfl.preprocess.config import IntensityConfig
from chmfl.preprocess.interp import lerp_axis

_EPS = 1e-6


def zscore(x: np.ndarray) -> np.ndarray:
    """(x - mean) / std over the whole array (float32); a flat array maps to 0."""
    x = np.asarray(x, dtype=np.float32)
    mean, std = float(x.mean(dtype=np.float64)), float(x.std(dtype=np.float64))
    return ((x - mean) / max(std, _EPS)).astype(np.float32)


def window(x: np.ndarray, lo: float, hi: float, out_lo: float = -1.0, out_hi: float = 1.0) -> np.ndarray:
    """Clip to [lo, hi] and map linearly onto [out_lo, out_hi]."""
    x = np.clip(np.asarray(x, dtype=np.float32), lo, hi)
    return (out_lo + (x - lo) * ((out_hi - out_lo) / (hi - lo))).astype(np.float32)


def _tile_counts(shape: tuple[int, ...], spacing: tuple[float, float, float], tile_mm: float) -> tuple[int, ...]:
    """Tiles per axis: the volume is split into equal tiles of about ``tile_mm``."""
    return tuple(max(1, round(n * s / tile_mm)) for n, s in zip(shape, spacing))


def _block_sum(x: np.ndarray, counts: tuple[int, ...]) -> np.ndarray:
    """Sums over ``counts`` near-equal tiles per axis (``np.add.reduceat``), float64."""
    out = x
    for axis in (2, 1, 0):  # the contiguous axis first: the largest reduction
        n = x.shape[axis]
        starts = np.round(np.arange(counts[axis]) * n / counts[axis]).astype(np.intp)
        out = np.add.reduceat(out, starts, axis=axis, dtype=np.float64 if axis == 2 else None)
    return out


def _upsample(tiles: np.ndarray, shape: tuple[int, ...], extrapolate: bool = False) -> np.ndarray:
    """Linear interpolation of tile-centre values (equal tiles spanning ``shape``) to every voxel.

    Beyond the outermost tile centres the values are held (``extrapolate`` False) or
    continued linearly (True: a slow intensity drift is then removed up to the box faces).
    Separable, one axis at a time, the slice axis last (its copies are contiguous blocks).
    """
    out = tiles.astype(np.float32)
    for axis in (2, 1, 0):
        n, m = shape[axis], out.shape[axis]
        pos = (np.arange(n) + 0.5) * m / n - 0.5  # voxel centre in tile-centre units
        if not extrapolate or m < 2:
            pos = np.clip(pos, 0, m - 1)
        out = lerp_axis(out, pos, axis)
    return out


def _local_stats(z: np.ndarray, w: np.ndarray | None, counts: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the (w-weighted) voxels of each tile, interpolated to every voxel.

    A tile without any weighted voxel (inside a large lesion) takes the whole volume's
    weighted mean and std.
    """
    wz = z if w is None else w * z
    s0 = _block_sum(np.ones_like(z) if w is None else w, counts)
    s1, s2 = _block_sum(wz, counts), _block_sum(wz * z, counts)
    ok = s0 >= 0.5
    total = max(float(s0.sum()), 1.0)
    whole_mean = float(s1.sum()) / total
    whole_var = float(s2.sum()) / total - whole_mean**2
    safe = np.where(ok, s0, 1.0)
    mean = np.where(ok, s1 / safe, whole_mean)
    std = np.sqrt(np.maximum(np.where(ok, s2 / safe - mean**2, whole_var), 0.0))
    return _upsample(mean, z.shape, extrapolate=True), _upsample(std, z.shape)


def foracchia(z: np.ndarray, spacing: tuple[float, float, float], cfg: IntensityConfig) -> np.ndarray:
    """Luminosity/contrast normalisation of a standardised volume (see module docstring)."""
    counts = _tile_counts(z.shape, spacing, cfg.tile_mm)
    floor = cfg.min_local_std
    mean, std = _local_stats(z, None, counts)
    background = (np.abs(z - mean) < cfg.background_threshold * np.maximum(std, floor)).astype(np.float32)
    mean, std = _local_stats(z, background, counts)
    out = z - mean
    out /= np.maximum(std, floor)
    return np.clip(out, -cfg.clip, cfg.clip, out=out)


def normalize(x: np.ndarray, modality: str, spacing: tuple[float, float, float],
              cfg: IntensityConfig) -> np.ndarray:
    """The network input for one modality ("ct" in HU, "pet" in SUV) under ``cfg.mode``."""
    if cfg.mode == "window":
        if modality == "ct":
            return window(x, *cfg.ct_window_hu)
        return window(x, 0.0, cfg.pet_scale_suv * cfg.pet_max, 0.0, cfg.pet_max)
    z = zscore(x)
    if cfg.mode == "zscore":
        return np.clip(z, -cfg.clip, cfg.clip)
    return foracchia(z, spacing, cfg)
