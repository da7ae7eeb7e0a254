"""CUDA graphs over pieces (cudagraph="piecewise") or the whole stitched graph ("full").

Each wrapped callable is captured once per capture size, largest first, into one memory pool
shared by every capture of the compile. A call replays the graph of its exact token count
after copying its token-dependent inputs into the captured buffers; a size that was not
captured runs without graphs (counted), unless ``cudagraph_pad`` lets it pad up to the next
captured size. Inputs that are not token-dependent (weights) are captured by address: a call
that passes another tensor there runs without graphs rather than replay stale memory.
"""
from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from .stitch import install, token_dims

log = logging.getLogger(__name__)

DEFAULT_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class GraphStats:
    """Counts over the calls of one compile; the report reads ``captures`` when it is built."""

    captures: int = 0
    replays: int = 0
    uncaptured_calls: int = 0    # sizes without a graph: ran the compiled pieces directly
    padded_calls: int = 0
    address_misses: int = 0      # a weight-like input moved: ran without graphs


def pick_size(n: int, captured: Sequence[int], pad: bool) -> int | None:
    """The capture size a call of ``n`` tokens replays: ``n`` itself, the next larger one when
    padding is allowed, else None (run without graphs). ``captured`` is sorted ascending."""
    i = bisect.bisect_left(captured, n)
    if i < len(captured) and captured[i] == n:
        return n
    if pad and i < len(captured):
        return captured[i]
    return None


@dataclass
class _Captured:
    graph: Any
    static: list[Any]
    out: Any


@dataclass
class CudaGraphCallable:
    """Replays captured CUDA graphs of ``fn`` by token count (see the module docstring)."""

    fn: Callable[..., Any]
    dyn: list[tuple[int, int | None]]          # token-dependent inputs
    stats: GraphStats
    pad: bool = False
    graphs: dict[int | None, _Captured] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)
    weights: set[int] = field(default_factory=set)      # Parameter args: captured by address
    tensors: list[int] = field(default_factory=list)    # every tensor arg

    def size_of(self, args: Sequence[Any]) -> int | None:
        if not self.dyn:
            return None
        i, d = self.dyn[0]
        return int(args[i]) if d is None else args[i].shape[d]

    def capture(self, args: Sequence[Any], pool: Any) -> None:
        """Capture ``fn`` on ``args`` (warm-up on a side stream first, as CUDA graphs require).

        Parameters are captured by address (``weights``); every other tensor argument is the
        graph's static input buffer, refilled on replay when a call passes another tensor.
        """
        size = self.size_of(args)
        static = list(args)
        self.weights = {i for i, a in enumerate(static) if isinstance(a, torch.nn.Parameter)}
        self.tensors = [i for i, a in enumerate(static) if isinstance(a, torch.Tensor)]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self.fn(*static)
        torch.cuda.current_stream().wait_stream(stream)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, pool=pool):
            out = self.fn(*static)
        self.graphs[size] = _Captured(g, static, out)
        if size is not None:
            bisect.insort(self.sizes, size)
        self.stats.captures += 1

    def __call__(self, *args: Any) -> Any:
        n = self.size_of(args)
        size = n if not self.dyn else pick_size(n, self.sizes, self.pad)
        cap = self.graphs.get(size)
        if cap is None:
            self.stats.uncaptured_calls += 1
            return self.fn(*args)
        if size != n:
            return self._padded(cap, args, n)
        static = cap.static
        for i in self.tensors:
            a, s = args[i], static[i]
            if a.data_ptr() != s.data_ptr():   # the next piece's inputs usually are our outputs
                if i in self.weights:          # a weight moved: replaying would read stale memory
                    self.stats.address_misses += 1
                    return self.fn(*args)
                s.copy_(a)
        cap.graph.replay()
        self.stats.replays += 1
        return cap.out

    def _padded(self, cap: _Captured, args: Sequence[Any], n: int) -> Any:
        dims = dict(self.dyn)
        for i in self.tensors:
            if i in self.weights:
                if args[i].data_ptr() != cap.static[i].data_ptr():
                    self.stats.address_misses += 1
                    return self.fn(*args)
            elif dims.get(i) is not None:
                cap.static[i].narrow(dims[i], 0, n).copy_(args[i])
            elif args[i].data_ptr() != cap.static[i].data_ptr():
                cap.static[i].copy_(args[i])
        cap.graph.replay()
        self.stats.replays += 1
        self.stats.padded_calls += 1
        size = self.size_of(cap.static)

        def cut(t: Any) -> Any:
            if isinstance(t, torch.Tensor) and t.dim() and t.shape[0] == size:
                return t.narrow(0, 0, n)
            return t
        return tuple(cut(t) for t in cap.out) if isinstance(cap.out, (tuple, list)) else cut(cap.out)


