"""The explorer's Run tab: where a call's time goes, from the report's runtime profile (``cm.profile``).

A Profile button (the explorer runs ``cm.profile`` on its inputs in its background worker and tells
the tab the outcome), the profile's summary, the per-call bar and the piece rollup (``chart.FigureView``),
the kernels table (``KernelTable``: sortable by device time and by limit share; a click picks a
kernel), the graph coloured by device time with its heat legend, and the picked kernel's nodes (framed
in the graph), source lines and code. Everything drawn comes from ``runview``'s pure builders; this
module only wires widgets.

``KernelTable`` is a small anywidget: its rows are plain data (``runview.kernel_rows``), the page draws
them in JupyterLab's ``--jp-*`` colours and sends back ``picked`` (a row's index in the profile) and
``sort`` (a header clicked).
"""
from __future__ import annotations

import threading
from typing import Callable

import anywidget
import ipywidgets as widgets
import traitlets

from ..monitor.report import CompileReport
from .chart import FigureView
from .displaytext import CellNames
from .runview import (COLUMNS, NO_PROFILE, SORTS, call_figure, heat_graph, heat_html, kernel_details_html, kernel_nodes,
                      kernel_rows, latest, pieces_figure, placeholder_figure, summary_html)
from .style import ERROR, MUTED, esc, jp

__all__ = ["KernelTable", "RunTab"]

TABLE_ESM = r"""
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
function render({ model, el }) {
  el.classList.add("vx-kt");
  const draw = () => {
    const cols = model.get("columns"), rows = model.get("rows"), picked = model.get("picked"),
          sort = model.get("sort"), sortable = model.get("sortable"), numeric = new Set(model.get("numeric"));
    const head = cols.map((c) => {
      const key = sortable[c], on = key && key === sort;
      return key ? `<th class="vx-kt-sortable${on ? " vx-kt-sorted" : ""}" data-sort="${esc(key)}" title="sort by ${esc(c)}">${esc(c)}${on ? " ▾" : ""}</th>`
                 : `<th>${esc(c)}</th>`;
    }).join("");
    const body = rows.map((r) => `<tr data-id="${r.id}" class="vx-kt-row${r.id === picked ? " vx-kt-picked" : ""}" title="${esc(r.title)}">`
      + r.cells.map((c, i) => `<td${numeric.has(i) ? ' class="num"' : ""}${i === 0 ? ` style="border-left:6px solid ${esc(r.heat)}"` : ""}>${esc(c)}</td>`).join("")
      + "</tr>").join("");
    el.innerHTML = `<table class="vx-kt-table"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`
      + (rows.length ? "" : `<div class="vx-kt-empty">${esc(model.get("empty"))}</div>`);
  };
  el.addEventListener("click", (ev) => {
    const th = ev.target.closest("th[data-sort]");
    if (th) { model.set("sort", th.dataset.sort); model.save_changes(); return; }
    const tr = ev.target.closest("tr[data-id]");
    if (tr) { model.set("picked", Number(tr.dataset.id)); model.save_changes(); }
  });
  for (const k of ["columns", "rows", "picked", "sort"]) model.on(`change:${k}`, draw);
  draw();
}
export default { render };
"""

TABLE_CSS = (
    ".vx-kt{max-height:340px;overflow:auto;margin:4px 0}"
    f".vx-kt-table{{border-collapse:collapse;font-size:12px;font-family:sans-serif;color:{jp('content-font-color1', 'rgba(0,0,0,0.87)')}}}"
    f".vx-kt-table th,.vx-kt-table td{{border-bottom:1px solid {jp('border-color2', '#e0e0e0')};padding:2px 8px;"
    "text-align:left;white-space:nowrap}"
    f".vx-kt-table th{{background:{jp('layout-color2', '#eeeeee')};position:sticky;top:0}}"
    ".vx-kt-table th.vx-kt-sortable{cursor:pointer;text-decoration:underline dotted}"
    ".vx-kt-table td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".vx-kt-row{cursor:pointer}"
    f".vx-kt-row:hover,.vx-kt-picked{{background:{jp('rendermime-table-row-hover-background', '#e1f5fe')}}}"
    f".vx-kt-picked{{font-weight:bold;outline:2px solid {jp('brand-color1', '#1976d2')}}}"
    f".vx-kt-empty{{color:{jp('content-font-color2', 'rgba(0,0,0,0.54)')};font-style:italic;padding:4px}}")

