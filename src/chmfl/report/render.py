"""Tables as Markdown, LaTeX, CSV and HTML; number formatting shared by every table."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from chmfl.fsutil import atomic_path

METRIC_LABELS = {
    "accuracy": "Acc.",
    "sensitivity": "Sen.",
    "specificity": "Spe.",
    "precision": "Pre.",
    "f1": "F1",
    "auc": "AUC",
    "dsc": "DSC",
    "jaccard": "Jac.",
    "seg_accuracy": "Acc.",
    "seg_sensitivity": "Sen.",
    "seg_specificity": "Spe.",
    "dsc_whole": "DSC (whole tumour)",
    "seg_sensitivity_whole": "Sen. (whole tumour)",
    "tumour_in_box": "Tumour in box",
}


@dataclass(frozen=True)
class Table:
    """One report table: ``display`` (formatted text) for md/tex/html, ``data`` (numbers) for csv."""

    name: str  # file stem under DIR/tables/
    title: str
    display: pd.DataFrame
    data: pd.DataFrame
    note: str = ""


def fmt(value: float, digits: int = 3) -> str:
    """A number with ``digits`` decimals; an en dash for NaN / missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def fmt_p(p: float, digits: int = 3) -> str:
    if p is None or math.isnan(p):
        return "–"
    least = 10.0 ** -digits
    return f"<{least:.{digits}f}" if p < least else f"{p:.{digits}f}"


def mean_sd(mean: float, sd: float, mark: str = "") -> str:
    if mean is None or math.isnan(mean):
        return "–"
    return f"{fmt(mean)} ± {fmt(sd)}{mark}" if not math.isnan(sd) else f"{fmt(mean)}{mark}"


def mean_ci(mean: float, low: float, high: float, digits: int = 3) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    if math.isnan(low):
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def to_markdown(table: Table) -> str:
    df = table.display
    cells = [[str(c) for c in df.columns]] + [[str(v) for v in row] for row in df.itertuples(index=False)]
    esc = [[c.replace("|", "\\|") for c in row] for row in cells]
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(esc[0]) + " |")
    lines.append("|" + "|".join("---" for _ in esc[0]) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in esc[1:]]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    out = "".join(_TEX.get(ch, ch) for ch in str(text))
    for plain, tex in (("±", r"$\pm$"), ("×", r"$\times$"), ("≥", r"$\geq$"), ("<", "$<$"), (">", "$>$"),
                       ("Δ", r"$\Delta$"), ("—", "---"), ("–", "--"), ("−", "$-$")):
        out = out.replace(plain, tex)
    return out


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    df = table.display
    spec = "l" * min(2, len(df.columns)) + "c" * max(0, len(df.columns) - 2)
    lines = [r"\begin{table}[ht]", r"\centering", f"\\caption{{{tex_escape(table.title)}}}",
             f"\\label{{tab:{table.name}}}", f"\\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(tex_escape(c) for c in df.columns) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(tex_escape(v) for v in row) + r" \\" for row in df.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.note:
        lines.append(f"\\par\\smallskip{{\\footnotesize {tex_escape(table.note)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_html(table: Table) -> str:
    df = table.display
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in df.itertuples(index=False)
    )
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return f'<table id="tab-{html.escape(table.name)}"><caption>{html.escape(table.title)}</caption>' \
           f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def write_table(table: Table, folder: Path) -> list[Path]:
    """Write ``<name>.md``, ``<name>.csv`` and ``<name>.tex`` into ``folder`` (atomically each)."""
    paths = []
    for suffix, text in ((".md", to_markdown(table)), (".tex", to_latex(table))):
        path = folder / f"{table.name}{suffix}"
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        paths.append(path)
    path = folder / f"{table.name}.csv"
    with atomic_path(path) as tmp:
        table.data.to_csv(tmp, index=False)
    paths.append(path)
    return paths
