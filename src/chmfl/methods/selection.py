"""``Selection``: candidate settings of one method run, chosen by nested cross-validation.

Declared in the experiment before anything runs, as a method entry's ``select:`` block::

    - method: hc-rf
      select:
        grid:
          model_kwargs: {n_features: [5, 10, 20]}   # the method's options / network arguments
          train: {lr: [0.001, 0.0003]}              # science settings (TrainConfig fields)
        metric: auc        # default: the endpoint's (AUC for DM; the C-index for survival)
        inner_folds: 5

The candidates are the grid's cartesian product in the order written (the first key varies
slowest; ties go to the earlier candidate). ``cv.nested`` scores each one by an inner
stratified CV inside every outer training fold and refits the best on that whole fold.
Runtime settings (device, precision, speed options) are refused: they change how a result is
computed, not what it is, so there is nothing to choose between. Imports no torch.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chmfl.errors import ChmflError
from chmfl.methods.runtime import RUNTIME_FIELDS
from chmfl.methods.train_config import TRAIN_FIELDS, TrainConfig

SELECTION_METRICS = ("auc", "c_index")
SELECT_KEYS = ("grid", "metric", "inner_folds")
GRID_KEYS = ("train", "model_kwargs")

Grid = tuple[tuple[str, tuple[Any, ...]], ...]


def _grid(block: Any, part: str) -> Grid:
    """One part of ``grid:`` as ((key, (values...)), ...) in the order written."""
    if block is None:
        return ()
    if not isinstance(block, Mapping):
        raise ChmflError(f"select grid {part} must map setting names to lists of values, got {block!r}")
    out = []
    for key, values in block.items():
        values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
        if not values:
            raise ChmflError(f"select grid {part}.{key} lists no value")
        if len(set(map(repr, values))) != len(values):
            raise ChmflError(f"select grid {part}.{key} lists a value twice: {list(values)}")
        out.append((str(key), values))
    return tuple(out)


def _typed_train(grid: Grid) -> Grid:
    """Training-setting values checked and coerced by ``TrainConfig`` (science keys only)."""
    out = []
    for key, values in grid:
        if key in RUNTIME_FIELDS and key not in TRAIN_FIELDS:
            raise ChmflError(f"select grid train.{key} is a runtime setting: it changes how a result is "
                             "computed, not what it is, so there is nothing to select")
        if key not in TRAIN_FIELDS:
            raise ChmflError(f"select grid train.{key} is not a training setting ({', '.join(TRAIN_FIELDS)})")
        out.append((key, tuple(getattr(TrainConfig().replace(**{key: v}), key) for v in values)))
    return tuple(out)


@dataclass(frozen=True)
class Selection:
    """A method run's declared selection grid (module docstring)."""

    train: Grid = ()
    model_kwargs: Grid = ()
    metric: str | None = None  # None: the endpoint's default (cv.nested.selection_metric)
    inner_folds: int = 5

    def __post_init__(self) -> None:
        object.__setattr__(self, "train", _typed_train(self.train))
        if self.metric is not None and self.metric not in SELECTION_METRICS:
            raise ChmflError(f"select metric {self.metric!r}: use one of {', '.join(SELECTION_METRICS)}")
        if isinstance(self.inner_folds, bool) or not isinstance(self.inner_folds, int) or self.inner_folds < 2:
            raise ChmflError(f"select inner_folds must be an integer >= 2, got {self.inner_folds!r}")
        keys = self.keys()
        if len(set(keys)) != len(keys):
            raise ChmflError(f"select grid names a setting twice: {list(keys)}")
        if len(self.candidates()) < 2:
            raise ChmflError("a select grid needs at least two candidates")

    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.train + self.model_kwargs)

    def candidates(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every (train settings, model arguments) of the grid, in order."""
        grid = self.train + self.model_kwargs
        n_train = len(self.train)
        out = []
        for values in itertools.product(*(v for _, v in grid)):
            pairs = [(k, v) for (k, _), v in zip(grid, values)]
            out.append((dict(pairs[:n_train]), dict(pairs[n_train:])))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"grid": {"train": {k: list(v) for k, v in self.train},
                         "model_kwargs": {k: list(v) for k, v in self.model_kwargs}},
                "metric": self.metric, "inner_folds": self.inner_folds}

    @classmethod
    def from_dict(cls, block: Mapping[str, Any]) -> Selection:
        """The ``select:`` block of an experiment entry (or its stored ``to_dict`` form)."""
        if not isinstance(block, Mapping):
            raise ChmflError(f"select must be a mapping with {', '.join(SELECT_KEYS)}, got {block!r}")
        unknown = set(block) - set(SELECT_KEYS)
        if unknown:
            raise ChmflError(f"select has unknown keys: {', '.join(sorted(unknown))} (keys: {', '.join(SELECT_KEYS)})")
        grid = block.get("grid")
        if not isinstance(grid, Mapping) or not grid:
            raise ChmflError("select needs a grid: {train: {KEY: [values]}, model_kwargs: {KEY: [values]}}")
        unknown = set(grid) - set(GRID_KEYS)
        if unknown:
            raise ChmflError(f"select grid has unknown parts: {', '.join(sorted(unknown))} "
                             f"(parts: {', '.join(GRID_KEYS)})")
        metric = block.get("metric")
        return cls(_grid(grid.get("train"), "train"), _grid(grid.get("model_kwargs"), "model_kwargs"),
                   None if metric is None else str(metric), block.get("inner_folds", 5))


def candidate_text(train: Mapping[str, Any], model_kwargs: Mapping[str, Any]) -> str:
    """A candidate for people: ``n_features=5, lr=0.001``."""
    return ", ".join(f"{k}={v}" for k, v in {**train, **model_kwargs}.items())
