"""``cm.profile(*inputs)`` / ``vx.profile(cm, *inputs)``: warm calls under torch.profiler, mapped to
pieces, FX nodes, kernels and source lines (a RuntimeProfile, monitor/profile.py).

How the time is found and mapped:

1. ``warmup`` calls (the first compiles when the model has not run yet), then ``calls`` calls timed
   without the profiler: ``wall_ms``. On CUDA the same calls give the span and the lead-in: CUDA
   events recorded as the call starts, as it enters its first graph and after it, from an idle device
   (synchronised before each call), so the first two fire as the host reaches them and the last when
   the call's last kernel ends (the events' own host cost, a few µs, is in ``wall_ms``). The profiler's own work per op and per launch
   widens the gaps between kernels (benchmarks/README.md, "Runtime profiles on the GPU"), so the
   trace's span is kept as ``traced_span_ms`` only.
2. Kernel names. On CUDA the profiler names every kernel. On the CPU, Inductor's C++ kernels are
   visible to the profiler only when built with its kernel-profile option, which costs a profiler
   range per kernel call, so production builds never carry it: a *profiling build* of the same
   graphs (same split, same config plus that option; the session's cache tiers serve it the second
   time) runs for the profiled calls instead (``build == "profiling"``), and its per-piece times are
   compared with the production build's (``build_check``): in the same profiler session, the two
   builds' calls alternating (production first in one pair, profiling first in the next; CHECK_PAIRS
   pairs), each piece's lower-quintile difference with its 95 % interval, judged against 5 %
   (``build_verdict``). The profiling build runs the production build's own split-op runners (the
   same op; production's may be torch.fx's lazy-forward stub, a few µs dearer). Back-to-back blocks
   of each build, as the check was first made, measured the machine's drift between the blocks, not
   the builds (benchmarks/README.md, "Runtime profile: the build check").
3. Pieces. For the profiled calls only, each piece's runner in the stitched graph runs inside a
   profiler range ``vexplore piece <index>`` (engine/runtime/stitch.piece_hooks) and each call inside
   ``vexplore call <i>``; each graph's runner is re-pointed for those calls (to the profiling build,
   and to note the graph's input sizes) and restored after. Calls outside ``cm.profile`` run the same
   objects as before and pay nothing.
4. Kernels. CUDA: every device event (kernels, copies, fills) but the ranges the profiler repeats on
   the device track; its piece is the range around the CUDA runtime call that launched it (the event
   carries that call's id: bench/traceevents.py). CPU: the outermost ops inside a call (an
   Inductor C++ kernel, an aten op with the ops it calls, a split op); their self times add up to
   ``device_ms``. Under CUDA graphs a replay runs its kernels outside every piece range: one more
   call of the same graphs without CUDA graphs (each graph's fallback, pieces in their ranges) gives
   the kernel order that maps each replayed kernel to its piece (bench/replaymap.py); a kernel it
   cannot place (a copy into a graph's buffer) keeps ``piece`` None.
5. Rows: one per kernel call site, the k-th run of a kernel name within a piece's run; its nodes,
   source lines and estimated bytes/FLOPs from bench/kernelmap.py; the device's limits from
   bench/peaks.py (CUDA only).
"""
from __future__ import annotations

import contextlib
import dataclasses
import platform
import statistics
import time
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.profiler import ProfilerActivity, record_function

from ..errors import ConfigError, VexploreError
from ..engine import _torch_compat as tc
from ..engine.build.pipeline import GraphContext, compile_graph
from ..engine.runtime.stitch import piece_hooks
from ..monitor.events import EventRecorder, SilentMonitor
from ..monitor.profile import (BUILD_TOLERANCE, KernelRow, PieceCheck, RuntimeCounters, RuntimeProfile, TraceSlice,
                               build_verdict)
from .kernelmap import Calls, Shapes, code_calls, match_nodes, source_lines
from .traceevents import CALL, PIECE, WARM, Kernel, Run, analyse
from .peaks import device_peaks
from . import replaymap

