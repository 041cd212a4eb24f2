"""A cohort of one 2D CT slice per patient (the ``slices`` layout) as a chmfl cache.

hn_cnn (Mateus et al. 2023) publishes its network input this way: per patient one 8-bit PNG
of the CT slice with the largest tumour area, masked to the tumour, grey levels spanning the
HU window [-50, 300]. ``prepare_slice_cohort`` writes the same cache layout as ``chmfl data
prepare`` (``manifest.csv``, ``prepare_config.yaml`` with ``kind: slices``,
``<hash>/<pid>.npz``), each case a one-slice box (1, H, W), so ``chmfl cv``, ``train`` and
``predict`` run on it unchanged. The cohort has no PET (``pet`` / ``pet_suv`` absent).

What a case file holds:

* PNG: ``ct_hu`` = the HU the grey level stands for, ``lo + g / 255 * (hi - lo)`` over
  ``window_hu`` = (lo, hi), and ``background_hu`` where g = 0 (outside the tumour or the
  window); ``ct`` = g / 255 (the network input hn_cnn's ``ToTensor`` gives); ``mask`` = the
  ``<pid>_mask.png`` file if there is one, else the pixels with g > 0 (the tumour as far as
  the masked slice shows it). Pixel size ``png_pixel_mm`` (PNG has no geometry; hn_cnn's
  slices are resampled to 1 mm).
* NIfTI: ``ct_hu`` = the slice as stored (HU), ``ct`` = its window band ``(HU - lo) /
  (hi - lo)`` inside (lo, hi], 0 outside (hn_cnn's windowing, unmasked), ``mask`` = the
  ``<pid>_mask.nii[.gz]`` file if any; its own pixel spacing.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import yaml

from chmfl import __version__
from chmfl.cohort.case import Case
from chmfl.cohort.clinical import apply_horizon, read_clinical
from chmfl.cohort.layouts import attach_labels, default_clinical, find_cases
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.preprocess.cache_format import CaseArrays, save_case
from chmfl.preprocess.prepare import PrepareResult, write_manifest

SLICE_KIND = "slices"
SLICE_VERSION = 1  # bump when what a slice case file holds changes


@dataclass(frozen=True)
class SliceConfig:
    """How 2D slices become cache cases (hashed to key the cache folder)."""

    window_hu: tuple[float, float] = (-50.0, 300.0)  # what a PNG's grey levels 0..255 span
    background_hu: float = -1000.0  # HU stored for PNG grey level 0 (outside tumour or window)
    png_pixel_mm: float = 1.0  # PNG pixel size (hn_cnn: 1 mm)
    dtype: str = "float32"

    def __post_init__(self) -> None:
        lo, hi = self.window_hu
        if not hi > lo:
            raise ChmflError(f"slice config: window_hu must rise, got {self.window_hu}")
        if not self.png_pixel_mm > 0:
            raise ChmflError(f"slice config: png_pixel_mm must be > 0, got {self.png_pixel_mm}")
        if self.dtype not in ("float32", "float16"):
            raise ChmflError(f"slice config: dtype must be float32 or float16, got {self.dtype!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SliceConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ChmflError(f"slice config: unknown key(s) {unknown}")
        data = dict(data)
        if "window_hu" in data:
            data["window_hu"] = tuple(float(v) for v in data["window_hu"])
        return cls(**data)

    def hash(self) -> str:
        text = json.dumps({"v": SLICE_VERSION, "kind": SLICE_KIND, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def window_band(hu: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """hn_cnn's window: ``(HU - lo) / (hi - lo)`` inside (lo, hi], 0 outside (not clipped)."""
    lo, hi = window
    v = (hu.astype(np.float32) - lo) / (hi - lo)
    return np.where((hu > lo) & (hu <= hi), v, 0.0).astype(np.float32)


