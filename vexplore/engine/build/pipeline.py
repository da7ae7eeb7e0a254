"""compile_graph: one captured graph, compiled under a config, into a GraphResult.

    strategy -> split -> fake-propagate -> plan a PieceJob per unique piece and size
    -> resolve the jobs the cache tiers hold -> build the rest (executor + fallback ladder)
    -> store them -> Pieces -> stitch (CUDA graphs when asked) -> validate

It never touches the model or the report: the GraphResult carries the callable, the pieces,
the events and typed warnings of this graph, and the unique pieces it built, which later
graphs of the same report reuse (``GraphContext.known``). A cancel (``GraphContext.cancel``) is
checked before each step and each job: it raises CancelledError, and nothing of this graph is kept.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.fx as fx

from ...cache.artifact import Artifact
from ...cache.tiered import TieredCache
from ...cancel import CancelToken
from ...config import DEFAULT_SPLITTING_OPS, CompileConfig
from ...errors import CompileError
from ...monitor.events import CompileEvent, EventRecorder
from ...monitor.report import CompileWarning, Miss, Piece
from .. import _torch_compat as tc
from ..runtime import cudagraph
from ..capture.captured import CapturedGraph
from .compilers import InductorCompiler
from ..runtime.emergency import RuntimeFallback, guard
from .executor import InProcess, Workers
from ..runtime.inputplan import GraphInputs, InputPlan
from .jobs import BuildResult, PieceJob
from .ladder import build
from .loader import load_artifact
from ..ops import matches, op_name
from ..split.opsuggest import split_op_warnings
from ..split.outvariants import out_variant
from . import background
from .dedupe import Deduped, dedupe_pieces
from .pieces import UniqueBuild, base_fields, compiled_piece, split_op_piece
from ..split.split import Split, example_inputs, split_graph
from ..split.policy import Cut, plan_cuts, policy_summary
from ..runtime.stitch import SizeDispatch, stitched, unwrap
from .validate import eager_reference, uninitialized_outputs, validate_graph, validate_pieces


@dataclass(frozen=True)
class GraphContext:
    """What compiling one graph uses from outside it."""

    cache: TieredCache
    rec: EventRecorder
    pool: Any = None                                        # the Session's WorkerPool, when config.workers
    first_index: int = 0                                    # this graph's first piece in the report
    known: Mapping[str, UniqueBuild] = field(default_factory=dict)   # built by earlier graphs of the report
    on_fallback: Callable[[RuntimeFallback], None] | None = None    # told when a piece fails at call time
    in_trace: bool = False      # inside Dynamo's backend call: Dynamo's restart signals are raised for it
    cancel: CancelToken = field(default_factory=CancelToken)   # the compile's; checked between steps and jobs


@dataclass(frozen=True)
class GraphResult:
    fn: Callable[..., Any]
    pieces: tuple[Piece, ...]
    events: tuple[CompileEvent, ...]
    warnings: tuple[CompileWarning, ...]
    strategy: str
    strategy_reason: str
    unique: Mapping[str, UniqueBuild]                       # the unique pieces this graph built
    validation: tuple[str, ...] = ()                        # validate=True: this graph end to end
    stats: cudagraph.GraphStats | None = None               # CUDA-graph counts, when captured


def choose_strategy(gm: fx.GraphModule, cfg: CompileConfig, cuts: Sequence[Cut] = ()) -> tuple[str, str]:
    """(strategy, why); ``cuts``: the split policy's plan, which "auto" splits by when it cuts."""
    calls = [n for n in gm.graph.nodes if n.op.startswith("call_")]
    found = sorted({op_name(n) for n in calls if matches(op_name(n), cfg.splitting_ops)})
    if cfg.strategy != "auto":
        return cfg.strategy, f"strategy={cfg.strategy} was requested"
    mine = [c for c in cuts if c.policy != "ops"]
    if mine and len(calls) >= cfg.auto_min_nodes:
        return "piecewise", f"auto: split_policy={cfg.split_policy} cuts the graph ({policy_summary(cuts)})"
    if not found:
        return "full", "auto: the graph holds no split ops, so one piece"
    if len(calls) < cfg.auto_min_nodes:
        return "full", f"auto: {len(calls)} nodes < auto_min_nodes={cfg.auto_min_nodes}, too small to split"
    return "piecewise", f"auto: {len(calls)} nodes with split ops ({', '.join(found)})"


