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

``FigureView(held=True)`` keeps its figure back until ``release()``, and ``HeldCharts`` sends held
charts one at a time, ``gap_s`` apart, from a thread of its own: JupyterLab handles widget
messages that arrive together in one browser task (its kernel connection chains their handling),
so a dashboard and its charts sent together are built and drawn in one long task (two charts of a
64-layer model: 320 ms on a 2-core machine), and sent apart in a task each (about 110 ms).
"""
from __future__ import annotations

import html
import json
import threading
import time
from typing import Any, Sequence

import ipywidgets as widgets
import plotly.graph_objects as go
import plotly.io as pio

from .style import MUTED

MIME = "application/vnd.plotly.v1+json"
CONFIG = {"displaylogo": False, "responsive": False}


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """The display bundle of ``fig``: plotly's mime type (data, layout, config) and a text line."""
    plain = json.loads(pio.to_json(fig, validate=False))
    title = fig.layout.title.text or "plotly figure"
    return {MIME: {"data": plain.get("data", []), "layout": plain.get("layout", {}), "config": CONFIG},
            "text/plain": f"<plotly figure: {title}>"}


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


class HeldCharts:
    """Held FigureViews sent once, in turn (``release``): ``gap_s`` apart, from a daemon thread; or,
    if nobody releases them (a dashboard shown inside another widget, say), ``after_s`` after this
    is made."""

    def __init__(self, views: Sequence[FigureView], gap_s: float, after_s: float) -> None:
        self.views, self.gap_s = list(views), gap_s
        self._sent = threading.Event()
        timer = threading.Timer(after_s, self.release)
        timer.daemon = True
        timer.start()

    def release(self) -> None:
        if self._sent.is_set():
            return
        self._sent.set()

        def pace() -> None:
            for view in self.views:
                time.sleep(self.gap_s)
                view.release()
        threading.Thread(target=pace, name="vexplore-charts", daemon=True).start()