def slice_case_arrays(case: Case, config: SliceConfig) -> CaseArrays:
    """Read one ``slices``-layout case into the arrays of a one-slice box (module docstring)."""
    from chmfl.io.imageio import read_slice

    image = read_slice(case.ct)
    mask_src = case.mask_for("ct")
    mask = None
    if mask_src is not None:
        m = read_slice(mask_src.path).array
        if m.shape != image.array.shape:
            raise ChmflError(f"patient {case.patient_id}: mask {m.shape[1:]} does not match slice {image.shape[1:]}")
        mask = (m > 0).astype(np.uint8)
    if str(case.ct).lower().endswith(".png"):
        grey = image.array.astype(np.float32)
        if grey.max() > 255 or grey.min() < 0:
            raise ChmflError(f"patient {case.patient_id}: PNG values outside 0..255 ({case.ct})")
        lo, hi = config.window_hu
        ct = grey / 255.0
        ct_hu = np.where(grey > 0, lo + ct * (hi - lo), config.background_hu).astype(np.float32)
        mask = mask if mask is not None else (grey > 0).astype(np.uint8)
        spacing = (1.0, config.png_pixel_mm, config.png_pixel_mm)
    else:
        ct_hu = image.array.astype(np.float32)
        ct = window_band(ct_hu, config.window_hu)
        spacing = image.spacing
    meta = {"kind": SLICE_KIND, "source_file": Path(case.ct).name, "config_hash": config.hash()}
    return CaseArrays(case.patient_id, ct=ct, pet=None, ct_hu=ct_hu, pet_suv=None, mask=mask,
                      spacing=spacing, origin=(0.0, 0.0, 0.0), meta=meta)


def prepare_slice_cohort(source: str | Path, out: str | Path, clinical: str | Path | None = None,
                         config: SliceConfig | None = None, horizon_days: float | None = None,
                         ) -> PrepareResult:
    """Write the cache of a ``slices``-layout folder (see the module docstring).

    ``horizon_days``: label DM at this horizon (``cohort.clinical.apply_horizon``: hn_cnn's
    2-year rule at 730). Every slice is read and checked before anything is written.
    """
    start = time.perf_counter()
    config = config or SliceConfig()
    source, out = Path(source).resolve(), Path(out)
    clinical = clinical or default_clinical(source)
    records = read_clinical(clinical) if clinical else None
    if records is not None and horizon_days is not None:
        records = apply_horizon(records, horizon_days)
    elif horizon_days is not None:
        raise ChmflError("a time horizon needs a clinical file (--clinical) with event and time columns")
    cases = attach_labels(find_cases(source, SLICE_KIND), records)
    arrays = [slice_case_arrays(c, config) for c in cases]
    shapes = {a.ct.shape for a in arrays}
    if len(shapes) != 1:
        raise ChmflError(f"slices in {source} differ in size {sorted(shapes)}; one size is needed")
    folder = out / config.hash()
    for a in arrays:
        save_case(folder / f"{a.patient_id}.npz", a, dtype=config.dtype)
    rows = [{"patient_id": c.patient_id, **c.labels.as_row(), "path": f"{config.hash()}/{c.patient_id}.npz"}
            for c in cases]
    manifest = write_manifest(out, rows)
    doc = {"kind": SLICE_KIND, "config": config.to_dict(), "config_hash": config.hash(),
           "chmfl_version": __version__, "source": str(source), "layout": SLICE_KIND,
           "clinical": str(Path(clinical).resolve()) if clinical else None,
           "n_patients": len(cases), "labels": {"horizon_days": horizon_days}}
    with atomic_path(out / "prepare_config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(json.loads(json.dumps(doc)), sort_keys=False))
    return PrepareResult(out, manifest, [c.patient_id for c in cases], [], {}, time.perf_counter() - start)


def is_slice_cache(prepare: dict | None) -> bool:
    """True for the ``prepare_config.yaml`` content of a slice cache."""
    return bool(prepare) and prepare.get("kind") == SLICE_KIND
