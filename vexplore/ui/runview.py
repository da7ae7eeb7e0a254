"""The Run tab's views of a RuntimeProfile (``cm.profile``), as pure builders tested without a browser:
the per-call bar, the piece rollup (plotly figures), the kernels table (rows for the tab's table
widget, and HTML for export), a kernel's details (its nodes, source lines and code) and the graph
coloured by device time with its heat legend (DOT laid out by Graphviz into SVG).

Heat: a node's device time per call is the time of the kernels that compute it (a kernel of several
nodes splits its time equally among them); a box of the graph (a node, a collapsed module, a fold of
identical modules) has the sum of its nodes'. Colours are five steps of one sequential scale of
mid-tones that read on light and dark themes (the labels on them chosen by ``text_on``), scaled to the
hottest box shown; boxes without kernel time are grey.
"""
from __future__ import annotations

import linecache
import re
from dataclasses import dataclass
from typing import Any, Collection, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..monitor.profile import KernelRow, RuntimeProfile
from ..monitor.report import CompileReport, Piece
from .code import highlight, kernels
from .graphmodel import _rep   # which box shows a node, as visible() decides it
from .graphmodel import default_expanded, graph_model, visible
from .graphsvg import nested_dot
from .render import dot_to_svg
from .style import MUTED, NEUTRAL_TEXT, TABLE_CSS, esc, plotly_template, text_on

HEAT = ("#f3e79b", "#f8b366", "#eb7f54", "#cf5a62", "#9c3f74")   # cool to hot, each a mid-tone
COLD = "#c3c8ce"                                               # no kernel time
PICKED = "#1565c0"                                             # a selected kernel's boxes (border)
BUSY, GAP, LEAD, OUTSIDE = "#4c78a8", "#f58518", "#b279a2", "#bab0ac"   # the per-call bar's parts
NO_PROFILE = ("No runtime profile of this report yet: press Profile to run the model's calls under "
              "torch.profiler (cm.profile) and see where each call's time goes.")
_PREFIX = re.compile(r"^graph_\d+_")
_LAYOUT = dict(template=plotly_template(), margin=dict(l=60, r=20, t=50, b=40), font=dict(size=11))
COLUMNS = ("kernel", "piece", "ms/call", "share", "calls", "GB/s", "TFLOP/s", "limit share", "source")
SORTS = {"time": "ms/call", "limit": "limit share"}    # sort key -> the column a click on sorts by


def latest(report: CompileReport | None) -> RuntimeProfile | None:
    """The report's newest profile (None: none taken)."""
    return report.profiles[-1] if report is not None and report.profiles else None


def per_call(row: KernelRow, prof: RuntimeProfile) -> float:
    """A row's device ms per profiled call."""
    return row.total_ms / prof.calls if prof.calls else 0.0


def bare_name(name: str) -> str:
    """A kernel's name as its piece's code defines it (the profiling build prefixes ``graph_N_``)."""
    return _PREFIX.sub("", name)


