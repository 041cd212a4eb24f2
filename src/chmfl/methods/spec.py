"""``MethodRun``: one row of an experiment as typed, frozen data -- a registered method, the
network or method arguments and named size that make the variant, and its settings overrides
(``TrainOverrides`` for the science, ``RuntimeOverrides`` for how to compute it).

It travels from the YAML file or ``--methods "chmfl[size=demo,seg_weight=0.3]"`` to the fold
and into the results (``config.yaml``'s spec, each fold's ``done.json``), where the report reads
it back with ``from_dict``. ``label`` is derived from it for display and folder names; nothing
parses a label back. Only the science is in the label: runtime overrides are not. A run may
declare a ``Selection`` (``methods.selection``): candidate settings that ``cv.nested`` chooses
between inside each outer training fold; its label says which settings it selects
(``hc-rf[select=n_features]``).
Imports no torch (the report reads these).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chmfl.errors import ChmflError
from chmfl.methods.runtime import RUNTIME_FIELDS, RuntimeConfig
from chmfl.methods.selection import Selection
from chmfl.methods.train_config import TRAIN_FIELDS, TrainConfig


@dataclass(frozen=True)
class Overrides:
    """Settings changed from a config's defaults, in the order given; each key is a field of
    ``config`` and each value has been checked (and coerced) by building that config."""

    items: tuple[tuple[str, Any], ...] = ()
    config: ClassVar[type] = object

    @classmethod
    def of(cls, mapping: Mapping[str, Any] | None) -> Overrides:
        mapping = dict(mapping or {})
        typed = cls.config().replace(**mapping).to_dict()  # one-line error on a bad key or value
        return cls(tuple((k, typed[k]) for k in mapping))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.items)

    def apply(self, cfg):
        return cfg.replace(**self.to_dict())

    def __bool__(self) -> bool:
        return bool(self.items)


class TrainOverrides(Overrides):
    config = TrainConfig


class RuntimeOverrides(Overrides):
    config = RuntimeConfig


def split_overrides(flat: Mapping[str, Any] | None) -> tuple[TrainOverrides, RuntimeOverrides]:
    """Typed (science, runtime) overrides from one flat mapping of setting names (an
    experiment's ``train:`` block, ``--set KEY=VALUE``); an unknown name or a value of the
    wrong type is a one-line error."""
    flat = dict(flat or {})
    runtime = {k: flat.pop(k) for k in list(flat) if k in RUNTIME_FIELDS and k not in TRAIN_FIELDS}
    unknown = set(flat) - set(TRAIN_FIELDS)
    if unknown:
        raise ChmflError(f"unknown training setting(s): {', '.join(sorted(unknown))} "
                         f"(science: {', '.join(TRAIN_FIELDS)}; runtime: {', '.join(RUNTIME_FIELDS)})")
    return TrainOverrides.of(flat), RuntimeOverrides.of(runtime)


def typed_settings(obj: Any) -> None:
    """In ``__post_init__`` of a frozen dataclass with ``train`` and ``runtime`` overrides:
    a plain mapping given as ``train`` is split into the two (runtime keys added to
    ``runtime``)."""
    if not isinstance(obj.train, TrainOverrides):
        train, runtime = split_overrides(obj.train)
        object.__setattr__(obj, "train", train)
        object.__setattr__(obj, "runtime", RuntimeOverrides.of({**obj.runtime.to_dict(), **runtime.to_dict()}))


ENTRY_KEYS = ("method", "train", "runtime", "model_kwargs", "size", "pretrained", "label", "select")


@dataclass(frozen=True)
class MethodRun:
    """One experiment row (module docstring). ``train`` may be given as a plain mapping: its
    runtime keys (precision, speed options, ...) go to ``runtime``, the rest to ``train``."""

    method: str
    train: TrainOverrides | Mapping[str, Any] = field(default_factory=TrainOverrides)
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    pretrained: str | None = None  # key into the user's --pretrained KEY=FILE map
    name: str | None = None  # explicit label for the results (default: method[key=value,...])
    size: str | None = None  # a named size of the method's network (e.g. "demo")
    runtime: RuntimeOverrides = field(default_factory=RuntimeOverrides)
    # candidate settings chosen by nested CV in every outer training fold (cv.nested)
    select: Selection | None = None

    def __post_init__(self) -> None:
        from chmfl.methods.registry import METHODS

        if self.method not in METHODS:
            raise ChmflError(f"unknown method {self.method!r}; 'chmfl methods' lists them")
        typed_settings(self)
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        if isinstance(self.select, Mapping):
            object.__setattr__(self, "select", Selection.from_dict(self.select))
        if self.select is not None:
            fixed = (set(self.train.to_dict()) | set(self.model_kwargs)) & set(self.select.keys())
            if fixed:
                raise ChmflError(f"{self.method}: {', '.join(sorted(fixed))} both fixed and in the select grid")

    def candidates(self) -> tuple[MethodRun, ...]:
        """The runs a selection chooses between: this run with each candidate's settings (and
        no selection); empty without one."""
        if self.select is None:
            return ()
        return tuple(MethodRun(self.method, {**self.train.to_dict(), **train}, {**self.model_kwargs, **kwargs},
                               self.pretrained, size=self.size, runtime=self.runtime)
                     for train, kwargs in self.select.candidates())

    def variant(self) -> dict[str, Any]:
        """What makes this row differ from the registered method, by name: size, science
        overrides, model arguments, pretrained key (the label's parts, as data)."""
        out: dict[str, Any] = {"size": self.size} if self.size else {}
        out.update(self.train.to_dict())
        out.update(self.model_kwargs)
        if self.pretrained:
            out["pretrained"] = self.pretrained
        if self.select is not None:
            out["select"] = "+".join(self.select.keys())
        return out

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        parts = [f"{k}={v}" for k, v in self.variant().items()]
        return f"{self.method}[{','.join(parts)}]" if parts else self.method

    def to_dict(self) -> dict[str, Any]:
        """The form stored in config.yaml and done.json (``from_dict`` reads it back); "select"
        only where the run has one, so records of runs without are unchanged."""
        out = {"label": self.label, "method": self.method, "train": self.train.to_dict(),
               "runtime": self.runtime.to_dict(), "model_kwargs": dict(self.model_kwargs),
               "size": self.size, "pretrained": self.pretrained}
        if self.select is not None:
            out["select"] = self.select.to_dict()
        return out

    def science(self) -> dict[str, Any]:
        """``to_dict`` without the runtime overrides: what identifies the row's results."""
        out = self.to_dict()
        del out["runtime"]
        return out

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any] | str) -> MethodRun:
        """A run from an experiment YAML entry (a registry name, or a mapping with ENTRY_KEYS)
        or from its stored ``to_dict`` form."""
        if isinstance(entry, str):
            entry = {"method": entry}
        if not isinstance(entry, Mapping) or "method" not in entry:
            raise ChmflError(f"experiment method entry {entry!r} needs a 'method' name")
        unknown = set(entry) - set(ENTRY_KEYS)
        if unknown:
            raise ChmflError(f"experiment method entry has unknown keys: {', '.join(sorted(unknown))}")
        run = cls(entry["method"], dict(entry.get("train") or {}), dict(entry.get("model_kwargs") or {}),
                  entry.get("pretrained"), size=entry.get("size"),
                  runtime=RuntimeOverrides.of(entry.get("runtime")), select=entry.get("select"))
        label = entry.get("label")
        return run if not label or label == run.label else cls(**{**run.__dict__, "name": label})


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside brackets: "a[x=1,y=[1, 2]],b" -> ["a[x=1,y=[1, 2]]", "b"]."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if depth < 0:
            raise ChmflError(f"unbalanced brackets in {text!r}")
        if ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ChmflError(f"unbalanced brackets in {text!r}")
    return [p.strip() for p in parts + [text[start:]] if p.strip()]


def parse_method_arg(text: str) -> MethodRun:
    """``NAME`` or ``NAME[key=value,...]`` from the command line. Each key is the network's
    named ``size``, a training setting (science or runtime, routed by name), ``pretrained``,
    or else an argument of the method's network; values are YAML scalars or lists. Whether
    the model arguments exist is checked when the method is built (``registry.check_run``)."""
    import yaml

    text = text.strip()
    base, bracket, rest = text.partition("[")
    if bracket and not rest.endswith("]"):
        raise ChmflError(f"method variant {text!r}: write NAME[key=value,...]")
    settings: dict[str, Any] = {}
    for pair in split_top_level(rest[:-1]) if bracket else []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ChmflError(f"method variant {text!r}: {pair!r} is not key=value")
        try:
            settings[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ChmflError(f"method variant {text!r}: the value of {key.strip()} is not readable") from exc
    size = settings.pop("size", None)
    pretrained = settings.pop("pretrained", None)
    train = {k: settings.pop(k) for k in list(settings) if k in TRAIN_FIELDS or k in RUNTIME_FIELDS}
    return MethodRun(base.strip(), train, settings, None if pretrained is None else str(pretrained),
                     size=None if size is None else str(size))
