"""CUDA graphs for one graph: a RuntimePlan per capture size.

A call decides its size once (``pick_size``; a size not captured runs without graphs, counted,
unless ``cudagraph_pad`` lets it pad up to the next captured size), checks the addresses of
the inputs used in place with one C++ call, copies the other inputs into the plan's buffers
(``inputplan.InputPlan``), then runs the plan's flat list of steps:

- **full**: one replay of the whole graph, split ops captured too;
- **piecewise**: a replay per compiled piece and, between them, each split op eagerly, writing
  straight into the next replay's input buffer when the op has an out variant
  (``outvariants.out_variant``), else into a fresh tensor copied there (named in the stats).

``cudagraph="full"`` captures every size full, ``"piecewise"`` every size piecewise, and
``"full_and_piecewise"`` full up to ``cudagraph_full_max`` tokens and piecewise above (as vLLM's
default): decode sizes get one launch, prefill sizes keep attention out of the graphs. A size
whose full capture fails is captured piecewise, saying why.

Capture (per size: a warm-up on a side stream, a second with device waits made errors — an op
like ``.item()`` cannot be captured and a capture it breaks poisons the process — then the
captures, and the replays that fill the outputs) restores every caller-visible tensor it writes
after each run, whenever it happens: at compile time, for a new graph after many calls, or when
an address moved. Each size's memory is estimated first (capturemem.py); a size over the budget,
or whose capture fails, runs without graphs, saying why. When each size is captured is the size
plan's (``size_plan``, inputplan.plan_sizes), decided without a GPU: a graph that writes a cache
in place captures at compile time only the sizes whose capture writes within what the call in
hand writes; the others at their first call, with that call, and a size longer than the cache
never (putting a cache back cannot undo a write past its end: on the GPU a device assert that
ends the CUDA context). A recompile's inputs hold a later state than the call that traced the
graph, so there every size of such a graph waits for its first call. The outputs of a call are
copied out of the pool once (so a later replay never changes a result the caller holds), except
an output that is a fixed input's own memory (a cache the model returns), returned as eager
returns it.
"""
from __future__ import annotations

import bisect
import contextlib
import copy
import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
import torch.fx as fx

from ...monitor.events import EventRecorder
from .. import _torch_compat as tc
from . import capturemem
from .inputplan import GraphInputs, InputPlan, SizeDecision, SizePlan, plan_sizes
from .stitch import install
from ..capture.writes import token_reach, written_since

log = logging.getLogger(__name__)

DEFAULT_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass(frozen=True)
class SizeInfo:
    """How one size is served: its mode, why, and the split ops whose result is copied."""

    mode: str                              # "full" | "piecewise" | "none" (not captured: runs without graphs)
    why: str
    copied: tuple[str, ...] = ()           # split ops without an out variant (one copy each per call)
    capture_s: float = 0.0
    memory_mb: float = 0.0                 # device memory the size's graphs and buffers hold
    estimate_mb: float = 0.0               # what capturemem estimated before capturing
    reason: str = ""                       # mode "none": "longer_than_cache" | "over_budget" | "capture_failed"


@dataclass
class GraphStats:
    """Counts over the calls of one compile; the report reads captures from the capture events."""

    captures: int = 0
    replays: int = 0
    uncaptured_calls: int = 0    # sizes (or other input shapes) without a graph: ran without graphs
    padded_calls: int = 0
    recaptures: int = 0          # sizes captured again because an input's address moved
    notes: list[str] = field(default_factory=list)   # why an input is copied rather than used in place
    sizes: dict[int | None, SizeInfo] = field(default_factory=dict)
    plan: dict[int | None, SizeDecision] = field(default_factory=dict)   # when each size is captured, and why


def pick_size(n: int, captured: Sequence[int], pad: bool) -> int | None:
    """The capture size a call of ``n`` tokens replays: ``n`` itself, the next larger one when
    padding is allowed, else None (run without graphs). ``captured`` is sorted ascending."""
    i = bisect.bisect_left(captured, n)
    if i < len(captured) and captured[i] == n:
        return n
    if pad and i < len(captured):
        return captured[i]
    return None


