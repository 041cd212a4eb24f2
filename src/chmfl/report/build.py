"""``build_report(DIR)``: tables, figures and one self-contained ``report.html`` from a results folder.

Reads only the results folder (docs/results-format.md) and writes ``DIR/report.html``,
``DIR/tables/<name>.{md,csv,tex}`` and ``DIR/figures/<name>.{png,svg}``. The ``tables`` and
``figures`` folders are rebuilt as a whole (stale files from an earlier report disappear),
and nothing is left behind if the build fails. Any table or figure whose inputs are missing is
replaced by a one-line note saying why.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_dir, atomic_path
from chmfl.report import sections as sec
from chmfl.report.figures import FigureOut
from chmfl.report.html import Image, Note, Section, render_html
from chmfl.report.load import Results, load_results
from chmfl.report.render import Table, write_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    tables: tuple[Path, ...]
    figures: tuple[Path, ...]
    omitted: tuple[str, ...]  # one line per table/figure left out, with the reason


@dataclass
class _Writer:
    """Writes each table/figure as it is added and keeps what the HTML needs."""

    tables_dir: Path
    figures_dir: Path
    tables: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)

    def add(self, section: Section, item) -> None:
        if isinstance(item, Table):
            self.tables += [p.name for p in write_table(item, self.tables_dir)]
            section.items.append(item)
        elif isinstance(item, FigureOut):
            section.items.append(self._save(item))
        elif isinstance(item, str):
            self.omitted.append(f"{section.title}: {item}")
            section.items.append(Note(f"Omitted: {item}."))
        else:
            section.items.append(item)

    def _save(self, out: FigureOut) -> Image:
        with matplotlib.rc_context({"svg.hashsalt": "chmfl", "svg.fonttype": "path"}):
            buf = io.BytesIO()
            out.figure.savefig(buf, format="png", dpi=150, metadata={"Software": None})
            out.figure.set_layout_engine("none")  # keep the layout just computed: no second layout pass for SVG
            for suffix, payload in ((".png", buf.getvalue()), (".svg", None)):
                path = self.figures_dir / f"{out.name}{suffix}"
                with atomic_path(path) as tmp:
                    if payload is None:
                        out.figure.savefig(tmp, format="svg", metadata={"Date": None})
                    else:
                        tmp.write_bytes(payload)
                self.figures.append(path.name)
        return Image(out.name, out.title, buf.getvalue(), out.caption)


def safe(builder: Callable, *args):
    """Run a table/figure builder; a failure becomes a note instead of sinking the whole report."""
    try:
        return builder(*args)
    except ChmflError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - one broken input file must not lose every other figure
        log.warning("report: %s failed", builder.__name__, exc_info=True)
        return f"{builder.__name__} failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"


def _subtitle(res: Results) -> str:
    n_folds = res.splits["n_folds"] if res.splits else res.metrics.loc[res.metrics["fold"] != "all", "fold"].nunique()
    return (f"Results folder '{res.root.name}' · experiment: {res.experiment or 'not named'} · "
            f"{len(res.methods)} method(s) · {len(res.repeats)} repeat(s) × {n_folds} folds · "
            f"reference: {res.reference or 'none'}")


def build_report(results_dir: str | Path) -> ReportPaths:
    """Write ``report.html``, ``tables/`` and ``figures/`` into ``results_dir``; return their paths."""
    res = load_results(results_dir)
    root = res.root
    with atomic_dir(root / "tables") as tdir, atomic_dir(root / "figures") as fdir, \
            atomic_path(root / "report.html") as hpath:
        writer = _Writer(tdir, fdir)
        sections = []
        for title, anchor, make in sec.SECTIONS:
            section = Section(title, anchor)
            for item in make(res, safe):
                writer.add(section, item)
            sections.append(section)
        title = f"chmfl report: {res.experiment or root.name}"
        hpath.write_text(render_html(title, _subtitle(res), sections), encoding="utf-8")
    log.info("report written to %s (%d table files, %d figure files)", root / "report.html",
             len(writer.tables), len(writer.figures))
    return ReportPaths(root / "report.html", tuple(root / "tables" / n for n in writer.tables),
                       tuple(root / "figures" / n for n in writer.figures), tuple(writer.omitted))
