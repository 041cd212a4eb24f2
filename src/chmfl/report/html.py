"""One self-contained ``report.html``: inline CSS, figures embedded as base64 PNG, no external URLs."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

from chmfl.report.render import Table, to_html


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Pre:
    text: str


@dataclass(frozen=True)
class Details:
    """A collapsed block (``<details>``): raw text a reader may open but is not shown at first."""

    summary: str
    text: str


@dataclass(frozen=True)
class KeyValues:
    title: str
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Image:
    name: str
    title: str
    png: bytes
    caption: str = ""


@dataclass
class Section:
    title: str
    anchor: str
    items: list = field(default_factory=list)


_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.85em}caption{text-align:left;font-weight:bold;padding:.3em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:center}th{background:#f3f3f3}td:first-child{text-align:left}
.note{color:#555;font-size:.85em}.omitted{color:#8a5a00;font-size:.9em}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.85em;color:#444}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}nav a{margin-right:1em}
"""


def _item_html(item) -> str:
    if isinstance(item, Table):
        return to_html(item)
    if isinstance(item, Image):
        data = base64.b64encode(item.png).decode("ascii")
        return (f'<figure id="fig-{html.escape(item.name)}"><img alt="{html.escape(item.title)}" '
                f'src="data:image/png;base64,{data}"><figcaption><b>{html.escape(item.title)}.</b> '
                f"{html.escape(item.caption)}</figcaption></figure>")
    if isinstance(item, Note):
        return f'<p class="omitted">{html.escape(item.text)}</p>'
    if isinstance(item, Pre):
        return f"<pre>{html.escape(item.text)}</pre>"
    if isinstance(item, Details):
        return f"<details><summary>{html.escape(item.summary)}</summary><pre>{html.escape(item.text)}</pre></details>"
    if isinstance(item, KeyValues):
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in item.pairs)
        return f"<table><caption>{html.escape(item.title)}</caption><tbody>{rows}</tbody></table>"
    raise TypeError(f"cannot render {type(item).__name__}")


def render_html(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page; every figure inline, so the file can be mailed or archived on its own."""
    nav = "".join(f'<a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{html.escape(s.anchor)}"><h2>{html.escape(s.title)}</h2>'
        + "".join(_item_html(i) for i in s.items) + "</section>"
        for s in sections
    )
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"
            f"<nav>{nav}</nav>{body}</body></html>\n")
