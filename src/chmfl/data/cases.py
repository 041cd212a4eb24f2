"""``CaseData``: what every method's ``fit`` / ``predict_proba`` receives.

A ``CaseData`` names one patient, their label (and, where the manifest has them, the DM-free
survival time and event and the clinical covariates) and where their preprocessed arrays are;
``load()`` returns the ``CaseArrays`` (memoised per process, so a fold loop reads each file
once). In-memory cases (a new patient in ``chmfl predict``) carry their arrays directly.
``features`` is the case's row of the cache's full-contour feature table (``data.features``),
when the cache carries one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from chmfl.cohort.endpoint import ENDPOINT, dm_by_horizon
from chmfl.errors import ChmflError
from chmfl.preprocess.cache_format import CaseArrays, load_case

ENDPOINTS = ("dm", ENDPOINT)  # the binary DM label (default) and DM-free survival


@functools.lru_cache(maxsize=512)
def _load_cached(path: str, mtime: float, box: str = "contour") -> CaseArrays:
    return load_case(path, box)


@dataclass(frozen=True)
class Covariates:
    """Clinical covariates of one patient (``cohort.endpoint`` codes them; "" / None: not recorded)."""

    age_years: float | None = None
    grade: str = ""  # low / intermediate / high
    histology_group: str = ""  # cohort.endpoint.HISTOLOGY_GROUPS


@dataclass(frozen=True)
class CaseData:
    """One patient for a method: id, label (1/0, None when unknown) and its arrays.

    For the DM-free survival endpoint ``label`` is the event indicator (DM observed during
    follow-up), ``time_days`` the time from the PET scan to DM or censoring and ``event`` the
    same indicator; both are None where the cohort has no endpoint.
    """

    patient_id: str
    label: int | None
    path: Path | None = None
    arrays: CaseArrays | None = None
    features: Mapping[str, float] | None = field(default=None, compare=False, hash=False, repr=False)
    feature_source: str | None = None  # which table ``features`` come from ("contour:<params hash>")
    time_days: float | None = None
    event: int | None = None
    covariates: Covariates | None = None
    box: str = "contour"  # which stored box ``load`` returns: "contour" or "hotspot" (no contour seen)

    def load(self) -> CaseArrays:
        """The case's arrays; in the hotspot box without the contour (``mask`` None: a method
        never sees the truth there; ``truth`` gives it to the evaluation)."""
        arrays = self._stored()
        return dataclasses.replace(arrays, mask=None) if self.box == "hotspot" else arrays

    def _stored(self) -> CaseArrays:
        if self.arrays is not None:
            return self.arrays
        if self.path is None:
            raise ChmflError(f"case {self.patient_id} has neither a cache path nor arrays")
        p = Path(self.path)
        if not p.is_file():
            raise ChmflError(f"cache file for {self.patient_id} is missing: {p}")
        return _load_cached(str(p), p.stat().st_mtime, self.box)

    def truth(self) -> tuple[np.ndarray | None, float]:
        """For evaluation only: the contour on this case's box and how many box-grid voxels of
        the tumour lie outside the box (from the tumour's volume and the fraction inside)."""
        arrays = self._stored()
        if arrays.mask is None:
            return None, 0.0
        meta = arrays.meta
        voxel_ml = float(np.prod(arrays.spacing)) / 1000.0
        outside = (1.0 - float(meta.get("mask_fraction_in_box", 1.0))) * float(meta.get("mask_volume_ml", 0.0))
        return arrays.mask, max(0.0, outside / voxel_ml)

    def in_box(self, box: str) -> CaseData:
        """This patient with its ``box`` ("hotspot": no full-contour features either)."""
        if box == "contour":
            return dataclasses.replace(self, box=box)
        return dataclasses.replace(self, box=box, features=None, feature_source=None)


def labels_of(cases: Sequence[CaseData]) -> np.ndarray:
    """The DM labels of ``cases`` as an int array; every case must have one."""
    missing = [c.patient_id for c in cases if c.label is None]
    if missing:
        raise ChmflError(f"cases without a DM label: {', '.join(missing[:5])}")
    return np.asarray([int(c.label) for c in cases], dtype=int)


def survival_of(cases: Sequence[CaseData]) -> tuple[np.ndarray, np.ndarray]:
    """(time in days, event as bool) of ``cases``; every case must have both."""
    missing = [c.patient_id for c in cases if c.time_days is None or c.event is None]
    if missing:
        raise ChmflError(f"cases without a DM-free survival time: {', '.join(missing[:5])}")
    return (np.asarray([float(c.time_days) for c in cases]),
            np.asarray([bool(c.event) for c in cases]))


def load_manifest(cache_dir: str | Path) -> pd.DataFrame:
    """Read ``CACHE/manifest.csv`` (patient ids kept as strings)."""
    path = Path(cache_dir) / "manifest.csv"
    if not path.is_file():
        raise ChmflError(f"no manifest.csv in {cache_dir}: run 'chmfl data prepare' first")
    return pd.read_csv(path, dtype={"patient_id": str, "exclusion": str}, keep_default_na=True)


def _value(row, name: str):
    v = getattr(row, name, None)
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) else v