MAX_SLICES = 20_000
CHECK_PAIRS = (30, 100)   # the build check's pairs of calls: at least the first, up to the second ...
CHECK_BUDGET_S = 2.0      # ... while the check's calls beyond the first have taken less than this
CHECK = "vexplore check "   # the check's calls that are no profiled call: "vexplore check production <i>" ...


def profile(cm: Any, *inputs: Any, calls: int = 20, warmup: int = 5) -> RuntimeProfile:
    """``vx.profile(cm, *inputs, calls=20, warmup=5)``: the same as ``cm.profile(*inputs, ...)`` (the
    profile is kept in ``cm.report.profiles``)."""
    if not callable(getattr(cm, "profile", None)) or not hasattr(cm, "graphs"):
        raise VexploreError(f"vx.profile: {type(cm).__name__} is not a compiled model; pass what vx.compile returned.")
    return cm.profile(*inputs, calls=calls, warmup=warmup)


def measure(cm: Any, inputs: Sequence[Any], calls: int = 20, warmup: int = 5,
            kwargs: dict[str, Any] | None = None) -> RuntimeProfile:
    """Profile ``calls`` warm calls of the CompiledModel ``cm`` on ``inputs`` (and keyword ``kwargs``: a
    Hugging Face model's ``input_ids=``, ``past_key_values=``, ...; see the module docstring)."""
    _check_counts(calls, warmup)
    t0 = time.perf_counter()
    spec = tuple(_spec(x) for x in inputs) + tuple(f"{k}={_spec(v)}" for k, v in (kwargs or {}).items())
    if kwargs:
        cm = _WithKeywords(cm, kwargs)
    if not cm.graphs:
        cm(*inputs)
    cm.settle()   # a graph compiled whole off the call path is taken before the warm-up calls
    for _ in range(warmup):
        cm(*inputs)
    report, graphs = cm.report, len(cm.graphs)
    cuda = report.device == "cuda"
    wall, spans = _timed(cm, inputs, calls, cuda)
    build, note = _profiling_build(cm)
    check: tuple[PieceCheck, ...] = ()
    if build:
        run, pairs = _traced(cm, inputs, calls, build, warm=max(warmup, 1), check=max(calls, CHECK_PAIRS[0]))
        check = _piece_check(pairs, run)
        note = f"{note}. {check_note(check)}"
    else:
        run, _ = _traced(cm, inputs, calls, {})
    plain = {g.index: types.SimpleNamespace(fn=g.runner.fn.fallback) for g in cm.graphs if hasattr(g.runner.fn, "fallback")}
    if plain:   # CUDA-graph replays: their kernels' pieces from a call without graphs (step 4)
        run = replaymap.assign(run, _traced(cm, inputs, 1, plain)[0])
    if len(cm.graphs) != graphs or cm.report is not report:
        raise VexploreError("cm.profile: a profiled call traced and compiled a new graph, so the calls did not "
                            "all run the same pieces. Call cm(*inputs) with these inputs once before profiling.")
    rows = _rows(cm, run, {g: r.pieces for g, r in build.items()} if build else None)
    if any(g.graph_stats is not None and g.graph_stats.whole for g in cm.graphs):
        note = (f"{note}. " if note else "") + ("cudagraph_whole: a full size replays the graph compiled whole, whose "
                                               "kernels are mapped by the stitched pieces' order; a kernel fused "
                                               "otherwise there stays without a piece")
    extra = _Extra(warmup, "profiling" if build else "production", check, note, t0, spec, tuple(spans))
    return _assemble(cm, run, rows, wall, extra)


class _WithKeywords:
    """``cm`` whose every call also passes ``kwargs`` (the calls below are ``cm(*inputs)``); the rest is ``cm``'s."""

    def __init__(self, cm: Any, kwargs: dict[str, Any]) -> None:
        self._cm, self._kwargs = cm, kwargs

    def __call__(self, *inputs: Any) -> Any:
        return self._cm(*inputs, **self._kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cm, name)


