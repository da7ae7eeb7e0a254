"""GraphWidget: the interactive graph view (an anywidget over ``graphmodel.graph_model``).

The front end (``static/graphview.js``, built from ``js/graphview.js`` with esbuild; Cytoscape
and dagre inside, both MIT) ships in the package: nothing is fetched at run time. Python sets
``graph`` (the model of a report); the browser keeps ``expanded`` (module paths), ``fold`` and
``selected`` (the clicked node's id) in sync. Above the canvas a chip per graph names the graph
break that ends it or the recompile that made it (reason and ``file:line`` in its tooltip and,
clicked, in the details); a break's dashed edge says the same.
"""
from __future__ import annotations

import pathlib
from typing import Any, Sequence

import anywidget
import traitlets

from ..monitor.report import CompileReport
from .graphmodel import default_expanded, graph_model

_STATIC = pathlib.Path(__file__).parent / "static"

_CSS = """
.vx-gv { font-family: sans-serif; font-size: 12px; }
.vx-gv-bar { display: flex; gap: 6px; align-items: center; margin: 4px 0; flex-wrap: wrap; }
.vx-gv-body { position: relative; height: 560px; border: 1px solid #ddd; background: #fafafa; }
.vx-gv-cy, .vx-gv-frames { position: absolute; inset: 0; width: 100%; height: 100%; }
.vx-gv-mini { position: absolute; right: 6px; bottom: 6px; background: rgba(255,255,255,.9); border: 1px solid #bbb; cursor: pointer; }
.vx-gv-legend { margin: 2px 0; }
.vx-gv-chip { display: inline-block; min-width: 16px; padding: 0 3px; margin: 1px; color: #fff; text-align: center; border-radius: 3px; cursor: pointer; }
.vx-gv-details { margin-top: 4px; padding: 4px; border: 1px solid #eee; max-height: 320px; overflow: auto; }
.vx-gv-title { font-weight: bold; margin-bottom: 2px; }
.vx-gv-row { border-collapse: collapse; margin: 3px 0; }
.vx-gv-row th, .vx-gv-row td { border-bottom: 1px solid #ddd; padding: 1px 6px; text-align: left; }
.vx-gv-code { max-height: 200px; overflow: auto; background: #f6f8fa; padding: 4px; font-size: 11px; }
.vx-gv-graph { display: inline-block; padding: 0 5px; margin: 1px 2px; border: 1px solid #a0aec0; border-radius: 3px; cursor: pointer; background: #fff; }
.vx-gv-graph.brk { border: 2px dashed #b7002e; color: #b7002e; }
.vx-gv-graph.rec { background: #fff3e0; color: #a15c00; }
.vx-gv-note { margin: 3px 0; }
.vx-gv-note pre { white-space: pre-wrap; max-height: 160px; overflow: auto; background: #f6f8fa; padding: 4px; font-size: 11px; }
"""


class GraphWidget(anywidget.AnyWidget):
    """The graph of a report as a module hierarchy: zoom, pan, fit, search, minimap, details."""

    _esm = _STATIC / "graphview.js"
    _css = _CSS
    graph = traitlets.Dict().tag(sync=True)
    expanded = traitlets.List(traitlets.Unicode()).tag(sync=True)
    fold = traitlets.Bool(True).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)

    def show(self, report: CompileReport, breaks: Sequence[Any] | None = None,
             recompiles: Sequence[Any] | None = None) -> None:
        """Draw ``report``, each graph marked with the model's graph breaks and recompiles that
        concern it (``cm.graph_breaks``, ``cm.recompiles``; None: the report's own break texts).
        The modules open stay open where the new graph has them (a recompile of the same model);
        else the hierarchy opens a few levels (``graphmodel.default_expanded``)."""
        graph = graph_model(report, breaks, recompiles)
        kept = [m for m in self.expanded if m in graph["modules"]]
        self.expanded = kept or default_expanded(graph)
        self.graph = graph