def _case(row, cache_dir: Path, label: int | None, features: tuple[dict, str | None]) -> CaseData:
    """One manifest row as a case: label, endpoint, covariates and its full-contour features."""
    time, event = _value(row, "dmfs_days"), _value(row, "dmfs_event")
    age = _value(row, "age_years")
    covariates = Covariates(None if age is None else float(age), str(_value(row, "grade") or ""),
                            str(_value(row, "histology_group") or ""))
    pid = str(row.patient_id)
    table, source = features
    feats = table.get(pid)
    return CaseData(pid, label, cache_dir / str(row.path), features=feats,
                    feature_source=source if feats is not None else None,
                    time_days=None if time is None else float(time),
                    event=None if event is None else int(event), covariates=covariates)


def _require_endpoint(df: pd.DataFrame, cache_dir: Path) -> None:
    missing = [c for c in ("dmfs_days", "dmfs_event") if c not in df.columns]
    if missing:
        raise ChmflError(f"{cache_dir / 'manifest.csv'} has no DM-free survival columns ({', '.join(missing)}): "
                         "re-run 'chmfl data prepare' with the clinical sheet")


def load_cases(cache_dir: str | Path, include_excluded: bool = False, endpoint: str = "dm") -> list[CaseData]:
    """The cohort of a prepared cache for ``endpoint``.

    "dm" (default): included patients (dm 0/1) unless ``include_excluded``; "dm-free-survival":
    every patient with a DM-free survival time, labelled by its event indicator. Each case
    carries its row of ``CACHE/features.csv`` when the cache has that table."""
    from chmfl.data.features import cache_features

    if endpoint not in ENDPOINTS:
        raise ChmflError(f"unknown endpoint {endpoint!r}: use one of {', '.join(ENDPOINTS)}")
    cache_dir = Path(cache_dir)
    df = load_manifest(cache_dir)
    features = cache_features(cache_dir) or ({}, None)
    if endpoint == ENDPOINT:
        _require_endpoint(df, cache_dir)
    cases = []
    for row in df.itertuples(index=False):
        if endpoint == ENDPOINT:
            label = _value(row, "dmfs_event")
            if label is None or _value(row, "path") is None:
                continue
        else:
            label = _value(row, "dm")
            if label is None and not include_excluded:
                continue
        cases.append(_case(row, cache_dir, None if label is None else int(label), features))
    if not cases:
        raise ChmflError(f"no included patients in {cache_dir / 'manifest.csv'}")
    return cases


def load_horizon_cases(cache_dir: str | Path, horizon_days: float) -> tuple[list[CaseData], dict]:
    """The binary cohort (dm 0/1) relabelled by ``dm_by_horizon`` at ``horizon_days`` from the
    PET scan, patients censored before the horizon left out (issue 14's censoring-aware
    labels). Returns the cases and the counts ``{"horizon_days", "dm", "no_dm", "unknown",
    "unknown_ids"}`` for the caller to report."""
    _require_endpoint(load_manifest(cache_dir), Path(cache_dir))
    base = load_cases(cache_dir)
    kept, unknown = [], []
    for c in base:
        y = dm_by_horizon(c.time_days, c.event, horizon_days)
        if y is None:
            unknown.append(c.patient_id)
        else:
            kept.append(replace(c, label=y))  # features, endpoint and covariates kept
    counts = {"horizon_days": float(horizon_days), "dm": sum(c.label == 1 for c in kept),
              "no_dm": sum(c.label == 0 for c in kept), "unknown": len(unknown), "unknown_ids": unknown}
    return kept, counts
