"""``chmfl methods``: every method name with a one-line description."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list every method with a one-line description")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chmfl.methods.registry import METHODS

    width = max(len(n) for n in METHODS)
    for name, info in METHODS.items():
        table = f" [Table {info.table}]" if info.table and info.table != "-" else " [beyond the paper]"
        print(f"{name:<{width}}  {info.description}{table}")
    return 0
