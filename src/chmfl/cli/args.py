"""Argument helpers shared by subcommands (no logic beyond parsing)."""

from __future__ import annotations

import argparse
import sys
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


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, except where there is nothing to show: a flag
    (off unless given), an option without a default (its help says what its absence means),
    or a help text that already names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        nothing = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if nothing or "default" in help_text or not action.option_strings:
            return help_text
        return super()._get_help_string(action)


class RawDefaultsFormatter(argparse.RawDescriptionHelpFormatter, DefaultsFormatter):
    """``DefaultsFormatter`` keeping the description's own line breaks (module docstrings)."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose subcommands show their defaults (``DefaultsFormatter``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``--epochs 0`` trains nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def show_progress(no_progress: bool) -> bool:
    """Progress bars unless ``--no-progress`` or stderr is not a terminal: in a log file a bar
    is a wall of carriage returns and cursor codes (``\\x1b[A``)."""
    return not no_progress and sys.stderr.isatty()
