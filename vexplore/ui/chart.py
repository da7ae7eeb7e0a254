"""FigureView: a plotly figure in an ipywidgets Output, as plotly's own mime type.

A ``go.FigureWidget`` is an anywidget that carries the whole plotly.js bundle (5 MB) in every
instance's state; an explorer had three. Here a figure is a display output of mime type
``application/vnd.plotly.v1+json`` (its data and layout, a few KB), which the JupyterLab extension
shipped with the plotly package draws with one plotly.js loaded once per page (and served by the
Jupyter server as a static file, not through the kernel). Charts are views only: what a user picks
(a piece, a report) has a widget of its own in the explorer.

``show(fig)`` replaces the output in one state update; ``figure`` is the figure shown (``data`` its
traces), for code and tests that read the chart (the widget's own ``layout`` is the Output's).
A figure without traces is its title as a line of text: an empty chart would cost the page a
plotly draw for nothing.

What a draw costs the page (plotly's JupyterLab renderer draws a figure, then redraws it and draws
a copy for the PNG it keeps with the output, all in one browser task): ``figure_bundle`` sends the
figure as plotly would draw it, with two savings. Margins are settled beforehand (``settle_margins``):
where an axis's labels or a legend below the plot need more room than the margins give, plotly
lays the figure out, pushes the margins and lays it out again; margins wide enough from the start
spare that second pass (the 64-layer toy's event timeline: a 140 ms task on a 2-core machine ->
75 ms). And the template keeps only the trace types the figure has (plotly's default template
names every type: half the bundle).

The page's first plotly chart, whoever draws it, costs a main-thread task of about a second:
plotly's JupyterLab extension evaluates plotly.js (its whole 4.8 MB bundle, every trace type) when
its renderer first draws, and draws that chart in the same task. Nothing sent splits it, and
evaluating the module earlier (an idle callback) only moves the one long task. So the explorer
draws no chart in its first render: its charts are in tabs drawn when first opened
(``lazytabs``), and a tab's charts reach the page one at a time (``lazytabs.StagedBox``). What
would shorten that task is a smaller plotly.js: every chart the explorer draws is bars or markers, which
plotly.js-basic (bar, scatter, pie; 1.2 MB) draws, and it evaluates in 120-180 ms where the full
bundle takes 850-910 ms (each alone in Chromium on a 2-core machine; a first bar chart, 90-120 ms
more). That needs a renderer of vexplore's own in place of the extension's, with the bundle sent
once per kernel as the graph's front end is (``graphwidget.GraphCode``).

``FigureView(held=True)`` keeps its figure back until ``release()``, and ``HeldCharts`` sends held
charts one at a time, ``gap_s`` apart, from a thread of its own: JupyterLab handles widget
messages that arrive together in one browser task (its kernel connection chains their handling),
so a dashboard and its charts sent together are built and drawn in one long task (two charts of a
64-layer model: 320 ms on a 2-core machine), and sent apart in a task each (about 110 ms).
"""
from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import plotly.graph_objects as go
import plotly.io as pio

from .style import MUTED

log = logging.getLogger(__name__)

MIME = "application/vnd.plotly.v1+json"
CONFIG = {"displaylogo": False, "responsive": False}


# Margins plotly would push, estimated (``settle_margins``). Too small an estimate costs what it
# costs without one (plotly pushes the margin and lays the figure out again); too large leaves a
# little room under a legend or left of the labels.
EM = 0.6            # a label's width per character, in font sizes: wider than plotly's fonts (Open Sans, Verdana, DejaVu Sans) on average
TICK_PAD = 14       # px between a y tick label's left end and the figure's edge, and the tick's own room
LEGEND_ROW = 2.7    # a horizontal legend's row height, in font sizes (29 px at 11 px)
LEGEND_ENTRY = 40   # px of a legend entry besides its text (the swatch, gaps)
LEGEND_EM = 0.55    # a legend entry's text width per character, in font sizes (wraps as plotly does with DejaVu Sans)
PUSH_PAD = 12       # px plotly keeps between a pushed component and the figure's edge
NARROWEST = 420     # px: the narrowest a FigureView draws (its min_width); a legend wraps most there


def _text_len(text: Any) -> int:
    """Characters a label shows: HTML tags out, surrounding spaces collapsed (SVG text drops them)."""
    return len(re.sub(r"<[^>]*>", "", str(text)).strip())