def compile_graph(graph: CapturedGraph, config: CompileConfig, ctx: GraphContext) -> GraphResult:
    """Compile ``graph`` under ``config`` (see the module docstring)."""
    rec, mark, gi, cancel = ctx.rec, len(ctx.rec.events), graph.index, ctx.cancel
    cancel.check()
    with rec.step("strategy", graph=gi) as step:
        strategy, reason, cuts = _plan(graph.gm, config)
        step.kw["detail"] = f"{strategy}, split_policy={config.split_policy}: {policy_summary(cuts)}"
    ops = config.splitting_ops if strategy == "piecewise" else ()
    cancel.check()
    with rec.step("split", graph=gi) as step:
        split = split_graph(graph.gm, lambda n: n.op.startswith("call_") and matches(op_name(n), ops), cuts)
        step.kw["detail"] = f"{len(split.pieces)} pieces, {sum(p.kind == 'compiled' for p in split.pieces)} compiled"
    warnings = _graph_warnings(graph, config, strategy, cuts)
    cancel.check()
    with rec.step("fakeprop", graph=gi) as step:
        inputs, step.kw["detail"] = example_inputs(split, graph.fake_inputs, graph.fake_mode, graph.grad)
    plan = dedupe_pieces(split, inputs, graph, config, ctx.known, ctx.first_index)
    built = _build_unique(plan, config, ctx)
    pieces, runners = _pieces(split, inputs, graph, plan, {**ctx.known, **built}, ctx.first_index)
    runners = guard(runners, pieces, {s.name: s.module.forward for s in split.pieces}, gi, ctx.on_fallback)
    if config.validate:
        cancel.check()
        pieces = _validate_pieces(graph, split, runners, pieces, rec)
    mode = _cudagraph_mode(graph, config)
    cancel.check()
    fn, stats, more = _stitch(graph, config, split, runners, ctx, mode)
    skip = mode[1]
    if skip:
        pieces = [dataclasses.replace(p, cudagraph_skip_reason=skip) for p in pieces]
    validation: tuple[str, ...] = ()
    if config.validate:
        cancel.check()
        with rec.step("validate", graph=gi):
            status = validate_graph(graph.gm, fn, graph.real_inputs, graph.written_inputs(), graph.grad)
        validation = (f"graph {gi}: {status}",)
        more += _validation_warnings(gi, pieces, status)
    return GraphResult(fn, tuple(pieces), tuple(rec.events[mark:]), tuple(warnings + more), strategy, reason,
                       built, validation, stats)


def _plan(gm: fx.GraphModule, config: CompileConfig) -> tuple[str, str, tuple[Cut, ...]]:
    """(strategy, why, the cuts it splits at): the split policy plans unless strategy="full"."""
    if config.strategy == "full":
        return "full", "strategy=full was requested", ()
    cuts = plan_cuts(gm, config, lambda n: n.op.startswith("call_") and matches(op_name(n), config.splitting_ops))
    strategy, reason = choose_strategy(gm, config, cuts)
    return strategy, reason, cuts if strategy == "piecewise" else ()


def _validation_warnings(graph: int, pieces: Sequence[Piece], status: str) -> list[CompileWarning]:
    out = [CompileWarning("validation", f"graph {graph} piece {p.index} ({p.name}): {p.validation}", graph, p.index)
           for p in pieces if p.validation and p.validation.startswith("mismatch")]
    if status.startswith("mismatch"):
        out.append(CompileWarning("validation", f"graph {graph} end to end: {status}", graph))
    return out


def _graph_warnings(graph: CapturedGraph, config: CompileConfig, strategy: str, cuts: Sequence[Cut]) -> list[CompileWarning]:
    user_given = config.splitting_ops != DEFAULT_SPLITTING_OPS
    splits = strategy == "piecewise" or (config.strategy == "auto" and user_given)
    policy_cut = any(c.policy != "ops" for c in cuts)   # the split policy cut it: not "compiled as one piece"
    out = split_op_warnings(graph.gm, graph.index, config.splitting_ops, user_given, splits, policy_cut)
    if graph.grad:
        out.append(CompileWarning("autograd", f"graph {graph.index}: compiled for autograd (called with grad enabled "
                                  "and inputs that require grad); call under torch.no_grad() for inference", graph.index))
    return out


