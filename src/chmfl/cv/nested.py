"""Nested selection: a method run with a declared ``select:`` grid (``methods.selection``)
chooses its settings inside each outer training fold, never on the outer test fold.

For each outer fold of a selecting run: the outer training patients are split again,
stratified K-fold with ``inner_folds`` folds seeded by the outer fold's seed
(``inner/splits.json``); every candidate is fitted on each inner training part and scored on
its inner test part (``inner/candidate_c/fold_i/``, ordinary fold jobs that record only
predictions.csv and done.json, so they are resumed and run ``--parallel-folds`` at a time like
any other); the candidate with the best mean inner score (the first on a tie) is refitted on
the whole outer training fold and predicts the outer test fold under the selecting run's label.
That outer fold's done.json records the pick and every inner score; ``selection.csv`` at the
top of the results gathers them. Only outer predictions reach predictions.csv and the tables.

The choice sees the outer training patients only: the inner jobs get no other case, and
``choose`` reads nothing but their predictions (tests/cv/test_nested.py permutes the outer
test labels and finds the same picks and scores).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chmfl.cv.fold import FoldJob
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_path
from chmfl.methods.base import FitContext
from chmfl.methods.runtime import RuntimeConfig
from chmfl.methods.selection import Selection, candidate_text
from chmfl.methods.train_config import TrainConfig

INNER_DIR = "inner"
SELECTION_COLUMNS = ("method", "repeat", "fold", "candidate", "settings", "metric", "score", "sd",
                     "inner_scores", "picked", "inner_fit_s")
Settings = tuple[TrainConfig, RuntimeConfig]
Job = tuple[FoldJob, Mapping[str, Any]]  # a fold job and its {"train": ids, "test": ids}


def selection_metric(select: Selection, endpoint: str = "dm") -> str:
    """The metric a selection maximises: the declared one, else the endpoint's (AUC for DM)."""
    metric = select.metric or ("auc" if endpoint == "dm" else "c_index")
    if metric == "c_index" and endpoint == "dm":
        raise ChmflError("select metric c_index needs survival times: the DM endpoint selects by auc")
    return metric


def inner_seed(outer_seed: int, inner_fold: int) -> int:
    """The fit seed of inner fold ``inner_fold`` of the outer fold seeded ``outer_seed``: the
    same for every candidate (they differ only in their settings), below 2**31."""
    return int(np.random.SeedSequence((outer_seed, inner_fold)).generate_state(1)[0] % 2**31)


def score(metric: str, predictions: pd.DataFrame) -> float:
    """One inner test fold's score (higher is better)."""
    from chmfl.stats import auc_score

    if metric == "auc":
        return float(auc_score(predictions["label"].to_numpy(), predictions["probability"].to_numpy()))
    raise ChmflError(f"no scorer for select metric {metric!r}")


@dataclass(frozen=True)
class InnerPlan:
    """One outer fold of a selecting run: its inner splits and the candidate x inner-fold jobs
    (candidate-major), with each candidate's typed settings."""

    outer: FoldJob
    fold: Mapping[str, Any]  # the outer split: {"fold": k, "train": ids, "test": ids}
    splits: dict
    settings: tuple[Settings, ...]
    jobs: tuple[Job, ...]
    metric: str


def _inner_splits(outer: FoldJob, train_ids: Sequence[str], labels: Mapping[str, int]) -> dict:
    """Stratified inner splits of the outer training patients, seeded by the outer fold's
    seed; written to ``inner/splits.json`` (a different stored one is refused)."""
    from chmfl.cv.splits import load_splits, make_splits, save_splits

    k = outer.run.select.inner_folds
    y = [labels[p] for p in train_ids]
    if min(sum(y), len(y) - sum(y)) < k:
        raise ChmflError(f"{outer.label}: {k} inner folds need {k} patients of each label in every outer "
                         f"training fold; repeat {outer.repeat} fold {outer.fold} has {sum(y)} DM and "
                         f"{len(y) - sum(y)} no DM (declare fewer inner_folds)")
    splits = make_splits(train_ids, y, n_folds=k, repeats=1, seed=outer.seed)
    path = outer.out / INNER_DIR / "splits.json"
    if path.is_file():
        if load_splits(path) != json.loads(json.dumps(splits)):
            raise ChmflError(f"{path} belongs to another run; use a new --out")
    else:
        save_splits(splits, path)
    return splits


def plan_selection(outer: FoldJob, fold: Mapping[str, Any], labels: Mapping[str, int],
                   settings: Sequence[Settings], endpoint: str = "dm") -> InnerPlan:
    """The inner jobs of one outer fold of a selecting run (``settings``: each candidate's,
    in ``outer.run.candidates()`` order)."""
    splits = _inner_splits(outer, list(fold["train"]), labels)
    jobs = []
    for c, (run, (train, runtime)) in enumerate(zip(outer.run.candidates(), settings, strict=True)):
        for inner in splits["repeats"][0]["folds"]:
            out = outer.out / INNER_DIR / f"candidate_{c}" / f"fold_{inner['fold']}"
            ctx = FitContext(train, runtime, inner_seed(outer.seed, inner["fold"]), out / "work", outer.ctx.progress)
            jobs.append((FoldJob(run, outer.repeat, inner["fold"], ctx, outer.pretrained, out, light=True), inner))
    return InnerPlan(outer, fold, splits, tuple(settings), tuple(jobs), selection_metric(outer.run.select, endpoint))


