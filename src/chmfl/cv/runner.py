"""Cross-validation of an experiment's methods over shared, saved splits.

``run_experiment`` makes (or re-reads) ``splits.json`` once, runs every method on every
repeat and fold through ``cv.fold.run_fold`` (finished folds are skipped, so an interrupted
run continues where it stopped; a run with a ``select:`` grid is nested, ``cv.nested``), then
writes the top-level ``predictions.csv``, ``metrics.csv``, ``timing.csv``, ``summary.csv``,
``comparisons.csv`` and, with a selection, ``selection.csv`` (docs/results-format.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from chmfl import __version__
from chmfl.cv.experiment import Experiment, MethodRun
from chmfl.cv.fold import FoldJob, run_fold
from chmfl.cv.nested import run_with_selection, write_selection
from chmfl.cv.record import git_commit, hardware, versions
from chmfl.data.cases import CaseData, load_cases, load_manifest
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.methods.base import FitContext
from chmfl.methods.runtime import RuntimeConfig, is_main_process
from chmfl.methods.spec import RuntimeOverrides, TrainOverrides, typed_settings
from chmfl.methods.train_config import TrainConfig, preset_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """What the command line adds to an experiment."""

    seed: int = 0
    epochs: int | None = None
    repeats: int | None = None
    folds: int | None = None
    preset: str = "paper"  # "paper" (the faithful settings) or "sample-bn-aug" (methods.train_config.PRESETS)
    # --set KEY=VALUE for every method, typed (a flat mapping is split by name)
    train: TrainOverrides | Mapping[str, Any] = field(default_factory=TrainOverrides)
    pretrained: dict[str, str] = field(default_factory=dict)  # KEY -> weights file
    progress: bool = True
    parallel_folds: int = 1  # fold jobs run at once, each in its own process (1: in this one)
    runtime: RuntimeOverrides = field(default_factory=RuntimeOverrides)
    # binary endpoint only: label = DM by this many days after the PET scan, patients censored
    # earlier left out (data.cases.load_horizon_cases); None: the paper's DM label
    horizon_days: float | None = None
    # how test patients' boxes are placed, one regime after the other (``cv.testbox``)
    test_box: str | tuple[str, ...] = ("contour",)
    executor: str = "local"  # "local" (this machine) or "ray" (a Ray cluster: chmfl.cluster)
    address: str | None = None  # the Ray cluster's address (None: RAY_ADDRESS or a local one)

    def __post_init__(self) -> None:
        from chmfl.cluster import check_executor
        from chmfl.cv.testbox import parse_test_boxes

        typed_settings(self)
        object.__setattr__(self, "test_box", parse_test_boxes(self.test_box))
        preset_settings(self.preset)  # a renamed or unknown preset stops the run before it starts
        check_executor(self.executor)


def fold_seed(seed: int, repeat: int, fold: int) -> int:
    return seed * 10_000 + repeat * 100 + fold


def fold_settings(exp: Experiment, run: MethodRun, opts: RunOptions) -> tuple[TrainConfig, RuntimeConfig]:
    """The typed settings a run's folds train with -- the one place they are built on the way
    to a fold. Experiment settings < preset < the method's own science (a comparator trained
    as its source trained it, ``registry.method_train``) < method variant < command-line
    overrides, each already typed (``methods.spec.TrainOverrides`` / ``RuntimeOverrides``)."""
    from chmfl.methods.registry import method_train

    science = {**exp.train.to_dict(), **preset_settings(opts.preset),
               **method_train(run.method), **run.train.to_dict(), **opts.train.to_dict()}
    if opts.epochs is not None:
        science["epochs"] = opts.epochs
    runtime = {**exp.runtime.to_dict(), **run.runtime.to_dict(), **opts.runtime.to_dict()}
    # "auto" speed options decided here, for this machine's device, so config.yaml records them;
    # (a Trainer given "auto" options decides them for the device it trains on)
    return TrainConfig.from_dict(science), RuntimeConfig.from_dict(runtime).resolved()


def candidate_settings(exp: Experiment, opts: RunOptions) -> dict[str, list[tuple[TrainConfig, RuntimeConfig]]]:
    """Each selecting run's candidates' typed settings (``fold_settings`` of each candidate),
    by the run's label. A grid setting the command line also sets is refused: the command line
    would override every candidate alike."""
    fixed = set(opts.train.to_dict()) | ({"epochs"} if opts.epochs is not None else set())
    out = {}
    for run in exp.methods:
        if run.select is None:
            continue
        clash = fixed & set(run.select.keys())
        if clash:
            raise ChmflError(f"{run.label} selects {', '.join(sorted(clash))}, which the command line also sets")
        out[run.label] = [fold_settings(exp, c, opts) for c in run.candidates()]
    return out


def _splits(cases: Sequence[CaseData], out: Path, n_folds: int, repeats: int, seed: int) -> dict:
    from chmfl.cv.splits import load_splits, make_splits, save_splits

    ids = [c.patient_id for c in cases]
    path = out / "splits.json"
    if path.is_file():
        splits = load_splits(path)
        held = {p for f in splits["repeats"][0]["folds"] for p in f["test"]}
        if held != set(ids) or splits["n_folds"] != n_folds or len(splits["repeats"]) != repeats:
            raise ChmflError(f"{path} belongs to another run (patients, folds or repeats differ); use a new --out")
        return splits
    splits = make_splits(ids, [c.label for c in cases], n_folds=n_folds, repeats=repeats, seed=seed)
    save_splits(splits, path)
    return splits


def _data_identity(prepare: dict | None, features: Sequence[str] | None) -> dict[str, Any]:
    """What a results folder's folds were computed from: the cache's preprocessing (its config
    hash) and the handcrafted-feature table the methods read (``feature_source``: which table,
    with a digest of it). Fold identities (``done.json``) hold the science settings only, so
    this is checked once per results folder."""
    prepare = prepare or {}
    return {"prepare": prepare.get("config_hash") or prepare.get("hash") or prepare.get("config"),
            "features": sorted(set(features)) if features is not None else None}


def _feature_sources(cases: Sequence[CaseData]) -> list[str]:
    """The handcrafted-feature tables ``cases`` read (the cache's full-contour one, or the box)."""
    return sorted({c.feature_source or "box" for c in cases})


def _check_same_data(out: Path, preprocess: dict | None, cases: Sequence[CaseData]) -> None:
    """Refuse to continue a results folder whose recorded data (config.yaml) differ from the
    cache's now (``preprocess``: its prepare_config.yaml): its finished folds would be reused
    beside folds computed on other inputs."""
    path = out / "config.yaml"
    if not path.is_file():
        return
    data = (yaml.safe_load(path.read_text()) or {}).get("data") or {}
    now = _data_identity(preprocess, _feature_sources(cases))
    before = _data_identity(data.get("prepare"), data.get("features"))
    diff = [f"{k} {before[k]} -> {now[k]}" for k in now if before[k] is not None and before[k] != now[k]]
    if diff:
        raise ChmflError(f"--out {out} holds folds computed on other data ({'; '.join(diff)}); use a new --out")


def _write_config(out: Path, exp: Experiment, opts: RunOptions, cache: Path, cases, extra: dict,
                  run_settings: dict[str, tuple[TrainConfig, RuntimeConfig]]) -> None:
    prep = Path(cache) / "prepare_config.yaml"
    manifest = load_manifest(cache)
    excluded = manifest[manifest["dm"].isna()]
    config = {
        "chmfl_version": __version__, "git_commit": git_commit(),
        "experiment": exp.name, "spec": exp.to_dict(),
        "options": {"seed": opts.seed, "epochs": opts.epochs, "repeats": opts.repeats,
                    "folds": opts.folds, "preset": opts.preset, "test_box": list(opts.test_box),
                    "train": opts.train.to_dict(),
                    "runtime": opts.runtime.to_dict(),
                    "pretrained": {k: str(v) for k, v in opts.pretrained.items()}},
        "settings": {label: {"train": t.to_dict(), "runtime": r.to_dict()}  # as each method trained
                     for label, (t, r) in run_settings.items()},
        "data": {
            "cache": str(Path(cache).resolve()),
            "prepare": yaml.safe_load(prep.read_text()) if prep.is_file() else None,
            "endpoint": exp.endpoint,
            "n_patients": len(cases), "n_dm": sum(c.label == 1 for c in cases),
            "n_no_dm": sum(c.label == 0 for c in cases),
            "excluded": {} if exp.endpoint != "dm" else
                        {str(r.patient_id): str(r.exclusion) for r in excluded.itertuples()},
            **(_endpoint_summary(cases) if exp.endpoint != "dm" else {}),
            # the handcrafted-feature table the methods read: the cache's full-contour one, or the box
            "features": _feature_sources(cases),
        },
        "hardware": hardware(), "versions": versions(), **extra,
    }
    config = json.loads(json.dumps(config, default=str))  # plain types only (e.g. TorchVersion)
    with atomic_path(out / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))


