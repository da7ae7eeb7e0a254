"""FigureView: a plotly figure in an ipywidgets Output, as plotly's own mime type.

A ``go.FigureWidget`` is an anywidget that carries the whole plotly.js bundle (5 MB) in every
instance's state; an explorer had three. Here a figure is a display output of mime type
``application/vnd.plotly.v1+json`` (its data and layout, a few KB), which the JupyterLab extension
shipped with the plotly package draws with one plotly.js loaded once per page (and served by the
Jupyter server as a static file, not through the kernel). Charts are views only: what a user picks
(a piece, a report) has a widget of its own in the explorer.

``show(fig)`` replaces the output in one state update; ``figure`` is the figure shown (``data`` its
traces), for code and tests that read the chart (the widget's own ``layout`` is the Output's).
"""
from __future__ import annotations

import json
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import plotly.io as pio

MIME = "application/vnd.plotly.v1+json"
CONFIG = {"displaylogo": False, "responsive": True}


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """The display bundle of ``fig``: plotly's mime type (data, layout, config) and a text line."""
    plain = json.loads(pio.to_json(fig, validate=False))
    title = fig.layout.title.text or "plotly figure"
    return {MIME: {"data": plain.get("data", []), "layout": plain.get("layout", {}), "config": CONFIG},
            "text/plain": f"<plotly figure: {title}>"}


class FigureView(widgets.Output):
    """An Output showing one plotly figure; ``show(fig)`` draws another in its place."""

    def __init__(self, fig: go.Figure | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("layout", widgets.Layout(flex="1 1 480px", min_width="420px"))
        super().__init__(**kwargs)
        self.figure: go.Figure = go.Figure()
        if fig is not None:
            self.show(fig)

    def show(self, fig: go.Figure) -> None:
        self.figure = fig
        self.outputs = ({"output_type": "display_data", "data": figure_bundle(fig), "metadata": {}},)

    @property
    def data(self) -> tuple[Any, ...]:
        return self.figure.data
