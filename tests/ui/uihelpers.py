"""Helpers for the UI tests (imported by name: tests/ui is on sys.path, it has no __init__.py)."""
from __future__ import annotations

import vexplore as vx
from vexplore.monitor.events import CompileEvent
from vexplore.monitor.report import CompileReport, Piece, PieceNode, derive


def toy_config(tmp_path, **changes) -> vx.CompileConfig:
    """Piecewise at the toy's attention op, with a fresh vexplore cache dir under ``tmp_path``."""
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=["vexplore::attention"],
                           cache=vx.CacheConfig(dir=str(tmp_path / "vxcache")))
    return cfg.replace(**changes)


def _attention_piece(index: int, node: str, module: str, source: str | None, inputs: tuple[str, ...]) -> Piece:
    """The split-op piece between two layers: one vexplore::attention node."""
    n = PieceNode(node, "call_function", "vexplore::attention", "(s0, 4, 16)", "float32", module, source, inputs)
    return Piece(index, 0, f"submod_{index}", "split_op", 1, None, None, None, 0.0, None, None,
                 split_ops=("vexplore::attention",), graph_nodes=(n,))


def synthetic_report(layers: int, nodes_per_piece: int, *, name: str = "n", module: str = "layers",
                     target: str = "torch._C._nn.linear", code: str | None = None) -> CompileReport:
    """A report shaped like a transformer's: piece, attention, piece, ... with ``nodes_per_piece``
    chained nodes per compiled piece; layer pieces 2, 4, ... share one unique key."""
    pieces, events, t = [], [], 0.0
    prev = "tokens"
    for i in range(2 * layers + 1):
        if i % 2:
            pieces.append(_attention_piece(i, f"{name}attn{i}", f"L['model'].{module}.{i // 2}",
                                           "File \"model.py\", line 9, in forward", (prev,)))
            prev = pieces[-1].graph_nodes[0].name
            continue
        nodes = []
        for k in range(nodes_per_piece):
            nodes.append(PieceNode(f"{name}{i}_{k}", "call_function", target, f"(s0, {k % 64})", "float32",
                                   f"L['model'].{module}.{i // 2}.sub{k % 7}", f"File \"model.py\", line {k}, in forward",
                                   (prev,)))
            prev = nodes[-1].name
        key = "first" if i == 0 else ("last" if i == 2 * layers else "layer")
        twin = 2 if key == "layer" and i > 2 else None
        pieces.append(Piece(i, 0, f"submod_{i}", "compiled", nodes_per_piece, key, twin, "inductor",
                            0.0 if twin else 0.5 + i / 100, "miss", None, sizes=(None,),
                            cache_by_size=((None, "miss"),), graph_nodes=tuple(nodes), code=None if twin else code))
        if twin is None:
            events.append(CompileEvent("compile", t, 0.5, graph=0, piece=i, compiler="inductor",
                                       counts={"inductor_compiles": 1}))
            t += 0.5
    counters = derive(pieces, events, 1, "inductor")
    return CompileReport(tuple(pieces), tuple(events), counters, "piecewise", "synthetic", {}, t + 0.1)


def scaled_report(template: Piece, layers: int, copies: int) -> CompileReport:
    """A report with real structure at any size: ``template``'s nodes (a real toy-Llama piece, its
    edges and module paths) copied ``copies`` times into each of ``layers`` layer pieces, with
    the attention split op between layers. Layer pieces after the first share its unique key."""
    pieces: list[Piece] = []
    prev = None
    names = {n.name for n in template.graph_nodes}
    for i in range(2 * layers - 1):
        if i % 2:
            pieces.append(_attention_piece(i, f"attn{i}", f"L['model'].layers.{i // 2}", None,
                                           (prev,) if prev else ()))
            prev = pieces[-1].graph_nodes[0].name
            continue
        nodes = []
        for c in range(copies):
            tag = f"_{i}_{c}"
            for n in template.graph_nodes:
                ins = tuple(a + tag if a in names else (prev or a) for a in n.inputs)
                mod = (n.module or "").replace("layers.", f"layers.{i // 2}.{c}.", 1)
                nodes.append(PieceNode(n.name + tag, n.op, n.target, n.shape, n.dtype, mod, n.source, ins))
            prev = nodes[-1].name
        twin = 0 if i > 0 else None
        pieces.append(Piece(i, 0, f"submod_{i}", "compiled", len(nodes), "layer", twin, "inductor",
                            0.0 if twin is not None else 1.0, "miss", None, graph_nodes=tuple(nodes)))
    return CompileReport(tuple(pieces), (), {"pieces": len(pieces)}, "piecewise", "scaled", {}, 1.0)
