"""VexBackend: the Dynamo backend, and compile_graph, the flow of DESIGN.md for one graph.

choose strategy -> split -> fake-propagate -> compile each unique piece (CompilerManager)
-> stitch -> validate. The result is a stitched callable plus Pieces for the report.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
import torch.fx as fx

from ..cache.keys import versions as cache_versions
from ..config import CompileConfig
from ..monitor.events import EventRecorder
from ..monitor.report import Piece, PieceNode
from . import _torch_compat as tc
from . import cudagraph
from .captured import CapturedGraph
from .inputplan import GraphInputs, InputPlan
from .manager import CompilerManager
from .ops import matches, op_name
from .split import Split, example_inputs, split_graph
from .stitch import GraphRunner, install, normalize_output
from .validate import eager_reference, uninitialized_outputs, validate_graph, validate_pieces

if TYPE_CHECKING:
    from ..session import Session
    from .model import CompiledModel

log = logging.getLogger(__name__)


@dataclass
class ReportBuilder:
    """Collects what one compile (a model call or a recompile) produced, across graphs."""

    rec: EventRecorder
    kind: str
    config: CompileConfig
    pieces: list[Piece] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)
    strategies: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)   # end to end, one line per graph
    unique: dict[str, int] = field(default_factory=dict)   # unique key -> first piece index
    graphs: int = 0
    last_mark: float = field(default_factory=time.perf_counter)


def choose_strategy(gm: fx.GraphModule, cfg: CompileConfig) -> tuple[str, str]:
    calls = [n for n in gm.graph.nodes if n.op.startswith("call_")]
    found = sorted({op_name(n) for n in calls if matches(op_name(n), cfg.splitting_ops)})
    if cfg.strategy != "auto":
        return cfg.strategy, f"strategy={cfg.strategy} was requested"
    if not found:
        return "full", "auto: the graph holds no split ops, so one piece"
    if len(calls) < cfg.auto_min_nodes:
        return "full", f"auto: {len(calls)} nodes < auto_min_nodes={cfg.auto_min_nodes}, too small to split"
    return "piecewise", f"auto: {len(calls)} nodes with split ops ({', '.join(found)})"


def _node_info(n: fx.Node) -> PieceNode:
    val = n.meta.get("example_value", n.meta.get("val"))
    shape = dtype = None
    if isinstance(val, torch.Tensor):
        shape, dtype = str(tuple(tc.sym_expr(s) for s in val.shape)), str(val.dtype).replace("torch.", "")
    elif isinstance(val, torch.SymInt):
        shape = str(tc.sym_expr(val))
    stack = n.meta.get("nn_module_stack") or {}
    module = list(stack.values())[-1][0] if stack else None
    trace = (n.meta.get("stack_trace") or "").strip().splitlines()
    source = next((t.strip() for t in reversed(trace) if t.strip().startswith("File ")), None)
    inputs = tuple(a.name for a in n.all_input_nodes)
    return PieceNode(n.name, n.op, op_name(n) if n.op.startswith("call_") else str(n.target),
                     shape, dtype, module, source, inputs)


def compile_graph(cg: CapturedGraph, cfg: CompileConfig, session: "Session", b: ReportBuilder,
                  graph: int) -> Callable[..., Any]:
    """Compile one captured graph under ``cfg``; append its Pieces to ``b``; return the stitched callable."""
    rec = b.rec
    with rec.step("strategy", graph=graph):
        strategy, reason = choose_strategy(cg.gm, cfg)
    b.strategies.append(strategy)
    b.reasons.append(reason)
    ops = cfg.splitting_ops if strategy == "piecewise" else ()
    with rec.step("split", graph=graph) as st:
        split = split_graph(cg.gm, lambda n: n.op.startswith("call_") and matches(op_name(n), ops))
        n_compiled = sum(p.kind == "compiled" for p in split.pieces)
        st.kw["detail"] = f"{len(split.pieces)} pieces, {n_compiled} compiled"
    if strategy == "piecewise" and len(split.pieces) == 1:
        b.warnings.append(f"graph {graph}: no split points found: compiled as one piece "
                          f"(splitting_ops={list(cfg.splitting_ops)})")
    if cg.grad:
        b.warnings.append(f"graph {graph}: compiled for autograd (called with grad enabled and inputs that "
                          "require grad); call under torch.no_grad() for inference")
    with rec.step("fakeprop", graph=graph) as st:
        piece_inputs, st.kw["detail"] = example_inputs(split, cg.fake_inputs, cg.fake_mode, cg.grad)
    device = next((x.device.type for x in cg.real_inputs if isinstance(x, torch.Tensor)), "cpu")
    mgr = CompilerManager(cfg, session.cache(cfg.cache), rec, cache_versions(device), b.counters, cg.grad)
    # One normalized copy and one fingerprint per compiled piece, for dedup, workers and keys.
    keyed = {}
    for spec in split.pieces:
        if spec.kind == "compiled":
            normalized = normalize_output(spec.module)
            keyed[spec.name] = normalized, mgr.unique_key(normalized[0], piece_inputs[spec.name])
    if cfg.workers and cfg.compiler == "inductor":
        _prefetch(mgr, split, piece_inputs, keyed, cg, graph, len(b.pieces), session.worker_pool(cfg.workers), b.unique)
    compiled, eager = _compile_pieces(mgr, split, piece_inputs, keyed, cg, graph, b)
    if cfg.validate:
        _validate(cg, split, compiled, b, graph)
    b.graphs += 1
    stitched = _stitch(cg, cfg, split, compiled, eager, device, b, graph)
    if cfg.validate:
        _validate_graph(cg, stitched, b, graph)
    return stitched


def _compile_pieces(mgr: CompilerManager, split: Split, piece_inputs: dict[str, tuple], keyed: dict[str, Any],
                    cg: CapturedGraph, graph: int, b: ReportBuilder) -> tuple[dict[str, Callable[..., Any]], dict[str, Callable[..., Any]]]:
    """Compile each unique piece once; append every Piece to ``b``. Returns the runners of the
    compiled pieces and of the split-op pieces (which run eagerly), by piece name."""
    compiled: dict[str, Callable[..., Any]] = {}
    eager: dict[str, Callable[..., Any]] = {}
    shared: dict[str, Callable[..., Any]] = {}
    for spec in split.pieces:
        index = len(b.pieces)
        base = dict(index=index, graph=graph, name=spec.name, nodes=spec.nodes,
                    graph_nodes=tuple(_node_info(n) for n in spec.module.graph.nodes if n.op not in ("placeholder", "output")),
                    input_shapes=tuple(_spec(x) for x in piece_inputs[spec.name]), writes=_piece_writes(cg, spec))
        if spec.kind == "split_op":
            eager[spec.name] = spec.module.forward  # skips nn.Module.__call__'s hook machinery
            b.pieces.append(Piece(kind="split_op", unique_key=None, same_as=None, compiler=None, compile_s=0.0,
                                  cache=None, fallback_reason=None, split_ops=spec.split_ops, **base))
            continue
        normalized, key_parts = keyed[spec.name]
        ukey = key_parts[0]
        if ukey in b.unique:
            twin = b.pieces[b.unique[ukey]]
            compiled[spec.name] = shared[ukey]
            b.pieces.append(Piece(kind="compiled", unique_key=ukey, same_as=twin.index, compiler=twin.compiler,
                                  compile_s=0.0, cache=twin.cache, fallback_reason=twin.fallback_reason,
                                  sizes=twin.sizes, cache_by_size=twin.cache_by_size, isolated=twin.isolated, **base))
            continue
        out = mgr.compile_piece(normalized, key_parts, piece_inputs[spec.name], cg.fake_mode, cg.token, graph, index)
        compiled[spec.name] = shared[ukey] = out.fn
        b.unique[ukey] = index
        b.pieces.append(Piece(kind="compiled", unique_key=ukey, same_as=None, compiler=out.compiler,
                              # the general compile's tier; each size's is in cache_by_size
                              compile_s=out.compile_s, cache=out.cache_by_size[0][1], fallback_reason=out.fallback_reason,
                              sizes=out.sizes, cache_by_size=tuple(out.cache_by_size), isolated=out.isolated,
                              code=out.code, miss_reasons=tuple(out.miss_reasons), compiled_in=out.compiled_in,
                              **base))
    return compiled, eager


def _stitch(cg: CapturedGraph, cfg: CompileConfig, split: Split, compiled: dict[str, Callable[..., Any]],
            eager: dict[str, Callable[..., Any]], device: str, b: ReportBuilder, graph: int) -> Callable[..., Any]:
    """Install the runners into the parent graph, under CUDA graphs when asked and possible."""
    inputs = GraphInputs(cg.real_inputs, cg.fake_inputs, cg.token, cg.roles, cg.names, cg.written_inputs(),
                         tc.symbol_hints(cg.fake_mode))
    skip = _cudagraph_skip(cg, cfg, device, inputs)
    if skip:
        b.warnings.append(f"graph {graph}: runs without CUDA graphs: {skip}")
        _mark_pieces(b, graph, cudagraph_skip_reason=skip)
    elif cfg.cudagraph != "none":
        with b.rec.step("cudagraph_capture", graph=graph) as st:
            install(split.gm, eager)
            writes = {p.name: cg.writes.written_args(p.module) for p in split.pieces if p.kind == "compiled"}
            stitched, stats, note = cudagraph.apply(cfg, split.gm, compiled, inputs, writes)
            cg.graph_stats = stats
            st.kw["detail"] = f"{stats.captures} graphs captured"
        b.counters["cudagraph_captures"] += stats.captures
        if note:
            b.warnings.append(f"graph {graph}: {note}")
        return stitched
    with b.rec.step("stitch", graph=graph):
        return install(split.gm, {**compiled, **eager}).forward


def _cudagraph_skip(cg: CapturedGraph, cfg: CompileConfig, device: str, inputs: GraphInputs) -> str | None:
    """Why this graph runs without the CUDA graphs ``cfg`` asks for, or None."""
    if cfg.cudagraph == "none":
        return None
    if device != "cuda":
        return f"cudagraph={cfg.cudagraph} needs a CUDA device; the graph runs on {device}"
    if cg.grad:
        return ("CUDA graphs serve no-grad calls only, and this graph was called with grad enabled and inputs "
                "that require grad; call under torch.no_grad() to replay graphs")
    return InputPlan.make(inputs).skip_reason(cg.real_inputs)


def _mark_pieces(b: ReportBuilder, graph: int, **changes: Any) -> None:
    for i, p in enumerate(b.pieces):
        if p.graph == graph:
            b.pieces[i] = dataclasses.replace(p, **changes)


def _piece_writes(cg: CapturedGraph, spec: Any) -> tuple[str, ...]:
    """The graph inputs (by the model's names) a piece writes in place."""
    if not cg.writes:
        return ()
    by_name = {n.name: cg.names[i] for i, n in enumerate(p for p in cg.gm.graph.nodes if p.op == "placeholder")}
    phs = [n.name for n in spec.module.graph.nodes if n.op == "placeholder"]
    return tuple(by_name[phs[i]] for i in cg.writes.written_args(spec.module) if phs[i] in by_name)


def _prefetch(mgr: CompilerManager, split: Split, piece_inputs: dict[str, tuple], keyed: dict[str, Any],
              cg: CapturedGraph, graph: int, first: int, pool: Any, seen: dict[str, int]) -> None:
    """Hand every unique compiled piece of this graph to the worker pool at once."""
    todo, keys = [], set(seen)
    for i, spec in enumerate(split.pieces):
        if spec.kind != "compiled":
            continue
        (gm, _), key_parts = keyed[spec.name]
        if key_parts[0] not in keys:
            keys.add(key_parts[0])
            todo.append((gm, key_parts, piece_inputs[spec.name], graph, first + i))
    mgr.prefetch(todo, cg.fake_mode, cg.token, pool)


def _spec(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"{tuple(tc.sym_expr(s) for s in x.shape)} {str(x.dtype).replace('torch.', '')}"
    return str(tc.sym_expr(x)) if isinstance(x, torch.SymInt) else type(x).__name__


def _validate(cg: CapturedGraph, split: Split, runners: dict[str, Callable[..., Any]],
              b: ReportBuilder, graph: int) -> None:
    """Each compiled piece against eager on the inputs eager gave it: outputs and the inputs it writes."""
    with b.rec.step("validate", graph=graph):
        written = {p.name: cg.writes.written_args(p.module) for p in split.pieces}
        ref = eager_reference(split, cg.real_inputs, cg.written_inputs(), written)   # before install: eager pieces
        skip = {p.name: uninitialized_outputs(p.module) for p in split.pieces}
        results = validate_pieces(runners, ref, written, skip)
        for i, p in enumerate(b.pieces):
            if p.graph == graph and p.name in results:
                status, err = results[p.name]
                b.pieces[i] = dataclasses.replace(p, validation=status, max_rel_err=err)
                if status.startswith("mismatch"):
                    b.counters["validation_mismatches"] += 1
                    b.warnings.append(f"graph {graph} piece {p.index} ({p.name}): {status}")


def _validate_graph(cg: CapturedGraph, stitched: Callable[..., Any], b: ReportBuilder, graph: int) -> None:
    """The whole stitched graph (CUDA graphs included) against eager: outputs, every input it
    writes, and gradients when it runs with autograd. The caller's tensors are left as they were."""
    with b.rec.step("validate", graph=graph):
        status = validate_graph(cg.gm, stitched, cg.real_inputs, cg.written_inputs(), cg.grad)
    b.validation.append(f"graph {graph}: {status}")
    if status.startswith("mismatch"):
        b.counters["validation_mismatches"] += 1
        b.warnings.append(f"graph {graph} end to end: {status}")


class VexBackend:
    """The torch.compile backend vx.compile installs; it reports to its CompiledModel."""

    def __init__(self, owner: "CompiledModel") -> None:
        self.owner = owner

    def __call__(self, gm: fx.GraphModule, example_inputs: Sequence[Any]) -> Callable[..., Any]:
        owner = self.owner
        b = owner._builder()
        now = time.perf_counter()
        graph = len(owner.graphs)
        b.rec.add("dynamo_trace", b.last_mark, now - b.last_mark, graph=graph)
        cg = CapturedGraph.from_dynamo(gm, example_inputs, owner)
        owner.graphs.append(cg)
        cg.runner = GraphRunner(compile_graph(cg, owner.config, owner.session, b, graph))
        b.last_mark = time.perf_counter()
        return cg.runner