def _endpoint_summary(cases: Sequence[CaseData]) -> dict[str, Any]:
    """Events, censored patients and follow-up of a survival cohort (for config.yaml)."""
    from chmfl.data.cases import survival_of
    from chmfl.stats.survival import median_followup

    time, event = survival_of(cases)
    return {"n_events": int(event.sum()), "n_censored": int((~event).sum()),
            "median_followup_days_reverse_km": median_followup(time, event),
            "time_origin": "PET/CT scan (diagnosis + MRI offset + MRI-to-PET offset)"}


def _jobs(exp: Experiment, opts: RunOptions, out: Path, repeat: int, fold: int,
          run_settings: dict[str, tuple[TrainConfig, RuntimeConfig]],
          left_out: Mapping[str, str] | None = None) -> tuple[list[FoldJob], list[str]]:
    jobs, skipped = [], []
    for box in opts.test_box:
        for job in _box_jobs(exp, opts, out, repeat, fold, run_settings, box, skipped, left_out or {}):
            jobs.append(job)
    return jobs, skipped


def _box_jobs(exp: Experiment, opts: RunOptions, out: Path, repeat: int, fold: int,
              run_settings: dict[str, tuple[TrainConfig, RuntimeConfig]], box: str,
              skipped: list[str], left_out: Mapping[str, str]) -> list[FoldJob]:
    """The fold jobs of one test-box regime; runs needing the test contour are left out of
    the hotspot regime (added to ``skipped`` with the reason)."""
    jobs = []
    for run in exp.methods:
        if box != "contour" and run.label in left_out:
            skipped.append(f"{run.label}@{box}: left out, it needs a contour at test time ({left_out[run.label]})")
            continue
        weights = None
        if run.pretrained:
            weights = opts.pretrained.get(run.pretrained)
            if weights is None:
                skipped.append(f"{run.label}: no weights file given (--pretrained {run.pretrained}=FILE)")
                continue
        seed = fold_seed(opts.seed, repeat, fold)
        train, runtime = run_settings[run.label]
        label = run.label if box == "contour" else f"{run.label}@{box}"
        folder = out / label / f"repeat_{repeat}" / f"fold_{fold}"
        fitted = out / run.label / f"repeat_{repeat}" / f"fold_{fold}" if "contour" in opts.test_box else None
        jobs.append(FoldJob(run, repeat, fold, FitContext(train, runtime, seed, folder / "work"), weights, folder,
                            exp.endpoint, opts.horizon_days, box, None if box == "contour" else fitted))
    return jobs


