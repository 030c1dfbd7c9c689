"""One HTML file a person opens: headings, sentences, tables and figures, nothing to install.

Layers hand over what they measured as a list of :class:`Section` (text, :class:`Table` of
records or a DataFrame, :class:`Figure` from matplotlib or PNG bytes); :func:`build_html` turns
it into one self-contained page (PNG figures inlined as base64, no scripts, no network), and
:func:`write_html` writes it atomically. The module knows nothing about backtests or models, so
the evaluation report can use it the same way.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cascade_ml.atomic import atomic_file

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}h3{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.86rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
tr.hl td{background:#fff7d6}.note{color:#555;font-size:.88rem}.subtitle{color:#666}
figure{margin:1rem 0}figcaption{color:#555;font-size:.88rem}img{max-width:100%}
.verdict{padding:.6rem .8rem;border-left:4px solid #c33;background:#fbeeee}
.verdict.good{border-color:#393;background:#eef8ee}
"""
Formatter = Callable[[object], str]


@dataclass
class Text:
    """Paragraphs of plain text (escaped); ``kind='verdict'``/``'good'`` draws a callout."""

    body: str | Sequence[str]
    kind: str = "p"


@dataclass
class Table:
    """A table from a DataFrame (index shown when named) or a list of records."""

    data: pd.DataFrame | Sequence[dict]
    title: str | None = None
    note: str | None = None
    formats: dict[str, str | Formatter] = field(default_factory=dict)
    highlight: Sequence[str] = ()  # first-column values whose rows are highlighted


@dataclass
class Figure:
    """A matplotlib figure (rendered to PNG and closed) or PNG bytes."""

    image: object
    caption: str | None = None
    dpi: int = 100


@dataclass
class Section:
    heading: str
    items: list[Text | Table | Figure] = field(default_factory=list)
    level: int = 2


def _fmt(value: object, spec: str | Formatter | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if callable(spec):
        return spec(value)
    if spec and isinstance(value, int | float):
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(t: Table) -> str:
    frame = t.data if isinstance(t.data, pd.DataFrame) else pd.DataFrame(list(t.data))
    if isinstance(t.data, pd.DataFrame) and frame.index.name:
        frame = frame.reset_index()
    cols = [str(c) for c in frame.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for rec in frame.itertuples(index=False):
        cells = "".join(f"<td>{html.escape(_fmt(v, t.formats.get(c)))}</td>"
                        for c, v in zip(cols, rec, strict=True))
        cls = ' class="hl"' if len(rec) and str(rec[0]) in t.highlight else ""
        rows.append(f"<tr{cls}>{cells}</tr>")
    out = [f"<h3>{html.escape(t.title)}</h3>"] if t.title else []
    out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    if t.note:
        out.append(f'<p class="note">{html.escape(t.note)}</p>')
    return "\n".join(out)


def _png(image: object, dpi: int) -> bytes:
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    image.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(image)  # type: ignore[arg-type]
    return buf.getvalue()


def _figure(f: Figure) -> str:
    data = base64.b64encode(_png(f.image, f.dpi)).decode("ascii")
    cap = f"<figcaption>{html.escape(f.caption)}</figcaption>" if f.caption else ""
    return f'<figure><img alt="{html.escape(f.caption or "figure")}" ' \
           f'src="data:image/png;base64,{data}">{cap}</figure>'


def _text(t: Text) -> str:
    parts = [t.body] if isinstance(t.body, str) else list(t.body)
    if t.kind in ("verdict", "good"):
        cls = "verdict good" if t.kind == "good" else "verdict"
        return "".join(f'<p class="{cls}">{html.escape(p)}</p>' for p in parts)
    if t.kind == "ul":
        return "<ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in parts) + "</ul>"
    return "".join(f"<p>{html.escape(p)}</p>" for p in parts)


def build_html(title: str, sections: Sequence[Section], subtitle: str | None = None) -> str:
    """The whole page as a string."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    if subtitle:
        body.append(f'<p class="subtitle">{html.escape(subtitle)}</p>')
    for sec in sections:
        level = min(max(sec.level, 2), 4)
        body.append(f"<h{level}>{html.escape(sec.heading)}</h{level}>")
        for item in sec.items:
            if isinstance(item, Table):
                body.append(_table(item))
            elif isinstance(item, Figure):
                body.append(_figure(item))
            else:
                body.append(_text(item))
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_html(path: str | Path, title: str, sections: Sequence[Section],
               subtitle: str | None = None) -> Path:
    """Build the page and write it atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page = build_html(title, sections, subtitle)
    with atomic_file(path, "w") as fh:
        fh.write(page)
    os.chmod(path, 0o644)  # a report is for reading (the temp file was private)
    return path