def capture_sizes(requested: Sequence[int] | None, dynamic: bool) -> list[int | None]:
    """Largest first. A dynamic graph never sees 1 token: Dynamo specializes size 1 into a graph
    of its own (its 0/1 specialization), so capturing 1 there would be wasted."""
    if not dynamic:
        return [None]
    sizes = sorted(set(requested or DEFAULT_SIZES), reverse=True)
    return [s for s in sizes if s >= 2]


def _capture(fn: Callable[..., Any], static: Sequence[Any], pool: Any, restore: Callable[[], None],
             warm: bool = True) -> tuple[Any, Any]:
    """Warm ``fn`` up on a side stream (as CUDA graphs require) unless done already, then capture
    it. ``restore`` puts back what a run wrote in the caller's tensors: every run starts from the
    caller's state, so a write position kept in a tensor (a cache's length) never walks on."""
    if warm:
        _warm_up(fn, static)
        restore()
        _warm_up(_sync_checked("the graph", fn), static)
        restore()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        out = fn(*static)
    return graph, out


def _warm_up(fn: Callable[..., Any], static: Sequence[Any]) -> None:
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn(*static)
    torch.cuda.current_stream().wait_stream(stream)


@contextlib.contextmanager
def _no_sync() -> Iterator[None]:
    """Make an op that waits for the device (``.item()``, a copy to the CPU) raise. Such an op
    cannot be captured, and a capture it breaks cannot be ended cleanly: CUDA's RNG stays in
    capture mode for the rest of the process. So it is found on a warm-up run, before capturing."""
    before = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(before)


def _sync_checked(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run with device waits made errors, naming ``name`` when one happens. Runs after a
    plain warm-up, so Inductor's first-run autotuning (which synchronises) is already done."""
    def run(*args: Any) -> Any:
        with _no_sync():
            try:
                return fn(*args)
            except RuntimeError as e:
                if "synchroniz" not in str(e):
                    raise
                raise RuntimeError(f"{name} waits for the device (a synchronizing op such as .item() or a copy to "
                                   "the CPU), so it cannot be captured") from e
    return run


@dataclass(frozen=True)
class GraphParts:
    """What a graph is made of, for capture: the split graph and each piece's callable."""

    parent: fx.GraphModule                             # calls each piece in order
    compiled: Mapping[str, Callable[..., Any]]         # piece name -> compiled runner
    split_ops: Mapping[str, Callable[..., Any]]        # piece name -> eager runner
    out_variants: Mapping[str, tuple[Any, str]]        # split-op piece -> (outvariants.OutVariant or None, op name)
    source: fx.GraphModule | None = None               # the graph Dynamo captured: for the memory estimate

    def plain(self) -> Callable[..., Any]:
        """The whole graph without CUDA graphs, through a parent of its own."""
        return install(copy.copy(self.parent), {**self.compiled, **self.split_ops}).forward

    def checked(self) -> Callable[..., Any]:
        """``plain`` with each compiled piece run under the device-wait check (split ops run freely)."""
        compiled = {k: _sync_checked(f"piece {k}", fn) for k, fn in self.compiled.items()}
        return install(copy.copy(self.parent), {**compiled, **self.split_ops}).forward


@dataclass
class RuntimePlan:
    """What one size runs: the graph inputs as captured, and a flat list of steps."""

    static: list[Any]
    ptrs: list[int | None]
    steps: list[Callable[[], Any]]
    outputs: Any
    aliases: tuple[bool, ...]   # per output: memory of a fixed input (returned, not copied)
    keep: list[Any]             # CUDA graphs and buffers the steps use

    def run(self) -> Any:
        for step in self.steps:
            step()
        return self.outputs


def _piecewise(parts: GraphParts, static: Sequence[Any], pool: Any, restore: Callable[[], None]
               ) -> tuple[list[Callable[[], Any]], Any, list[Any], list[str]]:
    """Capture each compiled piece on the values the graph gives it (one warm-up of the whole
    graph first); split ops run eagerly between, their results becoming the next replays' inputs.
    Returns (steps, outputs, what to keep alive, split ops whose result is copied).

    A value is let go as soon as the last piece reading it is captured (``dead``), as the
    parent's own code frees it at its last use: the pieces share one pool, so a later piece's
    capture takes that memory for its own buffers, and the pool holds about what the whole
    graph's capture holds instead of every piece's outputs at once. Replays run in capture order,
    so the value is read before a later graph writes over it. A split op's step keeps the tensors
    it reads and returns (their memory is never reused)."""
    for run in (parts.plain(), parts.checked()):
        _warm_up(run, static)
        restore()
    dead = capturemem.dead_after(parts.parent.graph)
    env: dict[fx.Node, Any] = {}
    steps, keep, copied = [], [], []
    placeholders = iter(static)
    for n in parts.parent.graph.nodes:
        if n.op == "placeholder":
            env[n] = next(placeholders)
            continue
        args = fx.map_arg(n.args, lambda a: env[a])
        if n.op == "output":
            return steps, args[0], keep, copied
        if n.op == "call_module" and str(n.target) in parts.compiled:
            graph, out = _capture(parts.compiled[str(n.target)], args, pool, restore, warm=False)
            graph.replay()   # fill the outputs: the next split op computes on real values
            restore()
            steps.append(graph.replay)
            keep.append(graph)
        elif n.op == "call_module":
            fn = parts.split_ops[str(n.target)]
            out = fn(*args)
            restore()
            into, name = parts.out_variants.get(str(n.target), (None, str(n.target)))
            steps.append(_split_step(fn, into, tuple(args), out))
            keep.append(out)
            if into is None:
                copied.append(name)
        else:   # getitem on a piece's tuple of outputs
            out = n.target(*args, **n.kwargs)
        env[n] = out
        del args, out
        for v in dead.get(n, ()):
            env.pop(v, None)
    raise AssertionError("the split graph has no output node")


def _split_step(fn: Callable[..., Any], into: Any, args: tuple[Any, ...], out: Any) -> Callable[[], Any]:
    """A split op's step: into the buffer the next replay reads (``out``), directly (``into``:
    an outvariants.OutVariant) or by a copy."""
    if into is not None:
        return into.bind(args, out)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]

    def step() -> None:
        res = fn(*args)
        tc.copy_all(outs, list(res) if isinstance(res, (tuple, list)) else [res])
    return step


