"""The graph view as DOT text: pieces as coloured clusters, split ops by name, identical runs folded.

Collapsed (the default), each piece is one box: its node count, compile time and cache tier.
An expanded piece shows its nodes, grouped by module path, each with a tooltip (op, target,
shape/dtype, source line). Edges follow the data between pieces and nodes. A run of pieces that
repeats (a transformer's layers: the same compiled piece, then the same split op) folds into one
cluster marked ``xN`` whose boxes are labelled ``piece 2 = 4 = 6``.

Everything taken from the model is HTML-escaped and only appears inside HTML-like labels or
quoted strings; node ids are generated (``p3``, ``p3_n17``), never model text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterable

from ..monitor.report import CompileReport, Piece
from .style import OUTCOME_COLOURS, esc, outcome, same_groups, same_label, seconds, short_module, text_on


@dataclass(frozen=True)
class Run:
    """Pieces ``start .. start + period * repeats - 1`` of one graph: a period repeated ``repeats`` times."""

    start: int
    period: int
    repeats: int

    def rep(self, index: int) -> int:
        """The piece drawn for ``index`` (its position in the first period)."""
        return self.start + (index - self.start) % self.period


def _signature(p: Piece, keep: Collection[int]) -> tuple[object, ...]:
    if p.index in keep:
        return ("keep", p.index)
    if p.kind == "split_op":
        return ("split_op", p.split_ops)
    return ("compiled", p.unique_key)


def fold_runs(pieces: list[Piece], keep: Collection[int] = (), max_period: int = 8) -> list[Run]:
    """Split the pieces (execution order) into runs; repeated periods fold. ``keep`` never folds.

    Greedy from the left: at each piece take the period (smallest first) that covers the most
    pieces with at least two repeats, within one graph. A period starts at a compiled piece, so
    a transformer folds as (layer piece, attention) xN rather than (attention, layer piece) xN.
    """
    runs: list[Run] = []
    i, n = 0, len(pieces)
    sig = [(p.graph, _signature(p, keep)) for p in pieces]
    while i < n:
        best = Run(pieces[i].index, 1, 1)
        for period in range(1, max_period + 1 if pieces[i].kind == "compiled" else 1):
            reps = 1
            while (i + (reps + 1) * period <= n
                   and sig[i + reps * period: i + (reps + 1) * period] == sig[i: i + period]):
                reps += 1
            if reps > 1 and period * reps > best.period * best.repeats:
                best = Run(pieces[i].index, period, reps)
        runs.append(best)
        i += best.period * best.repeats
    return runs


def _dot_str(text: str) -> str:
    """A DOT quoted string holding HTML-escaped ``text`` (backslashes kept literal, newlines as entities)."""
    return '"' + esc(text).replace("\\", "\\\\").replace("\n", "&#10;") + '"'


def _box_label(p: Piece, groups: dict[int, tuple[int, ...]], folded: bool) -> str:
    if p.kind == "split_op":
        ops = ", ".join(p.split_ops) or "split op"
        return f"<<b>{esc(ops)}</b><br/>piece {p.index} · split op, runs eagerly>"
    title = same_label(groups[p.index]) if folded and p.index in groups else f"piece {p.index}"
    lines = [f"<b>{esc(title)}</b>",
             f"{p.nodes} nodes · {esc(seconds(p.compile_s))} · {esc(p.cache or 'no cache')}"]
    if not folded and p.index in groups:
        lines.insert(1, esc("same as " + same_label(groups[p.index])))
    if p.fallback_reason:
        lines.append(f"fallback: {esc(p.compiler)}")
    return "<" + "<br/>".join(lines) + ">"


def _box_tooltip(p: Piece) -> str:
    parts = [f"{p.name} ({p.kind})"]
    if p.kind == "compiled":
        parts += [f"compiler: {p.compiler}", f"unique key: {p.unique_key}",
                  "cache by size: " + ", ".join(f"{'general' if s is None else s}={t}" for s, t in p.cache_by_size)]
    parts += [f"inputs: {', '.join(p.input_shapes)}"] if p.input_shapes else []
    parts += [f"fallback: {p.fallback_reason}"] if p.fallback_reason else []
    return "\n".join(parts)


def _node_tooltip(n) -> str:
    shape = f"{n.shape or '?'} {n.dtype or ''}".strip()
    return "\n".join([f"{n.name}", f"op: {n.op}", f"target: {n.target}", f"shape: {shape}",
                      f"module: {short_module(n.module)}", f"source: {n.source or '-'}"])


def _short_target(target: str) -> str:
    return target.rsplit("::", 1)[-1].rsplit(".", 1)[-1] if target else ""


def _piece_lines(p: Piece, groups: dict[int, tuple[int, ...]], folded: bool, expanded: bool) -> list[str]:
    colour = OUTCOME_COLOURS[outcome(p)]
    head = f'  subgraph cluster_p{p.index} {{ color="{colour}"; penwidth=2; style="rounded";'
    if not expanded:
        return [head + ' label="";',
                f'    p{p.index} [label={_box_label(p, groups, folded)}, fillcolor="{colour}", '
                f'fontcolor="{text_on(colour)}", tooltip={_dot_str(_box_tooltip(p))}];', "  }"]
    lines = [head + f" label={_box_label(p, groups, folded)}; fontsize=11;"]
    by_module: dict[str, list[tuple[int, object]]] = {}
    for k, n in enumerate(p.graph_nodes):
        by_module.setdefault(short_module(n.module), []).append((k, n))
    for m, (module, nodes) in enumerate(by_module.items()):
        lines.append(f'    subgraph cluster_p{p.index}_m{m} {{ label=<{esc(module)}>; style="dashed"; color="#999999";')
        for k, n in nodes:
            label = f"<<b>{esc(n.name)}</b><br/>{esc(_short_target(n.target))}<br/>{esc(n.shape or '')}>"
            lines.append(f'      p{p.index}_n{k} [label={label}, fillcolor="#ffffff", '
                         f'tooltip={_dot_str(_node_tooltip(n))}];')
        lines.append("    }")
    lines.append("  }")
    return lines


def _edges(pieces: list[Piece], runs: list[Run], expanded: Collection[int]) -> list[str]:
    """Data edges: between piece boxes, or to/from the nodes of expanded pieces."""
    rep: dict[int, int] = {}
    order: dict[int, int] = {}
    for u, r in enumerate(runs):
        for i in range(r.start, r.start + r.period * r.repeats):
            rep[i], order[i] = r.rep(i), u
    node_id: dict[str, tuple[int, int]] = {}
    for p in pieces:
        for k, n in enumerate(p.graph_nodes):
            node_id[(p.graph, n.name)] = (p.index, k)

    def end(piece: int, k: int) -> str:
        return f"p{piece}_n{k}" if piece in expanded else f"p{rep[piece]}"

    seen: dict[tuple[str, str], bool] = {}
    for p in pieces:
        for k, n in enumerate(p.graph_nodes):
            for name in n.inputs:
                src = node_id.get((p.graph, name))
                if src is None or (src[0] == p.index and p.index not in expanded):
                    continue
                a, b = end(*src), end(p.index, k)
                if a != b and (a, b) not in seen:
                    seen[(a, b)] = order[src[0]] > order[p.index] or (
                        order[src[0]] == order[p.index] and rep[src[0]] >= rep[p.index] and src[0] != p.index)
    return [f"  {a} -> {b}" + (' [style="dashed", constraint=false];' if back else ";")
            for (a, b), back in seen.items()]


def report_dot(report: CompileReport, expanded: Iterable[int] = (), fold: bool = True) -> str:
    """The graph view of ``report`` as DOT text (collapsed pieces unless listed in ``expanded``)."""
    pieces = list(report.pieces)
    expanded = frozenset(expanded)
    runs = fold_runs(pieces, keep=expanded) if fold else [Run(p.index, 1, 1) for p in pieces]
    groups = same_groups(pieces)
    by_index = {p.index: p for p in pieces}
    lines = ["digraph vexplore {", '  graph [rankdir="TB", fontname="Helvetica", fontsize=10, nodesep=0.25, ranksep=0.3];',
             '  node [shape="box", style="rounded,filled", fontname="Helvetica", fontsize=10, margin="0.08,0.04"];',
             '  edge [color="#666666", arrowsize=0.6];']
    graphs = sorted({p.graph for p in pieces})
    for g in graphs:
        if len(graphs) > 1:
            lines.append(f'  subgraph cluster_g{g} {{ label=<graph {g}>; style="dotted";')
        for r in (r for r in runs if by_index[r.start].graph == g):
            folded = r.repeats > 1
            if folded:
                last = r.start + r.period * r.repeats - 1
                lines.append(f'  subgraph cluster_fold{r.start} {{ label=<<b>×{r.repeats}</b> '
                             f'(pieces {r.start}–{last})>; style="dashed,rounded"; color="#333333"; fontsize=12;')
            for i in range(r.start, r.start + r.period):
                lines += _piece_lines(by_index[i], groups, folded, i in expanded)
            if folded:
                lines.append("  }")
        if len(graphs) > 1:
            lines.append("  }")
    lines += _edges(pieces, runs, expanded)
    lines.append("}")
    return "\n".join(lines)
