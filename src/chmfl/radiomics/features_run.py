"""``chmfl features``: full-contour IBSI features of a cohort as one long CSV.

    FEATURES.csv               patient_id, modality (CT | PET), feature, value; written atomically
    FEATURES.params.yaml       the parameter file used (+ its hash, chmfl / pyradiomics versions)
    CACHE/<params-hash>/<pid>.json   one patient's rows, reused while the parameters, the code
                               version and the patient's input files (names, sizes) are unchanged

The cache works like the image cache of ``chmfl data prepare`` (``preprocess.prepare``). A
failing patient (no contour, empty or all-outside contour, a contour pyradiomics cannot use)
stops the run with one line naming the patient; nothing is written then but the cache entries
of the patients already done.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from chmfl import __version__
from chmfl.cohort.case import Case
from chmfl.data.features import COLUMNS
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.radiomics.contour import ContourParams, load_contour_params, patient_features

CACHE_NAME = "features_cache"  # default cache folder, beside the CSV


@dataclass
class FeaturesResult:
    """What a ``compute_features`` run did (the table itself is on disk)."""

    out: Path
    table: pd.DataFrame
    params_hash: str
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    seconds: float = 0.0


def params_file_path(out: str | Path) -> Path:
    """Where the parameter file of ``FEATURES.csv`` is written: ``FEATURES.params.yaml``."""
    out = Path(out)
    return out.with_name(out.stem + ".params.yaml")


def _entry(cache: Path, case: Case, fingerprint: str) -> list[tuple[str, str, float]] | None:
    path = cache / f"{case.patient_id}.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if doc.get("source_fingerprint") != fingerprint:
        return None
    return [(m, f, math.nan if v is None else float(v)) for m, f, v in doc["rows"]]


def _store(cache: Path, case: Case, fingerprint: str, rows: list[tuple[str, str, float]], cpu_s: float) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    clean = [(m, f, v if math.isfinite(v) else None) for m, f, v in rows]
    doc = {"patient_id": case.patient_id, "source_fingerprint": fingerprint, "cpu_seconds": round(cpu_s, 2),
           "rows": clean}
    with atomic_path(cache / f"{case.patient_id}.json") as tmp:
        Path(tmp).write_text(json.dumps(doc))


def _one(case: Case, params: ContourParams) -> tuple[list | None, str, float]:
    """``patient_features`` with every error as one line naming the patient (for the pool),
    and the CPU seconds it took."""
    start = time.process_time()
    try:
        return patient_features(case, params), "", time.process_time() - start
    except ChmflError as exc:
        message = str(exc)
    except Exception as exc:  # report, never crash the pool
        first = str(exc).splitlines()[0] if str(exc) else ""
        message = f"{type(exc).__name__}: {first}"
    prefix = f"patient {case.patient_id}"
    return None, message if message.startswith(prefix) else f"{prefix}: {message}", 0.0


def _run(todo: list[tuple[Case, str]], params: ContourParams, cache: Path, workers: int) -> dict[str, list]:
    """Compute ``todo`` (case, fingerprint), in a process pool when workers > 1; the first
    failure cancels the rest and raises."""
    done: dict[str, list] = {}

    def finish(case: Case, fp: str, rows, err: str, cpu_s: float) -> None:
        if err:
            raise ChmflError(err)
        _store(cache, case, fp, rows, cpu_s)
        done[case.patient_id] = rows

    if workers <= 1 or len(todo) <= 1:
        for case, fp in todo:
            finish(case, fp, *_one(case, params))
        return done
    from chmfl.preprocess.prepare import _init_worker

    with cf.ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        futures = {pool.submit(_one, case, params): (case, fp) for case, fp in todo}
        try:
            for fut in cf.as_completed(futures):
                finish(*futures[fut], *fut.result())
        except BaseException:
            for other in futures:
                other.cancel()
            raise
    return done


def _write(out: Path, table: pd.DataFrame, params: ContourParams, info: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"params_hash": params.hash(), "chmfl_version": __version__, **info, **params.to_dict()}
    with atomic_path(params_file_path(out)) as tmp:
        Path(tmp).write_text(yaml.safe_dump(json.loads(json.dumps(doc)), sort_keys=False))
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.9g")


def compute_features(
    source: str | Path,
    out: str | Path,
    clinical: str | Path | None = None,
    params: str | Path | None = None,
    voxel_mm: str | float | None = None,
    workers: int = 1,
    cache: str | Path | None = None,
    layout: str | None = None,
    patients: Sequence[str] | None = None,
) -> FeaturesResult:
    """Full-contour features of every patient of ``source`` (any layout ``chmfl data prepare``
    reads; only ``patients`` when given) into the long CSV ``out`` (see the module docstring)."""
    from chmfl.preprocess.prepare import load_cohort, source_fingerprint

    start = time.perf_counter()
    settings = load_contour_params(params, voxel_mm)  # bad parameters fail before any patient
    source, out = Path(source).resolve(), Path(out)
    if out.suffix.lower() != ".csv":
        raise ChmflError(f"--out must name a .csv file, got {out}")
    cases, layout, clinical_path = load_cohort(source, clinical, layout)
    if patients is not None:
        wanted = set(patients)
        cases = [c for c in cases if c.patient_id in wanted]
    folder = (Path(cache) if cache else out.parent / CACHE_NAME) / settings.hash()
    rows_by_pid, todo = {}, []
    for case in cases:
        fp = source_fingerprint(case, source)
        rows = _entry(folder, case, fp)
        if rows is None:
            todo.append((case, fp))
        else:
            rows_by_pid[case.patient_id] = rows
    reused = sorted(rows_by_pid)
    rows_by_pid.update(_run(todo, settings, folder, workers))
    table = pd.DataFrame([(c.patient_id, *r) for c in cases for r in rows_by_pid[c.patient_id]], columns=list(COLUMNS))
    info = {"source": str(source), "layout": layout, "clinical": str(clinical_path) if clinical_path else None,
            "n_patients": len(cases), "voxel_mm_override": None if voxel_mm is None else str(voxel_mm)}
    _write(out, table, settings, info)
    return FeaturesResult(out, table, settings.hash(), [c.patient_id for c, _ in todo], reused,
                          time.perf_counter() - start)


def strip_paths(out: str | Path) -> None:
    """Keep machine-local paths out of a shipped table: its parameter file records the source and
    clinical file by name only (``chmfl data bundle``)."""
    path = params_file_path(out)
    doc = yaml.safe_load(path.read_text())
    for key in ("source", "clinical"):
        if doc.get(key):
            doc[key] = Path(str(doc[key])).name
    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(doc, sort_keys=False))