@dataclass(frozen=True)
class _Extra:
    warmup: int
    build: str
    check: tuple[PieceCheck, ...]
    note: str
    t0: float
    inputs: tuple[str, ...]
    spans: tuple[tuple[float, float], ...] = ()   # (lead-in, span) ms per call, CUDA events (step 1 of the docstring)


def _check_counts(calls: Any, warmup: Any) -> None:
    for name, v, least in (("calls", calls, 1), ("warmup", warmup, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise ConfigError(f"cm.profile({name}={v!r}): {name} must be an int >= {least}, e.g. "
                              "cm.profile(*inputs, calls=20, warmup=5).")


def _sync(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


class _Entered:
    """A graph's callable that records ``state.start``, a CUDA event, as the call enters its first graph."""

    def __init__(self, fn: Callable[..., Any], state: types.SimpleNamespace) -> None:
        self.fn, self.state = fn, state

    def __call__(self, *args: Any) -> Any:
        if self.state.start is None:
            self.state.start = torch.cuda.Event(enable_timing=True)
            self.state.start.record()
        return self.fn(*args)


def _timed(cm: Any, inputs: Sequence[Any], calls: int, cuda: bool) -> tuple[list[float], list[tuple[float, float]]]:
    """ms per call without the profiler, each call synchronised before and after on CUDA; and on CUDA each
    call's (lead-in, span) by CUDA events (step 1 of the module docstring): from the call's start to its
    first graph entry (the host's time before it: Dynamo's guards, the model's Python around the graph),
    and from there to the call's last kernel's end."""
    walls: list[float] = []
    spans: list[tuple[float, float]] = []
    state = types.SimpleNamespace(start=None)
    with contextlib.ExitStack() as stack:
        for g in cm.graphs if cuda else ():
            stack.enter_context(_repointed(g.runner, _Entered(g.runner.fn, state)))
        for _ in range(calls):
            _sync(cuda)
            state.start = None
            if cuda:
                called, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                called.record()
            t = time.perf_counter()
            cm(*inputs)
            if cuda:
                end.record()
            _sync(cuda)
            walls.append((time.perf_counter() - t) * 1e3)
            if state.start is not None:
                spans.append((called.elapsed_time(state.start), state.start.elapsed_time(end)))
    return walls, spans


def _profiling_build(cm: Any) -> tuple[dict[int, Any], str]:
    """(graph -> GraphResult of a profiling build, how the kernels are named): a build only where the
    production build's kernels are nameless (CPU Inductor; step 2 of the module docstring)."""
    cfg, report = cm.config, cm.report
    if report.device == "cuda":
        return {}, "CUDA: kernels as the profiler names them; pieces from profiler ranges around each piece's run"
    if cfg.compiler != "inductor" or not any(p.compiler == "inductor" for p in report.pieces):
        return {}, "CPU, eager pieces: the aten ops each piece runs, mapped to nodes by name"
    opts = tc.kernel_profile_options()
    if not opts:
        return {}, "CPU: this torch cannot name Inductor's C++ kernels; their time shows as unnamed gaps"
    pcfg = cfg.replace(inductor_options={**cfg.inductor_options, **opts}, validate=False, workers=0, cudagraph="none")
    first: dict[int, int] = {}
    for p in report.pieces:
        first.setdefault(p.graph, p.index)
    rec = EventRecorder(SilentMonitor())
    out = {}
    for g in cm.graphs:
        ctx = GraphContext(cm.session.cache(pcfg.cache), rec, first_index=first.get(g.index, 0))
        res = compile_graph(g, pcfg, ctx)
        mine = [(p.index, p.name) for p in report.pieces if p.graph == g.index]
        if [(p.index, p.name) for p in res.pieces] != mine:   # never seen: the same config splits the same way
            return {}, "CPU: the profiling build split differently, so Inductor's C++ kernels stay unnamed"
        out[g.index] = res
    return out, ("CPU: Inductor's C++ kernels named by a profiling build of the same pieces "
                 f"({', '.join(opts)}), compared per piece with the production build (build_check)")


@contextlib.contextmanager
def _repointed(runner: Any, fn: Callable[..., Any]) -> Iterator[None]:
    old = runner.fn
    runner.fn = fn
    try:
        yield
    finally:
        runner.fn = old


class _Noting:
    """A graph's callable that notes the sizes of the graph's inputs at its first call, then runs the
    callable of the build ``which.build`` picks (0: the profiled build; 1: production, for the check)."""

    def __init__(self, fns: tuple[Callable[..., Any], ...], into: dict[int, tuple[Any, ...]], graph: int,
                 which: "_Which") -> None:
        self.fns, self.into, self.graph, self.which = fns, into, graph, which

    def __call__(self, *args: Any) -> Any:
        if self.graph not in self.into:
            self.into[self.graph] = tuple(tuple(int(s) for s in a.shape) if isinstance(a, torch.Tensor) else
                                          int(a) if isinstance(a, (int, torch.SymInt)) else None for a in args)
        return self.fns[self.which.build](*args)


@dataclass
class _Which:
    build: int = 0


def _ranged(index: int | None, runner: Callable[..., Any]) -> Callable[..., Any]:
    if index is None:
        return runner
    label = f"{PIECE}{index}"

    def run(*args: Any) -> Any:
        with record_function(label):
            return runner(*args)
    return run


@contextlib.contextmanager
def _installed(cm: Any, builds: Sequence[dict[int, Any]], args: dict[int, tuple[Any, ...]]) -> Iterator[_Which]:
    """Step 3 of the module docstring, for the span of the ``with``: each graph runs the callable of
    ``builds[which.build]`` (a build without the graph, e.g. ``{}``: the production callable), each
    split-op piece the production build's runner (step 2 of the module docstring)."""
    index = {(p.graph, p.name): p.index for p in cm.report.pieces}
    split = {(p.graph, p.name) for p in cm.report.pieces if p.kind == "split_op"}
    which = _Which()
    with contextlib.ExitStack() as stack:
        for g in cm.graphs:
            fns = tuple(b[g.index].fn if g.index in b else g.runner.fn for b in builds)
            parent = getattr(g.runner.fn, "__self__", None)   # production's stitched parent (None: not stitched)
            own = {n: parent.__dict__[n] for gi, n in split if gi == g.index and n in getattr(parent, "__dict__", {})}
            stack.enter_context(_repointed(g.runner, _Noting(fns, args, g.index, which)))
            for fn in dict.fromkeys(fns):   # each stitched callable once (two builds: two parents)
                stack.enter_context(piece_hooks(fn, lambda name, r, gi=g.index: _ranged(
                    index.get((gi, name)), own.get(name, r))))
        yield which


Pairs = dict[int, list[tuple[float, float]]]   # piece -> (production ms, profiling ms) per pair of calls


def _traced(cm: Any, inputs: Sequence[Any], calls: int, build: dict[int, Any], warm: int = 0,
            check: int = 0) -> tuple[Run, Pairs]:
    """``calls`` calls of ``build`` (``{}``: production) under torch.profiler, each in a call range, pieces
    in piece ranges; analysed. ``check`` > 0: pairs of calls of both builds, interleaved in the same
    session (the first ``calls`` profiling calls are the profiled ones): ``check`` of them, then more up
    to ``CHECK_PAIRS[1]`` while they take less than ``CHECK_BUDGET_S``; and their pieces' times."""
    cuda = cm.report.device == "cuda"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    args: dict[int, tuple[Any, ...]] = {}
    builds = (build, {}) if check else (build,)
    with _installed(cm, builds, args) as which:
        for which.build in range(len(builds)):
            for _ in range(warm):
                cm(*inputs)
        with torch.profiler.profile(activities=acts) as prof:
            with record_function(WARM):   # the profiler's own first-call costs land here, unmeasured
                for which.build in range(len(builds)):
                    cm(*inputs)
                    _sync(cuda)
            i, t0 = 0, time.perf_counter()
            while i < max(calls, check) or (check and i < CHECK_PAIRS[1] and time.perf_counter() - t0 < CHECK_BUDGET_S):
                order = (0,) if not check else (1, 0) if i % 2 == 0 else (0, 1)   # production first in every other pair
                for which.build in order:
                    with record_function(_call_label(i, which.build, calls)):
                        cm(*inputs)
                        _sync(cuda)
                i += 1
                if i == max(calls, check):
                    t0 = time.perf_counter()
    events = list(prof.events())
    run = analyse(events, cuda)
    run.args = args
    return run, (_pairs(events) if check else {})


def _call_label(i: int, build: int, calls: int) -> str:
    if build == 0 and i < calls:
        return f"{CALL}{i}"
    return f"{CHECK}{'profiling' if build == 0 else 'production'} {i}"


def _pairs(events: list[Any]) -> Pairs:
    """Each piece's run times (ms) in the check's pairs: the call ``i`` of each build (step 2 of the
    module docstring); a pair missing either run is left out."""
    runs: dict[tuple[int, int, int], float] = {}
    for e in events:
        if not e.name.startswith(PIECE):
            continue
        node = e.cpu_parent
        while node is not None and not node.name.startswith((CALL, CHECK)):
            node = node.cpu_parent
        if node is None:
            continue
        if node.name.startswith(CALL):
            build, i = 0, int(node.name[len(CALL):])
        else:
            kind, num = node.name[len(CHECK):].split()
            build, i = (0 if kind == "profiling" else 1), int(num)
        runs[(int(e.name[len(PIECE):]), i, build)] = (e.time_range.end - e.time_range.start) / 1e3
    out: Pairs = {}
    for (piece, i, build), ms in sorted(runs.items()):
        if build == 1 and (piece, i, 0) in runs:
            out.setdefault(piece, []).append((ms, runs[(piece, i, 0)]))
    return out


def _piece_check(pairs: Pairs, profiled: Run) -> tuple[PieceCheck, ...]:
    """One PieceCheck per piece, with the profiler ranges per call the profiling build adds to it (its
    C++ kernels' ranges: named kernels that are no ``ns::op``)."""
    ranges: dict[int, int] = {}
    for k in profiled.kernels:
        if k.piece is not None and "::" not in k.name:
            ranges[k.piece] = ranges.get(k.piece, 0) + 1
    calls = max(len(profiled.calls), 1)
    return tuple(PieceCheck.paired(p, pairs[p], round(ranges.get(p, 0) / calls)) for p in sorted(pairs))


def check_note(check: Sequence[PieceCheck]) -> str:
    """The build check in words, for the profile's note: the verdict, and each piece that does not agree."""
    verdict = build_verdict(check)
    n = min((c.pairs for c in check), default=0)
    head = {"agrees": f"Build check: every piece within {BUILD_TOLERANCE:.0%} of the production build",
            "differs": f"Build check: the profiling build differs from the production build by more than {BUILD_TOLERANCE:.0%}",
            "unresolved": f"Build check unresolved: the calls were too noisy to tell {BUILD_TOLERANCE:.0%}",
            "": "Build check: no piece to compare"}[verdict]
    parts = [f"piece {c.piece} {c.diff:+.1%} ({c.diff_low:+.1%}..{c.diff_high:+.1%}"
             + (f"; {c.ranges} kernel ranges, ~{c.diff * c.production_ms * 1e3 / c.ranges:.2f} us each"
                if c.ranges and c.verdict() == "differs" and c.diff > 0 else "")
             + ")" for c in check if c.verdict() != "agrees" and c.diff is not None]
    tail = f" ({n} interleaved pairs of calls; each piece's lower-quintile difference and its 95 % interval)"
    if any(c.verdict() == "differs" and c.diff > 0 and c.ranges for c in check):
        tail += ("; where it is slower, its profiler range per C++ kernel call is the difference: the kernels' "
                 "times are what ran inside the ranges, the host time between them is inflated")
    return head + tail + (": " + ", ".join(parts) if parts else "")


def _rows(cm: Any, run: Run, built: dict[int, Sequence[Any]] | None) -> list[KernelRow]:
    """One KernelRow per kernel call site (step 5 of the module docstring); bytes/FLOPs estimated."""
    pieces = {p.index: p for p in cm.report.pieces}
    code = {i: (p.code if p.same_as is None else pieces[p.same_as].code) for i, p in pieces.items()}
    if built:
        code.update({p.index: p.code for ps in built.values() for p in ps if p.code})
        code.update({p.index: code.get(p.same_as) for ps in built.values() for p in ps if p.same_as is not None})
    calls_in = {i: _own_names(code_calls(code[i]), pieces[i], pieces) for i in code}
    shapes = {g.index: Shapes(g.gm, run.args[g.index]) for g in cm.graphs if g.index in run.args}
    groups: dict[tuple[int | None, str, int, str], list[Kernel]] = {}
    for k in run.kernels:
        groups.setdefault((k.piece, k.name, k.ordinal, k.code_key), []).append(k)
    rows = []
    for (piece, name, ordinal, key), ks in groups.items():
        p = pieces.get(piece) if piece is not None else None
        nodes: tuple[str, ...] = ()
        if p is not None:
            nodes = (tuple(n.name for n in p.graph_nodes) if p.kind == "split_op" else
                     match_nodes(key, ordinal, p.graph_nodes, calls_in.get(piece, [])))
        work = shapes[p.graph].work(nodes) if p is not None and p.graph in shapes else (None, None, None)
        rows.append(_row(name, piece, nodes, p, ks, work))
    return rows


def _own_names(calls: Calls, p: Any, pieces: dict[int, Any]) -> Calls:
    """A twin piece runs its first piece's code, whose comments name the first piece's nodes: the same
    structure, node for node, so they are renamed by position to the twin's own."""
    if p.same_as is None or p.same_as not in pieces:
        return calls
    rename = {a.name: b.name for a, b in zip(pieces[p.same_as].graph_nodes, p.graph_nodes)}
    return [(k, tuple(rename.get(n, n) for n in names)) for k, names in calls]


def _row(name: str, piece: int | None, nodes: tuple[str, ...], p: Any, ks: list[Kernel],
         work: tuple[int | None, int | None, str | None]) -> KernelRow:
    total = sum(k.end - k.start for k in ks) / 1e3
    mean = total / len(ks)
    nbytes, flops, _ = work
    per_s = 1e3 / mean if mean > 0 else None
    return KernelRow(name, piece, nodes, source_lines(nodes, p.graph_nodes) if p is not None else (), len(ks), total,
                     mean, nbytes, flops, True, nbytes * per_s / 1e9 if nbytes and per_s else None,
                     flops * per_s / 1e12 if flops and per_s else None, None)


def _limits(cm: Any, rows: list[KernelRow], run: Run) -> list[KernelRow]:
    """``limit_share`` of each row where the device's peaks are known (CUDA; bench/peaks.py)."""
    if cm.report.device != "cuda":
        return rows
    pieces = {p.index: p for p in cm.report.pieces}
    dtypes = {n.dtype for p in pieces.values() for n in p.graph_nodes if n.dtype}
    peaks = device_peaks(torch.device("cuda"), cm.config.cache.dir, {f"torch.{d}" for d in dtypes})
    if peaks is None:
        return rows
    out = []
    for r in rows:
        p = pieces.get(r.piece) if r.piece is not None else None
        dtype = next((f"torch.{n.dtype}" for n in (p.graph_nodes if p else ()) if n.name in r.nodes and n.dtype), None)
        roof = peaks.roofline_s(r.bytes, r.flops, dtype)
        out.append(dataclasses.replace(r, limit_share=roof / (r.mean_ms / 1e3) if roof and r.mean_ms > 0 else None))
    return out


def _per_call(run: Run) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
    """(wall, busy, span, span - busy, lead-in) per call in the trace, ms; the lead-in is the call's start
    to its first piece's range or its first kernel, whichever began first (so it never overlaps the span)."""
    walls, busies, spans, gaps, leads = [], [], [], [], []
    firsts: dict[int, float] = {}
    for c, _, a, _ in run.pieces:
        firsts[c] = min(a, firsts.get(c, a))
    for i, (a, b) in sorted(run.calls.items()):
        ks = [k for k in run.kernels if k.call == i]
        busy = sum(k.end - k.start for k in ks)
        span = max(k.end for k in ks) - min(k.start for k in ks) if ks else 0.0
        walls.append((b - a) / 1e3)
        busies.append(busy / 1e3)
        spans.append(span / 1e3)
        gaps.append(max(span - busy, 0.0) / 1e3)
        first = min(([firsts[i]] if i in firsts else []) + [k.start for k in ks], default=a)
        leads.append(max(first - a, 0.0) / 1e3)
    return walls, busies, spans, gaps, leads


def _slices(run: Run) -> tuple[TraceSlice, ...]:
    t0 = min((a for a, _ in run.calls.values()), default=0.0)
    out = [TraceSlice("call", f"call {i}", (a - t0) / 1e3, (b - a) / 1e3, i) for i, (a, b) in sorted(run.calls.items())]
    out += [TraceSlice("piece", f"piece {p}", (a - t0) / 1e3, (b - a) / 1e3, c, p) for c, p, a, b in run.pieces]
    out += [TraceSlice("kernel", k.name, (k.start - t0) / 1e3, (k.end - k.start) / 1e3, k.call, k.piece)
            for k in run.kernels]
    return tuple(out[:MAX_SLICES])


def _assemble(cm: Any, run: Run, rows: list[KernelRow], wall: list[float], extra: _Extra) -> RuntimeProfile:
    rows = sorted(_limits(cm, rows, run), key=lambda r: (r.piece is None, r.piece or 0, -r.total_ms))
    calls = len(run.calls)
    walls, busies, spans, gaps, leads = _per_call(run)
    total = sum(r.total_ms for r in rows)
    mapped = sum(r.total_ms for r in rows if r.piece is not None and r.source_lines)
    traced = statistics.median(spans) if spans else 0.0
    busy = statistics.median(busies) if busies else 0.0
    lead = statistics.median(leads) if leads else 0.0
    if extra.spans:   # CUDA: the span of the calls without the profiler (step 1 of the module docstring)
        span, lead, timer = statistics.median(s for _, s in extra.spans), statistics.median(a for a, _ in extra.spans), "cuda events"
        gap = max(span - busy, 0.0)
    else:
        span, gap, timer = traced, statistics.median(gaps) if gaps else 0.0, "profiler trace"
    return RuntimeProfile(
        wall_ms=statistics.median(wall), device_ms=busy, span_ms=span, host_gap_ms=gap, traced_span_ms=traced,
        span_timer=timer, lead_in_ms=lead,
        rows=tuple(rows), attributed_share=mapped / total if total else 0.0, calls=calls, device=_device_name(cm),
        profiled_wall_ms=statistics.median(walls) if walls else 0.0, warmup=extra.warmup, build=extra.build,
        build_check=extra.check, runtime=RuntimeCounters.of(g.graph_stats for g in cm.graphs), slices=_slices(run),
        inputs=extra.inputs, note=extra.note, profile_s=time.perf_counter() - extra.t0,
        build_verdict=build_verdict(extra.check))


def _spec(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"{tuple(x.shape)} {str(x.dtype).replace('torch.', '')}"
    return type(x).__name__


def _device_name(cm: Any) -> str:
    if cm.report.device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        name = ""
    return f"cpu: {name or platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