def _fit_seconds(job: FoldJob) -> float:
    done = job.out / "done.json"
    return float(json.loads(done.read_text()).get("fit_s", float("nan"))) if done.is_file() else float("nan")


def choose(plan: InnerPlan, frames: Sequence[pd.DataFrame]) -> dict[str, Any]:
    """The selection record of one outer fold from its inner predictions (``frames`` in
    ``plan.jobs`` order): every candidate's inner scores and mean, and the pick (best mean,
    the first on a tie)."""
    select = plan.outer.run.select
    k = select.inner_folds
    candidates = []
    for c, ((train, kwargs), run) in enumerate(zip(select.candidates(), plan.outer.run.candidates())):
        scores = [score(plan.metric, frames[c * k + i]) for i in range(k)]
        finite = [s for s in scores if np.isfinite(s)]
        candidates.append({
            "candidate": c, "settings": {"train": train, "model_kwargs": kwargs},
            "text": candidate_text(train, kwargs), "label": run.label, "scores": scores,
            "score": float(np.mean(finite)) if finite else float("nan"),
            "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan"),
            "inner_fit_s": float(sum(_fit_seconds(j) for j, _ in plan.jobs[c * k:(c + 1) * k])),
        })
    means = [c["score"] for c in candidates]
    if not any(np.isfinite(means)):
        raise ChmflError(f"{plan.outer.label} repeat {plan.outer.repeat} fold {plan.outer.fold}: "
                         f"no candidate has a defined inner {plan.metric}")
    pick = int(np.nanargmax(means))  # the first of the best
    return json.loads(json.dumps({
        "metric": plan.metric, "inner_folds": k, "inner_split_seed": plan.splits["seed"],
        "pick": pick, "picked": candidates[pick]["text"], "candidates": candidates}))


def refit_job(plan: InnerPlan, record: Mapping[str, Any]) -> FoldJob:
    """The outer job that fits the picked candidate on the whole outer training fold."""
    pick = int(record["pick"])
    train, runtime = plan.settings[pick]
    ctx = dataclasses.replace(plan.outer.ctx, train=train, runtime=runtime)
    return dataclasses.replace(plan.outer, ctx=ctx, fit_run=plan.outer.run.candidates()[pick], selection=record)


def run_with_selection(jobs: Sequence[Job], labels: Mapping[str, int], settings: Mapping[str, Sequence[Settings]],
                       run_jobs: Callable[[list[Job]], list[pd.DataFrame]],
                       endpoint: str = "dm") -> tuple[list[FoldJob], list[pd.DataFrame]]:
    """Every job of an experiment, selecting runs nested: first the plain jobs and every inner
    job (one batch, so ``run_jobs`` may run them in parallel), then the refits of the picks.
    ``settings``: each selecting run's candidate settings by its label. Returns the outer jobs
    as run (refits in place of the selecting jobs) and their prediction frames, in ``jobs``
    order."""
    plans = {i: plan_selection(j, f, labels, settings[j.label], endpoint)
             for i, (j, f) in enumerate(jobs) if j.run.select is not None}
    plain = [i for i in range(len(jobs)) if i not in plans]
    inner = [x for p in plans.values() for x in p.jobs]
    frames = run_jobs([jobs[i] for i in plain] + inner)
    out_frames: dict[int, pd.DataFrame] = dict(zip(plain, frames[:len(plain)]))
    rest, refits = frames[len(plain):], {}
    for i, p in plans.items():
        n = len(p.jobs)
        refits[i] = refit_job(p, choose(p, rest[:n]))
        rest = rest[n:]
    out_frames.update(zip(refits, run_jobs([(refits[i], jobs[i][1]) for i in refits])))
    done = [refits.get(i, j) for i, (j, _) in enumerate(jobs)]
    return done, [out_frames[i] for i in range(len(jobs))]


def selection_table(jobs: Sequence[FoldJob]) -> pd.DataFrame:
    """``selection.csv``: one row per (selecting run, repeat, outer fold, candidate), read from
    the outer folds' done.json (docs/results-format.md)."""
    rows = []
    for job in jobs:
        done = job.out / "done.json"
        if job.run.select is None or not done.is_file():
            continue
        record = json.loads(done.read_text()).get("selection") or {}
        for c in record.get("candidates", []):
            rows.append({"method": job.label, "repeat": job.repeat, "fold": job.fold, "candidate": c["candidate"],
                         "settings": c["text"], "metric": record["metric"], "score": c["score"], "sd": c["sd"],
                         "inner_scores": json.dumps(c["scores"]), "picked": c["candidate"] == record["pick"],
                         "inner_fit_s": c.get("inner_fit_s")})
    return pd.DataFrame(rows, columns=list(SELECTION_COLUMNS))


def write_selection(out: Path, jobs: Sequence[FoldJob]) -> None:
    """Write ``selection.csv`` when any run of the experiment selects."""
    table = selection_table(jobs)
    if len(table):
        with atomic_path(out / "selection.csv") as tmp:
            table.to_csv(tmp, index=False)
