"""The explorer's static snapshot: the graph, the pieces, the event timeline, warnings and advice
as plain HTML, kept in the notebook so it shows where the widgets cannot (a notebook reopened
without widget state, trusted or not, or converted by nbconvert).

JupyterLab shows "Error displaying widget: model not found" for a widget output saved without
widget state, and does not fall back to another mime type of that output. So the snapshot is an
output of its own (``LiveSnapshot``): displayed under a display id after the widget's output and
updated in place when the explorer shows another report. The live explorer carries a ``<style>``
rule (``LiveSnapshot.hide_rule``) that hides its own snapshot while the widget is rendered; a
dead widget renders nothing, so the rule is not on the page and the snapshot shows.

In an untrusted notebook JupyterLab's sanitizer removes ``<svg>``, ``<style>`` and scripts but
keeps ``<img src="data:...">`` and inline styles, so the notebook snapshot draws its SVGs as
data-URI images and styles everything inline. ``vx.export_html`` (export.py) builds on the same
sections with the SVGs inline. Pure builders but ``LiveSnapshot`` (which imports IPython lazily).
"""
from __future__ import annotations

import base64
import dataclasses
import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

from ..bench.compare import BenchReport
from ..engine.model import CompiledModel
from ..errors import VexploreError
from ..monitor.report import CompileReport
from ..monitor.phases import PHASES, event_phases, slices
from .advicehtml import advice_html, top_advice_html
from .displaytext import CellNames, shown_advice
from .figures import PHASE_COLOURS, main_phase
from .graphsvg import graph_svg
from .render import plain_html
from .style import esc, seconds
from .tables import bench_table, pieces_table, summary_html

log = logging.getLogger(__name__)

GRAPH_LIMIT = 1_000_000     # characters of graph SVG a notebook snapshot takes; export_html takes any
MAX_EVENTS = 300            # rows of the timeline drawn; the rest are counted in a note
NO_ADVICE = "No advice: the advisor reads the model (vx.advise(cm)), and there is none here (saved reports)."
ADVISOR_FAILED = "No advice: the advisor failed on this model (its error is in the log); the report itself is complete."


@dataclass(frozen=True)
class Subject:
    """What a snapshot or an export shows: one report and what is known around it."""

    report: CompileReport
    title: str = ""                               # the model's class name
    reports: tuple[CompileReport, ...] = ()       # every report the explorer made (its history)
    bench: BenchReport | None = None
    advice: tuple[Any, ...] | None = None         # None: no advisor ran (no model, or it failed)

    @property
    def number(self) -> int:
        """The report's number as its explorer numbers it (1, 2, 3: its place in ``reports``, as the
        History tab, summary and chart titles say); its id where it is not among them."""
        return next((i + 1 for i, r in enumerate(self.reports) if r is self.report), self.report.id)

    @property
    def shown_advice(self) -> tuple[Any, ...] | None:
        """The advice as views show it: evidence as figures with units (``displaytext.shown_advice``)."""
        return shown_advice(self.advice)


def subject_of(obj: Any) -> Subject:
    """The Subject of a CompileReport, a CompiledModel or an explorer (``vx.explore(...)``)."""
    if isinstance(obj, CompileReport):
        return Subject(obj, reports=(obj,))
    shown = getattr(obj, "shown", None)           # an explorer: the report it shows, its history, its bench
    bench = getattr(getattr(obj, "bench", None), "report", None)
    cm = getattr(obj, "cm", obj)
    advice = getattr(obj, "advice", None)         # an explorer's advice is the list its Advice tab shows
    if isinstance(cm, CompiledModel):
        report = shown or cm.report
        if report is None:
            raise VexploreError("vexplore: the model has not been compiled yet; call it once (cm(*inputs)) first.")
        reports = tuple(getattr(obj, "reports", None) or cm.reports)
        if shown is None:                         # a CompiledModel: ask the advisor
            advice = advice_for(cm)
        return Subject(report, type(cm.model).__name__, reports, bench, advice)
    if isinstance(shown, CompileReport):          # an explorer over saved reports, without a model
        return Subject(shown, "", tuple(getattr(obj, "reports", None) or (shown,)), bench, advice)
    raise VexploreError(f"vexplore: cannot draw a {type(obj).__name__}; give a CompiledModel (vx.compile), "
                        "a CompileReport (cm.report) or an explorer (vx.explore).")