def _build_unique(plan: Mapping[str, Deduped], config: CompileConfig, ctx: GraphContext) -> dict[str, UniqueBuild]:
    """Resolve every job from the tiers, build the misses, store them; one UniqueBuild per key."""
    jobs = [j for p in plan.values() for j in p.jobs]
    cached = config.compiler == "inductor" and ctx.cache.enabled
    results: dict[str, BuildResult] = {}
    misses = []
    for job in jobs:
        hit = _lookup(job, ctx) if cached else None
        if hit is not None and hit.tier != "miss":
            results[job.id] = hit
        else:
            misses.append((job, hit.miss if hit is not None else None))
    local = InProcess(InductorCompiler(config.mode, dict(config.inductor_options), config.post_grad_passes), ctx.rec,
                      ctx.cancel)
    executor = Workers(ctx.pool, local, config.compile_timeout_s) if ctx.pool is not None and config.compiler == "inductor" else local
    for (job, why), res in zip(misses, build([j for j, _ in misses], config, executor, local, ctx.in_trace)):
        results[job.id] = _store(job, res, ctx) if cached else res
        if why is not None:
            results[job.id] = dataclasses.replace(results[job.id], miss=why)
    out = {}
    for p in plan.values():
        if p.jobs:
            builds = tuple((j.size, results[j.id]) for j in p.jobs)
            out[p.unique_key] = UniqueBuild(p.jobs[0].piece, builds, _runner(builds, p))
    return out


def _lookup(job: PieceJob, ctx: GraphContext) -> BuildResult:
    ctx.cancel.check()
    # the lock first, as the executor does: the step's torch metrics must not count another thread's compile
    with tc.compile_lock(), ctx.rec.step("load", graph=job.graph, piece=job.piece, size=job.size) as step:
        hit = ctx.cache.lookup(job.key, load_artifact)
        step.kw.update(tier=hit.tier, counts=hit.counters())
        if hit.miss_reason:
            step.kw["detail"] = hit.miss_reason
    if hit.fn is None:
        miss = Miss(job.size, hit.miss_reason or "", hit.differs, tuple(dict.fromkeys(t for t, _ in hit.rejected)))
        return BuildResult(job.gm, "inductor", "miss", miss=miss)
    # the load's time is its event's, so the piece and the timeline say the same (the lookup's own timer
    # leaves out the step's probes, which a busy machine can stretch by milliseconds)
    return BuildResult.from_meta(hit.fn, hit.info, hit.tier, step.event.duration_s)


def _store(job: PieceJob, res: BuildResult, ctx: GraphContext) -> BuildResult:
    meta = res.to_meta()
    # the artifact's header leaves out the code: loading it generates the code again (loader.py)
    art = Artifact(res.data, res.compiler, {k: v for k, v in meta.items() if k != "code"}) if res.data else None
    ctx.cancel.check()
    with ctx.rec.step("store", graph=job.graph, piece=job.piece, size=job.size) as step:
        stored = ctx.cache.store(job.key, res.fn, art, meta)
        step.kw["counts"] = stored.counters()
    return dataclasses.replace(res, tier="miss")


def _runner(builds: tuple[tuple[int | None, BuildResult], ...], planned: Deduped) -> Callable[..., Any]:
    general = builds[0][1].fn
    by_size = {s: r.fn for s, r in builds[1:]}
    fn = SizeDispatch(general, by_size, *planned.token_at) if by_size and planned.token_at else general
    return unwrap(fn, planned.single)


def _pieces(split: Split, inputs: Mapping[str, tuple], graph: CapturedGraph, plan: Mapping[str, Deduped],
            uniques: Mapping[str, UniqueBuild], first_index: int) -> tuple[list[Piece], dict[str, Callable[..., Any]]]:
    """Every Piece of the graph in order, and each piece's runner by name (split ops run eagerly)."""
    pieces: list[Piece] = []
    runners: dict[str, Callable[..., Any]] = {}
    for i, spec in enumerate(split.pieces):
        base = base_fields(graph, spec, first_index + i, graph.index, inputs[spec.name])
        if spec.kind == "split_op":
            pieces.append(split_op_piece(base, spec))
            runners[spec.name] = tc.eager_forward(spec.module)   # skips nn.Module.__call__'s hook machinery
            continue
        ukey = plan[spec.name].unique_key
        built = uniques[ukey]
        pieces.append(compiled_piece(base, ukey, built, None if built.index == first_index + i else built.index))
        runners[spec.name] = built.runner
    return pieces, runners


