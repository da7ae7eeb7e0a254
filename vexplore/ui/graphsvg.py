"""The graph view drawn without a browser: the same visible graph as the widget (modules
collapsed as ``default_expanded`` opens them, identical runs folded, expanded modules as
frames) as DOT, laid out by Graphviz into SVG. For the static snapshot a notebook keeps and
for HTML export, where no JavaScript runs; where ``dot`` is missing, ``dot_to_svg``'s note
says so and nothing is raised.

Every text from the model is HTML-escaped inside HTML-like labels or quoted strings; DOT ids
are generated (``i12``, ``cluster_c3``), never model text.
"""
from __future__ import annotations

from typing import Any, Collection

from ..monitor.report import CompileReport
from .graphmodel import Item, View, default_expanded, graph_model, parent_of, visible
from .render import dot_to_svg
from .style import esc, text_on

SPLIT = "#e45756"   # the split-op colour the widget uses
BREAK = "#b7002e"   # graph breaks, dashed
MIXED = "#9aa5b1"   # a box holding more than one piece


def _colour(it: Item, pieces: dict[str, Any]) -> str:
    if it.split and it.kind == "node":
        return SPLIT
    if len(it.pieces) == 1:
        return pieces.get(str(it.pieces[0]), {}).get("colour", "#888888")
    return MIXED


def _piece_range(ps: tuple[int, ...]) -> str:
    return f"piece {ps[0]}" if len(ps) == 1 else f"pieces {ps[0]}–{ps[-1]}"


def _label(it: Item) -> str:
    if it.kind == "node":
        return f"<{esc(it.label)}>"
    return f"<<b>{esc(it.label)}</b><br/>{it.count} nodes · {esc(_piece_range(it.pieces))}>"


def nested_dot(view: View, node_lines: dict[str, list[str]], cluster_style: str) -> list[str]:
    """DOT lines of ``view``'s boxes nested as its expanded modules: ``node_lines`` holds each group's
    box lines (key: the group, "" for the top), each expanded module a cluster drawn with ``cluster_style``."""
    children: dict[str, list[str]] = {g: [] for g in ("", *view.groups)}
    for g in view.groups:
        children[parent_of(g)].append(g)
    cluster = {g: f"cluster_c{k}" for k, g in enumerate(view.groups)}

    def body(g: str, indent: str) -> list[str]:
        lines = [indent + line for line in node_lines.get(g, ())]
        for c in children[g]:
            lines.append(f'{indent}subgraph {cluster[c]} {{ label=<{esc(c)}>; {cluster_style}')
            lines += body(c, indent + "  ")
            lines.append(indent + "}")
        return lines
    return body("", "  ")


def view_dot(view: View, pieces: dict[str, Any]) -> str:
    """DOT for a visible graph: boxes coloured as in the widget, expanded modules as nested clusters."""
    ids = {it.id: f"i{k}" for k, it in enumerate(view.items)}
    inside: dict[str, list[str]] = {g: [] for g in ("", *view.groups)}
    for it in view.items:
        border = ', penwidth=3, peripheries=2' if it.kind == "fold" else ""
        if (it.id, it.id) in view.breaks:   # both sides of a graph break inside one box
            border += f', penwidth=3, color="{BREAK}", style="rounded,filled,dashed"'
        fill = _colour(it, pieces)
        inside[it.parent].append(f'{ids[it.id]} [label={_label(it)}, fillcolor="{fill}", fontcolor="{text_on(fill)}"{border}];')
    lines = ["digraph vexplore {",
             '  graph [rankdir="TB", fontname="Helvetica", fontsize=10, nodesep=0.2, ranksep=0.25];',
             '  node [shape="box", style="rounded,filled", fontname="Helvetica", fontsize=10, '
             'color="#2d3748", margin="0.08,0.03", height=0.3];',
             '  edge [color="#a0aec0", arrowsize=0.6];']
    lines += nested_dot(view, inside, 'style="rounded,filled"; fillcolor="#edf2f7"; color="#a0aec0"; fontcolor="#2d3748";')
    lines += [f"  {ids[a]} -> {ids[b]};" for a, b in view.edges]
    lines += [f'  {ids[a]} -> {ids[b]} [style="dashed", color="{BREAK}", penwidth=2, label=<graph break>, '
              f'fontcolor="{BREAK}", fontsize=9];' for a, b in view.breaks if a != b]
    lines.append("}")
    return "\n".join(lines)


def graph_svg(report: CompileReport, expanded: Collection[str] | None = None,
              fold: bool = True) -> tuple[str | None, str | None]:
    """The graph view of ``report`` as SVG: (svg, None), or (None, why) where Graphviz is not
    usable. ``expanded`` defaults to what the widget opens first (``default_expanded``)."""
    model = graph_model(report)
    view = visible(model, default_expanded(model) if expanded is None else expanded, fold)
    return dot_to_svg(view_dot(view, model["pieces"]))
