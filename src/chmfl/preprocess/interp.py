"""One-axis linear interpolation, the building block of the separable resampling in
``geometry`` (image onto the box grid) and ``intensity`` (tile statistics onto voxels)."""

from __future__ import annotations

import numpy as np


def lerp_axis(array: np.ndarray, pos: np.ndarray, axis: int) -> np.ndarray:
    """Values of float32 ``array`` at fractional indices ``pos`` along ``axis`` (a new array).

    Neighbours are the two samples around each position, clamped into the array; positions
    outside [0, n - 1] therefore continue the outermost segment linearly (clip ``pos`` first
    to hold the edge value instead)."""
    n = array.shape[axis]
    i0 = np.clip(np.floor(pos).astype(np.intp), 0, max(n - 2, 0))
    i1 = np.minimum(i0 + 1, n - 1)
    w = (pos - i0).astype(np.float32).reshape([-1 if a == axis else 1 for a in range(array.ndim)])
    lo, hi = array.take(i0, axis=axis), array.take(i1, axis=axis)
    hi -= lo
    hi *= w
    hi += lo
    return hi
