"""Pieces for the report: what each piece holds (nodes, inputs, writes) and how it was built.

``UniqueBuild`` is one unique piece's outcome across its sizes (general first) and its runner;
``compiled_piece`` turns it into the Piece of the first piece with that unique key, or of a
twin (``same_as``) that shares the runner.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from ...monitor.report import Piece, PieceNode
from .. import _torch_compat as tc
from ..capture.captured import CapturedGraph
from .jobs import BuildResult
from ..ops import op_name
from ..split.split import PieceSpec


@dataclass(frozen=True)
class UniqueBuild:
    """One unique piece compiled (or loaded) at every size, and the callable its pieces run."""

    index: int                                           # the first piece with this unique key
    builds: tuple[tuple[int | None, BuildResult], ...]   # (size, result), the general compile first
    runner: Callable[..., Any]

    @property
    def general(self) -> BuildResult:
        return self.builds[0][1]


def node_info(n: fx.Node) -> PieceNode:
    val = n.meta.get("example_value", n.meta.get("val"))
    shape = dtype = None
    if isinstance(val, torch.Tensor):
        shape, dtype = str(tuple(tc.sym_expr(s) for s in val.shape)), str(val.dtype).replace("torch.", "")
    elif isinstance(val, torch.SymInt):
        shape = str(tc.sym_expr(val))
    stack = n.meta.get("nn_module_stack") or {}
    module = list(stack.values())[-1][0] if stack else None
    trace = (n.meta.get("stack_trace") or "").strip().splitlines()
    at = next((i for i in range(len(trace) - 1, -1, -1) if trace[i].strip().startswith("File ")), None)
    source = trace[at].strip() if at is not None else None
    code = trace[at + 1].strip() if at is not None and at + 1 < len(trace) else None
    inputs = tuple(a.name for a in n.all_input_nodes)
    return PieceNode(n.name, n.op, op_name(n) if n.op.startswith("call_") else str(n.target),
                     shape, dtype, module, source, inputs, code)


def input_spec(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"{tuple(tc.sym_expr(s) for s in x.shape)} {str(x.dtype).replace('torch.', '')}"
    return str(tc.sym_expr(x)) if isinstance(x, torch.SymInt) else type(x).__name__


def piece_writes(graph: CapturedGraph, spec: PieceSpec) -> tuple[str, ...]:
    """The graph inputs (by the model's names) a piece writes in place."""
    if not graph.writes:
        return ()
    phs = [n.name for n in graph.gm.graph.nodes if n.op == "placeholder"]
    by_name = dict(zip(phs, graph.names))
    own = [n.name for n in spec.module.graph.nodes if n.op == "placeholder"]
    return tuple(by_name[own[i]] for i in graph.writes.written_args(spec.module) if own[i] in by_name)


def base_fields(graph: CapturedGraph, spec: PieceSpec, index: int, graph_index: int,
                inputs: Sequence[Any]) -> dict[str, Any]:
    """The fields every Piece has, whatever its kind."""
    return dict(index=index, graph=graph_index, name=spec.name, nodes=spec.nodes,
                graph_nodes=tuple(node_info(n) for n in spec.module.graph.nodes if n.op not in ("placeholder", "output")),
                input_shapes=tuple(input_spec(x) for x in inputs), writes=piece_writes(graph, spec), cut=spec.cut)


def split_op_piece(base: dict[str, Any], spec: PieceSpec) -> Piece:
    return Piece(kind="split_op", unique_key=None, same_as=None, compiler=None, compile_s=0.0, cache=None,
                 fallback_reason=None, split_ops=spec.split_ops, **base)


def compiled_piece(base: dict[str, Any], unique_key: str, built: UniqueBuild, twin: int | None) -> Piece:
    """The Piece of a compiled piece: the first with its unique key, or the twin (``same_as``) of
    piece ``twin``, sharing its callable."""
    g = built.general
    common = dict(kind="compiled", unique_key=unique_key, compiler=g.compiler, cache=g.tier,
                  fallback_reason=g.fallback_reason, fallback=g.fallback, sizes=tuple(s for s, _ in built.builds),
                  cache_by_size=tuple((s, r.tier) for s, r in built.builds), isolated=g.isolated,
                  passes=g.passes, pass_graphs=g.pass_graphs, **base)
    if twin is not None:
        return Piece(same_as=twin, compile_s=0.0, **common)
    return Piece(same_as=None, compile_s=sum(r.seconds for _, r in built.builds), code=g.code,
                 miss_reasons=tuple(f"size {s or 'general'}: {r.miss.reason}" for s, r in built.builds if r.miss),
                 misses=tuple(r.miss for _, r in built.builds if r.miss),
                 compiled_in=g.compiled_in, **common)
