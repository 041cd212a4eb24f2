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
* ``hotspot_<key>`` (contoured patients whose tumour the localiser finds): the same arrays and
  ``origin`` / ``center`` / ``meta`` for the box ``chmfl predict`` would place on this study
  without its contour (``preprocess.pipeline.hotspot_case``), ``hotspot_mask`` the contour on
  that box; read with ``load_case(path, box="hotspot")`` (cross-validation's hotspot test boxes).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.io.volume import Volume

ARRAY_KEYS = ("ct", "pet", "ct_hu", "pet_suv", "mask")
BOXES = ("contour", "hotspot")
HOTSPOT = "hotspot_"  # prefix of the hotspot box's members


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
    hotspot: CaseArrays | None = None  # the box placed without the contour, when stored

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
    members = _members(case, dtype)
    if case.hotspot is not None:
        members |= {f"{HOTSPOT}{k}": v for k, v in _members(case.hotspot, dtype).items()
                    if k not in ("spacing", "direction")}
    method = zipfile.ZIP_DEFLATED if compresslevel > 0 else zipfile.ZIP_STORED
    level = compresslevel if compresslevel > 0 else None
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=method, compresslevel=level) as zf:
            for key, value in members.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)


def _members(case: CaseArrays, dtype: str) -> dict[str, np.ndarray]:
    arrays = {k: getattr(case, k) for k in ARRAY_KEYS if getattr(case, k) is not None}
    arrays = {k: (v.astype(np.uint8) if k == "mask" else v.astype(dtype)) for k, v in arrays.items()}
    meta = {**case.meta, "patient_id": case.patient_id}
    return {
        "spacing": np.asarray(case.spacing, float),
        "origin": np.asarray(case.origin, float),
        "direction": np.asarray(case.direction, float),
        "center": np.asarray(case.center, float),
        "meta": np.asarray(json.dumps(meta)),
        **arrays,
    }


def load_case(path: str | Path, box: str = "contour") -> CaseArrays:
    """Read a case written by ``save_case``; images come back as float32. ``box="hotspot"``:
    the stored hotspot box instead (its ``mask`` is the contour on that box, for evaluation;
    its ``meta`` says how much of the tumour it holds); a one-line error when none is stored."""
    if box not in BOXES:
        raise ValueError(f"box must be one of {BOXES}, got {box!r}")
    prefix = HOTSPOT if box == "hotspot" else ""
    with np.load(path, allow_pickle=False) as z:
        if f"{prefix}meta" not in z:
            why = json.loads(str(z["meta"])).get("hotspot_box", "prepared before hotspot boxes were stored")
            raise ChmflError(f"{Path(path).name}: no hotspot box ({why})")
        meta = json.loads(str(z[f"{prefix}meta"]))
        def get(k):
            if f"{prefix}{k}" not in z:
                return None
            v = z[f"{prefix}{k}"]
            return v.astype(np.uint8) if k == "mask" else v.astype(np.float32)
        return CaseArrays(
            patient_id=meta["patient_id"],
            ct=get("ct"), pet=get("pet"), ct_hu=get("ct_hu"), pet_suv=get("pet_suv"),
            mask=get("mask"),
            spacing=tuple(z["spacing"].tolist()),
            origin=tuple(z[f"{prefix}origin"].tolist()),
            direction=tuple(z["direction"].tolist()),
            center=tuple(z[f"{prefix}center"].tolist()),
            meta=meta,
        )
