"""Classical comparators on handcrafted features: HC+RF (Vallieres et al. 2015/2017) and the
SUVmax + volume logistic-regression floor.

Both follow the method contract of ``methods.base``. Everything learned (imputation,
filters, selection, scaling, the classifier) comes from the training cases given to ``fit``.
Model folders hold ``config.json`` (parameters, transform, logistic coefficients) and, for the
forest, ``forest.npz`` with every tree's node arrays; nothing is pickled and loading runs no
code from the folder. Predictions come from those arrays, so a loaded model predicts exactly
what the fitted one did.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chmfl import __version__
from chmfl.data.cases import CaseData, labels_of
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_dir
from chmfl.methods.base import FitContext, Method, check_options
from chmfl.radiomics.transform import FeatureTransform, fit_feature_transform

MODEL_KIND = "chmfl-method"


# --- safe persistence shared by the non-neural methods ----------------------------------------
def model_config(method: Any, state: dict, extra: dict | None = None) -> dict:
    """The ``config.json`` content: kind, version, method name, class, parameters, learned state."""
    return {"kind": MODEL_KIND, "chmfl_version": __version__, "method": method.name,
            "class": type(method).__name__, "params": method.get_params(), "state": state, **(extra or {})}


def write_model(directory: str | Path, method: Any, state: dict, arrays: dict[str, np.ndarray] | None = None,
                extra: dict | None = None) -> None:
    """Write ``config.json`` (+ ``arrays.npz``) atomically into ``directory``."""
    with atomic_dir(directory) as tmp:
        (tmp / "config.json").write_text(json.dumps(model_config(method, state, extra), indent=2))
        if arrays:
            np.savez_compressed(tmp / "arrays.npz", **arrays)


def read_model(directory: str | Path, cls: type) -> tuple[dict, dict[str, np.ndarray]]:
    """``config.json`` and ``arrays.npz`` of a folder written by ``write_model`` for ``cls``."""
    directory = Path(directory)
    try:
        cfg = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ChmflError(f"{directory} is not a chmfl model folder (no readable config.json)") from exc
    if cfg.get("kind") != MODEL_KIND or cfg.get("class") != cls.__name__:
        raise ChmflError(f"{directory} holds a {cfg.get('class', 'non-chmfl')} model, not a {cls.__name__}")
    arrays = {}
    if (directory / "arrays.npz").is_file():
        with np.load(directory / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return cfg, arrays


def build_classical(cls: type, name: str, registered: Mapping[str, Any], model_kwargs: Mapping[str, Any],
                    ctx: FitContext, size: str | None, options: Sequence[str]):
    """``cls(name, seed, **options)`` for a method without a network: its options come from the
    registry and the run's model arguments (checked against ``options``); no sizes."""
    if size:
        raise ChmflError(f"method {name!r} has no network, so no named size ({size!r})")
    kwargs = {**registered, **model_kwargs}
    check_options(name, kwargs, options)
    return cls(name, seed=ctx.seed, **kwargs)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, float)))


def require_masks(cases: Sequence[CaseData], method: str) -> None:
    for c in cases:
        if c.load().mask is None:
            raise ChmflError(f"{method} needs a tumour contour; case {c.patient_id} has none")


# --- a random forest as plain arrays ------------------------------------------------------------
@dataclass(frozen=True)
class ForestArrays:
    """Every tree of a fitted sklearn forest as node arrays, concatenated; ``offsets[t]`` is
    tree t's first node. Predicts like ``RandomForestClassifier.predict_proba``."""

    offsets: np.ndarray  # (n_trees + 1,)
    left: np.ndarray  # child ids, local to the tree; -1 at leaves
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray  # (n_nodes, n_classes) class weights or fractions per node

    @classmethod
    def from_sklearn(cls, forest) -> ForestArrays:
        trees = [e.tree_ for e in forest.estimators_]
        sizes = [t.node_count for t in trees]
        return cls(
            offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            left=np.concatenate([t.children_left for t in trees]).astype(np.int64),
            right=np.concatenate([t.children_right for t in trees]).astype(np.int64),
            feature=np.concatenate([t.feature for t in trees]).astype(np.int64),
            threshold=np.concatenate([t.threshold for t in trees]).astype(np.float64),
            value=np.concatenate([t.value[:, 0, :] for t in trees]).astype(np.float64),
        )

    def to_arrays(self, prefix: str = "forest_") -> dict[str, np.ndarray]:
        return {prefix + k: getattr(self, k) for k in ("offsets", "left", "right", "feature", "threshold", "value")}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "forest_") -> ForestArrays:
        return cls(*(arrays[prefix + k] for k in ("offsets", "left", "right", "feature", "threshold", "value")))

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """(n_trees, n): the global node index of the leaf each row of ``X`` reaches in each tree."""
        X = np.asarray(X, np.float32).astype(np.float64)  # sklearn compares float32 features
        if not np.isfinite(X).all():
            raise ChmflError("random forest input has NaN/inf after imputation")
        rows = np.arange(len(X))
        out = np.empty((len(self.offsets) - 1, len(X)), np.int64)
        for t in range(len(self.offsets) - 1):
            base = int(self.offsets[t])
            node = np.zeros(len(X), np.int64)
            while True:
                left = self.left[base + node]
                inner = left >= 0
                if not inner.any():
                    break
                f = self.feature[base + node[inner]]
                go_left = X[rows[inner], f] <= self.threshold[base + node[inner]]
                node[inner] = np.where(go_left, left[inner], self.right[base + node[inner]])
            out[t] = base + node
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, n_classes): the mean over trees of each leaf's normalised class weights."""
        leaves = self.leaves(X)
        total = np.zeros((leaves.shape[1], self.value.shape[1]))
        for nodes in leaves:
            proba = self.value[nodes]
            norm = proba.sum(axis=1, keepdims=True)
            norm[norm == 0.0] = 1.0
            total += proba / norm
        return total / len(leaves)


