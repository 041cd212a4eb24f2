"""The DM-free survival endpoint in cross-validation: a fold's risk predictions and a run's
survival metrics (docs/results-format.md, "Survival endpoint").

Every method answers with a risk score: ``predict_risk`` for survival models (methods that
declare it, ``methods.base``), else the DM classifier's ``predict_proba`` (trained on the
event indicator; a ranking, not a survival model). Where a method declares
``predict_survival`` its DM-free probabilities at 1, 2 and 3 years
go into ``predictions.csv`` and those on the Brier grid into the fold's ``survival_grid.csv``.
Each test patient is put in the "high" or "low" risk group by the *training* fold's median
risk (the method's risks of its own training patients), so the Kaplan-Meier split uses no
test information.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chmfl.data.cases import CaseData, survival_of
from chmfl.methods.base import SURVIVAL, Method
from chmfl.stats.survival import BRIER_GRID, HORIZONS_DAYS

SURVIVAL_PRED_COLUMNS = ["method", "repeat", "fold", "patient_id", "label", "time_days", "event", "risk",
                         "risk_group", "train_median_risk", *(f"dmfs_{d}d" for d in HORIZONS_DAYS)]
GRID_FILE = "survival_grid.csv"


def risk_of(method: Method, cases: Sequence[CaseData]) -> np.ndarray:
    """The method's risk score (higher = earlier DM): its declared ``predict_risk``, else P(DM)."""
    fn = method.predict_risk if SURVIVAL in method.capabilities else method.predict_proba
    return np.asarray(fn(cases), dtype=float)


def survival_outputs(method: Method, train: Sequence[CaseData], test: Sequence[CaseData],
                     out: dict[str, np.ndarray] | None = None) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The fold's survival prediction rows (without method/repeat/fold) and, where the
    method declares ``predict_survival``, the test patients' DM-free probabilities on
    ``BRIER_GRID``. ``out``: the method's ``predict_all`` of ``test``, whose "risk" (or
    "probability") is reused instead of predicting again."""
    time, event = survival_of(test)
    given = None if out is None else out.get("risk", out.get("probability"))
    risk = risk_of(method, test) if given is None else np.asarray(given, dtype=float)
    cut = float(np.median(risk_of(method, train)))
    rows = pd.DataFrame({"patient_id": [c.patient_id for c in test], "label": event.astype(int),
                         "time_days": time, "event": event.astype(int), "risk": risk,
                         "risk_group": np.where(risk > cut, "high", "low"), "train_median_risk": cut})
    grid = None
    if "predict_survival" in method.capabilities:
        at = np.asarray(method.predict_survival(test, list(HORIZONS_DAYS)), dtype=float)
        for j, d in enumerate(HORIZONS_DAYS):
            rows[f"dmfs_{d}d"] = at[:, j]
        grid = np.asarray(method.predict_survival(test, list(BRIER_GRID)), dtype=float)
    else:
        for d in HORIZONS_DAYS:
            rows[f"dmfs_{d}d"] = np.nan
    return rows, grid


def grid_frame(ids: Sequence[str], grid: np.ndarray) -> pd.DataFrame:
    """``survival_grid.csv``: patient_id and one column per grid day."""
    df = pd.DataFrame(grid, columns=[f"{d:g}" for d in BRIER_GRID])
    df.insert(0, "patient_id", list(ids))
    return df


def _grid(fold_dirs: Sequence[Path], ids: pd.Series) -> np.ndarray | None:
    """The repeat's Brier-grid probabilities in the order of ``ids``; None if any fold lacks them."""
    parts = []
    for d in fold_dirs:
        if not (d / GRID_FILE).is_file():
            return None
        parts.append(pd.read_csv(d / GRID_FILE, dtype={"patient_id": str}))
    table = pd.concat(parts).set_index("patient_id")
    return table.loc[ids.to_numpy()].to_numpy(dtype=float)


def survival_metric_rows(preds: pd.DataFrame, fold_dirs: dict[tuple[str, int], list[Path]],
                         n_boot: int = 1000) -> list[dict]:
    """``metrics.csv`` rows of a survival run: per fold Harrell's and Uno's C; per repeat
    (fold "all", pooled test predictions) both C-indices with stratified bootstrap 95 % CIs,
    time-dependent AUC at 1, 2, 3 years, integrated Brier score and the log-rank p of the
    training-median risk split. The censoring distribution (IPCW) is the repeat's cohort."""
    from chmfl.stats import metrics_rows
    from chmfl.stats.survival import bootstrap_survival_ci, logrank_p, survival_metrics

    rows: list[dict] = []
    for (label, rep), g in preds.groupby(["method", "repeat"], sort=False):
        cohort = (g["time_days"].to_numpy(), g["event"].to_numpy())
        for fold, f in g.groupby("fold", sort=True):
            m = survival_metrics(f["time_days"], f["event"], f["risk"], censoring=cohort, pooled=False)
            rows += metrics_rows(label, rep, fold, m)
        grid = _grid(fold_dirs.get((label, rep), []), g["patient_id"])
        m = survival_metrics(g["time_days"], g["event"], g["risk"], grid, censoring=cohort)
        for name in ("c_harrell", "c_uno"):
            m[f"{name}_ci_low"], m[f"{name}_ci_high"] = bootstrap_survival_ci(
                g["time_days"], g["event"], g["risk"], name, n=n_boot, seed=int(rep), censoring=cohort)
        m["logrank_p"] = logrank_p(g["time_days"], g["event"], g["risk_group"])
        rows += metrics_rows(label, rep, "all", m)
    return rows
