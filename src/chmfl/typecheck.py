"""Typed settings: each field of a frozen settings dataclass holds a value of its default's type.

Settings arrive from YAML and ``--set KEY=VALUE`` as YAML scalars; ``coerce_fields`` turns the
harmless differences into the field's type (1 -> 1.0 for a float) and refuses the rest with a
one-line error, so a wrong value stops a run at its start, not in the middle of a fold.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from chmfl.errors import ChmflError


def _coerce(value: Any, default: Any, key: str, what: str) -> Any:
    """``value`` as the type of the field's ``default`` (a YAML ``1`` for a float field is 1.0,
    ``"1e-3"`` -- which YAML reads as a string -- is 0.001); anything else is a one-line error."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    else:
        return value
    raise ChmflError(f"{what} {key} must be a {type(default).__name__}, got {value!r}")


def coerce_fields(cfg: Any, what: str, skip: tuple[str, ...] = ()) -> None:
    """Coerce every field of the frozen dataclass ``cfg`` (but ``skip``) to its default's type
    (``_coerce``), in place: called from ``__post_init__``."""
    for f in dataclasses.fields(cfg):
        if f.name in skip or f.default is dataclasses.MISSING:
            continue
        value = getattr(cfg, f.name)
        object.__setattr__(cfg, f.name, _coerce(value, f.default, f.name, what))