# --- the floor: SUVmax and volume ---------------------------------------------------------------
FLOOR_COLUMNS = ("suvmax", "log_volume_ml")


def suvmax_volume(cases: Sequence[CaseData]) -> pd.DataFrame:
    """(n, 2) table: PET SUVmax inside the contour and log(tumour volume in mL); NaN where the
    contour is empty. From the cases' full-contour table when they carry one (IBSI ``stat_max`` of
    the PET in GTV_Mass_PET, ``morph_volume`` of GTV_Mass_CT), else from the box arrays (which
    truncate large tumours). ``attrs["source"]`` says which."""
    from chmfl.radiomics.table import BOX_SOURCE, feature_source

    source = feature_source(cases)
    out = np.full((len(cases), 2), np.nan)
    for i, c in enumerate(cases):
        if source != BOX_SOURCE:
            f = c.features
            out[i] = f.get("pet_stat_max", np.nan), np.log(f.get("ct_morph_volume", np.nan) / 1000.0)
            continue
        a = c.load()
        inside = a.mask > 0
        if inside.any():
            out[i, 0] = float(a.pet_suv[inside].max())
            out[i, 1] = math.log(inside.sum() * float(np.prod(a.spacing)) / 1000.0)
    table = pd.DataFrame(out, columns=list(FLOOR_COLUMNS), index=[c.patient_id for c in cases])
    table.attrs["source"] = source
    return table


class LogisticState:
    """Saving and loading of a standardise -> logistic-regression method: its fitted
    ``transform_``, ``coef_`` and ``intercept_`` (the floors ``suvmax-volume`` and ``suvmax-mtv``)."""

    transform_: FeatureTransform
    coef_: np.ndarray
    intercept_: float

    def save(self, directory: str | Path, extra: dict | None = None) -> None:
        state = {"transform": self.transform_.to_dict(), "coef": self.coef_.tolist(), "intercept": self.intercept_}
        write_model(directory, self, state, extra=extra)

    @classmethod
    def load(cls, directory: str | Path):
        cfg, _ = read_model(directory, cls)
        m = cls(cfg["method"], **cfg["params"])
        m.transform_ = FeatureTransform.from_dict(cfg["state"]["transform"])
        m.coef_ = np.asarray(cfg["state"]["coef"], float)
        m.intercept_ = float(cfg["state"]["intercept"])
        return m


class SuvmaxVolume(LogisticState, Method):
    """Floor: SUVmax and log volume in the contour -> standardise -> logistic regression."""

    capabilities = frozenset({"embed"})
    contour_at_test = "SUVmax and volume inside the test patient's contour"

    @classmethod
    def build(cls, name, registered, model_kwargs, ctx, size=None) -> SuvmaxVolume:
        return build_classical(cls, name, registered, model_kwargs, ctx, size, ("C",))

    def __init__(self, name: str = "suvmax-volume", seed: int = 0, C: float = 1.0) -> None:
        self.name = name
        self.seed = seed
        self.C = C

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed, "C": self.C}

    def _table(self, cases: Sequence[CaseData]) -> pd.DataFrame:
        """The predictors of ``cases`` (one row each); subclasses use other tables."""
        require_masks(cases, self.name)
        return suvmax_volume(cases)

    def _standardised(self, cases: Sequence[CaseData]) -> np.ndarray:
        return self.transform_.apply(self._table(cases))

    def fit(self, cases: Sequence[CaseData]) -> SuvmaxVolume:
        from sklearn.linear_model import LogisticRegression

        y = labels_of(cases)
        table = self._table(cases)
        self.transform_ = fit_feature_transform(table)
        lr = LogisticRegression(C=self.C, class_weight="balanced", random_state=self.seed)
        lr.fit(self.transform_.apply(table), y)
        self.coef_ = lr.coef_[0].astype(float)
        self.intercept_ = float(lr.intercept_[0])
        return self

    def predict_proba(self, cases: Sequence[CaseData]) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise ChmflError(f"method {self.name} is not fitted")
        return sigmoid(self._standardised(cases) @ self.coef_ + self.intercept_)

    def embed(self, cases: Sequence[CaseData]) -> np.ndarray:
        return self._standardised(cases)