def _number(v: Any, default: float) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def settle_margins(layout: dict[str, Any], data: list[dict[str, Any]]) -> dict[str, Any]:
    """``layout`` (plotly JSON) with its left and bottom margins widened to what plotly would push
    them to for the category labels of its y axis and for a horizontal legend below the plot, so
    plotly lays the figure out once. A margin is only ever widened; other components keep theirs."""
    template = (layout.get("template") or {}).get("layout", {})
    font = _number((layout.get("font") or {}).get("size"), _number((template.get("font") or {}).get("size"), 12))
    margin = {"l": 80, "r": 80, "t": 100, "b": 80, **(layout.get("margin") or {})}   # plotly's defaults
    before = dict(margin)
    height = _number(layout.get("height"), 450)
    yaxis = layout.get("yaxis") or {}
    labels = yaxis.get("categoryarray")
    if labels is None and yaxis.get("type") == "category":
        labels = [y for d in data for y in (d.get("y") or [])]
    if labels is None:
        labels = [y for d in data if d.get("orientation") == "h" for y in (d.get("y") or []) if isinstance(y, str)]
    if labels and yaxis.get("showticklabels", True) is not False and yaxis.get("visible", True) is not False:
        size = _number((yaxis.get("tickfont") or {}).get("size"), font)
        need = max(_text_len(t) for t in labels) * EM * size + TICK_PAD
        if ((yaxis.get("title") or {}).get("text")):
            need += 1.5 * font + 10
        margin["l"] = max(margin["l"], round(need))
    legend = layout.get("legend") or {}
    y = _number(legend.get("y"), 1.0)
    entries = [_text_len(d.get("name", "")) for d in data
               if d.get("showlegend") is not False and d.get("visible", True) is not False
               and any(len(d.get(k) or []) for k in ("x", "y", "values"))]
    shown = layout.get("showlegend", len(entries) > 1)
    if (shown and entries and legend.get("orientation") == "h" and y < 0 and legend.get("yanchor", "top") == "top"
            and legend.get("yref", "paper") == "paper"):
        size = _number((legend.get("font") or {}).get("size"), font)
        room = max(NARROWEST - margin["l"], 100)     # a legend at x=0 may run into the right margin
        rows, used = 1, 0.0
        for n in entries:                     # plotly's wrapping: an entry that does not fit starts a row
            w = LEGEND_ENTRY + n * LEGEND_EM * size
            if used and used + w > room:
                rows, used = rows + 1, 0.0
            used += w
        pushed = rows * LEGEND_ROW * size + PUSH_PAD
        # the legend's top is -y of the plot's height below it, and the plot shrinks as the margin grows
        need = (-y * (height - margin["t"]) + pushed) / (1 - y)
        margin["b"] = max(margin["b"], round(need + 1))
    return layout if margin == before else {**layout, "margin": margin}


def _used_template(layout: dict[str, Any], data: list[dict[str, Any]]) -> dict[str, Any]:
    """``layout`` with its template's per-trace-type defaults kept for the figure's trace types only
    (a default applies to traces of its type alone: the figure draws the same)."""
    template = layout.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("data"), dict):
        return layout
    used = {d.get("type", "scatter") for d in data}
    return {**layout, "template": {**template, "data": {k: v for k, v in template["data"].items() if k in used}}}


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """The display bundle of ``fig``: plotly's mime type (data, layout with settled margins and the
    template it uses, config) and a text line."""
    plain = json.loads(pio.to_json(fig, validate=False))
    data = plain.get("data", [])
    layout = settle_margins(_used_template(plain.get("layout", {}), data), data)
    title = fig.layout.title.text or "plotly figure"
    return {MIME: {"data": data, "layout": layout, "config": CONFIG}, "text/plain": f"<plotly figure: {title}>"}


def placeholder_bundle(fig: go.Figure) -> dict[str, Any]:
    """An empty figure's title as a line of text (HTML, and plain)."""
    title = fig.layout.title.text or ""
    return {"text/html": f'<div class="vx-chart-empty" style="color:{MUTED};font-size:12px;margin:6px 0">'
                         f"<i>{html.escape(title)}</i></div>", "text/plain": title}


class FigureView(widgets.Output):
    """An Output showing one plotly figure; ``show(fig)`` draws another in its place. ``held``: send
    nothing until ``release()`` (the figure shown meanwhile is kept and sent then)."""

    def __init__(self, fig: go.Figure | None = None, held: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("layout", widgets.Layout(flex="1 1 480px", min_width="420px"))
        super().__init__(**kwargs)
        self.figure: go.Figure = go.Figure()
        self.held = held
        self._lock = threading.Lock()     # show() runs in the explorer's worker thread, release() in the kernel's
        if fig is not None:
            self.show(fig)

    def show(self, fig: go.Figure) -> None:
        with self._lock:
            self.figure = fig
            if not self.held:
                self._draw()

    def release(self) -> None:
        """Send the figure held back (nothing if it was sent already)."""
        with self._lock:
            if self.held:
                self.held = False
                self._draw()

    def _draw(self) -> None:
        bundle = figure_bundle(self.figure) if self.figure.data else placeholder_bundle(self.figure)
        self.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)

    @property
    def data(self) -> tuple[Any, ...]:
        return self.figure.data


def holds_chart(widget: widgets.Widget) -> bool:
    """Whether ``widget`` or a widget inside it is a FigureView whose figure has traces (drawn by
    plotly, where an empty one is a line of text)."""
    if isinstance(widget, FigureView):
        return bool(widget.figure.data)
    return any(holds_chart(c) for c in getattr(widget, "children", ()))


class HeldCharts:
    """Held FigureViews sent once, in turn (``release``): ``gap_s`` apart, from a daemon thread; or,
    if nobody releases them (a dashboard shown inside another widget, say), ``after_s`` after this
    is made. ``then``: more steps run the same way after the charts (the explorer builds its hidden
    tabs: ``lazytabs``)."""

    def __init__(self, views: Sequence[FigureView], gap_s: float, after_s: float,
                 then: Sequence[Callable[[], Any]] = ()) -> None:
        self.views, self.gap_s, self.then = list(views), gap_s, list(then)
        self._sent = threading.Event()
        timer = threading.Timer(after_s, self.release)
        timer.daemon = True
        timer.start()

    def release(self) -> None:
        if self._sent.is_set():
            return
        self._sent.set()

        def pace() -> None:
            for step in [v.release for v in self.views] + self.then:
                time.sleep(self.gap_s)
                try:
                    step()
                except Exception:             # a closed widget, say: the other steps still run
                    log.exception("vexplore: a held chart or tab could not be sent")
        threading.Thread(target=pace, name="vexplore-charts", daemon=True).start()
