"""The graph view's data: every node of a report with its module path, piece and kernel, and
the visible graph for a set of expanded modules (pure functions, tested without a browser).

The view is a module hierarchy, collapsed by default (Google Model Explorer's and TensorBoard's
idea): a node shows under the outermost module on its path that is not expanded; expanding a
module shows its children (sub-modules, still collapsed, and its own nodes). Consecutive
collapsed sibling modules with identical contents fold into one item, ``layers.1–3 ×3
identical``. The same ``visible`` runs in the browser (``js/graphview.js``) to draw the
widget; here it draws the static SVG and is what the tests check.

Ids are generated from node names and module paths (``g0:linear_1``, ``m:layers.0``); every text
from the model is escaped where it becomes HTML.
"""
from __future__ import annotations

import linecache
import re
from dataclasses import dataclass
from typing import Any, Collection, Iterable, Sequence

from ..monitor.report import CompileReport, Piece, PieceNode
from .style import OUTCOME_COLOURS, outcome, same_groups, same_label, seconds, short_module

_FILE = re.compile(r'^File "([^"]+)", line (\d+)')
_SOURCE_NODES = re.compile(r"#\s*(?:Topologically Sorted )?Source Nodes: \[([^\]]*)\]")
_KERNEL_CALL = re.compile(r"^\s*(?:[\w, ]+=\s*)?((?:extern_kernels\.)?\w+)(?:\.run)?\(")
_KERNEL_DEF = re.compile(r"^(\w+) = async_compile\.\w+\(")


def module_path(raw: str | None) -> str:
    """A node's module path as users write it: ``L['model'].layers.0.attn`` -> ``layers.0.attn``
    (also ``layers[0]`` and ``_modules['x']`` forms); ``""`` at the top level."""
    path = short_module(raw)
    if path == "(top level)":
        return ""
    path = re.sub(r"_modules\['([^']+)'\]", r"\1", path)
    return re.sub(r"\[(\d+)\]", r".\1", path).strip(".")


def source_of(node: PieceNode) -> str | None:
    """``toy_llama.py:117`` from a node's ``File "...", line 117`` source."""
    m = _FILE.match(node.source or "")
    return f"{m.group(1).rsplit('/', 1)[-1]}:{m.group(2)}" if m else None


