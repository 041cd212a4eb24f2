"""The box centre from a tumour contour: the centroid of its voxel centres.

Without a contour the centre is found by ``preprocess.localise.locate_tumour`` (PET uptake
candidates inside the CT, physiological uptake recognised from the CT, refusal when in doubt).
"""

from __future__ import annotations

import numpy as np

from chmfl.errors import ChmflError
from chmfl.io.volume import Volume


def mask_centroid(mask: Volume) -> tuple[float, float, float]:
    """LPS (x, y, z) mm of the centroid of a binary mask's voxel centres."""
    idx = np.argwhere(np.asarray(mask.array) > 0)
    if idx.size == 0:
        raise ChmflError("the tumour mask is empty: no voxel inside the contour")
    return tuple(float(v) for v in mask.index_to_physical(idx.mean(axis=0)))