def advice_for(cm: CompiledModel, bench: BenchReport | None = None) -> tuple[Any, ...] | None:
    """``vx.advise(cm, bench)``; None where the advisor failed (logged: a view must show without it)."""
    from ..advise import advise

    try:
        return tuple(advise(cm, bench))
    except Exception:
        log.warning("vexplore: the advisor failed; the snapshot shows no advice", exc_info=True)
        return None


# -- SVG ----------------------------------------------------------------------------------------
def svg_img(svg: str, alt: str) -> str:
    """``svg`` as an ``<img>`` with a data URI: it survives the sanitizer of untrusted notebooks."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (f'<img class="vx-snapshot-svg" alt="{esc(alt)}" style="max-width:100%;height:auto" '
            f'src="data:image/svg+xml;base64,{data}"/>')


def _nice_step(span: float, ticks: int = 6) -> float:
    raw = max(span, 1e-9) / ticks
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def _event_label(i: int, e: Any) -> str:
    where = f" p{e.piece}" if e.piece is not None else (f" g{e.graph}" if e.graph is not None else "")
    return f"{i} {e.step}{where}" + (f" @{e.size}" if e.size is not None else "")


def _legend(phases: list[str], y: int, x0: int, width: int) -> tuple[list[str], int]:
    """Coloured squares with phase names, wrapped to ``width``; returns the parts and the height used."""
    parts, x, row = [], x0, 0
    for step in phases:
        w = 18 + 6 * len(step)
        if x + w > width and x > x0:
            x, row = x0, row + 1
        yy = y + 14 * row
        parts.append(f'<rect x="{x}" y="{yy - 8}" width="9" height="9" fill="{PHASE_COLOURS[step]}"/>'
                     f'<text x="{x + 12}" y="{yy}">{esc(step)}</text>')
        x += w
    return parts, 14 * (row + 1)


def _axis(report: CompileReport, end: float, geometry: tuple[int, int, int, int]) -> tuple[list[str], list[str]]:
    """(grid lines and tick labels drawn under the bars, the axis and wall-time line drawn over them)."""
    left, plot_w, top, axis_y = geometry
    x = lambda t: left + t * plot_w / end  # noqa: E731  (seconds -> pixels)
    step = _nice_step(end)
    grid = [f'<line x1="{x(k * step):.1f}" y1="{top - 2}" x2="{x(k * step):.1f}" y2="{axis_y}" stroke="#eeeeee"/>'
            f'<text x="{x(k * step):.1f}" y="{axis_y + 12}" text-anchor="middle">{esc(seconds(k * step) if k else "0")}</text>'
            for k in range(int(end / step) + 1)]
    wx = x(report.wall_s)
    over = [f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="#999999"/>',
            f'<text x="{left + plot_w / 2:.0f}" y="{axis_y + 26}" text-anchor="middle">seconds since the compile started</text>',
            f'<line x1="{wx:.1f}" y1="{top - 8}" x2="{wx:.1f}" y2="{axis_y}" stroke="#333333" stroke-dasharray="4 3"/>',
            f'<text x="{wx - 3:.1f}" y="{top - 10}" text-anchor="end">wall {esc(seconds(report.wall_s))}</text>']
    return grid, over


def timeline_svg(report: CompileReport, width: int = 760) -> str:
    """Every event of ``report`` (the first MAX_EVENTS) as a bar from its start to its end, in the
    colour of its main phase (an event split between phases in stripes), and the wall time dashed:
    the explorer's timeline chart drawn as plain SVG, no plotly.js."""
    events = list(report.events)[:MAX_EVENTS]
    left, row_h, top = 170, 14, 34
    plot_w = width - left - 20
    end = max([report.wall_s, *(e.start_s + e.duration_s for e in events)]) or 1.0
    axis_y = top + row_h * len(events) + 4
    grid, over = _axis(report, end, (left, plot_w, top, axis_y))
    bars = []
    for i, e in enumerate(events):
        y = top + i * row_h
        tip = f"{e.step}: {seconds(e.duration_s)} from {e.start_s:.3f} s" + (f" ({e.tier})" if e.tier else "")
        bars.append(f'<text x="{left - 6}" y="{y + 10}" text-anchor="end">{esc(_event_label(i, e))}</text>'
                    f'<rect x="{left + e.start_s * plot_w / end:.1f}" y="{y + 2}" '
                    f'width="{max(1.0, e.duration_s * plot_w / end):.1f}" height="{row_h - 4}" '
                    f'fill="{PHASE_COLOURS[main_phase(e)]}"><title>{esc(tip)}</title></rect>')
    bars += _stripes(events, (left, plot_w / end, top, row_h))
    present = {main_phase(e) for e in events} | {p for p, s in report.phases.items() if s > 0}
    legend, legend_h = _legend([p for p in PHASES if p in present], axis_y + 44, left, width)
    busy = sum(e.duration_s for e in report.events)
    title = (f'<text x="4" y="14" font-size="12" font-weight="bold">Events — {len(report.events)} measured, '
             f'{esc(seconds(busy))} in steps; wall {esc(seconds(report.wall_s))}</text>')
    height = axis_y + 44 + legend_h
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'font-family="Helvetica,Arial,sans-serif" font-size="10" fill="#333333">'
            f'<rect width="100%" height="100%" fill="white"/>{title}{"".join(grid + bars + over + legend)}</svg>')


