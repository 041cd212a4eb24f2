"""Per-patient handcrafted feature vectors and the cohort table, memoised.

Cases that carry a full-contour feature table (``CaseData.features``, from ``CACHE/features.csv``
written by ``chmfl features`` / ``chmfl data prepare``) are read from it: IBSI features of the
whole contour, CT and PET each on its own grid. Otherwise the features are computed from the
box arrays (``case_features``), which truncate large tumours. ``table.attrs["source"]`` says
which ("contour:<params hash>" or "box") so that methods can record it.

Several methods (hc-rf, mor-3dcnn, 3dmcl) need the same features in every fold and repeat, so
``feature_table`` extracts each patient once per process (memo keyed by cache file, its mtime
and the settings hash) and, given ``cache_dir``, once per machine (one JSON per patient).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chmfl.data.cases import CaseData
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.preprocess.cache_format import CaseArrays
from chmfl.radiomics.extract import extract_features, params_hash

_MEMO: dict[str, dict[str, float]] = {}


def case_features(arrays: CaseArrays) -> dict[str, float]:
    """Features of one case: ``pet_*`` from ``pet_suv``, ``ct_*`` from ``ct_hu`` and, once,
    ``shape_*`` from the contour (shape does not depend on the modality)."""
    ct = extract_features(arrays.ct_hu, arrays.mask, arrays.spacing, "ct")
    pet = extract_features(arrays.pet_suv, arrays.mask, arrays.spacing, "pet")
    out = {k: v for k, v in ct.items() if k.startswith("shape_")}
    out.update({f"ct_{k}": v for k, v in ct.items() if not k.startswith("shape_")})
    out.update({f"pet_{k}": v for k, v in pet.items()})
    return out


def case_key(case: CaseData) -> str:
    """What identifies a case's features: its cache file (path, mtime, size) or, for
    in-memory cases, a hash of its arrays; always with the settings hash."""
    h = hashlib.sha1(params_hash().encode())
    if case.arrays is None and case.path is not None:
        p = Path(case.path)
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_mtime_ns}|{st.st_size}".encode())
    else:
        a = case.load()
        for arr in (a.ct_hu, a.pet_suv, a.mask):
            if arr is not None:
                h.update(np.ascontiguousarray(arr).tobytes())
        h.update(np.asarray(a.spacing, float).tobytes())
    return h.hexdigest()[:20]


def _disk_path(cache_dir: Path, case: CaseData, key: str) -> Path:
    return Path(cache_dir) / f"{case.patient_id}-{key}.json"


def _read_disk(path: Path) -> dict[str, float] | None:
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())
    return {k: (math.nan if v is None else float(v)) for k, v in raw["features"].items()}


def _write_disk(path: Path, case: CaseData, feats: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: (None if not math.isfinite(v) else v) for k, v in feats.items()}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps({"patient_id": case.patient_id, "features": clean}))


def _compute(case: CaseData) -> dict[str, float]:
    return case_features(case.load())


BOX_SOURCE = "box"


def feature_source(cases: Sequence[CaseData]) -> str:
    """Where ``feature_table(cases)`` takes its features from: the cases' full-contour table
    ("contour:<params hash>", the same for all) or "box" (none carries one)."""
    sources = {c.feature_source if c.features is not None else BOX_SOURCE for c in cases}
    if len(sources) > 1:
        missing = [c.patient_id for c in cases if c.features is None][:5]
        raise ChmflError(f"cases mix feature tables {sorted(map(str, sources))}: patients without a full-contour "
                         f"row: {', '.join(missing) or 'none'} (re-run 'chmfl features' for the whole cohort)")
    return sources.pop() if sources else BOX_SOURCE


def contour_table(cases: Sequence[CaseData]) -> pd.DataFrame:
    """The cases' full-contour rows as one table (index ``patient_id``; NaN where absent)."""
    table = pd.DataFrame([dict(c.features) for c in cases],
                         index=pd.Index([c.patient_id for c in cases], name="patient_id")).astype(float)
    table.attrs["source"] = feature_source(cases)
    return table


def feature_table(cases: Sequence[CaseData], n_jobs: int = 1, cache_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per case (index ``patient_id``), one column per feature; NaN where a
    contour was too small. Full-contour rows when the cases carry them; else extracted from the
    box arrays, only what neither memo holds, ``n_jobs`` at a time."""
    if feature_source(cases) != BOX_SOURCE:
        return contour_table(cases)
    keys = [case_key(c) for c in cases]
    todo = []
    for case, key in zip(cases, keys):
        if key in _MEMO:
            continue
        cached = _read_disk(_disk_path(Path(cache_dir), case, key)) if cache_dir else None
        if cached is not None:
            _MEMO[key] = cached
        else:
            todo.append((case, key))
    if todo:
        results = _run([c for c, _ in todo], n_jobs)
        for (case, key), feats in zip(todo, results):
            _MEMO[key] = feats
            if cache_dir:
                _write_disk(_disk_path(Path(cache_dir), case, key), case, feats)
    rows = [_MEMO[k] for k in keys]
    table = pd.DataFrame(rows, index=pd.Index([c.patient_id for c in cases], name="patient_id")).astype(float)
    table.attrs["source"] = BOX_SOURCE
    return table


def _run(cases: list[CaseData], n_jobs: int) -> list[dict[str, float]]:
    if n_jobs == 1 or len(cases) == 1:
        return [_compute(c) for c in cases]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs)(delayed(_compute)(c) for c in cases)


def clear_memo() -> None:
    """Forget the in-process memo (tests; after changing settings files)."""
    _MEMO.clear()