class GraphCudaGraphs:
    """The callable a graph runs under CUDA graphs: picks the size, keeps inputs where the
    plans expect them, runs the plan, copies written inputs back and outputs out."""

    def __init__(self, parts: GraphParts, plan: InputPlan, sizes: list[int | None], config: Any, pad: bool) -> None:
        self.parts, self.plan, self.pad, self.config = parts, plan, pad, config
        self.fallback = parts.plain()
        self.stats = GraphStats()
        self.sizes = sorted(s for s in sizes if s is not None)
        self.at = plan.size_at()
        self.plans: dict[int | None, RuntimePlan] = {}
        self.current: dict[int, int] = {}      # fixed input -> the address it was last seen at
        self.skipped: set[int | None] = set()   # sizes not captured (too big, or capture failed): run without
        self.pool = torch.cuda.graph_pool_handle()

    def mode_for(self, size: int | None) -> tuple[str, str]:
        mode = self.config.cudagraph
        if mode == "full":
            return "full", "cudagraph='full'"
        if mode == "piecewise":
            return "piecewise", "cudagraph='piecewise'"
        limit = self.config.cudagraph_full_max
        if size is None:
            return "full", f"{mode}: a static graph (Dynamo specialised its token count), captured whole"
        if size <= limit:
            return "full", f"{mode}: {size} <= cudagraph_full_max={limit}"
        return "piecewise", f"{mode}: {size} > cudagraph_full_max={limit}"

    def capture(self, size: int | None, args: Sequence[Any]) -> SizeInfo:
        """Capture ``size`` on ``args`` (fixed inputs used in place; the others copied into new
        buffers, holding ``args``' leading rows where they fit), restoring every caller tensor it writes."""
        static = self.plan.static_inputs(size, args)
        saved = [(args[i], args[i].clone()) for i in self.plan.fixed if i in self.plan.written]

        def restore() -> None:
            for t, kept in saved:
                t.copy_(kept)
        t0, mem0 = time.perf_counter(), _allocated()
        try:
            with torch.no_grad(), tc.captures_without_gc():   # no_grad: also when recompile() runs with grad on
                runtime, info = self._capture_size(size, static, restore)
        finally:
            restore()
        info = SizeInfo(info.mode, info.why, info.copied, time.perf_counter() - t0, (_allocated() - mem0) / 2**20)
        self.plans[size] = runtime
        self.stats.sizes[size] = info
        for i in self.plan.fixed:
            self.current.setdefault(i, static[i].data_ptr())
        return info

    def estimate(self, size: int | None, real: Sequence[Any]) -> int:
        """Bytes a capture of ``size`` is expected to hold: the graph's peak of intermediates
        and the buffers its copied inputs get (capturemem.py)."""
        ev = capturemem.evaluator(self.plan.hints, self.plan.tied, size)
        peak = capturemem.peak_bytes(self.parts.source, ev) if self.parts.source is not None else 0
        if self.mode_for(size)[0] == "piecewise":   # what split ops read and return stays for good
            peak += capturemem.pinned_bytes(self.parts.parent, self.parts.split_ops, ev)
        inputs = 0
        for i in self.plan.copied:
            a = real[i]
            if isinstance(a, torch.Tensor):
                shape = self.plan.at_size(i, size) if i in self.plan.dims and size is not None else list(a.shape)
                inputs += math.prod(shape) * a.element_size()
        return peak + inputs

    def skip(self, size: int | None, why: str, estimate: int = 0, reason: str = "") -> SizeInfo:
        """Serve ``size`` without CUDA graphs from now on, saying why (``reason``: its code)."""
        self.plans.pop(size, None)
        self.skipped.add(size)
        self.sizes = [s for s in self.sizes if s != size]
        info = SizeInfo("none", why, estimate_mb=estimate / 2**20, reason=reason)
        self.stats.sizes[size] = info
        self.stats.notes.append(f"size {size}: {why}")
        log.warning("vexplore: cudagraph: size %s: %s", size, why)
        return info

    def refuse(self, d: SizeDecision) -> SizeInfo:
        """A size the size plan never captures (no call of it fits a cache the graph writes): it
        runs without graphs; the compile's note says so once for all such sizes."""
        self.skipped.add(d.size)
        self.sizes = [s for s in self.sizes if s != d.size]
        info = self.stats.sizes[d.size] = SizeInfo("none", d.why, reason=d.reason)
        return info

    def admit(self, size: int | None, args: Sequence[Any]) -> SizeInfo:
        """Capture ``size`` when its estimated memory fits the budget, else serve it without graphs."""
        est = self.estimate(size, args)
        budget, whence = capturemem.budget_bytes(self.config.cudagraph_memory_mb)
        if est > budget:
            return self.skip(size, f"not captured: estimated {est / 2**20:.1f} MiB > {budget / 2**20:.1f} MiB "
                                   f"({whence}); runs without CUDA graphs", est, "over_budget")
        return self.try_capture(size, args, est)

    def try_capture(self, size: int | None, args: Sequence[Any], estimate: int = 0) -> SizeInfo:
        """``capture``, and when it fails (out of memory, an op that cannot be captured) the size
        runs without graphs instead of taking the call down."""
        try:
            info = self.capture(size, args)
        except Exception as e:   # noqa: BLE001 — whatever failed, this size must still run
            self.pool = torch.cuda.graph_pool_handle()   # a failed capture leaves its pool unusable
            torch.cuda.empty_cache()
            return self.skip(size, f"capture failed ({type(e).__name__}: {str(e).strip()[:160]}); runs without "
                                   "CUDA graphs", estimate, "capture_failed")
        info = dataclasses.replace(info, estimate_mb=estimate / 2**20)
        self.stats.sizes[size] = info
        return info

    def _capture_size(self, size: int | None, static: list[Any], restore: Callable[[], None]) -> tuple[RuntimePlan, SizeInfo]:
        mode, why = self.mode_for(size)
        if mode == "full":
            try:
                graph, out = _capture(self.fallback, static, self.pool, restore)
                self.stats.captures += 1
                return self._runtime(static, [graph.replay], out, [graph]), SizeInfo("full", why)
            except Exception as e:  # e.g. a split op that syncs with the CPU cannot be captured
                why = f"the whole graph is not capturable ({type(e).__name__}: {str(e)[:160]}); captured piecewise"
                self.stats.notes.append(f"size {size}: {why}")
                log.warning("vexplore: cudagraph: %s", why)
                self.pool = torch.cuda.graph_pool_handle()   # a failed capture leaves its pool unusable
        steps, out, keep, copied = _piecewise(self.parts, static, self.pool, restore)
        self.stats.captures += len(self.parts.compiled)
        return self._runtime(static, steps, out, keep), SizeInfo("piecewise", why, tuple(copied))

    def _runtime(self, static: list[Any], steps: list[Callable[[], Any]], out: Any, keep: list[Any]) -> RuntimePlan:
        ptrs = [a.data_ptr() if isinstance(a, torch.Tensor) else None for a in static]
        return RuntimePlan(static, ptrs, steps, out, _aliases(out, static, self.plan.fixed), keep)

    def __call__(self, *args: Any) -> Any:
        if self.at is None:
            n = size = None
        else:
            i, d = self.at
            n = int(args[i]) if d is None else args[i].shape[d]
            size = pick_size(n, self.sizes, self.pad)
        if (size is None and self.at is not None) or size in self.skipped:
            self.stats.uncaptured_calls += 1
            return self.fallback(*args)
        runtime = self.plans.get(size)
        if runtime is None or not tc.data_ptrs_equal(args, runtime.ptrs, self.plan.fixed):
            runtime = self._recapture(size, args)
            if runtime is None:   # the capture failed: this size runs without graphs from now on
                self.stats.uncaptured_calls += 1
                return self.fallback(*args)
        return self._replay(runtime, args, n, size)

    def _recapture(self, size: int | None, args: Sequence[Any]) -> RuntimePlan | None:
        """Capture ``size`` again at the call's addresses: a fixed input moved, or a change of
        plan dropped every capture."""
        old = self.plans.get(size)
        if old is not None:
            changed = False
            for i in list(self.plan.fixed):
                ptr = args[i].data_ptr()
                if ptr != old.ptrs[i] and self.plan.moved(i, ptr, self.current):
                    changed = True
                    note = (f"input {self.plan.names[i]} moved twice (reassigned between calls): it is "
                            "copied into the graphs' buffer (and back, if written) from now on")
                    self.stats.notes.append(note)
                    log.warning("vexplore: %s", note)
            if changed:   # the plan changed: no capture of any size may replay any more
                self.plans.clear()
        self.stats.recaptures += old is not None   # else a size captured at its first call
        self.admit(size, args)
        return self.plans.get(size)

    def _replay(self, runtime: RuntimePlan, args: Sequence[Any], n: int | None, size: int | None) -> Any:
        plan, static = self.plan, runtime.static
        rows = n if n != size else None          # a padded call uses the first n rows
        if any(args[i] != static[i] for i in plan.scalars) or \
                any(args[i] != static[i] for i, d in plan.dims.items() if d is None and rows is None):
            self.stats.uncaptured_calls += 1     # another dynamic value than the token count changed
            return self.fallback(*args)
        moved: list[int] = []
        for i in plan.copied:
            a, s = args[i], _rows(static[i], plan.dims.get(i), rows)
            if a.data_ptr() != s.data_ptr():
                if a.shape != s.shape:           # a dim other than the token count changed
                    self.stats.uncaptured_calls += 1
                    return self.fallback(*args)
                moved.append(i)
        if rows is not None:
            assert not plan.written, "a graph that writes its inputs is never padded (inputplan.plan_sizes)"
            for i, d in plan.dims.items():
                if d is not None and i in plan.copied:
                    static[i].narrow(d, rows, size - rows).zero_()
            self.stats.padded_calls += 1
        if moved:
            tc.copy_all([_rows(static[i], plan.dims.get(i), rows) for i in moved], [args[i] for i in moved])
        out = runtime.run()
        self.stats.replays += 1
        back = [i for i in moved if i in plan.written]
        if back:
            tc.copy_all([args[i] for i in back], [_rows(static[i], plan.dims.get(i), rows) for i in back])
        return _copy_out(out, runtime.aliases, size, rows)