def _stripes(events: list[Any], geometry: tuple[float, float, int, int]) -> list[str]:
    """Over each event whose own time went to several phases, its phase slices (as the explorer draws them)."""
    left, scale, top, row_h = geometry
    split = {i for i, e in enumerate(events) if len(event_phases(e)) > 1}
    return [f'<rect class="vx-stripe" x="{left + s.start_s * scale:.1f}" y="{top + s.event * row_h + 2}" width="{max(0.5, s.duration_s * scale):.1f}" '
            f'height="{row_h - 4}" fill="{PHASE_COLOURS[s.phase]}"><title>{esc(s.phase)} {esc(seconds(s.duration_s))}</title></rect>'
            for s in slices(events) if s.event in split and s.duration_s > 0]


# -- sections -----------------------------------------------------------------------------------
def graph_section(report: CompileReport, inline: bool, names: CellNames | None = None) -> str:
    """The graph as Graphviz drew it (inline SVG, or a data-URI image for notebooks); without
    Graphviz the plain drawing of the pieces and why. ``names``: cells named in the SVG before it is
    encoded (an image's text is out of reach afterwards)."""
    svg, why = graph_svg(report)
    if svg is not None and names is not None:
        svg = names.sub(svg)
    if svg is None:
        return f'<div style="color:#a15c00">{why}</div>{plain_html(report)}'
    if inline:
        return f'<div class="vx-snapshot-graph" style="overflow:auto">{svg}</div>'
    if len(svg) > GRAPH_LIMIT:
        return (f"<i>The graph is {len(svg) // 1000} kB as SVG, too large to keep in the notebook; "
                f"<code>vx.export_html(explorer, 'report.html')</code> writes it to a file.</i>")
    return svg_img(svg, "the graph of the report, modules collapsed as the Graph tab opens them")


def timeline_section(report: CompileReport, inline: bool) -> str:
    svg = timeline_svg(report)
    more = len(report.events) - MAX_EVENTS
    note = f"<div><i>the first {MAX_EVENTS} events drawn; {more} more in the report</i></div>" if more > 0 else ""
    return (svg if inline else svg_img(svg, "the compile's events on a timeline")) + note


def notes_section(subject: Subject) -> str:
    """The report's warnings and graph breaks, then the advisor's advice (or why there is none)."""
    r = subject.report
    items = [f'<li style="color:#a15c00">⚠ <b>{esc(w.kind)}</b>: {esc(w.message)}</li>' for w in r.warnings]
    items += [f'<li style="color:#a15c00">graph break: {esc(b)}</li>' for b in r.graph_breaks]
    warnings = f"<ul>{''.join(items)}</ul>" if items else "<p><i>No warnings.</i></p>"
    none = (NO_ADVICE if not subject.title else ADVISOR_FAILED) if subject.advice is None else ""
    advice = advice_html(subject.shown_advice, none)
    return f"<div><b>Warnings</b>{warnings}<b>Advice</b>{advice}</div>"


def sections(subject: Subject, inline: bool, names: CellNames | None = None) -> list[tuple[str, str]]:
    """(title, HTML) of what both the snapshot and the export show; ``inline``: SVG inline, else as images."""
    r = subject.report
    out = [("Graph", graph_section(r, inline, names)), (f"Pieces ({len(r.pieces)})", pieces_table(r)),
           ("Timeline", timeline_section(r, inline)), ("Warnings and advice", notes_section(subject))]
    if subject.bench is not None and subject.bench.rows:
        out.append(("Benchmark", bench_table(subject.bench)))
    return out


