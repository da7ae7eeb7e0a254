"""The graph view as HTML: DOT laid out by Graphviz's ``dot`` into SVG, or, where ``dot`` (or the
``graphviz`` package) is missing, a plain HTML drawing of the pieces with a note saying why.

A missing dependency is bypassed, never raised: the explorer must open on any machine.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from ..monitor.report import CompileReport
from .dot import Run, fold_runs, report_dot
from .style import OUTCOME_COLOURS, WARNING, esc, outcome, same_groups, same_label, seconds, text_on

log = logging.getLogger(__name__)

NO_DOT = ("Graphviz's <code>dot</code> program was not found, so the graph is drawn without it "
          "(pieces only, no layout). Install it (<code>apt-get install graphviz</code>, "
          "<code>conda install graphviz</code> or <code>brew install graphviz</code>) for the full view.")


@dataclass(frozen=True)
class GraphView:
    """What the graph view shows: ``html``, drawn by ``engine`` ("dot" | "html"), with ``note`` when degraded."""

    html: str
    engine: str
    note: str | None = None
    dot: str = ""


def dot_to_svg(dot: str) -> tuple[str | None, str | None]:
    """Lay out ``dot`` as SVG; returns (svg, None), or (None, why it could not) when dot is unusable."""
    try:
        import graphviz
    except ImportError:
        return None, "The Python package <code>graphviz</code> is not installed (<code>pip install graphviz</code>); " + NO_DOT
    try:
        svg = graphviz.pipe("dot", "svg", dot.encode("utf-8"), quiet=True).decode("utf-8")
    except graphviz.ExecutableNotFound:
        return None, NO_DOT
    except Exception as e:  # dot crashed or timed out on this graph: draw without it
        log.warning("vexplore: dot failed (%s); drawing the graph without it", e)
        return None, f"Graphviz's <code>dot</code> failed on this graph ({esc(type(e).__name__)}: {esc(e)}); drawn without it."
    return svg[svg.find("<svg"):], None


def plain_html(report: CompileReport, fold: bool = True) -> str:
    """The pieces in execution order as coloured HTML boxes (no Graphviz needed)."""
    pieces = list(report.pieces)
    by_index = {p.index: p for p in pieces}
    groups = same_groups(pieces)
    runs = fold_runs(pieces) if fold else [Run(p.index, 1, 1) for p in pieces]
    rows = []
    for r in runs:
        boxes = []
        for i in range(r.start, r.start + r.period):
            p = by_index[i]
            colour = OUTCOME_COLOURS[outcome(p)]
            if p.kind == "split_op":
                text = f"<b>{esc(', '.join(p.split_ops))}</b> · piece {p.index} · split op"
            else:
                title = same_label(groups[i]) if r.repeats > 1 and i in groups else f"piece {i}"
                text = f"<b>{esc(title)}</b> · {p.nodes} nodes · {esc(seconds(p.compile_s))} · {esc(p.cache or 'no cache')}"
            boxes.append(f'<div class="vx-piece" style="background:{colour};color:{text_on(colour)};border-radius:6px;'
                         f'padding:4px 8px;margin:2px 0" title="{esc(p.name)}">{text}</div>')
        inner = "".join(boxes)
        if r.repeats > 1:
            inner = (f'<div style="border:1px dashed #333;border-radius:6px;padding:4px">'
                     f"<b>×{r.repeats}</b> (pieces {r.start}–{r.start + r.period * r.repeats - 1}){inner}</div>")
        rows.append(inner)
    return '<div class="vx-plain-graph" style="display:inline-block;min-width:320px">' + "&darr;".join(
        f"<div>{row}</div>" for row in rows) + "</div>"


def graph_view(report: CompileReport, expanded: Iterable[int] = (), fold: bool = True) -> GraphView:
    """The graph view of ``report``: SVG from dot when it can, else the plain drawing and a note."""
    dot = report_dot(report, expanded=expanded, fold=fold)
    svg, why = dot_to_svg(dot)
    if svg is not None:
        return GraphView(f'<div class="vx-graph" style="overflow:auto;max-height:900px">{svg}</div>', "dot", None, dot)
    note = f'<div class="vx-note" style="color:{WARNING}">{why}</div>'
    return GraphView(note + plain_html(report, fold), "html", why, dot)
