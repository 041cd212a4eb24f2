"""``CaseData``: what every method's ``fit`` / ``predict_proba`` receives.

A ``CaseData`` names one patient, their label and where their preprocessed arrays are;
``load()`` returns the ``CaseArrays`` (memoised per process, so a fold loop reads each file
once). In-memory cases (a new patient in ``chmfl predict``) carry their arrays directly.
``features`` is the case's row of the cache's full-contour feature table (``data.features``),
when the cache carries one.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from chmfl.errors import ChmflError
from chmfl.preprocess.cache_format import CaseArrays, load_case


@functools.lru_cache(maxsize=512)
def _load_cached(path: str, mtime: float) -> CaseArrays:
    return load_case(path)


@dataclass(frozen=True)
class CaseData:
    """One patient for a method: id, DM label (1/0, None when unknown) and its arrays."""

    patient_id: str
    label: int | None
    path: Path | None = None
    arrays: CaseArrays | None = None
    features: Mapping[str, float] | None = field(default=None, compare=False, hash=False, repr=False)
    feature_source: str | None = None  # which table ``features`` come from ("contour:<params hash>")

    def load(self) -> CaseArrays:
        if self.arrays is not None:
            return self.arrays
        if self.path is None:
            raise ChmflError(f"case {self.patient_id} has neither a cache path nor arrays")
        p = Path(self.path)
        if not p.is_file():
            raise ChmflError(f"cache file for {self.patient_id} is missing: {p}")
        return _load_cached(str(p), p.stat().st_mtime)


def labels_of(cases: Sequence[CaseData]) -> np.ndarray:
    """The DM labels of ``cases`` as an int array; every case must have one."""
    missing = [c.patient_id for c in cases if c.label is None]
    if missing:
        raise ChmflError(f"cases without a DM label: {', '.join(missing[:5])}")
    return np.asarray([int(c.label) for c in cases], dtype=int)


def load_manifest(cache_dir: str | Path) -> pd.DataFrame:
    """Read ``CACHE/manifest.csv`` (patient ids kept as strings)."""
    path = Path(cache_dir) / "manifest.csv"
    if not path.is_file():
        raise ChmflError(f"no manifest.csv in {cache_dir}: run 'chmfl data prepare' first")
    return pd.read_csv(path, dtype={"patient_id": str, "exclusion": str}, keep_default_na=True)


def load_cases(cache_dir: str | Path, include_excluded: bool = False) -> list[CaseData]:
    """The cohort of a prepared cache: included patients (dm 0/1) unless asked otherwise; each
    with its row of ``CACHE/features.csv`` when the cache carries that table."""
    from chmfl.data.features import cache_features

    cache_dir = Path(cache_dir)
    df = load_manifest(cache_dir)
    table, source = cache_features(cache_dir) or ({}, None)
    cases = []
    for row in df.itertuples(index=False):
        dm = None if pd.isna(row.dm) else int(row.dm)
        if dm is None and not include_excluded:
            continue
        pid = str(row.patient_id)
        feats = table.get(pid)
        cases.append(CaseData(pid, dm, cache_dir / str(row.path), features=feats,
                              feature_source=source if feats is not None else None))
    if not cases:
        raise ChmflError(f"no included patients in {cache_dir / 'manifest.csv'}")
    return cases