# the heat graph's picked boxes framed in the theme's accent, its frames and edges in its colours
GRAPH_CSS = (f"<style>.vx-run-graph svg g.node.vx-run-picked path,.vx-run-graph svg g.node.vx-run-picked polygon"
             f"{{stroke:{jp('brand-color1', '#1565c0')}}}</style>")
PICK_HINT = ("<i>Click a kernel in the table: its nodes are framed in the graph, its source lines and code "
             "shown here.</i>")


class KernelTable(anywidget.AnyWidget):
    """The kernels table: ``rows`` as ``runview.kernel_rows`` makes them; the page sets ``picked`` (a row's
    ``id``, -1 for none) when a row is clicked and ``sort`` ("time" | "limit") when a sortable header is."""

    _esm = TABLE_ESM
    _css = TABLE_CSS
    columns = traitlets.List(traitlets.Unicode(), list(COLUMNS)).tag(sync=True)
    numeric = traitlets.List(traitlets.Int(), [1, 2, 3, 4, 5, 6, 7]).tag(sync=True)
    sortable = traitlets.Dict({v: k for k, v in SORTS.items()}).tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    picked = traitlets.Int(-1).tag(sync=True)
    sort = traitlets.Unicode("time").tag(sync=True)
    empty = traitlets.Unicode("no kernels: no profile yet").tag(sync=True)


