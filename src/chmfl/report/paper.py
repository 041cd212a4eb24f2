"""The paper's own numbers (``paper_results.yaml``) and the mapping of its rows to chmfl methods.

Method names in results files are registry names, with changed parameters in brackets:
``chmfl[seg_weight=0.3]``, ``resnet18-petct[pretrained=imagenet.safetensors]``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

import yaml

PAPER_EXPERIMENTS = ("table1", "table2", "tableS2", "tableS3", "tableS4", "fig5")
_NAME = re.compile(r"^(?P<base>[^\[\]]+?)(?:\[(?P<params>[^\[\]]*)\])?$")


@dataclass(frozen=True)
class PaperRow:
    paper: str  # the method's name in the paper
    method: str  # chmfl registry name
    params: tuple[tuple[str, str], ...]  # required bracketed parameters ("*" = any value)
    values: dict[str, float]
    marked: bool = False  # the paper's "*": p < 0.05 vs CHMFL
    note: str = ""

    def matches(self, name: str) -> bool:
        """True when results method ``name`` is this paper row's method and variant."""
        base, params = parse_method(name)
        if base != self.method or set(params) != {k for k, _ in self.params}:
            return False
        return all(v == "*" or params[k] == v for k, v in self.params)


@dataclass(frozen=True)
class PaperTable:
    key: str
    title: str
    metrics: tuple[str, ...]
    rows: tuple[PaperRow, ...]
    figure: str = ""


def parse_method(name: str) -> tuple[str, dict[str, str]]:
    """Split ``base[k=v,k2=v2]`` into ("base", {"k": "v", "k2": "v2"})."""
    m = _NAME.match(name.strip())
    if not m:
        return name, {}
    params = {}
    for part in filter(None, (m.group("params") or "").split(",")):
        key, _, value = part.partition("=")
        params[key.strip()] = value.strip()
    return m.group("base").strip(), params


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


def match_rows(table: PaperTable, methods: list[str]) -> list[tuple[PaperRow, str | None]]:
    """Each paper row with the first results method it matches (None when not run)."""
    return [(row, next((m for m in methods if row.matches(m)), None)) for row in table.rows]


def paper_order(experiment: str | None, methods: list[str]) -> list[str]:
    """``methods`` in the paper table's row order, unmatched methods after, in their given order."""
    table = paper_table(experiment)
    if table is None:
        return list(methods)
    first = [m for _, m in match_rows(table, methods) if m is not None]
    ordered = list(dict.fromkeys(first))
    return ordered + [m for m in methods if m not in ordered]


def weight_of(name: str, param: str = "seg_weight") -> tuple[str, float] | None:
    """(base, w) for a sweep variant such as ``chmfl[seg_weight=0.3]``, else None."""
    base, params = parse_method(name)
    if set(params) != {param}:
        return None
    try:
        return base, float(params[param])
    except ValueError:
        return None
