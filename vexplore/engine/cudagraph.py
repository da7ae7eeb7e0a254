"""CUDA graphs over pieces (cudagraph="piecewise") or the whole stitched graph ("full").

A graph is captured once per capture size, largest first, into one memory pool shared by every
capture of the graph. A call decides its size once, replays the captures of its exact token
count, or runs without graphs (counted) when that size was not captured, unless
``cudagraph_pad`` lets it pad up to the next captured size.

Inputs reach the replays as ``inputplan.InputPlan`` says: parameters, buffers and written
caches at their own address (writes land in the caller's tensor; one C++ call per replay checks
the addresses, and a moved input is captured again), everything else through buffers copied
once per call at the graph level (and back, when the graph writes them).

Capture (warm-up, and the replay that fills the captured outputs, included) restores every
caller-visible tensor it writes, whenever it happens: at compile time, for a new graph after
many calls, or when an address moved. Outputs that leave the graph are copied out of the pool
(one copy per output per call), so a later replay never changes a result the caller holds —
except an output that is a fixed input's memory (a cache the model returns), which is returned
as eager returns it.
"""
from __future__ import annotations

import bisect
import copy
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from . import _torch_compat as tc
from .inputplan import GraphInputs, InputPlan
from .stitch import install

log = logging.getLogger(__name__)

DEFAULT_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class GraphStats:
    """Counts over the calls of one compile; the report reads ``captures`` when it is built."""

    captures: int = 0
    replays: int = 0
    uncaptured_calls: int = 0    # sizes (or other input shapes) without a graph: ran without graphs
    padded_calls: int = 0
    address_misses: int = 0      # a piece found an input moved under it: that piece ran without its graph
    recaptures: int = 0          # sizes captured again because an input's address moved
    notes: list[str] = field(default_factory=list)   # why an input is copied rather than used in place


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