def sized_inputs(real: Sequence[Any], fake: Sequence[Any], token: Any, size: int | None) -> list[Any]:
    """Graph inputs for a capture at ``size``: the real Parameters (captured by address), fresh
    zero tensors where the token dim is, and copies of every other tensor (never the caller's
    own tensors, which a replay refills)."""
    dims = dict(token_dims(fake, token)) if size is not None else {}
    out: list[Any] = []
    for i, (r, f) in enumerate(zip(real, fake)):
        if isinstance(r, torch.nn.Parameter) or not isinstance(r, torch.Tensor) and i not in dims:
            out.append(r)
        elif i not in dims:
            out.append(r.clone())
        elif dims[i] is None:
            out.append(size)
        else:
            shape = list(r.shape)
            shape[dims[i]] = size
            out.append(torch.zeros(shape, dtype=r.dtype, device=r.device))
    return out


def clone_outputs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Copy what leaves the graph out of the CUDA-graph pool, so a later replay never changes a
    result the caller holds."""
    def run(*args: Any) -> Any:
        out = fn(*args)
        if isinstance(out, (tuple, list)):
            return type(out)(t.clone() if isinstance(t, torch.Tensor) else t for t in out)
        return out.clone() if isinstance(out, torch.Tensor) else out
    return run


class _CaptureRun(torch.fx.Interpreter):
    """Runs the stitched parent once, capturing each wrapped piece on the inputs it receives."""

    def __init__(self, gm: torch.fx.GraphModule, wrapped: dict[str, CudaGraphCallable], pool: Any) -> None:
        super().__init__(gm)
        self.wrapped, self.pool = wrapped, pool

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        w = self.wrapped.get(str(target))
        if w is None:
            return super().call_module(target, args, kwargs)
        w.capture(args, self.pool)
        return w.graphs[w.size_of(args)].out


def capture_sizes(requested: Sequence[int] | None, dynamic: bool) -> list[int | None]:
    """Largest first. A dynamic graph never sees 1 token: Dynamo specializes size 1 into a graph
    of its own (its 0/1 specialization), so capturing 1 there would be wasted."""
    if not dynamic:
        return [None]
    sizes = sorted(set(requested or DEFAULT_SIZES), reverse=True)
    return [s for s in sizes if s >= 2]


def apply(mode: str, parent: torch.fx.GraphModule, runners: dict[str, Callable[..., Any]],
          piece_inputs: dict[str, tuple], real: Sequence[Any], fake: Sequence[Any], token: Any,
          requested: Sequence[int] | None, pad: bool, stats: GraphStats) -> tuple[Callable[..., Any], str | None]:
    """Install ``runners`` into ``parent`` under CUDA graphs; returns (callable, note).

    ``full`` captures the whole stitched callable; when that cannot be captured, the note says
    why and piecewise capture is used instead.
    """
    pool = torch.cuda.graph_pool_handle()
    sizes = capture_sizes(requested, token is not None)
    note = None
    if mode == "full":
        whole = CudaGraphCallable(install(parent, runners).forward, token_dims(fake, token), stats, pad)
        try:
            for s in sizes:
                whole.capture(sized_inputs(real, fake, token, s), pool)
            return clone_outputs(whole), None
        except Exception as e:  # e.g. a split op that syncs with the CPU cannot be captured
            note = f"cudagraph=full: the whole graph is not capturable ({type(e).__name__}: {str(e)[:160]}); captured piecewise"
            log.warning("vexplore: %s", note)
            stats.captures = 0
            pool = torch.cuda.graph_pool_handle()
    wrapped = {name: CudaGraphCallable(fn, token_dims(piece_inputs[name], token), stats, pad)
               for name, fn in runners.items()}
    install(parent, wrapped)
    for s in sizes:
        with torch.no_grad():
            _CaptureRun(parent, wrapped, pool).run(*sized_inputs(real, fake, token, s))
    return clone_outputs(parent.forward), note