def kernel_map(code: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """From a piece's generated code: node name -> the kernel that computes it, and kernel name
    -> its source. Inductor comments each kernel call with the graph nodes it computes
    ("Topologically Sorted Source Nodes: [a, b]"); the call follows the comment."""
    if not code:
        return {}, {}
    lines = code.splitlines()
    by_node: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = _SOURCE_NODES.search(line)
        if not m:
            continue
        call = next((c for c in lines[i + 1:i + 6] if c.strip() and not c.strip().startswith("#")), "")
        k = _KERNEL_CALL.match(call)
        if k:
            for name in (n.strip() for n in m.group(1).split(",")):
                by_node.setdefault(name, k.group(1))
    return by_node, _kernel_sources(lines)


_LIBRARY_OPS = frozenset({"linear", "matmul", "mm", "addmm", "bmm", "baddbmm", "conv1d", "conv2d", "conv3d",
                          "convolution", "_convolution"})


def assign_kernels(nodes: Iterable[tuple[str, str]], by_node: dict[str, str],
                   sources: dict[str, str], code: str | None) -> dict[str, str]:
    """Node name -> the kernel that computes it, for ``(name, op)`` in execution order.

    A generated kernel the code's comment names for the node is taken as it is (Inductor's
    Triton code comments every kernel call with its nodes). Else a fused kernel whose name holds
    the op (``cpp_fused_add_mean_mul_pow_rsqrt_0`` computes a ``pow``; on the CPU only library
    calls are commented, and a comment there lists nodes fused before the call too): of several,
    the first called at or after the kernel of the node before, as Inductor calls kernels in
    the graph's order. Else the library call the comment names (``extern_kernels.mm``).

    Code from Inductor's cache can come from an identical graph traced elsewhere, whose
    comments name that graph's nodes: then no comment is trusted, and the library calls go to
    the matmul and convolution nodes in order, where their counts agree."""
    nodes = list(nodes)
    if not set(by_node) <= {name for name, _ in nodes}:
        by_node = {}
        library = [k for k in _calls(code) if k.startswith("extern_kernels.")]
        lib_nodes = [name for name, op in nodes if op in _LIBRARY_OPS]
        if len(library) == len(lib_nodes):
            by_node = dict(zip(lib_nodes, library))
    order = [k for k in dict.fromkeys(_calls(code)) if k in sources]
    out: dict[str, str] = {}
    at = 0
    for name, op in nodes:
        named = by_node.get(name)
        if named in sources:
            out[name] = named
            at = order.index(named) if named in order else at
            continue
        hits = [i for i, k in enumerate(order) if op in k.split("_")[2:]]
        if hits:
            at = next((i for i in hits if i >= at), hits[0])
            out[name] = order[at]
        elif named:
            out[name] = named
    return out


def _calls(code: str | None) -> list[str]:
    """The kernels and library calls ``call`` makes, in order, each time it makes them."""
    calls = (_KERNEL_CALL.match(line) for line in (code or "").splitlines() if not line.lstrip().startswith("#"))
    return [m.group(1) for m in calls if m]


def _kernel_sources(lines: list[str]) -> dict[str, str]:
    """Kernel name -> its definition (``name = async_compile.xxx(... ''' source ''')``)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _KERNEL_DEF.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("'''") and "''', device_str" not in lines[j] \
                and not lines[j].rstrip().endswith("''')"):
            j += 1
        out[m.group(1)] = "\n".join(lines[i:j + 1])
        i = j + 1
    return out


def nodes_op(n: PieceNode) -> str:
    """The short op of a node: ``torch._C._nn.linear`` -> ``linear``, ``vexplore::attention`` -> ``attention``."""
    return n.target.rsplit(".", 1)[-1].rsplit("::", 1)[-1]


def _piece_info(p: Piece, groups: dict[int, tuple[int, ...]]) -> dict[str, Any]:
    same = same_label(groups[p.index]) if p.index in groups else f"piece {p.index}"
    return {"index": p.index, "graph": p.graph, "kind": p.kind, "colour": OUTCOME_COLOURS[outcome(p)],
            "outcome": outcome(p), "label": same, "nodes": p.nodes, "compile_s": p.compile_s,
            "row": {"#": p.index, "kind": p.kind, "nodes": p.nodes, "compiler": p.compiler or "-",
                    "compile time": seconds(p.compile_s), "cache tier": p.cache or "-",
                    "same as": "" if p.same_as is None else p.same_as,
                    "split ops": ", ".join(p.split_ops), "fallback reason": p.fallback_reason or "",
                    "writes in place": ", ".join(p.writes)}}


def graph_model(report: CompileReport, breaks: Sequence[Any] | None = None,
                recompiles: Sequence[Any] | None = None) -> dict[str, Any]:
    """Everything the graph view needs, JSON-ready: nodes (execution order), edges, modules,
    pieces and their kernels, and why there are several graphs (``explanations``: the model's
    ``cm.graph_breaks`` and ``cm.recompiles`` when given, else the report's own break texts)."""
    groups = same_groups(report.pieces)
    nodes: list[dict[str, Any]] = []
    edges: list[list[str]] = []
    modules: dict[str, str] = {}
    kernels: dict[str, dict[str, str]] = {}
    for p in report.pieces:
        code, by_node, sources = _piece_kernels(p, report)
        if sources:
            kernels[str(p.index)] = sources
        kernel_of = assign_kernels(((n.name, nodes_op(n)) for n in p.graph_nodes), by_node, sources, code)
        for n in p.graph_nodes:
            nid = f"g{p.graph}:{n.name}"
            path = module_path(n.module)
            _add_modules(modules, path)
            nodes.append({"id": nid, "name": n.name, "op": nodes_op(n),
                          "target": n.target, "module": path, "piece": p.index, "split": p.kind == "split_op",
                          "shape": n.shape, "dtype": n.dtype, "source": source_of(n), "line": n.code,
                          "kernel": kernel_of.get(n.name)})
            edges.extend([f"g{p.graph}:{a}", nid] for a in n.inputs)
    known = {n["id"] for n in nodes}
    edges = [e for e in edges if e[0] in known]
    pieces = {str(p.index): _piece_info(p, groups) for p in report.pieces}
    pairs = _breaks(nodes)
    rows = explanations(report, breaks, recompiles)
    graphs = list(dict.fromkeys(p.graph for p in report.pieces))
    ended = {r["graph"]: r for r in reversed(rows) if r["kind"] == "graph break" and r["graph"] is not None}
    if breaks is not None:   # the model's own records: a boundary no break ends is a new trace (a recompile), not a break
        pairs = [pr for pr in pairs if int(pr[0].split(":", 1)[0][1:]) in ended]
    return {"nodes": nodes, "edges": edges, "modules": modules, "pieces": pieces, "kernels": kernels,
            "breaks": pairs, "break_reasons": list(report.graph_breaks), "explanations": rows, "graphs": graphs,
            "graph_notes": {str(g): [r for r in rows if r["graph"] == g] for g in graphs},
            "break_info": [ended.get(int(a.split(":", 1)[0][1:])) for a, _ in pairs]}


_DYNAMO_FRAME = re.compile(r'File "([^"]+)", line (\d+), in [^,\n]+(?:, code: ([^\n]*))?')


def explanations(report: CompileReport, breaks: Sequence[Any] | None = None,
                 recompiles: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """The graph breaks and recompiles as rows: ``kind`` ("graph break" | "recompile"), ``graph``
    (the graph that ends at the break / that the re-trace made; None when unknown), ``reason``,
    ``frame`` ("path:line"), ``where`` ("file.py:line"), ``code`` (that line) and ``detail``.
    ``breaks``/``recompiles`` are the model's (GraphBreak, Recompile); None (a saved report, no
    model): the report's graph breaks as Dynamo worded them, their graph unknown."""
    if breaks is None and recompiles is None:
        return [_said(text) for text in report.graph_breaks]
    rows = [_row("graph break", b.graph, b.reason, b.frame, b.code, b.detail) for b in breaks or ()]
    return rows + [_row("recompile", r.graph, r.reason, r.frame, None, r.detail) for r in recompiles or ()]


def _row(kind: str, graph: int | None, reason: str, frame: str | None, code: str | None,
         detail: str = "") -> dict[str, Any]:
    path, _, line = (frame or "").rpartition(":")
    if code is None and path and line.isdigit():   # the line itself, as the model's source has it
        code = linecache.getline(path, int(line)).strip() or None
    where = f"{path.rsplit('/', 1)[-1]}:{line}" if path and line.isdigit() else (frame or None)
    return {"kind": kind, "graph": graph, "reason": reason, "frame": frame, "where": where, "code": code,
            "detail": detail}


def _said(text: str) -> dict[str, Any]:
    """A row from Dynamo's own text of a break (its first line the reason; its frame, when it names one)."""
    m = _DYNAMO_FRAME.search(text)
    frame = f"{m.group(1)}:{m.group(2)}" if m else None
    reason = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), text.strip())
    code = (m.group(3) or "").strip() if m else ""
    return _row("graph break", None, reason, frame, code or None, text.strip())


def _breaks(nodes: list[dict[str, Any]]) -> list[list[str]]:
    """Where Dynamo broke the graph: [last node of graph k, first node of graph k + 1]. The
    model's GraphBreak naming graph k explains it (``break_info``); a saved report's break texts
    are per compile, not per break, so they are listed, not attached."""
    out: list[list[str]] = []
    for a, b in zip(nodes, nodes[1:]):
        if a["id"].split(":", 1)[0] != b["id"].split(":", 1)[0]:
            out.append([a["id"], b["id"]])
    return out


def _piece_kernels(p: Piece, report: CompileReport) -> tuple[str | None, dict[str, str], dict[str, str]]:
    """A piece's code and its ``kernel_map``. A piece identical to an earlier one runs that
    one's compile: its code is the twin's, whose comments name the twin's nodes; identical
    pieces have their nodes in the same order, so the names are matched by position."""
    if p.code or p.same_as is None:
        return (p.code, *kernel_map(p.code))
    twin = next((q for q in report.pieces if q.index == p.same_as), None)
    if twin is None:
        return None, {}, {}
    by_node, sources = kernel_map(twin.code)
    if len(twin.graph_nodes) == len(p.graph_nodes):
        rename = {a.name: b.name for a, b in zip(twin.graph_nodes, p.graph_nodes)}
        by_node = {rename.get(k, k): v for k, v in by_node.items()}
    return twin.code, by_node, sources


def _add_modules(modules: dict[str, str], path: str) -> None:
    """``modules[path] = parent`` for ``path`` and each of its ancestors."""
    parts = path.split(".") if path else []
    for k in range(len(parts), 0, -1):
        p = ".".join(parts[:k])
        if p in modules:
            return
        modules[p] = ".".join(parts[:k - 1])


@dataclass(frozen=True)
class Item:
    """One box of the visible graph: a node, a collapsed module, or a fold of identical modules."""

    id: str
    kind: str                      # "node" | "module" | "fold"
    label: str
    count: int                     # graph nodes inside
    pieces: tuple[int, ...]
    split: bool                    # holds a split op
    members: tuple[str, ...] = ()  # a fold's modules, in order
    parent: str = ""               # the expanded module drawn around it ("" = the top level)


@dataclass(frozen=True)
class View:
    """The visible graph: boxes, edges between them, the expanded modules drawn as containers
    around their contents (parents before children; each is laid out on its own), and the graph
    breaks as pairs of boxes (the same box twice where one box holds both sides)."""

    items: tuple[Item, ...]
    edges: tuple[tuple[str, str], ...]
    groups: tuple[str, ...] = ()
    breaks: tuple[tuple[str, str], ...] = ()


def parent_of(path: str) -> str:
    """``layers.0.qkv`` -> ``layers.0``; ``layers`` -> ``""``."""
    return path.rsplit(".", 1)[0] if "." in path else ""


def visible(model: dict[str, Any], expanded: Collection[str] = (), fold: bool = True) -> View:
    """The items and edges shown with ``expanded`` modules open (see the module docstring)."""
    rep: dict[str, str] = {}
    order: list[str] = []
    members: dict[str, list[dict[str, Any]]] = {}
    for n in model["nodes"]:
        vid = _rep(n, expanded)
        rep[n["id"]] = vid
        if vid not in members:
            members[vid] = []
            order.append(vid)
        members[vid].append(n)
    items = [_item(vid, members[vid]) for vid in order]
    if fold:
        items, folded = _fold(items, members)
        rep = {k: folded.get(v, v) for k, v in rep.items()}
    edges = list(dict.fromkeys((rep[a], rep[b]) for a, b in model["edges"] if rep[a] != rep[b]))
    breaks = tuple((rep[a], rep[b]) for a, b in model.get("breaks", ()))
    return View(tuple(items), tuple(edges), _groups(items), breaks)


def _groups(items: Iterable[Item]) -> tuple[str, ...]:
    """The containers: every item's parent and its ancestors, parents first."""
    seen: dict[str, None] = {}
    for it in items:
        parts = it.parent.split(".") if it.parent else []
        for k in range(1, len(parts) + 1):
            seen.setdefault(".".join(parts[:k]))
    return tuple(seen)


def default_expanded(model: dict[str, Any], limit: int = 30) -> list[str]:
    """The modules opened when a graph is first shown: whole levels of the hierarchy, from the
    top, while the view stays within ``limit`` boxes (a model's top-level blocks, its layers
    folded), so the first picture says something and the rest waits for a click."""
    expanded: list[str] = []
    while True:
        view = visible(model, expanded)
        opening = [m for it in view.items if it.kind in ("module", "fold")
                   for m in ((it.id[2:],) if it.kind == "module" else it.members)]
        if not opening or len(visible(model, expanded + opening).items) > limit:
            return expanded
        expanded += opening


def _rep(node: dict[str, Any], expanded: Collection[str]) -> str:
    parts = node["module"].split(".") if node["module"] else []
    for k in range(1, len(parts) + 1):
        prefix = ".".join(parts[:k])
        if prefix not in expanded:
            return "m:" + prefix
    return node["id"]


def _item(vid: str, nodes: list[dict[str, Any]]) -> Item:
    pieces = tuple(sorted({n["piece"] for n in nodes}))
    split = any(n["split"] for n in nodes)
    if not vid.startswith("m:"):
        n = nodes[0]
        return Item(vid, "node", n["op"], 1, pieces, split, parent=n["module"])
    return Item(vid, "module", vid[2:], len(nodes), pieces, split, parent=parent_of(vid[2:]))


def _signature(vid: str, nodes: Iterable[dict[str, Any]]) -> tuple[Any, ...]:
    """A collapsed module's contents, independent of its own path: identical layers compare equal."""
    base = len(vid[2:]) + 1
    return tuple((n["module"][base:], n["target"]) for n in nodes)


def _fold(items: list[Item], members: dict[str, list[dict[str, Any]]]) -> tuple[list[Item], dict[str, str]]:
    """Runs of consecutive collapsed siblings with identical contents, as one fold item each."""
    out: list[Item] = []
    folded: dict[str, str] = {}
    i = 0
    while i < len(items):
        j = i + 1
        if items[i].kind == "module":
            sig = _signature(items[i].id, members[items[i].id])
            while (j < len(items) and items[j].kind == "module" and items[j].parent == items[i].parent
                   and _signature(items[j].id, members[items[j].id]) == sig):
                j += 1
        if j - i < 2:
            out.append(items[i])
            i += 1
            continue
        run = items[i:j]
        fid = "f:" + run[0].id[2:]
        last = run[-1].id[2:].rsplit(".", 1)[-1]
        out.append(Item(fid, "fold", f"{run[0].label}–{last} ×{len(run)} identical", sum(r.count for r in run),
                        tuple(sorted({p for r in run for p in r.pieces})), any(r.split for r in run),
                        tuple(r.id[2:] for r in run), run[0].parent))
        folded.update((r.id, fid) for r in run)
        i = j
    return out, folded
