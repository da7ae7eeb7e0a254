"""Plotly figures over reports: per-piece compile-time bars, the event timeline, benchmark chart.

Pure builders (report -> ``go.Figure``); the explorer shows them with ``chart.FigureView`` (plotly's
own mime type in an Output widget, no plotly.js in the widget state).
"""
from __future__ import annotations

from typing import Any, Sequence

import plotly.graph_objects as go

from ..monitor.phases import PHASES, event_phases, inductor_cache_hit, phases_line, slices
from ..monitor.report import CompileReport
from .style import NEUTRAL_TEXT, OUTCOMES, OUTCOME_COLOURS, outcome, plotly_template, seconds

# A colour per phase (monitor/phases.py): the timeline colours every event's time by phase.
PHASE_COLOURS = {"dynamo": "#9d755d", "inductor_startup": "#e45756", "aot_lowering": "#4c78a8",
                 "kernel_compile": "#72b7b2", "cache_load": "#54a24b", "worker_compile": "#ff9da6",
                 "cudagraph_capture": "#b279a2", "vexplore": "#bab0ac", "first_run": "#eeca3b", "other": "#e8e8e8"}
MAX_TICKS = 24   # labelled pieces at most: a label per piece of a 64-layer model drew slowly and unreadably
_LAYOUT = dict(template=plotly_template(), height=320, margin=dict(l=60, r=20, t=50, b=50),
               font=dict(size=11), legend=dict(orientation="h", y=-0.25))


def compile_time_figure(report: CompileReport, number: int | None = None) -> go.Figure:
    """One bar per piece (its compile or load seconds), one trace per outcome so the legend explains colours.
    ``number``: the report's number where it is shown (the explorer's 1, 2, 3; default: its id)."""
    fig = go.Figure()
    for out in OUTCOMES:
        ps = [p for p in report.pieces if outcome(p) == out]
        if not ps:
            continue
        fig.add_bar(
            name=out, marker_color=OUTCOME_COLOURS[out],
            x=[str(p.index) for p in ps], y=[p.compile_s for p in ps],
            customdata=[[p.kind, p.compiler or "-", p.cache or "-", "" if p.same_as is None else f"shares piece {p.same_as}",
                         p.fallback_reason or ""] for p in ps],
            hovertemplate="piece %{x}: %{y:.3f} s<br>%{customdata[0]} · %{customdata[1]} · cache %{customdata[2]}"
                          "<br>%{customdata[3]} %{customdata[4]}<extra>" + out + "</extra>")
    total = sum(p.compile_s for p in report.pieces)
    fig.update_layout(**_LAYOUT, barmode="overlay",
                      title=f"Compile time per piece — report {report.id if number is None else number} ({report.strategy}): "
                            f"pieces {seconds(total)}, wall {seconds(report.wall_s)}",
                      xaxis=dict(title="piece", type="category", nticks=MAX_TICKS,
                                 categoryorder="array", categoryarray=[str(p.index) for p in report.pieces]),
                      yaxis=dict(title="seconds"))
    return fig


def _event_label(e: Any) -> str:
    where = f" p{e.piece}" if e.piece is not None else (f" g{e.graph}" if e.graph is not None else "")
    size = f" @{e.size}" if e.size is not None else ""
    hit = " (Inductor cache hit)" if inductor_cache_hit(e) else ""
    return f"{e.step}{where}{size}{hit}"


def main_phase(e: Any) -> str:
    """The phase most of an event's own time went to (its bar's colour)."""
    parts = event_phases(e)
    return max(parts, key=lambda p: parts[p]) if parts else "vexplore"


def _phase_note(e: Any) -> str:
    parts = event_phases(e)
    return " · ".join(f"{p} {seconds(parts[p])}" for p in PHASES if parts.get(p))


