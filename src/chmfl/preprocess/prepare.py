"""``chmfl data prepare``: a cohort folder + clinical file -> the preprocessed cache.

Cache layout (see docs/data.md)::

    CACHE/manifest.csv            one row per patient found (included or not), written last
    CACHE/prepare_config.yaml     config, its hash, package version, source, layout
    CACHE/<hash>/<pid>.npz        one file per patient (``cache_format``), written atomically

A case file is reused when it exists under the same config hash and was made from the same
input files (names and sizes: the ``source_fingerprint`` in its meta). A failing patient
stops the run (default) and removes what this run wrote, or, with ``skip_bad``, is listed
with dm empty and the error as its exclusion.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from tqdm import tqdm

from chmfl import __version__
from chmfl.cohort.case import Case
from chmfl.cohort.clinical import read_clinical
from chmfl.cohort.endpoint import covariate_row, dm_free_survival
from chmfl.cohort.label_check import check_ids_match
from chmfl.cohort.layouts import attach_labels, default_clinical, detect_layout, find_cases
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.preprocess.cache_format import save_case
from chmfl.preprocess.config import PrepareConfig

log = logging.getLogger(__name__)

_STAT_KEYS = (
    "center_method", "pad_fraction_ct", "pad_fraction_pet", "mask_volume_ml", "mask_fraction_in_box",
    "hotspot_error_mm", "hotspot_tumour_fraction", "hotspot_box_holds_tumour", "hotspot_box",
)
# labels, the DM-free survival endpoint (cohort.endpoint), covariates, the case file, its stats
MANIFEST_COLUMNS = (
    "patient_id", "dm", "exclusion", "outcome", "lung_mets", "event", "time_days",
    "days_to_outcome", "days_to_last_followup", "status", "pet_offset_days", "dmfs_days",
    "dmfs_event", "followup_days", "age_years", "grade", "mskcc_type", "histology_group",
    "path", *_STAT_KEYS,
)


@dataclass
class PrepareResult:
    """What a prepare run did (the manifest itself is on disk)."""

    cache_dir: Path
    manifest: pd.DataFrame
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def source_fingerprint(case: Case, root: Path) -> str:
    """Hash of the names (relative to the source) and sizes of the case's input files."""
    h = hashlib.sha256()
    for f in case.input_files():
        rel = f.relative_to(root) if f.is_relative_to(root) else f
        h.update(f"{rel.as_posix()}:{f.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def _cached_meta(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except Exception:  # unreadable or foreign file: recompute it
        return None


def _init_worker() -> None:
    """One ITK thread per worker process: the pool already uses the cores."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def prepare_one(case: Case, config: PrepareConfig, target: Path, fingerprint: str,
                compresslevel: int = 1) -> dict:
    """Read, preprocess and write one patient; returns the meta stored with it."""
    from chmfl.preprocess.load import load_case_volumes
    from chmfl.preprocess.pipeline import preprocess_case

    ct, pet, mask = load_case_volumes(case, config)
    arrays = preprocess_case(case.patient_id, ct, pet, mask, config)
    arrays.meta.update(source_fingerprint=fingerprint, chmfl_version=__version__)
    save_case(target, arrays, dtype=config.dtype, compresslevel=compresslevel)
    return arrays.meta


def _run_one(case: Case, config: PrepareConfig, target: Path, fingerprint: str,
             compresslevel: int) -> tuple[dict | None, str]:
    """``prepare_one`` with every error turned into a one-line message (for the pool)."""
    try:
        return prepare_one(case, config, target, fingerprint, compresslevel), ""
    except ChmflError as exc:
        message = str(exc)
    except Exception as exc:  # report, never crash the pool; the message names the type
        first = str(exc).splitlines()[0] if str(exc) else ""
        message = f"{type(exc).__name__}: {first}"
    prefix = f"patient {case.patient_id}"
    return None, message if message.startswith(prefix) else f"{prefix}: {message}"


def _manifest_row(case: Case, meta: dict | None, rel: str, error: str) -> dict:
    labels = case.labels.as_row() if case.labels else {}
    row = {"patient_id": case.patient_id, **labels, **dm_free_survival(case.labels).as_row(),
           **covariate_row(case.labels), "path": rel if meta else None}
    if error:
        row.update(dm=None, exclusion=f"prepare failed: {error.split(': ', 1)[-1]}")
    row.update({k: (meta or {}).get(k) for k in _STAT_KEYS})
    return row


def write_manifest(out: Path, rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows).reindex(columns=list(MANIFEST_COLUMNS))
    for col in ("dm", "lung_mets", "event", "dmfs_event"):
        df[col] = pd.array(df[col], dtype="Int64")
    with atomic_path(out / "manifest.csv") as tmp:
        df.to_csv(tmp, index=False)
    return df


def _write_config(out: Path, config: PrepareConfig, info: dict) -> None:
    doc = {"config": config.to_dict(), "config_hash": config.hash(), "chmfl_version": __version__, **info}
    with atomic_path(out / "prepare_config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(json.loads(json.dumps(doc)), sort_keys=False))


def _run_one_on_cluster(case: Case, config: PrepareConfig, target: Path, fingerprint: str,
                        compresslevel: int) -> tuple[dict | None, str]:
    """``_run_one`` in a Ray task (one CPU: one ITK thread, as in the process pool)."""
    _init_worker()
    return _run_one(case, config, target, fingerprint, compresslevel)


def _execute_on_ray(todo: list[tuple[Case, Path, str]], config: PrepareConfig, address: str | None,
                    bar, stop_on_error: bool, level: int) -> dict[str, tuple[dict | None, str]]:
    """Every patient of ``todo`` as a Ray task (``chmfl.cluster``: re-run if its worker dies;
    a patient's file is written atomically, so a re-run starts clean). Absolute paths: every
    node sees the same shared disk."""
    from chmfl.cluster import ray_map

    def done(_: int, result: tuple[dict | None, str]) -> bool:
        bar.update()
        return not (stop_on_error and result[1])

    jobs = [(c, config, t.resolve(), fp, level) for c, t, fp in todo]
    outs = ray_map(_run_one_on_cluster, jobs, address=address, on_result=done)
    return {todo[i][0].patient_id: res for i, res in enumerate(outs)}


def _execute(todo: list[tuple[Case, Path, str]], config: PrepareConfig, workers: int,
             progress: bool, stop_on_error: bool, level: int, executor: str = "local",
             address: str | None = None) -> dict[str, tuple[dict | None, str]]:
    """Run ``prepare_one`` over ``todo``, in a process pool when workers > 1, or on a Ray
    cluster (``executor="ray"``)."""
    results: dict[str, tuple[dict | None, str]] = {}
    bar = tqdm(total=len(todo), unit="patient", desc="prepare", disable=not progress)
    if executor == "ray" and todo:
        results = _execute_on_ray(todo, config, address, bar, stop_on_error, level)
    elif workers <= 1 or len(todo) <= 1:
        for case, target, fp in todo:
            results[case.patient_id] = _run_one(case, config, target, fp, level)
            bar.update()
            if stop_on_error and results[case.patient_id][1]:
                break
    else:
        with cf.ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
            futures = {pool.submit(_run_one, c, config, t, fp, level): c.patient_id for c, t, fp in todo}
            for fut in cf.as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update()
                if stop_on_error and results[futures[fut]][1]:
                    for other in futures:
                        other.cancel()
                    break
    bar.close()
    return results


def load_cohort(source: Path, clinical: str | Path | None, layout: str | None) -> tuple[list[Case], str, Path | None]:
    """The labelled cases of ``source``, its layout and the clinical file used."""
    layout = layout or detect_layout(source)
    clinical = clinical or (default_clinical(source) if layout == "nnunet" else None)
    records = read_clinical(clinical) if clinical else None
    found = find_cases(source, layout)
    if records is not None:
        check_ids_match([c.patient_id for c in found], list(records), f"clinical file {clinical}")
    cases = attach_labels(found, records)
    if records is not None:
        unmatched = set(records) - {c.patient_id for c in cases}
        if unmatched:
            log.info("%d patient(s) of the clinical file have no images", len(unmatched))
    return cases, layout, Path(clinical).resolve() if clinical else None


def _plan(cases: list[Case], source: Path, cache_dir: Path) -> tuple[dict[str, dict], list]:
    """Split into reusable case files (pid -> stored meta) and (case, target, fingerprint) to do."""
    cached, todo = {}, []
    for case in cases:
        target, fp = cache_dir / f"{case.patient_id}.npz", source_fingerprint(case, source)
        meta = _cached_meta(target) if target.is_file() else None
        if meta and meta.get("source_fingerprint") == fp:
            cached[case.patient_id] = meta
        else:
            todo.append((case, target, fp))
    return cached, todo


def prepare_cohort(
    source: str | Path,
    out: str | Path,
    clinical: str | Path | None = None,
    config: PrepareConfig | None = None,
    workers: int = 1,
    skip_bad: bool = False,
    layout: str | None = None,
    progress: bool = True,
    compresslevel: int = 1,
    executor: str = "local",
    address: str | None = None,
) -> PrepareResult:
    """Preprocess every patient of ``source`` into ``out`` (see the module docstring).

    ``compresslevel``: deflate level of the case files (1: fast; the quantised images still
    shrink to about half). ``executor="ray"``: one Ray task per patient on the cluster at
    ``address`` (``chmfl.cluster``; ``workers`` is then unused).
    """
    from chmfl.cluster import check_executor

    check_executor(executor)
    start = time.perf_counter()
    config = config or PrepareConfig()
    source, out = Path(source).resolve(), Path(out)
    cases, layout, clinical = load_cohort(source, clinical, layout)
    cache_dir = out / config.hash()
    cached, todo = _plan(cases, source, cache_dir)
    existed = {t for _, t, _ in todo if t.exists()}
    out_existed, cache_existed = out.exists(), cache_dir.exists()
    results = _execute(todo, config, workers, progress, not skip_bad, compresslevel, executor, address)
    failed = {pid: err for pid, (_, err) in results.items() if err}
    if failed and not skip_bad:
        _remove_new(todo, existed, cache_dir, out, cache_existed, out_existed)
        raise ChmflError(next(iter(failed.values())))
    metas = {**cached, **{pid: m for pid, (m, _) in results.items() if m}}
    rows = [_manifest_row(c, metas.get(c.patient_id), f"{config.hash()}/{c.patient_id}.npz",
                          failed.get(c.patient_id, "")) for c in cases]
    manifest = write_manifest(out, rows)
    _write_config(out, config, {"source": str(source), "layout": layout,
                                "clinical": str(clinical) if clinical else None, "n_patients": len(cases)})
    return PrepareResult(out, manifest, [p for p in results if p not in failed], sorted(cached),
                         failed, time.perf_counter() - start)


def _remove_new(todo, existed, cache_dir: Path, out: Path, cache_existed: bool, out_existed: bool) -> None:
    """Undo a failed run: delete the case files it wrote and the folders it created."""
    for _, target, _ in todo:
        if target not in existed:
            target.unlink(missing_ok=True)
    for folder, was_there in ((cache_dir, cache_existed), (out, out_existed)):
        if not was_there and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
