"""Plotly figures over reports: per-piece compile-time bars, the event timeline, benchmark chart.

Pure builders (report -> ``go.Figure``); ``show_in(widget, fig)`` puts a new figure into an
existing ``go.FigureWidget`` in place, so the dashboard never re-creates its charts.
"""
from __future__ import annotations

from typing import Any, Sequence

import plotly.graph_objects as go

from ..monitor.events import STEPS
from ..monitor.report import CompileReport
from .style import OUTCOME_COLOURS, OUTCOMES, outcome, seconds

# A colour per step that does the work; the bookkeeping steps (strategy, split, ...) share a grey.
_WORK_COLOURS = {"dynamo_trace": "#9d755d", "compile": "#4c78a8", "load": "#54a24b", "isolate": "#f58518",
                 "validate": "#eeca3b", "cudagraph_capture": "#b279a2"}
STEP_COLOURS = {step: _WORK_COLOURS.get(step, "#bab0ac") for step in STEPS}
_LAYOUT = dict(template="plotly_white", height=320, margin=dict(l=60, r=20, t=50, b=50),
               font=dict(size=11), legend=dict(orientation="h", y=-0.25))


def compile_time_figure(report: CompileReport) -> go.Figure:
    """One bar per piece (its compile or load seconds), one trace per outcome so the legend explains colours."""
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
                      title=f"Compile time per piece — report {report.id} ({report.strategy}): "
                            f"pieces {seconds(total)}, wall {seconds(report.wall_s)}",
                      xaxis=dict(title="piece", type="category",
                                 categoryorder="array", categoryarray=[str(p.index) for p in report.pieces]),
                      yaxis=dict(title="seconds"))
    return fig


def _event_label(e: Any) -> str:
    where = f" p{e.piece}" if e.piece is not None else (f" g{e.graph}" if e.graph is not None else "")
    size = f" @{e.size}" if e.size is not None else ""
    return f"{e.step}{where}{size}"


def timeline_figure(report: CompileReport) -> go.Figure:
    """Every event of the report as a bar from its start to its end, beside the measured wall time."""
    fig = go.Figure()
    events = list(report.events)
    labels = [f"{i:>3} {_event_label(e)}" for i, e in enumerate(events)]
    for step in dict.fromkeys(e.step for e in events):
        idx = [i for i, e in enumerate(events) if e.step == step]
        fig.add_bar(
            name=step, orientation="h", marker_color=STEP_COLOURS.get(step, "#888888"),
            y=[labels[i] for i in idx], x=[events[i].duration_s for i in idx], base=[events[i].start_s for i in idx],
            customdata=[[seconds(events[i].duration_s), events[i].tier or "", events[i].error_class or ""] for i in idx],
            hovertemplate="%{y}: %{customdata[0]} from %{base:.3f} s %{customdata[1]} %{customdata[2]}<extra></extra>")
    busy = sum(e.duration_s for e in events)
    fig.add_vline(x=report.wall_s, line_dash="dash", line_color="#333333",
                  annotation_text=f"wall {seconds(report.wall_s)}", annotation_position="top left")
    fig.update_layout(**_LAYOUT, barmode="overlay",
                      title=f"Events — {len(events)} measured, {seconds(busy)} in steps; wall {seconds(report.wall_s)}",
                      xaxis=dict(title="seconds since the compile started", rangemode="tozero"),
                      yaxis=dict(autorange="reversed", categoryorder="array", categoryarray=labels, tickfont=dict(size=9)))
    fig.update_layout(height=max(320, 40 + 14 * len(events)))
    return fig


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


def show_in(widget: go.FigureWidget, fig: go.Figure) -> None:
    """Replace ``widget``'s traces and layout with ``fig``'s, in place (one message to the browser)."""
    with widget.batch_update():
        widget.data = ()
        widget.add_traces(list(fig.data))
        widget.layout = fig.layout