def details(title: str, body: str, open_: bool = True) -> str:
    """A collapsible section (``<details>`` needs no script)."""
    return (f'<details{" open" if open_ else ""} style="margin:6px 0"><summary style="font-weight:bold;'
            f'cursor:pointer;font-size:13px">{esc(title)}</summary><div style="margin:4px 0 0 12px">{body}</div></details>')


def summary(subject: Subject) -> str:
    """The explorer's summary line (the report by its number), without the warnings (they have their own section)."""
    return summary_html(dataclasses.replace(subject.report, warnings=()), number=subject.number)


def snapshot_html(subject: Subject, uid: str = "", names: CellNames | None = None) -> str:
    """The notebook snapshot: plain HTML with inline styles and data-URI images, no script.
    ``uid`` names the live explorer whose ``hide_rule`` hides it; ``names``: notebook cells named
    ``cell [n], line k`` (images included)."""
    r = subject.report
    head = (f'<div style="font-size:14px;font-weight:bold">vexplore — {esc(subject.title or "report")}: '
            f"snapshot of report {subject.number}</div>"
            '<div style="color:#666666;font-size:11px">A static copy kept with the notebook. The live explorer '
            "shows here instead while its kernel runs: run the cell again to get it back.</div>")
    body = "".join(details(t, h) for t, h in sections(subject, inline=False, names=names))
    # tex2jax_ignore: JupyterLab's MathJax skips it (no math in it; a $ in code or a message is no formula)
    cls = f"vx-snapshot vx-snapshot-{uid} tex2jax_ignore" if uid else "vx-snapshot tex2jax_ignore"
    top = top_advice_html(subject.shown_advice, "Warnings and advice below")
    html = (f'<div class="{cls}" style="font-family:sans-serif;font-size:12px;border:1px solid #dddddd;'
            f'border-radius:4px;padding:6px 10px;margin:4px 0">{head}{summary(subject)}{top}{body}</div>')
    return names.sub(html) if names is not None else html


class LiveSnapshot:
    """The snapshot of a live explorer as a notebook output of its own, kept current.

    ``display(widget_bundle)`` shows the widget's output, then the snapshot's under a display id;
    ``update()`` redraws it in every output showing it (IPython's update_display). The explorer
    puts ``hide_rule`` in one of its HTML widgets: while the widget is rendered its snapshot is
    hidden; when the widget is dead (no kernel, no widget state) the snapshot shows.
    """

    def __init__(self, source: Any) -> None:
        self.source = source        # the explorer: subject_of(source) is drawn
        self.uid = uuid.uuid4().hex[:12]
        self.display_id = f"vexplore-snapshot-{self.uid}"
        self.displayed = False

    @property
    def hide_rule(self) -> str:
        return f"<style>.vx-snapshot-{self.uid}{{display:none}}</style>"

    def bundle(self, subject: Subject | None = None) -> dict[str, str]:
        subject = subject or subject_of(self.source)
        return {"text/html": snapshot_html(subject, self.uid, CellNames.current()),
                "text/plain": f"vexplore snapshot of report {subject.number} (HTML)"}

    def display(self, widget_bundle: dict[str, Any]) -> None:
        """Display the widget (its mime bundle), then the snapshot as a second output. The widget's
        text/plain, shown where it cannot render (untrusted notebooks, nbconvert), says what it is."""
        from IPython.display import display

        try:
            subject = subject_of(self.source)
            bundle = self.bundle(subject)
        except Exception:   # the live widget must show even where the snapshot cannot be drawn
            log.warning("vexplore: could not draw the explorer's static snapshot", exc_info=True)
            subject, bundle = None, None
        name = subject.title if subject is not None and subject.title else "a report"
        display({**widget_bundle, "text/plain": f"vexplore explorer of {name}: a live widget, run the cell to see it"},
                raw=True)
        if bundle is not None:
            display(bundle, raw=True, display_id=self.display_id)
            self.displayed = True

    def update(self) -> None:
        """Redraw the snapshot where it is displayed (nothing before the first display)."""
        if not self.displayed:
            return
        from IPython.display import update_display

        try:
            update_display(self.bundle(), raw=True, display_id=self.display_id)
        except Exception:
            log.warning("vexplore: could not update the explorer's static snapshot", exc_info=True)
