"""The paper's own numbers (``paper_results.yaml``) and the mapping of its rows to chmfl methods.

A paper row names a registry method and, optionally, the variant parameters it must carry
(``params``). Results are matched by their structured run spec (``methods.spec.MethodRun``,
stored in config.yaml's ``spec``), never by parsing a label: a label such as
``chmfl[seg_weight=0.3]`` is for display only.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import yaml

from chmfl.methods.spec import MethodRun

PAPER_EXPERIMENTS = ("table1", "table2", "tableS2", "tableS3", "tableS4", "fig5")


@dataclass(frozen=True)
class PaperRow:
    paper: str  # the method's name in the paper
    method: str  # chmfl registry name
    params: tuple[tuple[str, str], ...]  # required bracketed parameters ("*" = any value)
    values: dict[str, float]
    marked: bool = False  # the paper's "*": p < 0.05 vs CHMFL
    note: str = ""

    def matches(self, run: MethodRun | None) -> bool:
        """True when the results method of spec ``run`` is this paper row's method and variant."""
        if run is None or run.method != self.method:
            return False
        params = run.variant()
        if set(params) != {k for k, _ in self.params}:
            return False
        return all(v == "*" or str(params[k]) == v for k, v in self.params)


@dataclass(frozen=True)
class PaperTable:
    key: str
    title: str
    metrics: tuple[str, ...]
    rows: tuple[PaperRow, ...]
    figure: str = ""


@functools.lru_cache(maxsize=1)
def paper_data() -> dict:
    """The transcribed paper numbers, as loaded from the package's ``paper_results.yaml``."""
    text = resources.files("chmfl.report").joinpath("paper_results.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def paper_table(experiment: str | None) -> PaperTable | None:
    """The paper's table for ``experiment`` (table1, table2, tableS2, tableS3, tableS4), else None."""
    spec = paper_data()["tables"].get(experiment or "")
    if spec is None:
        return None
    metrics = tuple(spec["metrics"])
    rows = tuple(
        PaperRow(
            paper=r["paper"],
            method=r["method"],
            params=tuple(sorted((str(k), str(v)) for k, v in (r.get("params") or {}).items())),
            values=dict(zip(metrics, map(float, r["values"]))),
            marked=bool(r.get("marked", False)),
            note=r.get("note", ""),
        )
        for r in spec["rows"]
    )
    return PaperTable(experiment, spec["title"], metrics, rows, spec.get("figure", ""))


def match_rows(table: PaperTable, methods: list[str],
               runs: Mapping[str, MethodRun]) -> list[tuple[PaperRow, str | None]]:
    """Each paper row with the first results method (label) whose spec in ``runs`` matches it
    (None when not run); a label without a stored spec matches no row."""
    return [(row, next((m for m in methods if row.matches(runs.get(m))), None)) for row in table.rows]


def paper_order(experiment: str | None, methods: list[str], runs: Mapping[str, MethodRun]) -> list[str]:
    """``methods`` in the paper table's row order, unmatched methods after, in their given order."""
    table = paper_table(experiment)
    if table is None:
        return list(methods)
    first = [m for _, m in match_rows(table, methods, runs) if m is not None]
    ordered = list(dict.fromkeys(first))
    return ordered + [m for m in methods if m not in ordered]


def weight_of(run: MethodRun | None, param: str = "seg_weight") -> tuple[str, float] | None:
    """(method, w) for a sweep variant whose only change is ``param`` (e.g. the spec shown as
    ``chmfl[seg_weight=0.3]``), else None."""
    if run is None or set(run.variant()) != {param}:
        return None
    return run.method, float(run.variant()[param])
