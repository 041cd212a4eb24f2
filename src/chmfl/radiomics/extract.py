"""Handcrafted features of one image inside one mask (pyradiomics with IBSI-conformant settings).

The settings live in the package's pyradiomics parameter files ``params_ct.yaml`` and
``params_pet.yaml`` (see the comments there and docs/methods.md). Arrays are (z, y, x) with
spacing in mm in the same order; feature names drop pyradiomics' ``original_`` prefix
(``glcm_Contrast``, ``shape_Sphericity``). Shape adds Vallieres' solidity (volume / convex hull
volume, = IBSI "volume density (convex hull)"), which pyradiomics lacks.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import math
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np
import yaml

from chmfl.errors import ChmflError

MODALITIES = ("ct", "pet")
MIN_VOXELS = 8  # smaller contours give NaN features (imputed in each method's fit)
FEATURES_VERSION = "1"  # bump when the feature code (not the settings) changes


def quiet_pyradiomics() -> None:
    """Silence pyradiomics' per-extraction INFO/WARNING chatter (it logs every class it runs)."""
    import radiomics

    radiomics.setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)


@functools.cache
def _params_text(modality: str) -> str:
    if modality not in MODALITIES:
        raise ChmflError(f"unknown radiomics modality {modality!r}: use one of {MODALITIES}")
    return resources.files("chmfl.radiomics").joinpath(f"params_{modality}.yaml").read_text()


def load_params(modality: str) -> dict[str, Any]:
    """The pyradiomics parameter dict for ``modality`` ("ct" or "pet"), a fresh copy."""
    return yaml.safe_load(_params_text(modality))


def params_hash(params: Mapping[str, Any] | None = None) -> str:
    """Short hash of the settings of both modalities (or of ``params``), the pyradiomics
    version and this module's feature version: the key under which features are cached."""
    if params is None:
        return _default_params_hash()
    import radiomics

    text = json.dumps([params, radiomics.__version__, FEATURES_VERSION], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@functools.cache
def _default_params_hash() -> str:
    return params_hash({m: load_params(m) for m in MODALITIES})


@functools.lru_cache(maxsize=8)
def _extractor(params_json: str):
    from radiomics import featureextractor

    quiet_pyradiomics()
    return featureextractor.RadiomicsFeatureExtractor(json.loads(params_json))


def _to_sitk(array: np.ndarray, spacing, dtype):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=dtype))
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))  # (z, y, x) -> ITK (x, y, z)
    return img


def extract_with_params(image: np.ndarray, mask: np.ndarray, spacing, params: Mapping[str, Any]) -> dict[str, float]:
    """Features of ``image`` inside ``mask`` with an explicit pyradiomics parameter dict.

    Raises ``ValueError`` (from pyradiomics) when the mask is not a valid ROI."""
    if image.shape != mask.shape:
        raise ChmflError(f"image {image.shape} and mask {mask.shape} differ in shape")
    params = copy.deepcopy(dict(params))
    extractor = _extractor(json.dumps(params, sort_keys=True))
    img = _to_sitk(image, spacing, np.float64)
    msk = _to_sitk((mask > 0).astype(np.uint8), spacing, np.uint8)
    raw = extractor.execute(img, msk)
    out = {k.removeprefix("original_"): _real(k, v) for k, v in raw.items() if not k.startswith("diagnostics_")}
    if "shape" in (params.get("featureClass") or {}):
        out.update(convex_hull_features(mask, spacing, out["shape_MeshVolume"], out["shape_SurfaceArea"]))
    return out


def _real(name: str, value: Any) -> float:
    """A feature value as a float. pyradiomics' shape class takes the principal axes from
    ``numpy.linalg.eigvals`` of the (symmetric) covariance matrix, the solver for general
    matrices: where two axes are equally long (a sphere) it returns the degenerate pair as
    complex conjugates with imaginary parts of ~1e-16, and the axis lengths, elongation and
    flatness come out complex. Such a value is its real part; a really complex one (never
    seen) is NaN, with a warning, rather than half a number."""
    if not np.iscomplexobj(value):
        return float(value)
    z = complex(value)
    if abs(z.imag) <= 1e-9 * max(1.0, abs(z.real)):
        return z.real
    logging.getLogger(__name__).warning("radiomics %s = %s is complex; set to NaN", name, z)
    return math.nan


@functools.lru_cache(maxsize=4)
def feature_names(modality: str) -> tuple[str, ...]:
    """Names ``extract_features`` returns for ``modality`` (from a tiny synthetic extraction)."""
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 10 if modality == "pet" else 300, size=(8, 8, 8))
    mask = np.zeros(image.shape, np.uint8)
    mask[2:6, 2:6, 2:6] = 1
    return tuple(extract_with_params(image, mask, (1.0, 1.0, 1.0), load_params(modality)))


def extract_features(image: np.ndarray, mask: np.ndarray | None, spacing, modality: str) -> dict[str, float]:
    """Handcrafted features of ``image`` (CT in HU or PET in SUVbw) inside ``mask``.

    Contours under ``MIN_VOXELS`` voxels (or emptied by re-segmentation) give all-NaN features
    with the same names, so one bad case does not stop a cohort table."""
    names = feature_names(modality)
    if mask is None or int(np.count_nonzero(mask)) < MIN_VOXELS:
        return dict.fromkeys(names, math.nan)
    try:
        feats = extract_with_params(image, mask, spacing, load_params(modality))
    except ValueError as err:  # pyradiomics: ROI invalid after re-segmentation
        logging.getLogger(__name__).warning("radiomics %s: %s; features set to NaN", modality, err)
        return dict.fromkeys(names, math.nan)
    return {k: feats.get(k, math.nan) for k in names}


def _surface_points(mask: np.ndarray, spacing) -> np.ndarray:
    """Mesh vertices of the mask's iso-surface at 0.5: the midpoints between every pair of
    face-adjacent voxel centres where one is inside and one outside (what marching cubes yields)."""
    m = np.pad(mask > 0, 1)
    pts = []
    for axis in range(3):
        a = np.take(m, range(m.shape[axis] - 1), axis=axis)
        b = np.take(m, range(1, m.shape[axis]), axis=axis)
        idx = np.argwhere(a != b).astype(float)
        idx[:, axis] += 0.5
        pts.append(idx)
    return (np.concatenate(pts) - 1.0) * np.asarray(spacing, float)


def convex_hull_features(mask: np.ndarray, spacing, mesh_volume: float, mesh_area: float) -> dict[str, float]:
    """Solidity (Vallieres; IBSI volume density, convex hull = mesh volume / hull volume) and
    IBSI area density (convex hull) = mesh area / hull area."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(_surface_points(mask, spacing))
    except (QhullError, ValueError):  # flat or tiny contour: no 3D hull
        return {"shape_Solidity": math.nan, "shape_ConvexHullAreaDensity": math.nan}
    return {"shape_Solidity": mesh_volume / hull.volume, "shape_ConvexHullAreaDensity": mesh_area / hull.area}