def cohort_for(exp: Experiment, cache: str | Path, opts: RunOptions) -> tuple[list[CaseData], dict]:
    """The experiment's cases, and ``{"horizon": counts}`` when ``opts.horizon_days`` relabels
    the binary cohort by DM within that many days (censored-earlier patients left out, logged)."""
    if opts.horizon_days is None:
        return load_cases(cache, endpoint=exp.endpoint), {}
    if exp.endpoint != "dm":
        raise ChmflError("--horizon-days relabels the binary DM endpoint; the survival endpoint uses the times")
    from chmfl.data.cases import load_horizon_cases

    cases, counts = load_horizon_cases(cache, opts.horizon_days)
    log.warning("horizon %g days: %d DM, %d DM-free; %d patient(s) censored before it left out (%s)",
                opts.horizon_days, counts["dm"], counts["no_dm"], counts["unknown"], ", ".join(counts["unknown_ids"]))
    return cases, {"horizon": counts}


def run_experiment(exp: Experiment, cache: str | Path, out: str | Path, opts: RunOptions) -> Path:
    """Run ``exp`` on the prepared cohort in ``cache``, recording everything in ``out``."""
    cache, out = Path(cache).resolve(), Path(out).resolve()  # the same paths for every worker
    cases, horizon = cohort_for(exp, cache, opts)
    for p in opts.pretrained.values():
        if not Path(p).is_file():
            raise ChmflError(f"pretrained weights file not found: {p}")
    n_folds, repeats = opts.folds or exp.folds, opts.repeats or exp.repeats
    check_folds(n_folds, [c.label for c in cases])
    run_settings = {run.label: fold_settings(exp, run, opts) for run in exp.methods}
    candidates = candidate_settings(exp, opts)
    out = Path(out)
    if is_main_process():  # the other DDP ranks find the folder rank 0 is filling
        check_results_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    prep = Path(cache) / "prepare_config.yaml"
    preprocess = yaml.safe_load(prep.read_text()) if prep.is_file() else None
    _check_same_data(out, preprocess, cases)
    splits = _splits(cases, out, n_folds, repeats, opts.seed)
    boxes, extra = _test_boxes(cases, exp, opts, out)
    started = dt.datetime.now().isoformat(timespec="seconds")
    left_out = extra["test_box"].get("left_out_runs", {})
    all_jobs = [(j, f) for rep in splits["repeats"] for f in rep["folds"]
                for j in _jobs(exp, opts, out, rep["repeat"], f["fold"], run_settings, left_out)[0]]
    all_jobs = [(dataclasses.replace(j, preprocess=preprocess), f) for j, f in all_jobs]
    skipped = _jobs(exp, opts, out, 0, 0, run_settings, left_out)[1]
    for line in skipped:
        log.warning("skipped %s", line)
    if not all_jobs:
        raise ChmflError("no method can run: " + "; ".join(skipped))
    main = is_main_process()  # with devices > 1 every DDP rank runs this; rank 0 writes
    if main:
        _write_config(out, exp, opts, Path(cache), cases, {"started": started, "skipped": skipped, **horizon, **extra},
                      run_settings)
    labels = {c.patient_id: c.label for c in cases}
    with _job_runner({c.patient_id: c for c in cases}, boxes, opts) as run_jobs:
        done, frames = run_with_selection(all_jobs, labels, candidates, run_jobs)
    if main:
        write_summaries(out, pd.concat(frames, ignore_index=True), done, exp.reference, exp.endpoint)
        _write_config(out, exp, opts, Path(cache), cases,
                      {"started": started, "finished": dt.datetime.now().isoformat(timespec="seconds"),
                       "skipped": skipped, **horizon, **extra}, run_settings)
    return out