class RunTab:
    """The tab (``widget``). ``profile(calls)`` is called on a click of Profile (the explorer starts
    ``cm.profile`` in the background; False while busy) and tells the tab ``profiling()``, then
    ``profiled(report)`` or ``failed(error)``. ``show(report)`` draws a report's latest profile;
    ``pick(index)`` and ``sort_by(key)`` do what a click in the table does."""

    def __init__(self, profile: Callable[[int], bool] | None = None) -> None:
        self.profile = profile
        self.report: CompileReport | None = None
        self.names = CellNames({})
        self._lock = threading.RLock()    # drawn from the explorer's worker thread and from clicks
        self.button = widgets.Button(description="Profile", icon="tachometer", button_style="primary",
                                     tooltip="run the model's calls under torch.profiler (cm.profile) on the explorer's "
                                             "inputs and show where the time goes")
        self.button.add_class("vx-profile-button")
        self.calls = widgets.BoundedIntText(value=20, min=1, max=10_000, description="calls",
                                            layout=widgets.Layout(width="150px"))
        self.status = widgets.HTML()
        self.summary = widgets.HTML(f'<i style="color:{MUTED}">{esc(NO_PROFILE)}</i>')
        self.call_chart = FigureView(held=True)      # the explorer releases them with its other charts
        self.piece_chart = FigureView(held=True)
        self.table = KernelTable()
        self.graph = widgets.HTML(layout=widgets.Layout(flex="1 1 480px", min_width="360px", overflow="auto"))
        self.details = widgets.HTML(PICK_HINT, layout=widgets.Layout(flex="1 1 360px", min_width="300px"))
        self.widget = widgets.VBox([
            widgets.HBox([self.button, self.calls, self.status]), self.summary,
            widgets.HBox([self.call_chart, self.piece_chart], layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HTML("<b>Kernels</b> — click a header marked as sortable to sort, a row to pick a kernel"),
            self.table, widgets.HTML(GRAPH_CSS),
            widgets.HBox([self.details, self.graph], layout=widgets.Layout(flex_flow="row wrap"))],
            layout=widgets.Layout(width="100%"))
        self.widget.add_class("vx-run-tab")
        self.button.on_click(lambda _b: self._click())
        self.table.observe(lambda c: self.pick(c["new"]), "picked")
        self.table.observe(lambda c: self.sort_by(c["new"]), "sort")
        self._enabled = True
        self._why_off: str | None = None

    @property
    def charts(self) -> tuple[FigureView, FigureView]:
        return self.call_chart, self.piece_chart

    # -- drawing -----------------------------------------------------------------------------------
    def show(self, report: CompileReport, names: CellNames | None = None) -> None:
        """Draw ``report``'s latest profile (or say there is none), nothing picked."""
        with self._lock:
            self.report, self.names = report, names or self.names
            prof = latest(report)
            if prof is None:
                self.summary.value = f'<i style="color:{MUTED}">{esc(NO_PROFILE)}</i>'
                self.table.rows, self.table.picked = [], -1
                self.call_chart.show(placeholder_figure("Per call: no profile yet"))
                self.piece_chart.show(placeholder_figure("Device time per piece: no profile yet"))
                self.graph.value, self.details.value = "", ""
                return
            self.summary.value = self.names.sub(summary_html(prof))
            self.call_chart.show(call_figure(prof))
            self.piece_chart.show(pieces_figure(prof, report))
            self.table.picked = -1
            self.table.rows = [{**r, "cells": [self.names.sub(c) for c in r["cells"]]}
                               for r in kernel_rows(prof, self.table.sort)]
            self.details.value = PICK_HINT
            self._draw_graph(())

    def _draw_graph(self, nodes: tuple[str, ...]) -> None:
        prof = latest(self.report)
        if prof is None:
            return
        self.graph.value = self.names.sub(heat_html(heat_graph(prof, self.report, nodes)))

    def pick(self, index: int) -> None:
        """Pick kernel ``index`` (its row in the profile; -1: none): its nodes framed in the graph, its
        details shown."""
        with self._lock:
            prof = latest(self.report)
            if prof is None or not 0 <= index < len(prof.rows):
                self.details.value = PICK_HINT
                return
            if self.table.picked != index:
                self.table.picked = index        # as a click would (observing it calls pick again: no-op below)
                return
            self.details.value = self.names.sub(kernel_details_html(prof, self.report, index))
            self._draw_graph(kernel_nodes(prof, self.report, index))

    def sort_by(self, key: str) -> None:
        """Sort the table by ``"time"`` (device time, most first) or ``"limit"`` (limit share, lowest first)."""
        with self._lock:
            if key not in SORTS:
                return
            if self.table.sort != key:
                self.table.sort = key            # as a click would
                return
            prof = latest(self.report)
            if prof is not None:
                self.table.rows = [{**r, "cells": [self.names.sub(c) for c in r["cells"]]} for r in kernel_rows(prof, key)]

    # -- what the explorer tells the tab -----------------------------------------------------------------
    def _click(self) -> None:
        if self.profile is not None and self._why_off is None and self._enabled:
            if not self.profile(int(self.calls.value)):
                self.status.value = "busy: another task is running"

    def set_enabled(self, enabled: bool) -> None:
        """Profile off while the explorer is busy (a compile, a benchmark, an Apply, a profile)."""
        self._enabled = enabled
        self.button.disabled = not enabled or self._why_off is not None

    def disable(self, why: str) -> None:
        """No model to profile (saved reports, or no inputs): Profile is off, saying ``why``."""
        self._why_off = why
        self.button.disabled = True
        self.button.tooltip = why
        self.status.value = f'<i style="color:{MUTED}">{esc(why)}</i>'

    def profiling(self, calls: int) -> None:
        self.status.value = f"<i>profiling {calls} calls (warm-up first; on the CPU a profiling build of the pieces)…</i>"

    def profiled(self, report: CompileReport, names: CellNames | None = None) -> None:
        prof = latest(report)
        self.status.value = "" if prof is None else f"profiled {prof.calls} calls in {prof.profile_s:.1f} s"
        self.show(report, names)

    def failed(self, error: BaseException) -> None:
        self.status.value = f'<span style="color:{ERROR}">{esc(type(error).__name__)}: {esc(error)}</span>'