# --- HC+RF --------------------------------------------------------------------------------------
class HandcraftedRF(Method):
    """HC+RF after Vallieres et al. 2015 (PMB 60:5471) and 2017 (Sci Rep 7:10117): IBSI
    features of PET and CT in the tumour; in the training fold: impute, drop near-constant and
    |Spearman| > ``max_corr`` features, keep ``n_features`` by the gain-equation forward
    selection, standardise; random forest (balanced class weights). Deviations: docs/methods.md."""

    capabilities = frozenset({"embed"})
    contour_at_test = "handcrafted features inside the test patient's contour"
    OPTIONS = ("n_features", "max_corr", "n_estimators", "selector", "n_bootstrap", "min_samples_leaf",
               "feature_jobs", "feature_cache")

    @classmethod
    def build(cls, name, registered, model_kwargs, ctx, size=None) -> HandcraftedRF:
        return build_classical(cls, name, registered, model_kwargs, ctx, size, cls.OPTIONS)

    def __init__(self, name: str = "hc-rf", seed: int = 0, n_features: int = 10, max_corr: float = 0.9,
                 n_estimators: int = 500, selector: str = "gain", n_bootstrap: int = 50,
                 min_samples_leaf: int = 1, feature_jobs: int = 1, feature_cache: str | None = None) -> None:
        self.name = name
        self.seed = seed
        self.n_features = n_features
        self.max_corr = max_corr
        self.n_estimators = n_estimators
        self.selector = selector
        self.n_bootstrap = n_bootstrap
        self.min_samples_leaf = min_samples_leaf
        self.feature_jobs = feature_jobs
        self.feature_cache = feature_cache

    def get_params(self) -> dict[str, Any]:
        keys = ("seed", "n_features", "max_corr", "n_estimators", "selector", "n_bootstrap", "min_samples_leaf")
        return {k: getattr(self, k) for k in keys}

    def _table(self, cases: Sequence[CaseData]) -> pd.DataFrame:
        from chmfl.radiomics.table import feature_table

        require_masks(cases, self.name)
        return feature_table(list(cases), n_jobs=self.feature_jobs, cache_dir=self.feature_cache)

    def fit(self, cases: Sequence[CaseData]) -> HandcraftedRF:
        from sklearn.ensemble import RandomForestClassifier

        y = labels_of(cases)
        if len(np.unique(y)) < 2:
            raise ChmflError(f"{self.name}: the training cases hold one class only")
        table = self._table(cases)
        self.transform_ = fit_feature_transform(table, y, k=self.n_features, max_corr=self.max_corr,
                                                selector=self.selector, seed=self.seed)
        rf = RandomForestClassifier(n_estimators=self.n_estimators, class_weight="balanced",
                                    min_samples_leaf=self.min_samples_leaf, random_state=self.seed, n_jobs=1)
        rf.fit(self.transform_.apply(table), y)
        self.forest_ = ForestArrays.from_sklearn(rf)
        return self

    def embed(self, cases: Sequence[CaseData]) -> np.ndarray:
        """The selected, standardised features (what the forest sees)."""
        if not hasattr(self, "transform_"):
            raise ChmflError(f"method {self.name} is not fitted")
        return self.transform_.apply(self._table(cases))

    def predict_proba(self, cases: Sequence[CaseData]) -> np.ndarray:
        return self.forest_.predict_proba(self.embed(cases))[:, 1]

    def save(self, directory: str | Path, extra: dict | None = None) -> None:
        write_model(directory, self, {"transform": self.transform_.to_dict()}, self.forest_.to_arrays(), extra)

    @classmethod
    def load(cls, directory: str | Path) -> HandcraftedRF:
        cfg, arrays = read_model(directory, cls)
        m = cls(cfg["method"], **cfg["params"])
        m.transform_ = FeatureTransform.from_dict(cfg["state"]["transform"])
        m.forest_ = ForestArrays.from_arrays(arrays)
        return m