def _test_boxes(cases: Sequence[CaseData], exp: Experiment, opts: RunOptions, out: Path
                ) -> tuple[dict[str, dict[str, CaseData]], dict]:
    """Each regime's test cases (refused patients absent), ``test_boxes.csv`` and what
    config.yaml records about them (``cv.testbox``)."""
    from chmfl.cv import testbox

    boxes, refused = {}, {}
    for box in opts.test_box:
        boxes[box], why = testbox.test_cases(cases, box)
        refused |= why
    left_out = testbox.contour_needs(exp.methods) if "hotspot" in opts.test_box else {}
    table = testbox.box_table(cases, opts.test_box, refused)
    if is_main_process():
        with atomic_path(out / "test_boxes.csv") as tmp:
            table.to_csv(tmp, index=False)
    record = testbox.record(opts.test_box, refused, left_out, table)
    return boxes, {"test_box": record | {"left_out_runs": left_out}}


def check_folds(n_folds: int, labels: Sequence[int]) -> None:
    """Refuse a fold count the cohort cannot hold: at least 2, at most the smaller class (every
    test fold needs a DM and a no-DM patient)."""
    most = min(sum(y == 1 for y in labels), sum(y == 0 for y in labels))
    if n_folds < 2:
        raise ChmflError(f"folds = {n_folds}: cross-validation needs at least 2 folds")
    if n_folds > most:
        raise ChmflError(f"folds = {n_folds}: at most {most} folds fit these {len(labels)} patients "
                         f"({sum(y == 1 for y in labels)} DM, {sum(y == 0 for y in labels)} no DM: every "
                         "test fold needs both)")


RESULTS_MARKERS = ("config.yaml", "splits.json")


def check_results_folder(out: Path) -> None:
    """Refuse an existing, non-empty folder that is not a results folder (one holds
    ``config.yaml`` or ``splits.json``): a run would write into, e.g., a ``chmfl train`` output.
    A results folder is continued (finished folds are kept)."""
    if out.exists() and not out.is_dir():
        raise ChmflError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not any((out / m).is_file() for m in RESULTS_MARKERS):
        found = ", ".join(sorted(p.name for p in out.iterdir())[:4])
        raise ChmflError(f"--out {out} exists and is not a results folder (it holds {found}, but no "
                         f"{' or '.join(RESULTS_MARKERS)}); choose a new or empty folder")


