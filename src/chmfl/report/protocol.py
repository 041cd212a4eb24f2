"""What protocol a run followed, beside the paper's, and which of its rows stopped training far
from convergence: a run's numbers are set next to the paper's only with both said.

``protocol_line`` is the one-line comparison (voxel size, epochs, precision, box placement,
repeats) that stands above every table with the paper's numbers. ``unconverged`` applies the
convergence rule to one fold's loss curve; ``mark_unconverged`` puts a dagger on the rows whose
folds mostly stopped that way. ``paper_reference_table`` sets the paper's Table I beside the
methods of a run that is not one of the paper's experiments (the demo).

The rule (the paper "terminated training when no further changes in the total loss"; its loss
"was generally stable after 200 epochs"): a fold stopped far from convergence when it stopped
at its epoch limit rather than by early stopping, and either its loss was still falling (the
mean of its last few epochs below the mean of the few before by more than the run's
``min_delta``) or it ran fewer than a quarter of the paper's 200 epochs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import pandas as pd

from chmfl.report.load import Results
from chmfl.report.paper import paper_table
from chmfl.report.render import METRIC_LABELS, Table, fmt
from chmfl.stats import CLASSIFICATION_METRICS, POOLED_FOLD, fold_table

PAPER_EPOCHS = 200
FEW_EPOCHS = PAPER_EPOCHS // 4
DAGGER = "†"
# Section II.E and III of the paper: isotropic resampling (Table SI's 112x112x144 box at 1 mm),
# Adam until the total loss stopped changing (~200 epochs), PyTorch on a GTX 1080 Ti (fp32),
# a fixed box around the annotated tumour, one 6-fold cross-validation.
PAPER_PROTOCOL = {"voxel": "1 mm", "epochs": "until the loss stopped changing (~200 epochs)",
                  "precision": "fp32 (GTX 1080 Ti)", "box": "box around the annotated tumour",
                  "repeats": "1 repeat × 6 folds"}
_PRECISION = {"32-true": "fp32", "32": "fp32", "bf16-mixed": "bf16", "16-mixed": "fp16"}
_BOX = {"auto": "box at the contour centroid (PET hotspot without one)", "mask": "box at the contour centroid",
        "hotspot": "box at the PET hotspot", "given": "box at a given point"}


def _prepare_config(res: Results) -> dict:
    data = res.config.get("data") if isinstance(res.config.get("data"), dict) else {}
    prep = data.get("prepare") if isinstance(data.get("prepare"), dict) else {}
    return prep.get("config") if isinstance(prep.get("config"), dict) else {}


def _epochs(res: Results) -> str:
    t = res.timing
    if t is None or "epochs" not in t:
        return "epochs not recorded"
    runs = pd.to_numeric(t["epochs"], errors="coerce").dropna()
    if runs.empty:
        return "no trained network"
    lo, hi = int(runs.min()), int(runs.max())
    return f"{hi} epoch{'s' if hi != 1 else ''}" if lo == hi else f"{lo}-{hi} epochs"


def _precision(res: Results) -> str:
    t = res.timing
    values = sorted({_PRECISION.get(str(v), str(v)) for v in t["precision"].dropna()}) if (
        t is not None and "precision" in t) else []
    return "/".join(values) if values else "fp32 (no network)"


def run_protocol(res: Results) -> dict[str, str]:
    """This run's protocol in ``PAPER_PROTOCOL``'s keys, from config.yaml and timing.csv."""
    prep = _prepare_config(res)
    voxel = prep.get("voxel_mm")
    n_folds = (res.splits or {}).get("n_folds") or res.metrics.loc[res.metrics["fold"] != POOLED_FOLD, "fold"].nunique()
    reps = len(res.repeats)
    return {"voxel": f"{float(voxel):g} mm" if voxel else "voxel size not recorded",
            "epochs": _epochs(res), "precision": _precision(res),
            "box": _BOX.get(str(prep.get("center")), "box placement not recorded"),
            "repeats": f"{reps} repeat{'s' if reps != 1 else ''} × {n_folds} folds"}


def protocol_line(res: Results) -> str:
    """'Different protocols — this run: ...; the paper: ...' (the same keys in the same order)."""
    ours, paper = run_protocol(res), PAPER_PROTOCOL
    return (f"Different protocols — this run: {', '.join(ours.values())}; the paper: "
            f"{', '.join(paper[k] for k in ours)}. Numbers are comparable only where the protocols agree.")


def unconverged(losses: Sequence[float], max_epochs: int, min_delta: float) -> str:
    """Why a fold with this loss curve stopped far from convergence, or "" (module docstring)."""
    n = len(losses)
    if n == 0 or n < max_epochs:  # early stopping ended it: converged by the paper's criterion
        return ""
    k = max(1, min(5, n // 4))
    falling = n < 2 * k or sum(losses[-k:]) / k < (1.0 - min_delta) * sum(losses[-2 * k:-k]) / k
    if falling:
        return "stopped at its epoch limit with the loss still falling"
    if n < FEW_EPOCHS:
        return f"stopped at its epoch limit after {n} epochs (the paper: ~{PAPER_EPOCHS})"
    return ""


def convergence(res: Results, method: str) -> tuple[int, int]:
    """(folds that stopped far from convergence, folds with a training log) of ``method``."""
    bad = total = 0
    for _, _, folder in res.fold_dirs(method):
        log_csv, done = folder / "log.csv", folder / "done.json"
        if not (log_csv.is_file() and done.is_file()):
            continue
        train = json.loads(done.read_text()).get("train") or {}
        losses = pd.read_csv(log_csv)["loss"].astype(float).tolist()
        total += 1
        bad += bool(unconverged(losses, int(train.get("epochs", PAPER_EPOCHS)), float(train.get("min_delta", 0.01))))
    return bad, total


def _dagger_note(counts: dict[str, tuple[int, int]]) -> str:
    marked = [f"{m} ({b} of {n} folds)" for m, (b, n) in counts.items() if n and 2 * b > n]
    if not marked:
        return ""
    return (f" {DAGGER} Training stopped far from convergence in most folds: {', '.join(marked)}; a fold counts "
            f"when it stopped at its epoch limit (not by early stopping) with the loss still falling, or after "
            f"fewer than {FEW_EPOCHS} epochs (a quarter of the paper's ~{PAPER_EPOCHS}).")


def mark_unconverged(table: Table | str, res: Results, column: str) -> Table | str:
    """``table`` with a dagger after each method in ``column`` whose folds mostly stopped far from
    convergence, and the rule in its note; a note string (an omitted table) passes through."""
    if isinstance(table, str) or column not in table.display:
        return table
    counts = {m: convergence(res, m) for m in table.display[column] if m in res.methods}
    flagged = {m for m, (b, n) in counts.items() if n and 2 * b > n}
    if not flagged:
        return table
    display = table.display.copy()
    display[column] = [f"{m} {DAGGER}" if m in flagged else m for m in display[column]]
    return dataclasses.replace(table, display=display, note=table.note + _dagger_note(counts))


def _registry_name(res: Results, label: str) -> str:
    """The registry method behind a results label: from the run's stored spec where the results
    record one, else the label up to its variant brackets (``chmfl[light]`` -> ``chmfl``)."""
    run = (getattr(res, "runs", None) or {}).get(label)
    return str(run.method) if run is not None else label.split("[", 1)[0]


def paper_reference_table(res: Results) -> Table | str | None:
    """The paper's Table I beside this run's methods (mean over folds), for a run that is not one
    of the paper's experiments and shares a method with Table I; None otherwise."""
    paper = paper_table("table1")
    if paper is None or paper_table(res.experiment) is not None:
        return None
    shared = {r.method for r in paper.rows} & {_registry_name(res, m) for m in res.methods}
    if not shared:
        return None
    from chmfl.report.tables import POOLED_COLUMNS, pooled_means

    ft, pooled = fold_table(res.metrics), pooled_means(res)
    metrics = [k for k in paper.metrics if k in CLASSIFICATION_METRICS]
    rows, data = [], []
    for m in res.methods:
        values = {k: (pooled if k in POOLED_COLUMNS else ft) for k in metrics}
        values = {k: f[(f["method"] == m) & (f["metric"] == k)]["mean"] for k, f in values.items()}
        values = {k: float(v.iloc[0]) if len(v) else float("nan") for k, v in values.items()}
        rows.append({"Method": m, "Source": "this run", **{METRIC_LABELS[k]: fmt(values[k]) for k in metrics}})
        data.append({"method": m, "source": "this run", **values})
    for r in paper.rows:
        rows.append({"Method": r.paper, "Source": "paper, Table I", **{METRIC_LABELS[k]: fmt(r.values[k]) for k in metrics}})
        data.append({"method": r.paper, "source": "paper", **{k: r.values[k] for k in metrics}})
    note = ("This run: mean over test folds (Pre., F1: pooled test predictions, as the paper computes them). "
            "Paper: as printed in its Table I, from its own protocol (the line above): for orientation, not a "
            "like-for-like comparison.")
    table = Table("paper_table1_reference", "The paper's Table I beside this run (different protocols)",
                  pd.DataFrame(rows), pd.DataFrame(data), note)
    return mark_unconverged(table, res, "Method")
