"""Argument helpers shared by subcommands (no logic beyond parsing)."""

from __future__ import annotations

from typing import Any

from chmfl.errors import ChmflError


def parse_key_values(pairs: list[str], flag: str = "--set") -> dict[str, Any]:
    """``["a=1", "b=[2, 3]"]`` -> ``{"a": 1, "b": [2, 3]}`` (values read as YAML scalars/lists)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ChmflError(f"{flag} takes KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ChmflError(f"{flag} {pair!r}: the value is not readable ({exc.problem})") from exc
    return out