@contextlib.contextmanager
def _job_runner(by_id: dict[str, CaseData], boxes: dict[str, dict[str, CaseData]], opts: RunOptions
                ) -> Iterator[Callable[[list], list[pd.DataFrame]]]:
    """A function that runs a batch of fold jobs and returns their predictions in order: one
    after the other in this process, or ``opts.parallel_folds`` at a time in worker processes
    (a fold is self-contained: its seed, folder and checkpoint), each with an equal share of
    the CPU threads; on one GPU, the workers share it (batch size 1 leaves most of it idle).
    The workers are started once, at the first unfinished job, and serve every batch (nested
    selection runs two); finished jobs are read back here. The time left in the run is logged
    as it becomes known (``cv.eta``). An outer job's test patients come from its regime's
    boxes (``job.test_box``; refused patients absent); an inner selection job's are training
    patients of the outer fold, in their contour-centred boxes."""
    pool = None

    def run(batch: list) -> list[pd.DataFrame]:
        # A hotspot job evaluates its contour job's saved model: run the jobs that fit first,
        # then those that reuse, so that parallel workers never race a model being trained
        # (the loser would refit it: the same model, at twice the cost).
        first = [i for i, (job, _) in enumerate(batch) if job.fitted is None]
        if len(first) in (0, len(batch)):
            return run_now(batch)
        frames = dict(zip(first, run_now([batch[i] for i in first])))
        later = [i for i in range(len(batch)) if i not in frames]
        frames.update(zip(later, run_now([batch[i] for i in later])))
        return [frames[i] for i in range(len(batch))]

    def run_now(batch: list) -> list[pd.DataFrame]:
        nonlocal pool
        args = [(job, [by_id[p] for p in fold["train"]], _test_cases(job, fold["test"], by_id, boxes))
                for job, fold in batch]
        if opts.executor == "ray":
            return _run_on_ray(args, opts)
        if opts.parallel_folds <= 1:
            return _run_in_order(args, opts)
        fresh = [i for i, (job, _, _) in enumerate(args) if not (job.out / "done.json").is_file()]
        if fresh and pool is None:
            pool = _pool(opts.parallel_folds)
        return _run_parallel(pool, args, fresh, opts)

    try:
        yield run
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _test_cases(job: FoldJob, ids: Sequence[str], by_id: dict[str, CaseData],
                boxes: dict[str, dict[str, CaseData]]) -> list[CaseData]:
    if job.light:
        return [by_id[p] for p in ids]
    regime = boxes[job.test_box]
    return [regime[p] for p in ids if p in regime]


def _run_parallel(pool, args: list, fresh: list[int], opts: RunOptions) -> list[pd.DataFrame]:
    """The unfinished jobs of a batch on the worker pool, logging the time left; finished ones
    are read back here."""
    from concurrent.futures import as_completed

    from chmfl.cv.eta import describe, parallel_left

    t0 = time.perf_counter()
    futures = {pool.submit(run_fold, *args[i], False): i for i in fresh}
    for k, fut in enumerate(_bar(as_completed(futures), len(futures), opts), 1):
        fut.result()  # a failed fold stops the run here
        left = parallel_left(k, len(futures), time.perf_counter() - t0)
        log.info("%d/%d fold jobs done; about %s left in the run", k, len(futures), describe(left))
    done = {i: f.result() for f, i in futures.items()}
    return [done[i] if i in done else run_fold(*args[i], False) for i in range(len(args))]


def _bar(items, total: int, opts: RunOptions):
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc="folds", disable=not opts.progress)


def _run_in_order(args: list, opts: RunOptions) -> list[pd.DataFrame]:
    """The fold jobs one after the other in this process, logging each with the time left."""
    from chmfl.cv.eta import RunClock
    from chmfl.methods.epoch_hook import listening

    fresh = [i for i, (job, _, _) in enumerate(args) if not (job.out / "done.json").is_file()]
    clock = RunClock([args[i][0].label for i in fresh])
    frames, bar = [], _bar(args, len(args), opts)
    with listening(clock.epoch):
        for i, (job, train, test) in enumerate(bar):
            if i in fresh:
                clock.start(fresh.index(i))
            eta = f"; {clock.left_text()}" if clock.times else ""
            log.info("[%d/%d] %s repeat %d %sfold %d%s", i + 1, len(args), job.label, job.repeat,
                     "inner " if job.light else "", job.fold, eta)
            t0 = time.perf_counter()
            frames.append(run_fold(job, train, test, opts.progress))
            if i in fresh:
                clock.done(time.perf_counter() - t0)
            bar.set_postfix_str(clock.left_text() if clock.times else "", refresh=False)
    return frames


