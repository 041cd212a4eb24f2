"""The per-patient cache file: one compressed ``.npz`` per patient (the contract between
``chmfl data prepare`` and every method).

Keys of ``<patient_id>.npz`` (arrays are (z, y, x) on the isotropic box grid):

* ``ct``, ``pet``: network inputs, float32 (or float16 in the bundled demo copy) after
  intensity standardisation and contrast enhancement (see ``preprocess.intensity``).
* ``ct_hu``, ``pet_suv``: the same box before standardisation, in HU and SUVbw; handcrafted
  features and SUVmax read these. ``pet`` and ``pet_suv`` are absent in a CT-only cache
  (2D slices, ``preprocess.slices``).
* ``mask``: uint8 {0, 1} tumour mask on the box grid (absent when the case has no contour).
* ``spacing`` (z, y, x) mm, ``origin`` LPS (x, y, z) mm of box voxel [0,0,0], ``direction``
  (9 floats, ITK row-major), ``center`` LPS (x, y, z) mm of the box centre.
* ``meta``: a JSON string (patient_id, how the centre was chosen, config hash, padding).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chmfl.fsutil import atomic_path
from chmfl.io.volume import Volume

ARRAY_KEYS = ("ct", "pet", "ct_hu", "pet_suv", "mask")


@dataclass
class CaseArrays:
    """One preprocessed patient, as every method sees it."""

    patient_id: str
    ct: np.ndarray
    pet: np.ndarray | None  # None: CT-only cohort
    ct_hu: np.ndarray
    pet_suv: np.ndarray | None
    mask: np.ndarray | None
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    meta: dict = field(default_factory=dict)

    def volume(self, key: str) -> Volume:
        """One of the arrays as a ``Volume`` on the box grid (for writing NIfTI)."""
        arr = getattr(self, key)
        if arr is None:
            raise KeyError(f"case {self.patient_id} has no {key}")
        return Volume(arr, self.spacing, self.origin, self.direction)


def save_case(path: str | Path, case: CaseArrays, dtype: str = "float32", compresslevel: int = 6) -> None:
    """Write one case atomically as an npz; images cast to ``dtype``.

    ``compresslevel``: deflate level 1-9 for every member (6 is ``np.savez_compressed``'s),
    0 stores them uncompressed. ``load_case`` (``np.load``) reads any of them.
    """
    arrays = {k: getattr(case, k) for k in ARRAY_KEYS if getattr(case, k) is not None}
    arrays = {k: (v.astype(np.uint8) if k == "mask" else v.astype(dtype)) for k, v in arrays.items()}
    meta = {**case.meta, "patient_id": case.patient_id}
    members = {
        "spacing": np.asarray(case.spacing, float),
        "origin": np.asarray(case.origin, float),
        "direction": np.asarray(case.direction, float),
        "center": np.asarray(case.center, float),
        "meta": np.asarray(json.dumps(meta)),
        **arrays,
    }
    method = zipfile.ZIP_DEFLATED if compresslevel > 0 else zipfile.ZIP_STORED
    level = compresslevel if compresslevel > 0 else None
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=method, compresslevel=level) as zf:
            for key, value in members.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)


def load_case(path: str | Path) -> CaseArrays:
    """Read a case written by ``save_case``; images come back as float32."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        def get(k):
            if k not in z:
                return None
            return z[k].astype(np.uint8) if k == "mask" else z[k].astype(np.float32)
        return CaseArrays(
            patient_id=meta["patient_id"],
            ct=get("ct"), pet=get("pet"), ct_hu=get("ct_hu"), pet_suv=get("pet_suv"),
            mask=get("mask"),
            spacing=tuple(z["spacing"].tolist()),
            origin=tuple(z["origin"].tolist()),
            direction=tuple(z["direction"].tolist()),
            center=tuple(z["center"].tolist()),
            meta=meta,
        )