def _capture(fn: Callable[..., Any], static: Sequence[Any], pool: Any) -> tuple[Any, Any]:
    """Warm ``fn`` up on a side stream (as CUDA graphs require), then capture it."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn(*static)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        out = fn(*static)
    return graph, out


@dataclass
class _PieceCapture:
    graph: Any
    static: list[Any]
    ptrs: list[int | None]
    tensors: list[int]
    fixed: frozenset[int]       # args at a graph-level address (buffers, parameters): never copied into
    out: Any


@dataclass
class PieceGraphs:
    """One compiled piece's CUDA graphs, by the size the graph-level runner chose (``size[0]``).

    Its arguments are graph-level buffers and parameters (always at the captured address), the
    outputs of the piece before it (the same pool memory every replay) or a split op's fresh
    output, which is copied into the captured buffer — and back, if the piece writes it.
    """

    fn: Callable[..., Any]
    written: tuple[int, ...]
    stats: GraphStats
    size: list[int | None]                       # shared with the graph: the size of the call in progress
    graphs: dict[int | None, _PieceCapture] = field(default_factory=dict)

    def capture(self, args: Sequence[Any], pool: Any, fixed_ids: set[int]) -> Any:
        static = list(args)
        tensors = [i for i, a in enumerate(static) if isinstance(a, torch.Tensor)]
        graph, out = _capture(self.fn, static, pool)
        graph.replay()   # fill the outputs, so the next piece warms up on real values
        ptrs = [a.data_ptr() if isinstance(a, torch.Tensor) else None for a in static]
        fixed = frozenset(i for i in tensors if id(static[i]) in fixed_ids)
        self.graphs[self.size[0]] = _PieceCapture(graph, static, ptrs, tensors, fixed, out)
        self.stats.captures += 1
        return out

    def __call__(self, *args: Any) -> Any:
        cap = self.graphs[self.size[0]]
        if tc.data_ptrs_equal(args, cap.ptrs, cap.tensors):
            cap.graph.replay()
            return cap.out
        moved = [i for i in cap.tensors if args[i].data_ptr() != cap.ptrs[i]]
        if any(i in cap.fixed or args[i].shape != cap.static[i].shape for i in moved):
            self.stats.address_misses += 1   # never copy over a caller's tensor: run this piece plainly
            return self.fn(*args)
        tc.copy_all([cap.static[i] for i in moved], [args[i] for i in moved])
        cap.graph.replay()
        back = [i for i in moved if i in self.written]
        if back:
            tc.copy_all([args[i] for i in back], [cap.static[i] for i in back])
        return cap.out


class _CaptureRun(torch.fx.Interpreter):
    """Runs the stitched parent once, capturing each wrapped piece on the inputs it receives."""

    def __init__(self, gm: torch.fx.GraphModule, wrapped: dict[str, PieceGraphs], pool: Any, fixed_ids: set[int]) -> None:
        super().__init__(gm)
        self.wrapped, self.pool, self.fixed_ids = wrapped, pool, fixed_ids

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        w = self.wrapped.get(str(target))
        if w is None:
            return super().call_module(target, args, kwargs)
        return w.capture(args, self.pool, self.fixed_ids)


Capturer = Callable[[int | None, list[Any]], tuple[Callable[[], Any], Any]]   # (size, static inputs) -> (replay, outputs)


@dataclass
class _Capture:
    static: list[Any]
    ptrs: list[int | None]
    run: Callable[[], Any]
    aliases: tuple[bool, ...]   # per output: memory of a fixed input (returned, not copied)


class GraphCudaGraphs:
    """The callable a graph runs under CUDA graphs: picks the size, keeps inputs where the
    captures expect them, replays, copies written inputs back and outputs out."""

    def __init__(self, capture_fn: Capturer, fallback: Callable[..., Any], plan: InputPlan,
                 sizes: list[int | None], pad: bool, stats: GraphStats) -> None:
        self.capture_fn, self.fallback, self.plan, self.pad, self.stats = capture_fn, fallback, plan, pad, stats
        self.sizes = sorted(s for s in sizes if s is not None)
        self.at = plan.size_at()
        self.captures: dict[int | None, _Capture] = {}
        self.current: dict[int, int] = {}      # fixed input -> the address it was last seen at

    def capture(self, size: int | None, args: Sequence[Any], fill: bool) -> None:
        """Capture ``size`` on ``args`` (fixed inputs used in place; the others copied into new
        buffers, filled from ``args`` when ``fill``), restoring every caller tensor it writes."""
        plan = self.plan
        static = list(args)
        for i in plan.copied:
            a = args[i]
            shape = plan.at_size(i, size) if i in plan.dims else list(a.shape)
            static[i] = a.clone() if list(a.shape) == shape and (fill or i not in plan.dims) else \
                torch.zeros(shape, dtype=a.dtype, device=a.device)
        for i, d in plan.dims.items():
            if d is None:
                static[i] = plan.at_size(i, size)
        saved = [(args[i], args[i].clone()) for i in plan.fixed if i in plan.written]
        try:
            with torch.no_grad():   # also when recompile() is called with grad enabled
                run, out = self.capture_fn(size, static)
        finally:
            for t, kept in saved:
                t.copy_(kept)
        ptrs = [a.data_ptr() if isinstance(a, torch.Tensor) else None for a in static]
        self.captures[size] = _Capture(static, ptrs, run, _aliases(out, static, plan.fixed))
        for i in plan.fixed:
            self.current.setdefault(i, static[i].data_ptr())

    def __call__(self, *args: Any) -> Any:
        if self.at is None:
            n = size = None
        else:
            i, d = self.at
            n = int(args[i]) if d is None else args[i].shape[d]
            size = pick_size(n, self.sizes, self.pad)
            if size is None:
                self.stats.uncaptured_calls += 1
                return self.fallback(*args)
        cap = self.captures.get(size)
        if cap is None or not tc.data_ptrs_equal(args, cap.ptrs, self.plan.fixed):
            cap = self._recapture(size, args)
        return self._replay(cap, args, n, size)

    def _recapture(self, size: int | None, args: Sequence[Any]) -> _Capture:
        """Capture ``size`` again at the call's addresses: a fixed input moved, or a change of
        plan dropped every capture."""
        old = self.captures.get(size)
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
                self.captures.clear()
        self.stats.recaptures += 1
        self.capture(size, args, fill=True)
        return self.captures[size]

    def _replay(self, cap: _Capture, args: Sequence[Any], n: int | None, size: int | None) -> Any:
        plan, static = self.plan, cap.static
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
            for i, d in plan.dims.items():
                if d is not None and i in plan.copied:
                    static[i].narrow(d, rows, size - rows).zero_()
            self.stats.padded_calls += 1
        if moved:
            tc.copy_all([_rows(static[i], plan.dims.get(i), rows) for i in moved], [args[i] for i in moved])
        out = cap.run()
        self.stats.replays += 1
        back = [i for i in moved if i in plan.written]
        if back:
            tc.copy_all([args[i] for i in back], [_rows(static[i], plan.dims.get(i), rows) for i in back])
        return _copy_out(out, cap.aliases, size, rows)


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


def apply(cfg: Any, parent: torch.fx.GraphModule, runners: dict[str, Callable[..., Any]],
          graph: GraphInputs, piece_writes: Mapping[str, tuple[int, ...]],
          ) -> tuple[Callable[..., Any], GraphStats, str | None]:
    """Install ``runners`` into ``parent`` under CUDA graphs (``cfg``: the CompileConfig);
    returns (callable, stats, note).

    ``full`` captures the whole stitched callable; when that cannot be captured, the note says
    why and piecewise capture is used instead.
    """
    plan = InputPlan.make(graph)
    sizes = capture_sizes(cfg.cudagraph_sizes, graph.token is not None)
    pad, note = _padding(cfg.cudagraph_pad, plan)
    # calls no capture serves run the pieces plainly, through a parent of their own
    plain = install(copy.copy(parent), runners).forward
    if cfg.cudagraph == "full":
        stats = GraphStats()
        whole = GraphCudaGraphs(_whole(plain, torch.cuda.graph_pool_handle(), stats), plain, plan, sizes, pad, stats)
        try:
            for s in sizes:
                whole.capture(s, graph.real, fill=False)
            return whole, stats, note
        except Exception as e:  # e.g. a split op that syncs with the CPU cannot be captured
            why = f"cudagraph=full: the whole graph is not capturable ({type(e).__name__}: {str(e)[:160]}); captured piecewise"
            log.warning("vexplore: %s", why)
            note = "; ".join(filter(None, (note, why)))
    stats = GraphStats()
    size: list[int | None] = [None]
    wrapped = {name: PieceGraphs(fn, piece_writes.get(name, ()), stats, size) for name, fn in runners.items()}
    pieces = GraphCudaGraphs(_pieces(parent, wrapped, torch.cuda.graph_pool_handle(), plan, size), plain, plan,
                             sizes, pad, stats)
    for s in sizes:
        pieces.capture(s, graph.real, fill=False)
    return pieces, stats, note


def _padding(pad: bool, plan: InputPlan) -> tuple[bool, str | None]:
    if not pad:
        return False, None
    if plan.written:   # padded rows would write too (into a cache, at whatever index the pad holds)
        return False, (f"cudagraph_pad is off for this graph: it writes {', '.join(plan.names[i] for i in sorted(plan.written))} "
                       "in place, and padding rows would write as well; sizes not captured run without graphs")
    if not plan.paddable():
        return False, "cudagraph_pad is off for this graph: an input's token dim is derived (e.g. 2*tokens), so rows cannot be padded"
    return True, None


def _whole(fn: Callable[..., Any], pool: Any, stats: GraphStats) -> Capturer:
    def capture(size: int | None, static: list[Any]) -> tuple[Callable[[], Any], Any]:
        graph, out = _capture(fn, static, pool)
        stats.captures += 1

        def run() -> Any:
            graph.replay()
            return out
        return run, out
    return capture


def _pieces(parent: torch.fx.GraphModule, wrapped: dict[str, PieceGraphs], pool: Any, plan: InputPlan,
            current: list[int | None]) -> Capturer:
    install(parent, wrapped)
    forward = parent.forward

    def capture(size: int | None, static: list[Any]) -> tuple[Callable[[], Any], Any]:
        fixed_ids = {id(static[i]) for i in plan.fixed + plan.copied}
        current[0] = size
        out = _CaptureRun(parent, wrapped, pool, fixed_ids).run(*static)

        def run() -> Any:
            current[0] = size       # the pieces replay this size's captures
            return forward(*static)
        return run, out
    return capture
