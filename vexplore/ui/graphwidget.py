"""GraphWidget: the interactive graph view (an anywidget over ``graphmodel.graph_model``).

The front end (``static/graphview.js``, built from ``js/graphview.js`` with esbuild; Cytoscape
and dagre inside, both MIT) ships in the package: nothing is fetched at run time. Python sets
``graph`` (the model of a report); the browser keeps ``expanded`` (module paths), ``fold`` and
``selected`` (the clicked node's id) in sync. Above the canvas a chip per graph names the graph
break that ends it or the recompile that made it (reason and ``file:line`` in its tooltip and,
clicked, in the details); a break's dashed edge says the same.

What reaches the page, once and per widget:

- anywidget sends a widget's ``_esm`` in every instance's state and runs each in a module of its
  own, so the 0.5 MB front end would travel and be parsed once per explorer. Instead it is the
  state of one hidden ``GraphCode`` model per kernel (gzipped, a binary buffer), and each widget's
  ``_esm`` is ``LOADER``, 2 KB that import the front end once per page (cached on
  ``window`` by the code's digest) and hand it the widget's model.
- The graph goes as ``graph_z``: its JSON gzipped (a binary buffer). A model's repeated layers are
  near-identical text, so 64 layers cost little more than one (1.2 MB of JSON -> ~60 KB); the
  loader unpacks it (the browser's DecompressionStream) and gives the front end ``graph`` as before.
- Frames in notebook cells are named ``cell [n], line k`` (``displaytext.CellNames``) before sending.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import pathlib
from typing import Any, ClassVar, Sequence

import anywidget
import ipywidgets
import traitlets

from ..monitor.report import CompileReport
from .displaytext import CellNames
from .graphmodel import default_expanded, graph_model

_STATIC = pathlib.Path(__file__).parent / "static"


# The widget's own _esm: load the shared front end once per page, then render with it. The front
# end reads ``graph``; this module gives it a model whose ``graph`` is ``graph_z`` unpacked.
LOADER = r"""
const KEY = Symbol.for("vexplore.graphview");
async function gunzip(view) {
  const stream = new Blob([view]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}
function frontEnd(model) {
  const cache = (globalThis[KEY] ||= new Map()), digest = model.get("code_digest");
  if (!cache.has(digest)) {
    const loading = (async () => {
      const ref = model.get("code");
      const holder = typeof ref === "string" ? await model.widget_manager.get_model(ref.replace(/^IPY_MODEL_/, "")) : ref;
      const url = URL.createObjectURL(new Blob([await gunzip(holder.get("code"))], { type: "text/javascript" }));
      try { return (await import(url)).default; } finally { URL.revokeObjectURL(url); }
    })();
    loading.catch(() => cache.delete(digest));   // the next view tries again
    cache.set(digest, loading);
  }
  return cache.get(digest);
}
async function withGraph(model) {
  let graph = {}, seq = 0;
  const listeners = new Set();
  const unpack = async () => {
    const n = ++seq, z = model.get("graph_z");
    const g = z && z.byteLength ? JSON.parse(await gunzip(z)) : {};
    if (n === seq) graph = g;
    return n === seq;
  };
  model.on("change:graph_z", async () => { if (await unpack()) listeners.forEach((cb) => cb()); });
  await unpack();
  return {
    get: (k) => (k === "graph" ? graph : model.get(k)),
    set: (k, v) => model.set(k, v),
    save_changes: () => model.save_changes(),
    send: (...a) => model.send(...a),
    on: (e, cb) => (e === "change:graph" ? listeners.add(cb) : model.on(e, cb)),
    off: (e, cb) => (e === "change:graph" ? (cb ? listeners.delete(cb) : listeners.clear()) : model.off(e, cb)),
    widget_manager: model.widget_manager,
  };
}
// The drawing waits for a task of its own: rendered with the dashboard's other views, it would
// lengthen the one browser task that builds them all.
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));
export default {
  async render({ model, el }) {
    const [view, proxy] = await Promise.all([frontEnd(model), withGraph(model), nextTask()]);
    return view.render({ model: proxy, el });
  },
};
"""


def pack(obj: Any) -> bytes:
    """``obj`` as compact JSON, gzipped (no timestamp: the same graph gives the same bytes)."""
    return gzip.compress(json.dumps(obj, separators=(",", ":")).encode("utf-8"), compresslevel=6, mtime=0)


class GraphCode(ipywidgets.Widget):
    """The graph view's front end, gzipped, as the state of one hidden model (no view) that every
    GraphWidget in the kernel names: the page receives and parses it once."""

    code = traitlets.Bytes(b"").tag(sync=True)
    digest = traitlets.Unicode("").tag(sync=True)

    @classmethod
    def make(cls) -> GraphCode:
        js = (_STATIC / "graphview.js").read_bytes()
        return cls(code=gzip.compress(js, compresslevel=9, mtime=0), digest=hashlib.sha256(js).hexdigest()[:16])


class GraphWidget(anywidget.AnyWidget):
    """The graph of a report as a module hierarchy: zoom, pan, fit, search, minimap, details."""

    # One per kernel, made with the first widget and again if closed (Widget.close_all); every
    # widget's state names it. A cache of the static front end, not model state.
    _shared: ClassVar[GraphCode | None] = None

    _esm = LOADER          # the front end carries its own CSS (js/theme.js), themed
    graph = traitlets.Dict()                                   # Python's; the browser gets graph_z
    graph_z = traitlets.Bytes(b"").tag(sync=True)
    code = traitlets.Instance(GraphCode).tag(sync=True, **ipywidgets.widget_serialization)
    code_digest = traitlets.Unicode("").tag(sync=True)
    expanded = traitlets.List(traitlets.Unicode()).tag(sync=True)
    fold = traitlets.Bool(True).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        code = GraphWidget._shared
        if code is None or code.comm is None:
            code = GraphWidget._shared = GraphCode.make()
        super().__init__(code=code, code_digest=code.digest, **kwargs)

    def show(self, report: CompileReport, breaks: Sequence[Any] | None = None,
             recompiles: Sequence[Any] | None = None) -> None:
        """Draw ``report``, each graph marked with the model's graph breaks and recompiles that
        concern it (``cm.graph_breaks``, ``cm.recompiles``; None: the report's own break texts).
        The modules open stay open where the new graph has them (a recompile of the same model);
        else the hierarchy opens a few levels (``graphmodel.default_expanded``)."""
        graph = CellNames.current().walk(graph_model(report, breaks, recompiles))
        kept = [m for m in self.expanded if m in graph["modules"]]
        self.expanded = kept or default_expanded(graph)
        self.graph = graph

    @traitlets.observe("graph")
    def _pack(self, change: dict[str, Any]) -> None:
        self.graph_z = pack(change["new"]) if change["new"] else b""