def _allocated() -> int:
    return torch.cuda.memory_allocated() if torch.cuda.is_available() else 0


def _rows(t: torch.Tensor, dim: int | None, n: int | None) -> torch.Tensor:
    """The first ``n`` rows of ``t`` along its token dim (all of it when not padded)."""
    return t if n is None or dim is None else t.narrow(dim, 0, n)


def _flat(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _aliases(out: Any, static: Sequence[Any], fixed: Sequence[int]) -> tuple[bool, ...]:
    """Per output: whether it is memory of a fixed input (a buffer or cache the graph returns)."""
    storages = {static[i].untyped_storage().data_ptr() for i in fixed}
    return tuple(isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() in storages for t in _flat(out))


def _copy_out(out: Any, aliases: tuple[bool, ...], size: int | None, n: int | None) -> Any:
    """Outputs copied out of the pool (cut to ``n`` rows after a padded replay). An output that
    is a fixed input's memory (the caller's own buffer or cache) is returned as it is, as eager
    returns it: copying it would copy a whole cache per call."""
    def one(t: Any, alias: bool) -> Any:
        if not isinstance(t, torch.Tensor) or alias:
            return t
        if n is not None and t.dim() and t.shape[0] == size:
            t = t.narrow(0, 0, n)
        return t.clone()
    if isinstance(out, (tuple, list)):
        return type(out)(one(t, a) for t, a in zip(out, aliases))
    return one(out, aliases[0])


def size_plan(config: Any, graph: GraphInputs, source: fx.GraphModule | None) -> tuple[InputPlan, SizePlan]:
    """The input plan of ``graph`` and when each of its capture sizes is captured (inputplan.plan_sizes):
    what it writes and how far (writes.token_reach on ``source``, the Dynamo graph), whether the
    written inputs still hold the traced state (writes.written_since), the call in hand's token count.
    Needs no GPU: it reads shapes, fake values and version counters."""
    plan = InputPlan.make(graph)
    sizes = capture_sizes(config.cudagraph_sizes, graph.token is not None)
    reach = token_reach(source, graph.written, plan.tied) if source is not None and graph.written else ()
    held = [i for i in sorted(plan.written) if i not in plan.dims]
    fresh = not written_since(source, graph.real, held)
    return plan, plan_sizes(plan, sizes, plan.count(graph.real), reach, fresh, config.cudagraph_pad)


def apply(config: Any, parts: GraphParts, graph: GraphInputs, rec: EventRecorder, index: int
          ) -> tuple[Callable[..., Any], GraphStats, str | None]:
    """Capture the sizes of ``graph`` its size plan captures now (``config``: the CompileConfig);
    returns (callable, stats, note). One ``cudagraph_capture`` event per size captured or refused
    now says its mode and why, with its time and device memory."""
    plan, sp = size_plan(config, graph, parts.source)
    runtime = GraphCudaGraphs(parts, plan, [d.size for d in sp.decisions], config, sp.pad)
    runtime.stats.plan = {d.size: d for d in sp.decisions}
    for d in sp.decisions:
        if d.when == "first_call":
            continue
        with rec.step("cudagraph_capture", graph=index, size=d.size) as step:
            before = runtime.stats.captures
            info = runtime.admit(d.size, graph.real) if d.when == "now" else runtime.refuse(d)
            step.kw.update(detail=_capture_detail(info), counts={"cudagraph_captures": runtime.stats.captures - before})
    return runtime, runtime.stats, _note(sp, runtime.stats)


def _note(sp: SizePlan, stats: GraphStats) -> str | None:
    """What the report says of a graph's sizes: padding refused, sizes left to their first call
    (by reason), captured piecewise after a full capture failed, run without graphs."""
    notes = [sp.pad_why]
    for reason in ("above_call", "state_moved"):
        later = [d for d in sp.decisions if d.when == "first_call" and d.reason == reason]
        if later:
            shown = [d.size for d in later]
            which = "its one size is captured at its" if shown == [None] else f"sizes {shown} are captured at their"
            notes.append(f"{which} first call, with that call: {later[0].why}")
    fallen = [s for s, i in stats.sizes.items() if i.mode == "piecewise" and "not capturable" in i.why]
    if fallen:
        notes.append(f"sizes {fallen} captured piecewise: {stats.sizes[fallen[0]].why}")
    none = [s for s, i in stats.sizes.items() if i.mode == "none"]
    if none:
        notes.append(f"sizes {none} run without CUDA graphs: {stats.sizes[none[0]].why}")
    return "; ".join(n for n in notes if n) or None


def _capture_detail(info: SizeInfo) -> str:
    if info.mode == "none":
        return info.why
    copied = f"; split ops copied into the next graph's buffer (no out variant): {', '.join(info.copied)}" \
        if info.copied else ""
    return f"{info.mode} ({info.why}); {info.memory_mb:.1f} MiB held (estimated {info.estimate_mb:.1f}){copied}"
