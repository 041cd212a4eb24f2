"""``chmfl report DIR``: report.html, tables (md/csv/tex) and figures (png/svg) from a results folder."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write DIR/report.html, DIR/tables/ and DIR/figures/ from a results folder",
        description="Build the report of a results folder (docs/results-format.md) from its files alone: "
        "report.html (self-contained), tables as Markdown/CSV/LaTeX and figures as PNG/SVG.",
    )
    p.add_argument("results_dir", metavar="DIR", help="results folder written by 'chmfl cv' or 'chmfl reproduce'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chmfl.report import build_report

    paths = build_report(args.results_dir)
    for line in paths.omitted:
        print(f"omitted: {line}")
    print(paths.html)
    return 0
