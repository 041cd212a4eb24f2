"""Read a results folder (docs/results-format.md) into one ``Results`` record; nothing else.

Only ``predictions.csv`` or ``metrics.csv`` is required; every other file is optional and its
absence is recorded in ``notes`` so the report can say what it left out and why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from chmfl.errors import ChmflError
from chmfl.methods.spec import MethodRun
from chmfl.report.paper import paper_order
from chmfl.stats import fold_rows, normalize_metrics, pooled_rows

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("method", "repeat", "fold", "patient_id", "label", "probability")
SURVIVAL_PREDICTION_COLUMNS = ("method", "repeat", "fold", "patient_id", "label", "time_days", "event", "risk")
TIMING_COLUMNS = ("method", "repeat", "fold", "fit_s", "predict_s", "peak_rss_gb", "epochs", "device", "precision")


@dataclass
class Results:
    root: Path
    config: dict
    splits: dict | None
    predictions: pd.DataFrame | None
    metrics: pd.DataFrame
    timing: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)
    selection: pd.DataFrame | None = None  # selection.csv: nested selection's picks and inner scores

    @property
    def experiment(self) -> str | None:
        exp = self.config.get("experiment")
        if isinstance(exp, dict):
            exp = exp.get("name")
        return str(exp) if exp else None

    @property
    def survival(self) -> bool:
        """True for a DM-free survival run (risk scores, not DM probabilities)."""
        return self.predictions is not None and "risk" in self.predictions.columns \
            and "probability" not in self.predictions.columns

    @property
    def methods(self) -> list[str]:
        """Methods in the paper's row order when the experiment is a paper table, else as run."""
        seen = list(dict.fromkeys(self.metrics["method"]))
        if self.predictions is not None:
            seen += [m for m in dict.fromkeys(self.predictions["method"]) if m not in seen]
        return paper_order(self.experiment, seen, self.runs)

    @property
    def runs(self) -> dict[str, MethodRun]:
        """The structured spec of every method label, as the run stored it in config.yaml's
        ``spec`` (labels are never parsed); entries without a spec are left out."""
        spec = self.config.get("spec")
        entries = spec.get("methods") if isinstance(spec, dict) else None
        out: dict[str, MethodRun] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or "method" not in entry:
                continue
            try:
                run = MethodRun.from_dict(entry)
            except ChmflError as exc:  # e.g. a method this version no longer has
                log.info("config.yaml: method entry %s not read (%s)", entry.get("label"), exc)
                continue
            out[str(entry.get("label") or run.label)] = run
        return out

    @property
    def reference(self) -> str | None:
        """The method others are tested against: config ``reference``, else chmfl if it ran."""
        spec = self.config.get("spec")
        ref = self.config.get("reference") or (spec.get("reference") if isinstance(spec, dict) else None)
        if ref and ref in self.methods:
            return str(ref)
        return "chmfl" if "chmfl" in self.methods else None

    @property
    def repeats(self) -> list[int]:
        return sorted(set(self.metrics["repeat"]))

    def fold_dirs(self, method: str, repeat: int | None = None) -> list[tuple[int, int, Path]]:
        """(repeat, fold, folder) of every existing ``<method>/repeat_<r>/fold_<k>`` folder."""
        out = []
        base = self.root / method
        for rdir in sorted(base.glob("repeat_*")) if base.is_dir() else []:
            r = _suffix_int(rdir.name)
            if r is None or (repeat is not None and r != repeat):
                continue
            for fdir in sorted(rdir.glob("fold_*")):
                k = _suffix_int(fdir.name)
                if k is not None and fdir.is_dir():
                    out.append((r, k, fdir))
        return sorted(out)


