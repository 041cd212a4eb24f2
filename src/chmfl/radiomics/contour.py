"""Full-contour IBSI features of one patient, read from the raw images (not from the box).

Each modality is read on its own grid with its own contour (the one drawn on it: GTV_Mass_CT on
the CT, GTV_Mass_PET on the PET in the IBSI release; a contour drawn on the other image is
rasterised, or for a label image interpolated, onto this one), put on the IBSI interpolation
grid of ``ContourParams`` (``ibsi_resample``) and handed to pyradiomics without resampling.
Features IBSI defines get their IBSI tag (``radiomics.ibsi``). Settings: params_contour.yaml.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from chmfl import __version__
from chmfl.cohort.case import Case
from chmfl.errors import ChmflError
from chmfl.io.volume import Volume
from chmfl.radiomics.extract import extract_with_params
from chmfl.radiomics.ibsi import ibsi_name

MODALITIES = ("ct", "pet")
MODALITY_LABEL = {"ct": "CT", "pet": "PET"}  # the ``modality`` column of the long table
CONTOUR_FEATURES_VERSION = "1"  # bump when this module changes what it computes
INTERPOLATORS = ("bspline", "linear", "nearest")
# Top-level keys of a parameter file: the three sections, and what ``chmfl features`` records
# beside them in FEATURES.params.yaml (so that file can be given back as --params).
_KNOWN_KEYS = {"interpolation", *MODALITIES, "params_hash", "chmfl_version", "source", "layout", "clinical",
               "n_patients", "voxel_mm_override"}
_INPUT_MARGIN = 10  # input voxels kept around the ROI before interpolating (spline support)


@dataclass(frozen=True)
class InterpConfig:
    """IBSI interpolation of one modality (see params_contour.yaml)."""

    voxel_mm: float | None = None  # None: the image's own grid
    image: str = "bspline"
    round: float | None = None
    partial_volume: float = 0.5


@dataclass(frozen=True)
class ContourParams:
    """What ``chmfl features`` computes: interpolation + pyradiomics settings per modality."""

    interpolation: dict[str, InterpConfig]
    pyradiomics: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        interp = {m: {"voxel_mm": c.voxel_mm, "image": c.image, "round": c.round,
                      "partial_volume": c.partial_volume} for m, c in self.interpolation.items()}
        return {"interpolation": interp, **self.pyradiomics}

    def hash(self) -> str:
        """16 hex digits: the settings, this module's version, chmfl, pyradiomics and SimpleITK."""
        import SimpleITK as sitk

        import radiomics

        text = json.dumps([self.to_dict(), CONTOUR_FEATURES_VERSION, __version__, radiomics.__version__,
                           sitk.Version_VersionString()], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _interp(data: Any, where: str) -> InterpConfig:
    if not isinstance(data, dict) or set(data) - {"voxel_mm", "image", "round", "partial_volume"}:
        raise ChmflError(f"{where}: expected keys voxel_mm, image, round, partial_volume, got {data!r}")
    cfg = InterpConfig(**data)
    if cfg.image not in INTERPOLATORS:
        raise ChmflError(f"{where}: image interpolator must be one of {INTERPOLATORS}, got {cfg.image!r}")
    if cfg.voxel_mm is not None and not float(cfg.voxel_mm) > 0:
        raise ChmflError(f"{where}: voxel_mm must be > 0 or null, got {cfg.voxel_mm!r}")
    if not 0.0 < float(cfg.partial_volume) <= 1.0:
        raise ChmflError(f"{where}: partial_volume must be in (0, 1], got {cfg.partial_volume!r}")
    return cfg


def _check_pyradiomics(settings: Any, where: str) -> dict[str, Any]:
    """Let pyradiomics' own schema judge ``settings``; its complaint becomes one line."""
    from chmfl.radiomics.extract import quiet_pyradiomics
    from radiomics import featureextractor

    if not isinstance(settings, dict):
        raise ChmflError(f"{where}: expected a pyradiomics parameter mapping, got {type(settings).__name__}")
    quiet_pyradiomics()
    try:
        featureextractor.RadiomicsFeatureExtractor(json.loads(json.dumps(settings)))
    except Exception as exc:  # pykwalify SchemaError, ValueError, KeyError...
        msg = " ".join(str(exc).split())[:300]
        raise ChmflError(f"{where}: pyradiomics rejects these settings ({type(exc).__name__}: {msg})") from None
    if (settings.get("setting") or {}).get("resampledPixelSpacing"):
        raise ChmflError(f"{where}: resampledPixelSpacing must be empty (chmfl interpolates, see 'interpolation')")
    return settings


def default_params_path() -> Path:
    return Path(str(resources.files("chmfl.radiomics").joinpath("params_contour.yaml")))


def load_contour_params(path: str | Path | None = None, voxel_mm: str | float | None = None) -> ContourParams:
    """Read a parameter file (default: the IBSI validation one) and apply ``--voxel-mm``:
    None keeps the file's grids, "native" uses each image's own grid, a number an isotropic grid."""
    path = Path(path) if path else default_params_path()
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ChmflError(f"parameter file {path}: cannot read it ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not {"interpolation", *MODALITIES} <= set(doc) or set(doc) - _KNOWN_KEYS:
        raise ChmflError(f"parameter file {path}: needs the sections interpolation, ct, pet (and no others)")
    interp = doc["interpolation"] or {}
    if set(interp) != set(MODALITIES):
        raise ChmflError(f"parameter file {path}: interpolation needs ct and pet entries")
    grids = {m: _interp(interp[m], f"parameter file {path}, interpolation.{m}") for m in MODALITIES}
    if voxel_mm is not None:
        edge = None if str(voxel_mm).lower() == "native" else _voxel(voxel_mm)
        grids = {m: InterpConfig(edge, c.image, c.round, c.partial_volume) for m, c in grids.items()}
    settings = {m: _check_pyradiomics(doc[m], f"parameter file {path}, section {m}") for m in MODALITIES}
    return ContourParams(grids, settings)


def _voxel(value: str | float) -> float:
    try:
        edge = float(value)
    except ValueError:
        raise ChmflError(f"--voxel-mm must be 'native' or a size in mm, got {value!r}") from None
    if not edge > 0 or not math.isfinite(edge):
        raise ChmflError(f"--voxel-mm must be > 0, got {value!r}")
    return edge


# --- IBSI interpolation -------------------------------------------------------------------------
def _bbox(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.argwhere(mask)
    return idx.min(axis=0), idx.max(axis=0)  # (z, y, x) inclusive


def ibsi_grid(shape: tuple[int, ...], spacing: tuple[float, ...], new_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """IBSI interpolation grid along each axis (z, y, x): its size (ceil of the extent / new
    spacing) and the continuous original index of its first voxel (grids centre-aligned)."""
    n_a, s_a = np.asarray(shape, float), np.asarray(spacing, float)
    n_b = np.ceil(n_a * s_a / new_mm)
    first = (n_a - 1) / 2 - (n_b - 1) / 2 * new_mm / s_a
    return n_b.astype(int), first


def ibsi_resample(image: Volume, mask: np.ndarray, cfg: InterpConfig) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(image, mask, spacing) on the IBSI grid of ``cfg`` around the ROI (z, y, x). Image: B-spline
    (or linear / nearest) then rounding; mask: trilinear, then >= partial volume."""
    lo, hi = _bbox(mask)
    if cfg.voxel_mm is None:  # native grid: crop around the ROI only
        lo, hi = np.maximum(lo - 2, 0), np.minimum(hi + 2, np.asarray(mask.shape) - 1)
        sl = tuple(slice(a, b + 1) for a, b in zip(lo, hi))
        return np.asarray(image.array[sl], float), (mask[sl] > 0).astype(np.uint8), tuple(image.spacing)
    import SimpleITK as sitk

    new = float(cfg.voxel_mm)
    n_b, first = ibsi_grid(image.shape, image.spacing, new)
    step = new / np.asarray(image.spacing, float)
    j_lo = np.maximum(np.floor((lo - 1 - first) / step).astype(int) - 1, 0)
    j_hi = np.minimum(np.ceil((hi + 1 - first) / step).astype(int) + 1, n_b - 1)
    c_lo = np.maximum(lo - _INPUT_MARGIN, 0)
    c_hi = np.minimum(hi + _INPUT_MARGIN, np.asarray(mask.shape) - 1)
    crop = tuple(slice(a, b + 1) for a, b in zip(c_lo, c_hi))
    ref = image.to_sitk()
    start = first + j_lo * step  # continuous original index of the output region's first voxel
    origin = ref.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in start[::-1]))
    size = tuple(int(v) for v in (j_hi - j_lo + 1)[::-1])
    out = []
    for arr, interp in ((np.asarray(image.array[crop], float), cfg.image), ((mask[crop] > 0).astype(float), "linear")):
        src = sitk.GetImageFromArray(arr)
        src.SetSpacing(ref.GetSpacing())
        src.SetDirection(ref.GetDirection())
        src.SetOrigin(ref.TransformIndexToPhysicalPoint(tuple(int(v) for v in c_lo[::-1])))
        src = sitk.ZeroFluxNeumannPad(src, (3, 3, 3), (3, 3, 3))  # extrapolate with the edge values
        res = sitk.Resample(src, size, sitk.Transform(), _sitk_interp(interp), origin, (new,) * 3,
                            ref.GetDirection(), 0.0, sitk.sitkFloat64)
        out.append(sitk.GetArrayFromImage(res))
    img, msk = out
    if cfg.round:
        img = np.round(img / cfg.round) * cfg.round
    return img, (msk >= cfg.partial_volume - 1e-9).astype(np.uint8), (new, new, new)


def _sitk_interp(name: str):
    import SimpleITK as sitk

    return {"bspline": sitk.sitkBSpline, "linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor}[name]


# --- one patient --------------------------------------------------------------------------------
def modality_mask(case: Case, modality: str, image: Volume, roi: str | None = None) -> np.ndarray:
    """The tumour mask (uint8) on ``image``'s grid: the contour drawn on this modality, else the
    other one (an RTSTRUCT is rasterised on this grid; a label image interpolated, >= 0.5)."""
    from chmfl.preprocess.load import read_mask

    source = case.mask_for(modality)
    if source is None:
        raise ChmflError(f"patient {case.patient_id}: no tumour contour (needed for {MODALITY_LABEL[modality]} features)")
    mask = read_mask(source, image, roi)
    if mask.shape != image.shape or not mask.same_grid(image):
        import SimpleITK as sitk

        res = sitk.Resample(mask.with_array(mask.array.astype(np.float64)).to_sitk(), image.to_sitk(),
                            sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat64)
        mask = image.with_array((sitk.GetArrayFromImage(res) >= 0.5).astype(np.uint8))
    arr = np.asarray(mask.array, np.uint8)
    if not arr.any():
        raise ChmflError(f"patient {case.patient_id}: the tumour contour ({source.path.name}) is empty or "
                         f"lies outside the {MODALITY_LABEL[modality]} image")
    return arr


def modality_features(image: Volume, mask: np.ndarray, cfg: InterpConfig, settings: dict,
                      where: str) -> dict[str, float]:
    """IBSI-named features of ``image`` inside ``mask`` (both on the image's grid)."""
    img, msk, spacing = ibsi_resample(image, mask, cfg)
    if not msk.any():
        raise ChmflError(f"{where}: the contour vanishes on the {cfg.voxel_mm} mm interpolation grid")
    try:
        raw = extract_with_params(img, msk, spacing, settings)
    except ValueError as exc:  # pyradiomics: ROI invalid (too small, or emptied by re-segmentation)
        raise ChmflError(f"{where}: pyradiomics cannot use the contour ({' '.join(str(exc).split())[:200]})") from None
    return {ibsi_name(k): float(v) for k, v in raw.items()}


def patient_features(case: Case, params: ContourParams, suv: str = "bw") -> list[tuple[str, str, float]]:
    """(modality, feature, value) rows of one patient: CT then PET, each on its own grid."""
    from chmfl.preprocess.load import read_modality

    rows: list[tuple[str, str, float]] = []
    for modality in MODALITIES:
        image = read_modality(case.ct if modality == "ct" else case.pet, suv)
        mask = modality_mask(case, modality, image)
        where = f"patient {case.patient_id}, {MODALITY_LABEL[modality]}"
        feats = modality_features(image, mask, params.interpolation[modality], params.pyradiomics[modality], where)
        rows.extend((MODALITY_LABEL[modality], k, v) for k, v in feats.items())
    return rows
