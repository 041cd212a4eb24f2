"""Experiments as plain data: ``chmfl/experiments/<name>.yaml`` (no code in them).

An experiment names its methods, folds, repeats, the reference method for the paper's
t-tests, and the training settings. A method entry is a registry name, or a mapping
``{method: NAME, train: {...}, model_kwargs: {...}, pretrained: KEY, label: LABEL}`` for a
variant; a variant's label in the results is LABEL, or else ``NAME[key=value,...]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from chmfl.errors import ChmflError
from chmfl.methods.registry import METHODS

PAPER_EXPERIMENTS = ("table1", "table2", "tableS2", "tableS3", "tableS4", "fig5")


@dataclass(frozen=True)
class MethodRun:
    """One row of an experiment: a registry method plus the settings that make the variant."""

    method: str
    train: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None  # key into the user's --pretrained KEY=FILE map
    name: str | None = None  # explicit label for the results (default: method[key=value,...])

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        parts = [f"{k}={v}" for k, v in {**self.train, **self.model_kwargs}.items()]
        if self.pretrained:
            parts.append(f"pretrained={self.pretrained}")
        return f"{self.method}[{','.join(parts)}]" if parts else self.method


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    methods: tuple[MethodRun, ...]
    reference: str = "chmfl"
    folds: int = 6
    repeats: int = 1
    train: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "reference": self.reference,
            "folds": self.folds, "repeats": self.repeats, "train": dict(self.train),
            "methods": [{"label": m.label, "method": m.method, "train": m.train,
                         "model_kwargs": m.model_kwargs, "pretrained": m.pretrained}
                        for m in self.methods],
        }


def _method_run(entry: Any) -> MethodRun:
    if isinstance(entry, str):
        entry = {"method": entry}
    if not isinstance(entry, dict) or "method" not in entry:
        raise ChmflError(f"experiment method entry {entry!r} needs a 'method' name")
    unknown = set(entry) - {"method", "train", "model_kwargs", "pretrained", "label"}
    if unknown:
        raise ChmflError(f"experiment method entry has unknown keys: {', '.join(sorted(unknown))}")
    if entry["method"] not in METHODS:
        raise ChmflError(f"unknown method {entry['method']!r}; 'chmfl methods' lists them")
    return MethodRun(entry["method"], dict(entry.get("train") or {}),
                     dict(entry.get("model_kwargs") or {}), entry.get("pretrained"), entry.get("label"))


def parse_experiment(data: dict[str, Any]) -> Experiment:
    methods = tuple(_method_run(e) for e in data.get("methods") or [])
    if not methods:
        raise ChmflError("an experiment needs at least one method")
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        raise ChmflError(f"experiment lists a method twice: {labels}")
    return Experiment(
        name=str(data.get("name", "custom")), title=str(data.get("title", data.get("name", "custom"))),
        methods=methods, reference=str(data.get("reference", methods[-1].label)),
        folds=int(data.get("folds", 6)), repeats=int(data.get("repeats", 1)),
        train=dict(data.get("train") or {}),
    )


def load_experiment(name_or_path: str) -> Experiment:
    """A packaged experiment by name (table1, ..., fig5) or a YAML file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        text = path.read_text()
    elif name_or_path in PAPER_EXPERIMENTS:
        text = resources.files("chmfl.experiments").joinpath(f"{name_or_path}.yaml").read_text()
    else:
        raise ChmflError(f"unknown experiment {name_or_path!r}: use one of {', '.join(PAPER_EXPERIMENTS)} or a YAML file")
    return parse_experiment(yaml.safe_load(text))


def custom_experiment(methods: list[str], folds: int, repeats: int, reference: str | None = None) -> Experiment:
    """The experiment behind ``chmfl cv --methods a,b,c``."""
    runs = [_method_run(m) for m in methods]
    ref = reference or ("chmfl" if "chmfl" in methods else runs[-1].label)
    return Experiment("custom", "Cross-validation", tuple(runs), ref, folds, repeats)
