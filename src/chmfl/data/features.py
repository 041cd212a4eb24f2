"""The full-contour feature table a prepared cache carries (``CACHE/features.csv``).

``chmfl data prepare`` (or ``chmfl features ... --out CACHE/features.csv``) writes the long table
``patient_id, modality, feature, value`` and ``features.params.yaml`` beside it; ``load_cases``
gives each case its row as ``CaseData.features`` (``<modality>_<feature>`` -> value, e.g.
``ct_morph_volume``, ``pet_stat_max``) and ``CaseData.feature_source``, which says which table it
is (file name and parameter hash) so results can record it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from chmfl.errors import ChmflError

FEATURES_FILE = "features.csv"
COLUMNS = ("patient_id", "modality", "feature", "value")


def wide_features(long: pd.DataFrame) -> pd.DataFrame:
    """One row per patient, one column per ``<modality>_<feature>`` (ct_stat_max, pet_morph_volume)."""
    key = long["modality"].astype(str).str.lower() + "_" + long["feature"].astype(str)
    wide = long.assign(column=key).pivot(index="patient_id", columns="column", values="value")
    wide.columns.name = None
    return wide.astype(float)


def read_long(path: str | Path) -> pd.DataFrame:
    """A long features CSV, checked for its columns."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"patient_id": str, "modality": str, "feature": str})
    except (OSError, ValueError) as exc:
        raise ChmflError(f"features table {path}: cannot read it ({type(exc).__name__})") from None
    if tuple(df.columns) != COLUMNS:
        raise ChmflError(f"features table {path}: columns must be {', '.join(COLUMNS)}")
    return df


def table_source(path: str | Path) -> str:
    """``contour:<params hash>`` of a features CSV (from its ``.params.yaml``), for the record."""
    path = Path(path)
    params = path.with_name(path.stem + ".params.yaml")
    try:
        doc = yaml.safe_load(params.read_text()) or {}
    except (OSError, yaml.YAMLError):
        doc = {}
    return f"contour:{doc.get('params_hash', 'unknown')}"


def cache_features(cache_dir: str | Path) -> tuple[dict[str, dict[str, float]], str] | None:
    """Per-patient features of a cache's ``features.csv`` and its source, or None without one."""
    path = Path(cache_dir) / FEATURES_FILE
    if not path.is_file():
        return None
    wide = wide_features(read_long(path))
    rows = {str(pid): {k: float(v) for k, v in row.items()} for pid, row in wide.iterrows()}
    return rows, table_source(path)
