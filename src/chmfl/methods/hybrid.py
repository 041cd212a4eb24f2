"""MOR + 3D CNN (Chen et al. 2019, PMB 64:075011): a many-objective radiomics model and a 3D CNN
on PET-CT, fused by the evidential reasoning (ER) rule.

* MOR (``chmfl.radiomics.mor``): IBSI features of PET and CT in the tumour; in the training
  fold, impute / drop near-constant and correlated features / keep ``n_candidates`` by
  univariate AUC / standardise; a seeded immune (clonal-selection) search over feature subsets
  and RBF-SVM (C, gamma) for sensitivity, specificity and AUC by inner cross-validation; the
  Pareto-optimal SVMs, Platt-scaled, fused by the ER rule with weights proportional to their
  inner-CV AUC (reliability = weight).
* CNN: ``NeuralMethod(model="mor-cnn")`` on the PET-CT box, trained on the same fold.
* Fusion: ER rule over [MOR, CNN] with ``er_weights`` and ``er_reliabilities``.

Deviations from the paper are listed in docs/methods.md. Model folder: ``config.json`` +
``arrays.npz`` (SVMs as arrays; no pickles) and the CNN's own folder ``cnn/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from chmfl.data.cases import CaseData, labels_of
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_dir
from chmfl.methods.base import FitContext, FitInfo, Method, check_options
from chmfl.methods.classical import model_config, read_model, require_masks
from chmfl.radiomics.evidential import er_binary
from chmfl.radiomics.mor import MORConfig, SVMArrays, fit_member, mor_proba, search_pareto
from chmfl.radiomics.transform import FeatureTransform, fit_feature_transform

_SVM_FIELDS = ("features", "support", "dual")


def _default_cnn(name: str, seed: int, ctx: FitContext, model_kwargs: dict | None):
    from chmfl.methods.neural import NeuralMethod

    return NeuralMethod(name=f"{name}/cnn", model="mor-cnn", model_kwargs=model_kwargs, train=ctx.train,
                        runtime=ctx.runtime, seed=seed,
                        workdir=Path(ctx.workdir) / "cnn" if ctx.workdir else None, progress=ctx.progress)


class MOR3DCNN(Method):
    """MOR and a 3D CNN fused by the ER rule (see module docstring). ``cnn`` may be given an
    unfitted method object with the same interface (tests use a small stand-in). ``ctx``:
    the CNN's training settings, seed and work folder; ``model_kwargs``: its network options."""

    capabilities = frozenset({"embed"})
    contour_at_test = "handcrafted features inside the test patient's contour (MOR)"
    OPTIONS = ("n_candidates", "max_corr", "population", "generations", "inner_folds", "max_pareto",
               "er_weights", "er_reliabilities", "feature_jobs", "feature_cache")

    @classmethod
    def build(cls, name: str, registered: Mapping[str, Any], model_kwargs: Mapping[str, Any],
              ctx: FitContext, size: str | None = None) -> MOR3DCNN:
        """The run's model arguments are MOR's options (``OPTIONS``) or else the CNN's network
        options; ``size`` is a named size of the CNN."""
        from chmfl.models import model_parameters, size_options

        own = {k: v for k, v in {**registered, **model_kwargs}.items() if k in cls.OPTIONS}
        cnn = {**(size_options("mor-cnn", size) if size else {}),
               **{k: v for k, v in model_kwargs.items() if k not in cls.OPTIONS}}
        check_options(name, cnn, [*cls.OPTIONS, *model_parameters("mor-cnn")])
        return cls(name, ctx=ctx, model_kwargs=cnn or None, **own)

    def __init__(self, name: str = "mor-3dcnn", seed: int | None = None, ctx: FitContext | None = None,
                 model_kwargs: dict | None = None, n_candidates: int = 30,
                 max_corr: float = 0.95, population: int = 16, generations: int = 12, inner_folds: int = 3,
                 max_pareto: int = 10, er_weights: Sequence[float] = (0.5, 0.5),
                 er_reliabilities: Sequence[float] | None = None, feature_jobs: int = 1,
                 feature_cache: str | None = None, cnn: Any = None) -> None:
        self.name = name
        self.ctx = ctx or FitContext()
        self.seed = self.ctx.seed if seed is None else seed
        self.model_kwargs = model_kwargs
        self.n_candidates = n_candidates
        self.max_corr = max_corr
        self.mor = MORConfig(population=population, generations=generations, inner_folds=inner_folds,
                             max_pareto=max_pareto)
        self.er_weights = tuple(float(w) for w in er_weights)
        self.er_reliabilities = tuple(float(r) for r in (er_reliabilities or self.er_weights))
        self.feature_jobs = feature_jobs
        self.feature_cache = feature_cache
        self.cnn = cnn

    def get_params(self) -> dict[str, Any]:
        mor = asdict(self.mor)
        return {"seed": self.seed, "n_candidates": self.n_candidates, "max_corr": self.max_corr,
                "population": mor["population"], "generations": mor["generations"],
                "inner_folds": mor["inner_folds"], "max_pareto": mor["max_pareto"],
                "er_weights": list(self.er_weights), "er_reliabilities": list(self.er_reliabilities)}

    # --- MOR ------------------------------------------------------------------------------
    def _features(self, cases: Sequence[CaseData]) -> np.ndarray:
        from chmfl.radiomics.table import feature_table

        require_masks(cases, self.name)
        return self.transform_.apply(feature_table(list(cases), self.feature_jobs, self.feature_cache))

    def _fit_mor(self, cases: Sequence[CaseData], y: np.ndarray) -> None:
        from chmfl.radiomics.table import feature_table

        require_masks(cases, self.name)
        table = feature_table(list(cases), self.feature_jobs, self.feature_cache)
        self.transform_ = fit_feature_transform(table, y, k=self.n_candidates, max_corr=self.max_corr)
        X = self.transform_.apply(table)
        genomes, F, folds = search_pareto(X, y, self.mor, self.seed)
        self.members_ = [fit_member(X, y, g, folds) for g in genomes]
        self.objectives_ = F  # (n_models, 3): inner-CV sensitivity, specificity, AUC
        self.member_weights_ = F[:, 2] / F[:, 2].sum()

    def mor_proba(self, cases: Sequence[CaseData]) -> np.ndarray:
        """P(DM) of the MOR part alone."""
        return mor_proba(self.members_, self.member_weights_, self._features(cases))

    # --- the method interface -------------------------------------------------------------
    def fit(self, cases: Sequence[CaseData]) -> MOR3DCNN:
        y = labels_of(cases)
        if len(np.unique(y)) < 2:
            raise ChmflError(f"{self.name}: the training cases hold one class only")
        self._fit_mor(cases, y)
        cnn = self.cnn if self.cnn is not None else _default_cnn(self.name, self.seed, self.ctx, self.model_kwargs)
        self.cnn_ = cnn.fit(cases)
        return self

    def predict_proba(self, cases: Sequence[CaseData]) -> np.ndarray:
        if not hasattr(self, "cnn_"):
            raise ChmflError(f"method {self.name} is not fitted")
        P = np.vstack([self.mor_proba(cases), np.asarray(self.cnn_.predict_proba(cases), float)])
        return er_binary(P, self.er_weights, self.er_reliabilities)

    def embed(self, cases: Sequence[CaseData]) -> np.ndarray:
        """The MOR part's standardised candidate features."""
        return self._features(cases)

    def fit_info(self) -> FitInfo:
        """The CNN part's training settings (its own log stays in the CNN's model folder)."""
        return FitInfo(train=self.ctx.train, runtime=self.ctx.runtime)

    # --- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path, extra: dict | None = None) -> None:
        members = [{"intercept": m.intercept, "gamma": m.gamma, "platt_a": m.platt_a, "platt_b": m.platt_b}
                   for m in self.members_]
        state = {"transform": self.transform_.to_dict(), "members": members,
                 "member_weights": self.member_weights_.tolist(), "objectives": self.objectives_.tolist()}
        arrays = {f"svm{i}_{f}": getattr(m, f) for i, m in enumerate(self.members_) for f in _SVM_FIELDS}
        with atomic_dir(directory) as tmp:
            (tmp / "config.json").write_text(json.dumps(model_config(self, state, extra), indent=2))
            np.savez_compressed(tmp / "arrays.npz", **arrays)
            self.cnn_.save(tmp / "cnn")

    @classmethod
    def load(cls, directory: str | Path, cnn_cls: type | None = None) -> MOR3DCNN:
        """Rebuild from a folder; the CNN part with ``cnn_cls.load`` (default ``NeuralMethod``)."""
        cfg, arrays = read_model(directory, cls)
        m = cls(cfg["method"], **cfg["params"])
        st = cfg["state"]
        m.transform_ = FeatureTransform.from_dict(st["transform"])
        m.members_ = [SVMArrays(*(arrays[f"svm{i}_{f}"] for f in _SVM_FIELDS), **kw)
                      for i, kw in enumerate(st["members"])]
        m.member_weights_ = np.asarray(st["member_weights"], float)
        m.objectives_ = np.asarray(st["objectives"], float)
        if cnn_cls is None:
            from chmfl.methods.neural import NeuralMethod as cnn_cls
        m.cnn_ = cnn_cls.load(Path(directory) / "cnn")
        return m