def _dash(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


# -- the summary and the per-call bar ------------------------------------------------------------------
def summary_html(prof: RuntimeProfile) -> str:
    """One line: calls, wall with and without the profiler, device, span, host gap, attribution, how built."""
    return (f'<div class="vx-run-summary"><b>{prof.calls} calls</b> on {esc(prof.device)}: wall '
            f"<b>{prof.wall_ms:.3f} ms</b> per call ({prof.profiled_wall_ms:.3f} ms profiled) · device busy "
            f"{prof.device_ms:.3f} ms · span {prof.span_ms:.3f} ms · host gap {prof.host_gap_ms:.3f} ms · "
            + (f"before the first graph {prof.lead_in_ms:.3f} ms · " if prof.lead_in_ms else "")
            + f"{prof.attributed_share:.0%} of the device time mapped to a piece and a line · {len(prof.rows)} kernels · "
            f"profiled in {prof.profile_s:.1f} s"
            f'<div style="color:{MUTED};font-size:11px">{esc(prof.note)}</div>{_uncaptured_html(prof)}</div>')


def _uncaptured_html(prof: RuntimeProfile) -> str:
    """Each size whose calls ran without a CUDA graph, with how many and why."""
    counts = dict(prof.runtime.uncaptured_sizes)
    rows = "".join(f"<li><b>{'other shapes' if n is None else f'{n} tokens'}</b> ({counts.get(n, 0)} calls): {esc(why)}</li>"
                   for n, why in prof.runtime.uncaptured_why)
    return f'<div class="vx-run-uncaptured">Without a CUDA graph:<ul style="margin:2px 0">{rows}</ul></div>' if rows else ""


def call_figure(prof: RuntimeProfile) -> go.Figure:
    """The median profiled call as one bar (device busy, host gap between kernels, the call's time outside
    its first and last kernel) and, where CUDA graphs ran, the calls they replayed, padded and did not
    capture (a second bar; on the CPU the title says none ran)."""
    rt = prof.runtime
    rows = 1 if rt.empty else 2
    fig = make_subplots(rows=rows, cols=1, vertical_spacing=0.35,
                        subplot_titles=(None if rows == 1 else ("ms per call", "calls by CUDA graph")))
    # the span by CUDA events is of calls without the profiler, as wall_ms is; the trace's, of profiled calls.
    # The host's time before the call's first graph (lead_in_ms) is a part of its own where it was measured
    events = prof.span_timer == "cuda events"
    lead = prof.lead_in_ms
    outside = max(0.0, (prof.wall_ms if events else prof.profiled_wall_ms) - prof.span_ms - lead)
    bars = [("device busy", prof.device_ms, BUSY), ("host gap", prof.host_gap_ms, GAP)]
    bars += [("before the first graph", lead, LEAD)] if lead else []
    for name, ms, colour in bars + [("outside the kernels", outside, OUTSIDE)]:
        fig.add_bar(name=name, orientation="h", y=["call"], x=[ms], marker_color=colour, row=1, col=1,
                    hovertemplate=f"{name}: %{{x:.3f}} ms<extra></extra>")
    if rows == 2:
        for name, n, colour in (("replayed", rt.replays - rt.padded_calls, BUSY), ("padded", rt.padded_calls, OUTSIDE),
                                ("uncaptured", rt.uncaptured_calls, GAP)):
            fig.add_bar(name=name, orientation="h", y=["calls"], x=[n], marker_color=colour, row=2, col=1,
                        hovertemplate=f"{name}: %{{x}} calls<extra></extra>")
    graphs = "no CUDA graphs ran: every call ran kernel by kernel" if rows == 1 else (
        f"{rt.uncaptured_calls} of {rt.replays + rt.uncaptured_calls} calls without a CUDA graph")
    fig.update_layout(**_LAYOUT, barmode="stack", height=190 if rows == 1 else 280, width=520,
                      title=f"Per call — {prof.wall_ms:.3f} ms without the profiler, {prof.profiled_wall_ms:.3f} ms "
                            f"profiled (median)<br><sup>{graphs}</sup>",
                      legend=dict(orientation="h", y=-0.3 if rows == 1 else -0.2))
    fig.update_xaxes(rangemode="tozero", row=1, col=1)
    return fig


def placeholder_figure(title: str) -> go.Figure:
    """A figure without traces: ``chart.FigureView`` shows its title as a line of text."""
    return go.Figure(layout=dict(title=title))


# -- pieces ---------------------------------------------------------------------------------------------
def piece_label(p: Piece | None, key: int | None) -> str:
    if key is None:
        return "outside pieces"
    if p is not None and p.kind == "split_op":
        return f"piece {key} · split op {', '.join(p.split_ops)}"
    return f"piece {key}"


def heat_colour(value: float, hottest: float) -> str:
    """The colour of ``value`` ms on the scale up to ``hottest`` (grey for none)."""
    if value <= 0 or hottest <= 0:
        return COLD
    return HEAT[min(len(HEAT) - 1, int(len(HEAT) * value / hottest))]


def pieces_figure(prof: RuntimeProfile, report: CompileReport) -> go.Figure:
    """Device ms per call of each piece (the profile's ``by_piece``), coloured by heat."""
    by_index = {p.index: p for p in report.pieces}
    rolled = prof.by_piece()
    hottest = max((u.mean_ms for u in rolled), default=0.0)
    labels = [piece_label(by_index.get(u.key), u.key) for u in rolled]
    fig = go.Figure(go.Bar(x=[str(u.key) if u.key is not None else "-" for u in rolled], y=[u.mean_ms for u in rolled],
                           marker_color=[heat_colour(u.mean_ms, hottest) for u in rolled],
                           customdata=[[lab, f"{u.share:.1%}", u.kernels] for lab, u in zip(labels, rolled)],
                           hovertemplate="%{customdata[0]}: %{y:.4f} ms per call, %{customdata[1]} of the device time, "
                                         "%{customdata[2]} kernels<extra></extra>"))
    fig.update_layout(**_LAYOUT, height=260, width=520, showlegend=False,
                      title=f"Device time per piece — {len(rolled)} pieces" if rolled else "No kernel ran in a piece",
                      xaxis=dict(title="piece", type="category"), yaxis=dict(title="ms per call"))
    return fig


def pieces_html(prof: RuntimeProfile, report: CompileReport) -> str:
    """The piece rollup as a table (export)."""
    by_index = {p.index: p for p in report.pieces}
    rows = "".join(f"<tr><td>{esc(piece_label(by_index.get(u.key), u.key))}</td><td class=num>{u.mean_ms:.4f}</td>"
                   f"<td class=num>{u.share:.1%}</td><td class=num>{u.kernels}</td></tr>" for u in prof.by_piece())
    return (f'<style>{TABLE_CSS}</style><table class="vx-table vx-run-pieces"><thead><tr><th>piece</th>'
            f"<th>ms/call</th><th>share</th><th>kernels</th></tr></thead><tbody>{rows}</tbody></table>")


# -- kernels ---------------------------------------------------------------------------------------------
def sorted_rows(prof: RuntimeProfile, sort: str = "time") -> list[int]:
    """Indices into ``prof.rows``: by device time, most first (``"time"``), or by limit share, furthest
    from the limit first, rows without one (the CPU) last in time order (``"limit"``)."""
    if sort not in SORTS:
        raise ValueError(f"sort={sort!r}: one of {', '.join(SORTS)}")
    order = sorted(range(len(prof.rows)), key=lambda i: -prof.rows[i].total_ms)
    if sort == "limit":
        order.sort(key=lambda i: (prof.rows[i].limit_share is None, prof.rows[i].limit_share or 0.0))
    return order


def kernel_cells(r: KernelRow, prof: RuntimeProfile) -> list[str]:
    grand = prof.total_ms or 1.0
    return [r.name, "-" if r.piece is None else str(r.piece), f"{per_call(r, prof):.4f}", f"{r.total_ms / grand:.1%}",
            str(r.calls), _dash(r.gbps, ".1f"), _dash(r.tflops, ".2f"),
            _dash(None if r.limit_share is None else 100 * r.limit_share, ".0f") + ("" if r.limit_share is None else " %"),
            ", ".join(r.source_lines) or "-"]


def kernel_rows(prof: RuntimeProfile, sort: str = "time", limit: int = 200) -> list[dict[str, Any]]:
    """The kernels table's rows in ``sort`` order: ``id`` (the row's index in ``prof.rows``), ``cells``
    (COLUMNS' texts; limit share "—" where unknown), ``heat`` (its colour) and ``title`` (its nodes)."""
    hottest = max((per_call(r, prof) for r in prof.rows), default=0.0)
    out = []
    for i in sorted_rows(prof, sort)[:limit]:
        r = prof.rows[i]
        out.append({"id": i, "cells": kernel_cells(r, prof), "heat": heat_colour(per_call(r, prof), hottest),
                    "title": f"nodes: {', '.join(r.nodes) or 'unknown'}"})
    return out


def kernels_html(prof: RuntimeProfile, n: int = 15, sort: str = "time") -> str:
    """The top ``n`` kernels as an HTML table (export, snapshot): the same cells as the tab's table."""
    cell = lambda k, c: f"<td{' class=num' if 1 <= k <= 7 else ''}>{esc(c)}</td>"  # noqa: E731
    body = "".join("<tr>" + "".join(cell(k, c) for k, c in enumerate(row["cells"])) + "</tr>"
                   for row in kernel_rows(prof, sort, n))
    more = len(prof.rows) - min(n, len(prof.rows))
    note = f'<div style="color:{MUTED};font-size:11px">{more} more kernels in the profile</div>' if more > 0 else ""
    head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    return (f'<style>{TABLE_CSS}</style><table class="vx-table vx-run-kernels"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>{note}")


def _source_html(line: str) -> str:
    path, _, n = line.rpartition(":")
    text = linecache.getline(path, int(n)).strip() if n.isdigit() else ""
    return f"<li><code>{esc(line)}</code>" + (f" — <code>{esc(text)}</code>" if text else "") + "</li>"


def _piece_code(report: CompileReport, index: int | None) -> str | None:
    p = next((q for q in report.pieces if q.index == index), None)
    if p is None:
        return None
    if p.code or p.same_as is None:
        return p.code
    return next((q.code for q in report.pieces if q.index == p.same_as), None)


def kernel_code_html(r: KernelRow, report: CompileReport) -> str:
    """The kernel's source where its piece's code defines it, else the code's lines that compute its nodes
    (a library call, ``extern_kernels.addmm``), else why there is none (an op run eagerly)."""
    code = _piece_code(report, r.piece)
    if not code:
        return f'<i style="color:{MUTED}">no generated code: an op run eagerly (a split op, or an eager piece)</i>'
    name = bare_name(r.name)
    for kname, lang, source in kernels(code):
        if kname == name:
            return highlight(source, lang)
    lines = code.splitlines()
    names = [re.compile(rf"\b{re.escape(n)}\b") for n in r.nodes]
    hits = [i for i, ln in enumerate(lines) if "Source Nodes:" in ln and any(m.search(ln) for m in names)]
    if hits:       # Inductor's comment naming the nodes, and the call after it
        return highlight("\n".join(ln for i in hits for ln in lines[i:i + 2]), "python")
    assigned = [ln.strip() for ln in lines if any(re.match(rf"\s*{re.escape(n)} = ", ln) for n in r.nodes)]
    if assigned:   # an eager piece's code (the FX graph's Python): the lines computing the nodes
        return highlight("\n".join(assigned), "python")
    return f'<i style="color:{MUTED}">{esc(name)} has no source in the piece\'s code (a library kernel)</i>'


def kernel_details_html(prof: RuntimeProfile, report: CompileReport, index: int) -> str:
    """A kernel's row (``prof.rows[index]``): its piece, nodes, figures, source lines (with each line's
    text where the file is readable) and its code."""
    r = prof.rows[index]
    p = next((q for q in report.pieces if q.index == r.piece), None)
    figures = [f"{per_call(r, prof):.4f} ms per call ({r.mean_ms:.4f} ms per run, {r.calls} runs)"]
    if r.bytes is not None:
        figures.append(f"{r.bytes:,} bytes" + (f", {r.gbps:.1f} GB/s" if r.gbps is not None else ""))
    if r.flops:
        figures.append(f"{r.flops:,} FLOPs" + (f", {r.tflops:.2f} TFLOP/s" if r.tflops is not None else ""))
    figures.append("limit share —: no device limits here (the CPU)" if r.limit_share is None
                   else f"{r.limit_share:.0%} of the limit")
    lines = "".join(_source_html(s) for s in r.source_lines) or "<li><i>no source line</i></li>"
    return (f'<div class="vx-run-details"><b>{esc(r.name)}</b> · {esc(piece_label(p, r.piece))} · nodes '
            f"<code>{esc(', '.join(r.nodes) or 'unknown')}</code>"
            f'<div>{esc(" · ".join(figures))}{" (estimated)" if r.estimated else ""}</div>'
            f"<div><b>source lines</b><ul style='margin:2px 0'>{lines}</ul></div>"
            f"<div><b>code</b><br/>{kernel_code_html(r, report)}</div></div>")


# -- the graph, coloured by device time ------------------------------------------------------------------
def node_times(prof: RuntimeProfile, report: CompileReport) -> dict[str, float]:
    """Graph node id (``g<graph>:<name>``, as graphmodel names them) -> device ms per call."""
    graph_of = {p.index: p.graph for p in report.pieces}
    out: dict[str, float] = {}
    for r in prof.rows:
        if r.piece not in graph_of or not r.nodes:
            continue
        share = per_call(r, prof) / len(r.nodes)
        for n in r.nodes:
            nid = f"g{graph_of[r.piece]}:{n}"
            out[nid] = out.get(nid, 0.0) + share
    return out


def kernel_nodes(prof: RuntimeProfile, report: CompileReport, index: int) -> tuple[str, ...]:
    """The graph node ids of ``prof.rows[index]``."""
    r = prof.rows[index]
    graph = next((p.graph for p in report.pieces if p.index == r.piece), None)
    return () if graph is None else tuple(f"g{graph}:{n}" for n in r.nodes)


@dataclass(frozen=True)
class HeatGraph:
    """The graph view coloured by device time: ``svg`` (None where Graphviz is not usable, ``note`` says
    why), its ``dot``, per box its ms (``times``), the boxes holding the picked nodes (``picked``)."""

    svg: str | None
    dot: str
    times: dict[str, float]
    picked: tuple[str, ...]
    hottest: float
    note: str | None = None


def _boxes(model: dict[str, Any], expanded: Collection[str], fold: bool) -> tuple[Any, dict[str, str]]:
    """The visible graph and each node's box (``visible``'s own grouping, folds included)."""
    view = visible(model, expanded, fold)
    folded = {"m:" + m: it.id for it in view.items if it.kind == "fold" for m in it.members}
    box = {}
    for n in model["nodes"]:
        rep = _rep(n, expanded)
        box[n["id"]] = folded.get(rep, rep)
    return view, box


def heat_graph(prof: RuntimeProfile, report: CompileReport, picked: Sequence[str] = (), fold: bool = True) -> HeatGraph:
    """The report's graph, modules collapsed as the Graph tab first opens them and opened around the
    ``picked`` node ids, each box coloured by its device time per call."""
    model = graph_model(report)
    expanded = set(default_expanded(model))
    modules = {n["id"]: n["module"] for n in model["nodes"]}
    for nid in picked:
        parts = (modules.get(nid) or "").split(".")
        expanded.update(".".join(parts[:k]) for k in range(1, len(parts) + 1) if parts[0])
    view, box = _boxes(model, expanded, fold)
    times: dict[str, float] = {}
    for nid, ms in node_times(prof, report).items():
        if nid in box:
            times[box[nid]] = times.get(box[nid], 0.0) + ms
    hot = tuple(dict.fromkeys(box[n] for n in picked if n in box))
    hottest = max(times.values(), default=0.0)
    dot = heat_dot(view, times, hottest, hot)
    svg, why = dot_to_svg(dot)
    return HeatGraph(svg, dot, times, hot, hottest, why)


def _heat_label(it: Any, ms: float) -> str:
    head = esc(it.label) if it.kind == "node" else f"<b>{esc(it.label)}</b>"
    return f"<{head}<br/>{ms:.4f} ms>" if ms > 0 else f"<{head}>"


def heat_dot(view: Any, times: dict[str, float], hottest: float, picked: Collection[str] = ()) -> str:
    """DOT of a visible graph, each box filled by its heat; picked boxes framed (class ``vx-run-picked``)."""
    ids = {it.id: f"h{k}" for k, it in enumerate(view.items)}
    inside: dict[str, list[str]] = {g: [] for g in ("", *view.groups)}
    for it in view.items:
        ms = times.get(it.id, 0.0)
        fill = heat_colour(ms, hottest)
        extra = f', class="vx-run-picked", penwidth=4, color="{PICKED}"' if it.id in picked else ', class="vx-run-box"'
        inside[it.parent].append(f'{ids[it.id]} [label={_heat_label(it, ms)}, fillcolor="{fill}", '
                                 f'fontcolor="{text_on(fill)}", tooltip="{esc(it.id)}"{extra}];')
    lines = ["digraph vexplore_heat {",
             '  graph [rankdir="TB", fontname="Helvetica", fontsize=10, nodesep=0.2, ranksep=0.25];',
             '  node [shape="box", style="rounded,filled", fontname="Helvetica", fontsize=10, color="#5a6470", '
             'margin="0.08,0.03", height=0.3];', '  edge [color="#a0aec0", arrowsize=0.6];',
             *nested_dot(view, inside, 'style="rounded"; color="#a0aec0"; fontcolor="#5a6470";')]
    lines += [f"  {ids[a]} -> {ids[b]};" for a, b in view.edges]
    return "\n".join([*lines, "}"])


def heat_legend_html(hottest: float) -> str:
    """The scale: five steps from the coolest to the hottest box shown, and grey for none."""
    step = hottest / len(HEAT) if hottest > 0 else 0.0
    chips = [f'<span class="vx-heat-chip" style="background:{c};color:{text_on(c)};padding:1px 6px;border-radius:3px;'
             f'margin-right:2px">{"≥" if k else "&lt;"} {(k * step if k else step):.4f}</span>' for k, c in enumerate(HEAT)]
    cold = (f'<span class="vx-heat-chip" style="background:{COLD};color:{text_on(COLD)};padding:1px 6px;'
            f'border-radius:3px">no kernel time</span>')
    return (f'<div class="vx-heat-legend" style="font-size:11px;margin:4px 0">device ms per call: '
            f"{''.join(chips)} {cold}</div>")


def heat_html(graph: HeatGraph) -> str:
    """The heat graph as HTML: legend, then the SVG (or, without Graphviz, why not)."""
    body = (f'<div class="vx-graph vx-run-graph" style="overflow:auto;max-height:700px">{graph.svg}</div>'
            if graph.svg is not None else f'<div class="vx-note" style="color:{MUTED}">{graph.note}</div>')
    return heat_legend_html(graph.hottest) + body


def profile_section(report: CompileReport, n: int = 15) -> str:
    """What an export shows of the report's latest profile: the summary, the top kernels, the pieces."""
    prof = latest(report)
    if prof is None:
        return ("<p><i>No runtime profile: the explorer's Run tab (Profile), cm.profile(*inputs) or %vxprofile "
                "takes one.</i></p>")
    return (summary_html(prof) + f"<h4>Top {min(n, len(prof.rows))} kernels by device time</h4>" + kernels_html(prof, n)
            + "<h4>Device time per piece</h4>" + pieces_html(prof, report))
