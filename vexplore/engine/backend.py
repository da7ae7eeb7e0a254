"""VexBackend: the Dynamo backend, and compile_graph, the flow of DESIGN.md for one graph.

choose strategy -> split -> fake-propagate -> compile each unique piece (CompilerManager)
-> stitch -> validate. The result is a stitched callable plus Pieces for the report.
"""
from __future__ import annotations

import dataclasses
import logging
import re
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
from .inputplan import GraphInputs, InputPlan
from .manager import CompilerManager
from .ops import matches, op_name
from .split import Split, example_inputs, split_graph
from .stitch import GraphRunner, install, normalize_output
from .validate import eager_reference, uninitialized_outputs, validate_graph, validate_pieces
from .writes import WriteMap, find_writes

if TYPE_CHECKING:
    from ..session import Session
    from .model import CompiledModel

log = logging.getLogger(__name__)


@dataclass
class CapturedGraph:
    """A graph Dynamo handed the backend, kept so recompile never re-traces."""

    gm: fx.GraphModule
    fake_inputs: list[Any]
    fake_mode: Any
    real_inputs: list[Any]
    token: Any                       # the sympy symbol of the token dim, None when static
    roles: tuple[str, ...] = ()      # per input: "parameter" | "buffer" | "argument" | "value"
    names: tuple[str, ...] = ()      # per input: the model's name for it, or Dynamo's placeholder name
    writes: WriteMap = field(default_factory=WriteMap)   # what the graph writes in place
    grad: bool = False               # traced with grad enabled and an input requiring grad
    runner: GraphRunner | None = None
    graph_stats: Any = None          # cudagraph.GraphStats of the latest compile with CUDA graphs

    @classmethod
    def from_dynamo(cls, gm: fx.GraphModule, example_inputs: Sequence[Any], model_owner: Any = None) -> "CapturedGraph":
        """``model_owner``: the CompiledModel; its model's parameters, buffers and tensor
        attributes are recognised among the inputs by identity, and the dims it marked dynamic
        name the token symbol."""
        model = getattr(model_owner, "model", None)
        phs = [n for n in gm.graph.nodes if n.op == "placeholder"]
        fakes = [n.meta.get("example_value") for n in phs]
        fake_mode = tc.fake_mode_of(gm)
        if fake_mode is None or any(f is None for f in fakes):
            from torch._subclasses.fake_tensor import FakeTensorMode
            fake_mode = FakeTensorMode()
            fakes = [fake_mode.from_tensor(x) if isinstance(x, torch.Tensor) else x for x in example_inputs]
        real = [tc.sym_hint(x) if isinstance(x, torch.SymInt) else x for x in example_inputs]
        roles, names = input_roles(phs, real, model)
        grad = torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in real)
        token = _token_symbol(fakes, names, getattr(model_owner, "token_dims", {}))
        return cls(gm, list(fakes), fake_mode, real, token, roles, names, find_writes(gm, fakes, fake_mode), grad)

    def written_inputs(self) -> dict[int, tuple[str, ...]]:
        """Input index -> the nodes that write it in place."""
        return self.writes.inputs(self.gm)


def _token_symbol(fakes: Sequence[Any], names: Sequence[str], marked: dict[int, int]) -> Any:
    """The token count's symbol: the dim vexplore marked dynamic on a positional input, when it
    is symbolic in this graph (Dynamo specializes a 1-token call; then there is none, even if
    another dim is dynamic). Without marks, the first symbol among the inputs' sizes."""
    if marked:
        for f, name in zip(fakes, names):
            m = re.fullmatch(r"args\[(\d+)\]", name)
            dim = marked.get(int(m.group(1))) if m else None
            if dim is not None and isinstance(f, torch.Tensor) and dim < f.dim():
                e = tc.sym_expr(f.shape[dim])
                if getattr(e, "is_Symbol", False):
                    return e
        return None
    for f in fakes:
        dims = [f] if isinstance(f, torch.SymInt) else list(f.shape) if isinstance(f, torch.Tensor) else []
        syms = [tc.sym_expr(d) for d in dims if isinstance(d, torch.SymInt)]
        if syms and getattr(syms[0], "is_Symbol", False):
            return syms[0]
    return None


def input_roles(placeholders: Sequence[fx.Node], real: Sequence[Any], model: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Per graph input, its role and name: "parameter" / "buffer" (registered buffers and plain
    tensor attributes of the model's modules, which keep their address between calls) by
    identity against ``model``, "argument" for other tensors, "value" for the rest."""
    params: dict[int, str] = {}
    state: dict[int, str] = {}
    if isinstance(model, torch.nn.Module):
        params = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        state = {id(b): n for n, b in model.named_buffers(remove_duplicate=False)}
        for prefix, mod in model.named_modules():
            for k, v in vars(mod).items():
                if isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter):
                    state.setdefault(id(v), f"{prefix}.{k}" if prefix else k)
    roles, names = [], []
    for ph, r in zip(placeholders, real):
        if not isinstance(r, torch.Tensor):
            roles.append("value")
        elif id(r) in params or isinstance(r, torch.nn.Parameter):
            roles.append("parameter")
        else:
            roles.append("buffer" if id(r) in state else "argument")
        names.append(params.get(id(r)) or state.get(id(r)) or _arg_name(str(ph.target)))
    return tuple(roles), tuple(names)


_ARG = re.compile(r"^L_(args_(\d+)|kwargs_(\w+?))_$")


def _arg_name(target: str) -> str:
    """``args[0]`` or the keyword for what the caller passed (Dynamo names them L_args_0_,
    L_kwargs_cache_ in vexplore's entry function), else Dynamo's own placeholder name."""
    m = _ARG.match(target)
    if m is None:
        return target
    return f"args[{m.group(2)}]" if m.group(2) is not None else m.group(3)


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