def _validate_pieces(graph: CapturedGraph, split: Split, runners: Mapping[str, Callable[..., Any]],
                     pieces: list[Piece], rec: EventRecorder) -> list[Piece]:
    """Each compiled piece against eager on the inputs eager gave it: outputs and the inputs it writes."""
    with rec.step("validate", graph=graph.index):
        written = {p.name: graph.writes.written_args(p.module) for p in split.pieces}
        ref = eager_reference(split, graph.real_inputs, graph.written_inputs(), written)   # eager pieces
        skip = {p.name: uninitialized_outputs(p.module) for p in split.pieces}
        compiled = {p.name: runners[p.name] for p in split.pieces if p.kind == "compiled"}
        results = validate_pieces(compiled, ref, written, skip)
    out = []
    for p in pieces:
        if p.name in results:
            status, err = results[p.name]
            p = dataclasses.replace(p, validation=status, max_rel_err=err)
        out.append(p)
    return out


@dataclass(frozen=True)
class _Whole:
    """The graph compiled whole (``cudagraph_whole``) and what the graph's CUDA-graph notes say of it."""

    fn: Callable[..., Any]
    note: str


def _whole(graph: CapturedGraph, config: CompileConfig, ctx: GraphContext, split: Split,
           mode: tuple[str, str | None]) -> tuple[_Whole | None, list[CompileWarning]]:
    """The graph compiled whole, which its full CUDA graphs replay (``cudagraph_whole``): None where it is
    not asked, no size is captured full, or the graph is one piece already. Looked up and stored in the tiers
    as a piece is; its events carry no piece (it is none of the report's). It is an extra: where Inductor
    does not compile it (an error, a timeout, a crash), no fallback ladder is climbed and the compile goes on
    with the stitched pieces captured, a warning saying why."""
    if not _whole_wanted(config, split, mode):
        return None, []
    ctx.cancel.check()
    one = split_graph(graph.gm, lambda n: False)
    inputs, _ = example_inputs(one, graph.fake_inputs, graph.fake_mode, graph.grad)
    plan = {name: dataclasses.replace(d, jobs=tuple(dataclasses.replace(j, piece=None) for j in d.jobs))
            for name, d in dedupe_pieces(one, inputs, graph, config, (), ctx.first_index).items()}
    try:
        [built] = _build_unique(plan, config.replace(fallback=False), ctx).values()
        res = built.general
        why = None if res.compiler == "inductor" and res.fallback is None else (res.fallback_reason or res.compiler)
    except CompileError as e:   # raised by the ladder (fallback=False) with Inductor's error as its cause
        cause = e.__cause__ or e
        why = f"{type(cause).__name__}: {str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ''}"
    if why is not None:
        return None, [CompileWarning("cudagraph", f"graph {graph.index}: cudagraph_whole: the whole graph did not compile "
                                     f"with Inductor ({why}); full CUDA graphs replay the stitched pieces", graph.index)]
    how = "compiled" if res.tier in (None, "miss") else f"loaded from the {res.tier} tier"
    # through the one-piece split's parent: the piece takes the graph's inputs in the order of their first use
    return _Whole(stitched(one.gm, {one.pieces[0].name: built.runner}),
                  f"full CUDA graphs replay the graph compiled whole ({how} in {res.seconds:.2f} s)"), []


def _whole_wanted(config: CompileConfig, split: Split, mode: tuple[str, str | None]) -> bool:
    """Whether full captures would replay a graph compiled whole: asked for, some size captured full, and the
    graph split (a graph of one piece is whole already)."""
    return bool(config.cudagraph_whole) and mode[0] in ("full", "full_and_piecewise") and len(split.pieces) >= 2