def _suffix_int(name: str) -> int | None:
    try:
        return int(name.rsplit("_", 1)[1])
    except (IndexError, ValueError):
        return None


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={"patient_id": str, "method": str, "fold": str, "metric": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ChmflError(f"cannot read {path}: {exc}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ChmflError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


def read_predictions(path: Path) -> pd.DataFrame:
    """``predictions.csv`` of a DM run (label, probability) or a DM-free survival run
    (label, time_days, event, risk; cv.survival)."""
    head = _read_csv(path, ("method",))
    survival = "risk" in head.columns and "probability" not in head.columns
    df = _read_csv(path, SURVIVAL_PREDICTION_COLUMNS if survival else PREDICTION_COLUMNS)
    numeric = ("risk", "time_days") if survival else ("probability",)
    try:
        df["repeat"] = df["repeat"].astype(int)
        df["fold"] = df["fold"].astype(int)
        df["label"] = df["label"].astype(int)
        for col in numeric:
            df[col] = df[col].astype(float)
        if survival:
            df["event"] = df["event"].astype(int)
    except (TypeError, ValueError) as exc:
        raise ChmflError(f"{path}: non-numeric repeat/fold/label/probability ({exc})") from None
    return df


def metrics_from_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per-fold and pooled classification rows, as the runner writes them to ``metrics.csv``."""
    rows: list[dict] = []
    for (method, repeat), rep in predictions.groupby(["method", "repeat"], sort=False):
        for fold, part in rep.groupby("fold", sort=True):
            rows += fold_rows(method, repeat, fold, part)
        rows += pooled_rows(method, repeat, rep)
    return normalize_metrics(pd.DataFrame(rows, columns=["method", "repeat", "fold", "metric", "value"]))


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ChmflError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ChmflError(f"{path}: expected a mapping at the top level")
    return data


def load_results(results_dir: str | Path) -> Results:
    """Read ``config.yaml``, ``splits.json``, ``predictions.csv``, ``metrics.csv``, ``timing.csv``
    and, where a run selected its settings, ``selection.csv``."""
    from chmfl.cv.splits import load_splits

    root = Path(results_dir)
    if not root.is_dir():
        raise ChmflError(f"results folder not found: {root}")
    notes: list[str] = []
    pred_path, met_path = root / "predictions.csv", root / "metrics.csv"
    if not pred_path.is_file() and not met_path.is_file():
        raise ChmflError(f"{root} is not a results folder: it has neither predictions.csv nor metrics.csv")
    config = _read_yaml(root / "config.yaml") if (root / "config.yaml").is_file() else {}
    if not config:
        notes.append("config.yaml is missing or empty: no configuration, versions or data summary from the run.")
    splits = load_splits(root / "splits.json") if (root / "splits.json").is_file() else None
    if splits is None:
        notes.append("splits.json is missing: fold composition not shown.")
    predictions = read_predictions(pred_path) if pred_path.is_file() else None
    if predictions is None:
        notes.append("predictions.csv is missing: no ROC curves, confusion matrices, pooled CIs or DeLong tests.")
    if met_path.is_file():
        metrics = normalize_metrics(_read_csv(met_path, ("method", "repeat", "fold", "metric", "value")))
    elif "probability" in predictions.columns:
        metrics = metrics_from_predictions(predictions)
        notes.append("metrics.csv is missing: classification metrics recomputed from predictions.csv.")
    else:
        raise ChmflError(f"{met_path} is missing: survival metrics are only read from metrics.csv")
    timing = None
    if (root / "timing.csv").is_file():
        timing = _read_csv(root / "timing.csv", ("method", "repeat", "fold"))
    else:
        notes.append("timing.csv is missing: no run-time table.")
    if metrics.empty:
        raise ChmflError(f"{met_path}: no metric rows")
    selection = None
    if (root / "selection.csv").is_file():
        selection = _read_csv(root / "selection.csv", ("method", "repeat", "fold", "candidate", "settings",
                                                        "metric", "score", "picked"))
        selection["picked"] = selection["picked"].astype(str).str.lower() == "true"
    skipped = config.get("skipped")
    if skipped:
        notes.append("Skipped by the run: " + "; ".join(map(str, skipped if isinstance(skipped, list) else [skipped])))
    return Results(root, config, splits, predictions, metrics, timing, notes, selection)
