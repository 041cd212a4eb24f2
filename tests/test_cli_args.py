"""The command line's arguments: every option explains itself and shows its default; values
that cannot run are refused before anything starts (one line, exit 2)."""

from __future__ import annotations

import argparse

import pytest

from chmfl.cli.args import DefaultsFormatter
from chmfl.cli.main import build_parser, main


def _subparsers(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from _subparsers(sub, f"{prefix}{name} ")


COMMANDS = list(_subparsers(build_parser()))


@pytest.mark.parametrize("name, parser", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_option_has_help_and_shows_its_default(name, parser):
    assert issubclass(parser.formatter_class, DefaultsFormatter), name
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction) or not action.option_strings:
            continue
        flag = action.option_strings[-1]
        assert action.help, f"chmfl {name} {flag}: no help line"
        if action.default is not None and action.default is not False:
            shown = f"default: {action.default}" in text or "default" in action.help
            assert shown, f"chmfl {name} {flag}: default {action.default!r} not shown"
        elif action.default is None and not action.required:
            assert any(w in action.help for w in ("default", "optional", "instead", "none")), \
                f"chmfl {name} {flag}: says nothing about what happens without it"
    assert "None" not in text, f"chmfl {name}: 'None' shown in the help"


def _refused(capsys, argv, *words):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("command", ["train", "cv", "reproduce"])
def test_zero_epochs_is_refused(command, capsys, tmp_path):
    """'train --epochs 0' trained nothing and saved a model (exit 0)."""
    extra = {"train": ["--method", "chmfl"], "cv": ["--methods", "chmfl"], "reproduce": ["table1"]}[command]
    _refused(capsys, [command, *extra, "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--epochs", "0"],
             "--epochs", "must be at least 1, got 0")
    assert not (tmp_path / "o").exists()


def test_demo_epochs_zero_is_refused(capsys):
    _refused(capsys, ["demo", "--epochs", "0"], "must be at least 1")