def _pool(workers: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from chmfl.methods.threads import usable_cores

    threads = max(1, usable_cores() // workers)
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_threads, initargs=(threads,))


def _run_on_ray(args: list[tuple], opts: RunOptions) -> list[pd.DataFrame]:
    """Every fold job as a Ray task (``chmfl.cluster``): each asks for its runtime's threads as
    CPUs (1 when unset) and a GPU where it trains on "cuda", writes into the shared results
    folder, and is re-run on another worker if its worker dies (the fold resumes or is read back)."""
    from tqdm.auto import tqdm

    from chmfl.cluster import ray_map

    bar = tqdm(total=len(args), desc="folds", disable=not opts.progress)
    cpus = max([1, *(job.runtime.num_threads for job, _, _ in args)])
    gpus = 1 if any(job.runtime.accelerator == "cuda" for job, _, _ in args) else 0
    jobs = [(job, train, test, False) for job, train, test in args]
    frames = ray_map(run_fold, jobs, address=opts.address, num_cpus=cpus, num_gpus=gpus,
                     on_result=lambda i, _: bar.update() or True)
    bar.close()
    return frames


def _worker_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def write_summaries(out: Path, preds: pd.DataFrame, jobs: Sequence[FoldJob], reference: str | None = None,
                    endpoint: str = "dm", k: int | None = None) -> None:
    """Top-level predictions.csv, metrics.csv (per fold and pooled), timing.csv, and
    summary.csv / comparisons.csv computed from those two files alone (chmfl.stats.inference).
    On the DM-free survival endpoint the metrics are survival metrics (``cv.survival``) and the
    summaries those of the C-indices (``stats.survival.survival_statistics_tables``). ``k``: the
    design's folds per repeat when ``jobs`` hold only the finished part of a run."""
    from chmfl.stats import statistics_tables

    if endpoint == "dm":
        metrics = pd.DataFrame(_classification_rows(preds) + _seg_rows(jobs))
        tables = statistics_tables(metrics, preds, reference, k)
    else:
        from chmfl.cv.survival import survival_metric_rows
        from chmfl.stats.survival import survival_statistics_tables

        dirs: dict[tuple[str, int], list[Path]] = {}
        for j in jobs:
            dirs.setdefault((j.label, j.repeat), []).append(j.out)
        metrics = pd.DataFrame(survival_metric_rows(preds, dirs) + _seg_rows(jobs))
        tables = survival_statistics_tables(metrics, reference)
    timing = pd.DataFrame([_timing_row(j) for j in jobs])
    for name, df in (("predictions.csv", preds), ("metrics.csv", metrics), ("timing.csv", timing),
                     *tables.items()):
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False)
    write_selection(out, jobs)


def _classification_rows(preds: pd.DataFrame) -> list[dict]:
    """metrics.csv rows of a DM run: per fold, and pooled per repeat."""
    from chmfl.stats import classification_metrics, metrics_rows, pooled_rows

    rows = []
    for (label, rep, fold), g in preds.groupby(["method", "repeat", "fold"], sort=False):
        rows += metrics_rows(label, rep, fold, classification_metrics(g["label"], g["probability"]))
    for (label, rep), g in preds.groupby(["method", "repeat"], sort=False):
        rows += pooled_rows(label, rep, g)
    return rows


def _seg_rows(jobs: Sequence[FoldJob]) -> list[dict]:
    from chmfl.stats import metrics_rows

    rows, pooled = [], {}
    for j in jobs:
        path = j.out / "seg_metrics.csv"
        if not path.is_file():
            continue
        df = pd.read_csv(path, dtype={"patient_id": str})
        rows += metrics_rows(j.label, j.repeat, j.fold, df.drop(columns="patient_id").mean().to_dict())
        pooled.setdefault((j.label, j.repeat), []).append(df)
    for (label, rep), dfs in pooled.items():
        rows += metrics_rows(label, rep, "all", pd.concat(dfs).drop(columns="patient_id").mean().to_dict())
    return rows


def _timing_row(job: FoldJob) -> dict:
    rec = json.loads((job.out / "done.json").read_text())
    runtime = rec.get("runtime") or rec.get("train") or {}  # older records: one flat "train"
    return {"method": job.label, "repeat": job.repeat, "fold": job.fold, "fit_s": rec["fit_s"],
            "fit_cpu_s": rec.get("fit_cpu_s"),  # absent in records written before it was kept
            "predict_s": rec["predict_s"], "peak_rss_gb": rec["peak_rss_gb"], "epochs": rec["epochs"],
            "device": rec.get("device", "cpu"), "precision": rec.get("precision") or runtime.get("precision")}
