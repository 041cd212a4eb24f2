"""``FeatureTransform``: a feature table -> standardised matrix, learned on a training fold only.

Steps, all with training statistics: non-finite -> NaN -> training median; drop all-NaN and
near-constant columns; optionally drop highly correlated columns and keep ``k`` of the rest
(top univariate AUC, or Vallieres' gain-equation forward selection); standardise. Stored as
plain JSON (``to_dict`` / ``from_dict``) so a model folder holds no pickles. ``source`` records
which feature table the transform was fitted on (``table.attrs["source"]``: the full-contour
table "contour:<params hash>" or the box features "box"); ``apply`` refuses a table from another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from chmfl.errors import ChmflError
from chmfl.radiomics.selection import (
    drop_correlated,
    gain_forward_selection,
    near_constant,
    univariate_auc,
)

SELECTORS = ("auc", "gain")


@dataclass(frozen=True)
class FeatureTransform:
    """The fitted transform: output column ``kept[i]`` is ``(x - means[i]) / stds[i]`` after
    replacing a missing or non-finite ``x`` with ``medians[i]``."""

    kept: tuple[str, ...]
    medians: tuple[float, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    source: str = ""  # the feature table fitted on ("" when not known, e.g. a hand-built table)

    @property
    def n_out(self) -> int:
        """Number of output columns."""
        return len(self.kept)

    def apply(self, table: pd.DataFrame) -> np.ndarray:
        """(n_cases, len(kept)) float64; columns absent from ``table`` count as missing."""
        given = table.attrs.get("source", "")
        if self.source and given and given != self.source:
            raise ChmflError(f"features fitted on the {self.source} table cannot be applied to the {given} "
                             "table (give the cases the same feature table, e.g. the cache's features.csv)")
        X = table.reindex(columns=list(self.kept)).to_numpy(dtype=float, copy=True)
        X[~np.isfinite(X)] = np.nan
        X = np.where(np.isnan(X), np.asarray(self.medians), X)
        return (X - np.asarray(self.means)) / np.asarray(self.stds)

    def to_dict(self) -> dict:
        return {k: (v if isinstance(v, str) else list(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureTransform:
        try:
            return cls(*(tuple(d[k]) for k in ("kept", "medians", "means", "stds")), source=str(d.get("source", "")))
        except KeyError as err:
            raise ChmflError(f"feature transform is missing {err.args[0]!r}") from None


def _impute(table: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    X = table.to_numpy(dtype=float, copy=True)
    X[~np.isfinite(X)] = np.nan
    has = ~np.all(np.isnan(X), axis=0)
    cols = [c for c, h in zip(table.columns, has) if h]
    X = X[:, has]
    med = np.nanmedian(X, axis=0) if X.shape[1] else np.zeros(0)
    return cols, np.where(np.isnan(X), med, X), med


def fit_feature_transform(train_table: pd.DataFrame, labels: Sequence[int] | None = None,
                          k: int | None = None, max_corr: float | None = None,
                          selector: str = "auc", seed: int = 0) -> FeatureTransform:
    """Learn a ``FeatureTransform`` from the training fold's table (and labels, needed when
    ``k`` or ``max_corr`` is set: relevance orders the correlation filter and the selection)."""
    if selector not in SELECTORS:
        raise ChmflError(f"unknown feature selector {selector!r}: use one of {SELECTORS}")
    if (k is not None or max_corr is not None) and labels is None:
        raise ChmflError("feature selection needs the training labels")
    cols, X, med = _impute(train_table)
    keep = np.flatnonzero(~near_constant(X)) if X.shape[1] else np.zeros(0, int)
    if keep.size == 0:
        raise ChmflError("no usable handcrafted feature in the training cases (all missing or constant)")
    if labels is not None:
        y = np.asarray(labels, int)
        rel = np.abs(univariate_auc(X[:, keep], y) - 0.5)
        order = keep[np.argsort(-rel, kind="stable")]
        if max_corr is not None:
            order = order[drop_correlated(X[:, order], np.arange(len(order)), max_corr)]
        if k is not None and selector == "gain":
            order = order[gain_forward_selection(X[:, order], y, k, seed=seed)]
        elif k is not None:
            order = order[:k]
        keep = order
    Xk = X[:, keep]
    std = Xk.std(axis=0)
    std[std == 0] = 1.0
    return FeatureTransform(
        kept=tuple(cols[j] for j in keep),
        medians=tuple(float(v) for v in med[keep]),
        means=tuple(float(v) for v in Xk.mean(axis=0)),
        stds=tuple(float(v) for v in std),
        source=str(train_table.attrs.get("source", "")),
    )