def _whole_later(graph: CapturedGraph, config: CompileConfig, ctx: GraphContext, split: Split,
                 mode: tuple[str, str | None]) -> background.WholeLater | None:
    """``cudagraph_whole="background"``: the whole graph's build, to start once the capture plan is made
    (background.py); None where ``_whole`` would build nothing."""
    if config.cudagraph_whole != "background" or not _whole_wanted(config, split, mode):
        return None
    # its own recorder, no Dynamo restart signals (no trace to restart in a thread), and the Session's pool
    # itself: the compile's wrapper of it records on the compile's (finished) recorder
    bg = dataclasses.replace(ctx, rec=background.quiet_recorder(), in_trace=False, pool=getattr(ctx.pool, "pool", ctx.pool))
    return background.WholeLater(lambda: _whole(graph, config, bg, split, mode), graph.index, bg.rec, ctx.cancel)


def _stitch(graph: CapturedGraph, config: CompileConfig, split: Split, runners: dict[str, Callable[..., Any]],
            ctx: GraphContext, mode: tuple[str, str | None]) -> tuple[Callable[..., Any], cudagraph.GraphStats | None, list[CompileWarning]]:
    """Install the runners into the parent graph, under CUDA graphs when ``mode`` (from
    ``_cudagraph_mode``) says so (full captures replaying the graph compiled whole where ``_whole``
    builds it); a skip reason becomes a warning."""
    kind, skip, rec = mode[0], mode[1], ctx.rec
    if kind == "none":
        with rec.step("stitch", graph=graph.index):
            fn = stitched(split.gm, runners)
        warn = CompileWarning("cudagraph_skip", f"graph {graph.index}: runs without CUDA graphs: {skip}", graph.index)
        # the default "auto" asks for graphs only where they can serve: a training (grad) call is said on its
        # pieces (cudagraph_skip_reason), not warned about on every training run
        expected = config.cudagraph == "auto" and graph.grad
        return fn, None, [warn] if skip and not expected else []
    later = _whole_later(graph, config, ctx, split, mode)
    whole, warned = _whole(graph, config, ctx, split, mode) if later is None else (None, [])
    parts = cudagraph.GraphParts(
        split.gm, {p.name: runners[p.name] for p in split.pieces if p.kind == "compiled"},
        {p.name: runners[p.name] for p in split.pieces if p.kind == "split_op"},
        {p.name: out_variant(p.module) for p in split.pieces if p.kind == "split_op"}, graph.gm,
        whole.fn if whole is not None else None)
    fn, stats, note = cudagraph.apply(config.replace(cudagraph=kind), parts, _graph_inputs(graph), rec, graph.index,
                                      later)
    if whole is not None:
        stats.whole = True
        stats.notes.append(whole.note)
    if later is not None:
        stats.notes.append("cudagraph_whole=\"background\": full CUDA graphs replay the stitched pieces until the graph "
                           "compiled whole is built, off the call path")
        later.start()
    return fn, stats, warned + ([CompileWarning("cudagraph", f"graph {graph.index}: {note}", graph.index)] if note else [])


def _graph_inputs(graph: CapturedGraph) -> GraphInputs:
    return GraphInputs(graph.real_inputs, graph.fake_inputs, graph.token, graph.roles, graph.names,
                       graph.written_inputs(), tc.symbol_hints(graph.fake_mode))


def _cudagraph_mode(graph: CapturedGraph, config: CompileConfig) -> tuple[str, str | None]:
    """(the CUDA-graph mode this graph gets, why it gets none when some was asked for)."""
    if config.cudagraph == "none":
        return "none", None
    device = next((x.device.type for x in graph.real_inputs if isinstance(x, torch.Tensor)), "cpu")
    if device != "cuda":   # "auto" means: where there is a CUDA device
        return "none", None if config.cudagraph == "auto" else \
            f"cudagraph={config.cudagraph} needs a CUDA device; the graph runs on {device}"
    if graph.grad:
        return "none", ("CUDA graphs serve no-grad calls only, and this graph was called with grad enabled and "
                        "inputs that require grad; call under torch.no_grad() to replay graphs")
    skip = InputPlan.make(_graph_inputs(graph)).skip_reason(graph.real_inputs)
    if skip:
        return "none", skip
    return ("full_and_piecewise" if config.cudagraph == "auto" else config.cudagraph), None