def timeline_figure(report: CompileReport) -> go.Figure:
    """Every event of the report as a bar from its start to its end, beside the measured wall time.

    One trace per phase: each bar in the colour of the phase most of its time went to (hover names
    the step), and an event split between phases (an Inductor compile: lowering, kernels) drawn in
    stripes of each phase's colour; the legend names the phases. Few traces keep the browser's
    drawing cheap (a trace per step took twice as long for the same bars)."""
    fig = go.Figure()
    events = list(report.events)
    labels = [f"{i:>3} {_event_label(e)}" for i, e in enumerate(events)]
    mains = [main_phase(e) for e in events]
    for phase in PHASES:
        idx = [i for i, m in enumerate(mains) if m == phase]
        if not idx:
            continue
        fig.add_bar(
            name=phase, orientation="h", marker_color=PHASE_COLOURS[phase], legendgroup=phase,
            y=[labels[i] for i in idx], x=[events[i].duration_s for i in idx], base=[events[i].start_s for i in idx],
            customdata=[[seconds(events[i].duration_s), events[i].tier or "", events[i].error_class or "",
                         _phase_note(events[i])] for i in idx],
            hovertemplate="%{y}: %{customdata[0]} from %{base:.3f} s %{customdata[1]} %{customdata[2]}"
                          "<br>%{customdata[3]}<extra></extra>")
    _phase_legend(fig, report, set(mains))
    busy = sum(e.duration_s for e in events if e.step != "graph")
    fig.add_vline(x=report.wall_s, line_dash="dash", line_color=NEUTRAL_TEXT,
                  annotation_text=f"wall {seconds(report.wall_s)}", annotation_position="top left")
    _stripes(fig, events)
    phases = f"<br><sup>{phases_line(report.phases, report.wall_s)}</sup>" if report.phases else ""
    fig.update_layout(**_LAYOUT, barmode="overlay",
                      title=f"Events — {len(events)} measured, {seconds(busy)} in steps; wall {seconds(report.wall_s)}{phases}",
                      xaxis=dict(title="seconds since the compile started", rangemode="tozero"),
                      yaxis=dict(autorange="reversed", categoryorder="array", categoryarray=labels, tickfont=dict(size=9)))
    fig.update_layout(height=max(320, 40 + 14 * len(events)))
    return fig


def _phase_legend(fig: go.Figure, report: CompileReport, drawn: set[str]) -> None:
    """A legend entry for each phase the report spent time in that no bar is coloured by (its time
    is in stripes): an empty trace."""
    present = {p for p, s in report.phases.items() if s > 0} - drawn
    for p in PHASES:
        if p in present:
            fig.add_bar(name=p, orientation="h", x=[], y=[], marker_color=PHASE_COLOURS[p], legendgroup=p)


def _stripes(fig: go.Figure, events: list[Any]) -> None:
    """Over each event whose own time went to several phases, its phase slices as coloured stripes."""
    split = {i for i, e in enumerate(events) if len(event_phases(e)) > 1}
    for s in slices(events):
        if s.event in split and s.duration_s > 0:
            fig.add_shape(type="rect", xref="x", yref="y", x0=s.start_s, x1=s.start_s + s.duration_s,
                          y0=s.event - 0.35, y1=s.event + 0.35, line_width=0, fillcolor=PHASE_COLOURS[s.phase],
                          layer="above")


def bench_figure(rows: Sequence[Any]) -> go.Figure:
    """Median time per call for every variant at every size, with p20–p80 as the error bar."""
    fig = go.Figure()
    sizes = sorted({r.tokens for r in rows})
    for variant in dict.fromkeys(r.variant for r in rows):
        rs = sorted((r for r in rows if r.variant == variant), key=lambda r: r.tokens)
        fig.add_bar(
            name=variant, x=[str(r.tokens) for r in rs], y=[r.median_ms for r in rs],
            error_y=dict(type="data", symmetric=False, array=[r.p80_ms - r.median_ms for r in rs],
                         arrayminus=[r.median_ms - r.p20_ms for r in rs]),
            hovertemplate=variant + " @%{x} tokens: %{y:.3f} ms<extra></extra>")
    fig.update_layout(**_LAYOUT, barmode="group", title="Time per call (median, p20–p80)" if rows else
                      "Benchmark: press Run to time eager and every configuration compiled so far",
                      xaxis=dict(title="tokens", type="category", categoryorder="array",
                                 categoryarray=[str(s) for s in sizes]),
                      yaxis=dict(title="ms per call"))
    return fig

