"""Survival methods for the DM-free survival endpoint (docs/methods.md, "Survival").

Each is a ``methods.base.Method`` declaring the survival abilities: ``fit(cases)`` reads each
case's ``time_days`` / ``event``; ``predict_risk(cases) -> (n,)`` (higher = earlier DM) and
``predict_survival(cases, times) -> (n, len(times))`` DM-free probabilities; ``predict_proba``
refuses (a risk score is no P(DM)); ``embed`` gives the standardised covariates.

* ``cox-suvmax-volume``: Cox PH on SUVmax and log tumour volume (the survival floor);
* ``cox-clinical``: Cox PH on age, grade and MSKCC histology group;
* ``rsf-hc``: random survival forest on the handcrafted features with fold-internal selection.

Cox fits are scikit-survival's ``CoxPHSurvivalAnalysis`` (Breslow ties) with a fixed ridge
penalty ``alpha`` = 1 on standardised covariates, set before any run: with ~20 events per
training fold a histology group without an event would otherwise drive its coefficient to
infinity. The baseline hazard is Breslow's estimator on the training fold. Model folders hold
JSON and npz arrays only (no pickles); a loaded model predicts what the fitted one did.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chmfl.data.cases import CaseData, survival_of
from chmfl.errors import ChmflError
from chmfl.methods.base import Method, risk_only
from chmfl.methods.classical import (
    ForestArrays,
    build_classical,
    read_model,
    require_masks,
    suvmax_volume,
    write_model,
)
from chmfl.methods.clinical import clinical_table
from chmfl.radiomics.transform import FeatureTransform, fit_feature_transform


def breslow(time, event, eta) -> tuple[np.ndarray, np.ndarray]:
    """Breslow's cumulative baseline hazard from training times, events and linear predictors:
    the distinct event times and H0 at each, H0(t) = sum over event times s <= t of
    d(s) / sum_{j: t_j >= s} exp(eta_j)."""
    t, e, r = np.asarray(time, float), np.asarray(event, bool), np.exp(np.asarray(eta, float))
    times = np.unique(t[e])
    jumps = np.array([np.sum(e & (t == s)) / r[t >= s].sum() for s in times])
    return times, np.cumsum(jumps)


def train_concordance(time, event, risk) -> float:
    """Harrell's C of ``risk`` on training data (feature ranking, training-fold diagnostics):
    scikit-survival's ``concordance_index_censored``, NaN without an event or a comparable pair
    or with a non-finite risk. (``stats.survival.harrell_c`` scores results; ``methods`` sits
    below ``stats`` in the layers, so it does not import it.)"""
    from sksurv.metrics import concordance_index_censored

    e, t, r = np.asarray(event, bool).ravel(), np.asarray(time, float).ravel(), np.asarray(risk, float).ravel()
    if not e.any() or not np.isfinite(r).all():
        return float("nan")
    try:
        return float(concordance_index_censored(e, t, r)[0])
    except ZeroDivisionError:  # no comparable pair
        return float("nan")


def cox_survival(eta, times, base_times, base_hazard) -> np.ndarray:
    """S(t | x) = exp(-H0(t) exp(eta)) at ``times`` (n, len(times)); H0 steps at ``base_times``."""
    idx = np.searchsorted(np.asarray(base_times), np.asarray(times, float), side="right") - 1
    h0 = np.where(idx >= 0, np.asarray(base_hazard)[np.clip(idx, 0, None)], 0.0)
    return np.exp(-np.outer(np.exp(np.asarray(eta, float)), h0))


class CoxTable(Method):
    """Cox PH on a per-case table: impute + standardise (training fold) -> ridge Cox.
    Subclasses name the table (``_table``)."""

    capabilities = frozenset({"embed", "predict_risk", "predict_survival"})

    @classmethod
    def build(cls, name, registered, model_kwargs, ctx, size=None) -> CoxTable:
        return build_classical(cls, name, registered, model_kwargs, ctx, size, ("alpha",))

    def __init__(self, name: str, seed: int = 0, alpha: float = 1.0) -> None:
        self.name = name
        self.seed = seed
        self.alpha = alpha

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed, "alpha": self.alpha}

    @abc.abstractmethod
    def _table(self, cases: Sequence[CaseData]) -> pd.DataFrame: ...

    def embed(self, cases: Sequence[CaseData]) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise ChmflError(f"method {self.name} is not fitted")
        return self.transform_.apply(self._table(cases))

    def fit(self, cases: Sequence[CaseData]) -> CoxTable:
        from sksurv.linear_model import CoxPHSurvivalAnalysis
        from sksurv.util import Surv

        time, event = survival_of(cases)
        if not event.any():
            raise ChmflError(f"{self.name}: the training cases hold no DM event")
        table = self._table(cases)
        self.transform_ = fit_feature_transform(table)
        X = self.transform_.apply(table)
        cox = CoxPHSurvivalAnalysis(alpha=self.alpha, ties="breslow").fit(X, Surv.from_arrays(event, time))
        self.coef_ = np.asarray(cox.coef_, float)
        self.base_times_, self.base_hazard_ = breslow(time, event, X @ self.coef_)
        return self

    def predict_risk(self, cases: Sequence[CaseData]) -> np.ndarray:
        """The linear predictor (log relative hazard)."""
        return self.embed(cases) @ self.coef_

    def predict_proba(self, cases: Sequence[CaseData]) -> np.ndarray:
        raise risk_only(self)

    def predict_survival(self, cases: Sequence[CaseData], times: Sequence[float]) -> np.ndarray:
        return cox_survival(self.predict_risk(cases), times, self.base_times_, self.base_hazard_)

    def save(self, directory: str | Path, extra: dict | None = None) -> None:
        state = {"transform": self.transform_.to_dict(), "coef": self.coef_.tolist(),
                 "columns": list(self.transform_.kept)}
        arrays = {"base_times": self.base_times_, "base_hazard": self.base_hazard_}
        write_model(directory, self, state, arrays, extra)

    @classmethod
    def load(cls, directory: str | Path) -> CoxTable:
        cfg, arrays = read_model(directory, cls)
        m = cls(cfg["method"], **cfg["params"])
        m.transform_ = FeatureTransform.from_dict(cfg["state"]["transform"])
        m.coef_ = np.asarray(cfg["state"]["coef"], float)
        m.base_times_, m.base_hazard_ = arrays["base_times"], arrays["base_hazard"]
        return m


class CoxSuvmaxVolume(CoxTable):
    """Survival floor: Cox PH on PET SUVmax and log tumour volume inside the contour."""

    def __init__(self, name: str = "cox-suvmax-volume", seed: int = 0, alpha: float = 1.0) -> None:
        super().__init__(name, seed, alpha)

    def _table(self, cases: Sequence[CaseData]) -> pd.DataFrame:
        require_masks(cases, self.name)
        return suvmax_volume(cases)  # the cache's full-contour table when the cases carry it


class CoxClinical(CoxTable):
    """Cox PH on age, grade and the MSKCC histology group (``methods.clinical``)."""

    def __init__(self, name: str = "cox-clinical", seed: int = 0, alpha: float = 1.0) -> None:
        super().__init__(name, seed, alpha)

    def _table(self, cases: Sequence[CaseData]) -> pd.DataFrame:
        return clinical_table(cases)


def fit_survival_transform(table: pd.DataFrame, time, event, k: int, max_corr: float) -> FeatureTransform:
    """Training-fold feature selection for survival: impute, drop near-constant columns,
    order by univariate |Harrell's C - 0.5|, drop columns correlated (|Spearman| > ``max_corr``)
    with a better one, keep the top ``k``; standardised with training statistics."""
    from chmfl.radiomics.selection import drop_correlated

    base = fit_feature_transform(table)
    X = base.apply(table)
    rel = np.array([abs(train_concordance(time, event, X[:, j]) - 0.5) for j in range(X.shape[1])])
    order = np.argsort(-np.nan_to_num(rel), kind="stable")
    order = order[drop_correlated(X[:, order], np.arange(len(order)), max_corr)][:k]
    pick = lambda v: tuple(v[j] for j in order)  # noqa: E731
    return FeatureTransform(pick(base.kept), pick(base.medians), pick(base.means), pick(base.stds),
                            source=base.source)


class RSFHandcrafted(Method):
    """Random survival forest (scikit-survival) on the IBSI handcrafted features of PET and CT
    in the tumour (``radiomics.feature_table``: the cache's full-contour table when the cases
    carry it), ``n_features`` selected in the training fold (``fit_survival_transform``). Risk:
    the ensemble's summed cumulative hazard (sksurv's ``predict``); survival: the mean of the
    trees' Kaplan-Meier leaves."""

    capabilities = frozenset({"embed", "predict_risk", "predict_survival"})
    OPTIONS = ("n_features", "max_corr", "n_estimators", "min_samples_leaf", "feature_jobs", "feature_cache")

    @classmethod
    def build(cls, name, registered, model_kwargs, ctx, size=None) -> RSFHandcrafted:
        return build_classical(cls, name, registered, model_kwargs, ctx, size, cls.OPTIONS)

    def __init__(self, name: str = "rsf-hc", seed: int = 0, n_features: int = 10, max_corr: float = 0.9,
                 n_estimators: int = 300, min_samples_leaf: int = 3, feature_jobs: int = 1,
                 feature_cache: str | None = None) -> None:
        self.name = name
        self.seed = seed
        self.n_features = n_features
        self.max_corr = max_corr
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.feature_jobs = feature_jobs
        self.feature_cache = feature_cache

    def get_params(self) -> dict[str, Any]:
        keys = ("seed", "n_features", "max_corr", "n_estimators", "min_samples_leaf")
        return {k: getattr(self, k) for k in keys}

    def _table(self, cases: Sequence[CaseData]) -> pd.DataFrame:
        from chmfl.radiomics.table import feature_table

        require_masks(cases, self.name)
        return feature_table(list(cases), n_jobs=self.feature_jobs, cache_dir=self.feature_cache)

    def embed(self, cases: Sequence[CaseData]) -> np.ndarray:
        if not hasattr(self, "transform_"):
            raise ChmflError(f"method {self.name} is not fitted")
        return self.transform_.apply(self._table(cases))

    def fit(self, cases: Sequence[CaseData]) -> RSFHandcrafted:
        from sksurv.ensemble import RandomSurvivalForest
        from sksurv.util import Surv

        time, event = survival_of(cases)
        if not event.any():
            raise ChmflError(f"{self.name}: the training cases hold no DM event")
        table = self._table(cases)
        self.transform_ = fit_survival_transform(table, time, event, self.n_features, self.max_corr)
        rsf = RandomSurvivalForest(n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
                                   max_features="sqrt", random_state=self.seed, n_jobs=1)
        rsf.fit(self.transform_.apply(table), Surv.from_arrays(event, time))
        self._store(rsf)
        return self

    def _store(self, rsf) -> None:
        trees = [e.tree_ for e in rsf.estimators_]
        self.forest_ = ForestArrays(
            offsets=np.concatenate([[0], np.cumsum([t.node_count for t in trees])]).astype(np.int64),
            left=np.concatenate([t.children_left for t in trees]).astype(np.int64),
            right=np.concatenate([t.children_right for t in trees]).astype(np.int64),
            feature=np.concatenate([t.feature for t in trees]).astype(np.int64),
            threshold=np.concatenate([t.threshold for t in trees]).astype(np.float64),
            value=np.concatenate([t.value[:, :, 0] for t in trees]).astype(np.float64),  # CHF
        )
        self.surv_ = np.concatenate([t.value[:, :, 1] for t in trees]).astype(np.float64)
        self.times_ = np.asarray(rsf.unique_times_, float)
        self.is_event_time_ = np.asarray(rsf.is_event_time_, bool)

    def _mean_over_trees(self, cases: Sequence[CaseData], values: np.ndarray) -> np.ndarray:
        leaves = self.forest_.leaves(self.embed(cases))  # (n_trees, n)
        return values[leaves].mean(axis=0)  # (n, n_times)

    def predict_risk(self, cases: Sequence[CaseData]) -> np.ndarray:
        chf = self._mean_over_trees(cases, self.forest_.value)
        return chf[:, self.is_event_time_].sum(axis=1)

    def predict_proba(self, cases: Sequence[CaseData]) -> np.ndarray:
        raise risk_only(self)

    def predict_survival(self, cases: Sequence[CaseData], times: Sequence[float]) -> np.ndarray:
        surv = self._mean_over_trees(cases, self.surv_)
        idx = np.searchsorted(self.times_, np.asarray(times, float), side="right") - 1
        return np.where(idx >= 0, surv[:, np.clip(idx, 0, None)], 1.0)

    def save(self, directory: str | Path, extra: dict | None = None) -> None:
        arrays = {**self.forest_.to_arrays(), "surv": self.surv_, "times": self.times_,
                  "is_event_time": self.is_event_time_}
        write_model(directory, self, {"transform": self.transform_.to_dict()}, arrays, extra)

    @classmethod
    def load(cls, directory: str | Path) -> RSFHandcrafted:
        cfg, arrays = read_model(directory, cls)
        m = cls(cfg["method"], **cfg["params"])
        m.transform_ = FeatureTransform.from_dict(cfg["state"]["transform"])
        m.forest_ = ForestArrays.from_arrays(arrays)
        m.surv_, m.times_ = arrays["surv"], arrays["times"]
        m.is_event_time_ = arrays["is_event_time"].astype(bool)
        return m
