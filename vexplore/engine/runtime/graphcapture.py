"""Capture: record one size of one graph as CUDA graphs, and the RuntimePlan that replays it.

- **full**: one graph of the whole graph, split ops captured too: the compiled pieces stitched, or with
  ``cudagraph_whole`` the graph compiled whole (``GraphParts.whole``), as torch.compile's own graph is;
- **piecewise**: a graph per compiled piece and, between them, each split op as an eager step,
  writing straight into the next replay's input buffer when the op has an out variant
  (``outvariants.out_variant``), else into a fresh tensor copied there (named in the SizeInfo).

A size whose full capture fails is captured piecewise, saying why (``SizeInfo.reason``
"full_failed"). Per size: a warm-up on a side stream, a second with device waits made errors (an
op like ``.item()`` cannot be captured, and a capture it breaks poisons the process), then the
captures, and the replays that fill the outputs. Every caller-visible tensor a run writes is put
back after each run, whenever the capture happens: at compile time, for a new graph after many
calls, or when an address moved. Whether a size is captured at all is admission.py's call.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
import torch.fx as fx

from .. import _torch_compat as tc
from . import capturemem
from .inputplan import InputPlan
from .stats import GraphStats, SizeInfo
from .stitch import install

log = logging.getLogger(__name__)


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


_SIDE_STREAMS: dict[int, Any] = {}


def _side_stream() -> Any:
    """One side stream per device for every warm-up. ``torch.cuda.Stream()`` hands out the next of a
    pool of 32 streams, and torch keeps a cuBLAS workspace per (handle, stream) until the process
    ends (32 MiB each on an H100 by default): a stream per warm-up, two warm-ups per size, is the
    likely source of the ~64 MiB each captured size held on the H100 (benchmarks/README.md,
    buffers; not yet re-measured with one stream)."""
    device = torch.cuda.current_device()
    if device not in _SIDE_STREAMS:
        _SIDE_STREAMS[device] = torch.cuda.Stream()
    return _SIDE_STREAMS[device]


def _warm_up(fn: Callable[..., Any], static: Sequence[Any]) -> None:
    stream = _side_stream()
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
                # torch's sync-debug error has no type or code of its own: its message is all there is
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
    whole: Callable[..., Any] | None = None            # the graph compiled whole (cudagraph_whole): full captures replay it

    def plain(self) -> Callable[..., Any]:
        """The whole graph without CUDA graphs, through a parent of its own."""
        return install(copy.copy(self.parent), {**self.compiled, **self.split_ops}).forward

    def checked(self) -> Callable[..., Any]:
        """``plain`` with each compiled piece run under the device-wait check (split ops run freely)."""
        compiled = {k: _sync_checked(f"piece {k}", fn) for k, fn in self.compiled.items()}
        return install(copy.copy(self.parent), {**compiled, **self.split_ops}).forward


@dataclass(frozen=True)
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


def _piecewise(parts: GraphParts, static: Sequence[Any], pool: Any, restore: Callable[[], None], warm: bool = True
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
    for run in (parts.plain(), parts.checked()) if warm else ():
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


class Capturer:
    """Captures sizes of one graph into one memory pool (``stats``: the graph's, counting the
    graphs captured). ``fallback`` is the whole graph without CUDA graphs: what a full capture
    records, and what a call no graph serves runs."""

    def __init__(self, parts: GraphParts, plan: InputPlan, stats: GraphStats) -> None:
        self.parts, self.plan, self.stats = parts, plan, stats
        self.whole = parts.whole   # what full captures record; set later by a whole graph built off the call path
        self.fallback = parts.plain()
        self.pool = torch.cuda.graph_pool_handle()

    def new_pool(self) -> None:
        """Capture into a fresh pool from now on: a failed capture leaves its pool unusable."""
        self.pool = torch.cuda.graph_pool_handle()

    def capture(self, size: int | None, args: Sequence[Any], mode: str, why: str, warm: bool = True
                ) -> tuple[RuntimePlan, SizeInfo]:
        """Capture ``size`` in ``mode`` ("full" | "piecewise", ``why`` so) on ``args`` (fixed inputs
        used in place; the others copied into new buffers, holding ``args``' leading rows where they
        fit), restoring every caller tensor it writes. Raises when the capture fails. ``warm`` False:
        no warm-up runs (the size was captured before, so lazy initialisation is done and the graph
        is known to wait for no device value; a capture again at an input's new address)."""
        static = self.plan.static_inputs(size, args)
        saved = [(args[i], args[i].clone()) for i in self.plan.fixed if i in self.plan.written]
        # a copied input the graph writes (a cache copied in, its length counter) is the capture's own
        # buffer: put back after every run too, or the warm-ups would each advance a counter and write
        # further on, past the end of the cache
        saved += [(static[i], static[i].clone()) for i in self.plan.copied
                  if i in self.plan.written and isinstance(static[i], torch.Tensor)]

        def restore() -> None:
            for t, kept in saved:
                t.copy_(kept)
        t0, mem0 = time.perf_counter(), _allocated()
        try:
            with torch.no_grad(), tc.captures_without_gc():   # no_grad: also when recompile() runs with grad on
                runtime, info = self._capture_size(size, static, restore, mode, why, warm)
        finally:
            restore()
        info = dataclasses.replace(info, capture_s=time.perf_counter() - t0, memory_mb=(_allocated() - mem0) / 2**20)
        return runtime, info

    def _capture_size(self, size: int | None, static: list[Any], restore: Callable[[], None], mode: str,
                      why: str, warm: bool = True) -> tuple[RuntimePlan, SizeInfo]:
        reason = ""
        if mode == "full":
            try:
                fn = self.whole or self.fallback
                graph, out = _capture(fn, static, self.pool, restore, warm)
                self.stats.captures += 1
                why += "; the graph compiled whole" if self.whole is not None else ""
                return self._runtime(static, [graph.replay], out, [graph]), SizeInfo("full", why)
            except Exception as e:  # e.g. a split op that syncs with the CPU cannot be captured
                why = f"the whole graph is not capturable ({type(e).__name__}: {str(e)[:160]}); captured piecewise"
                reason = "full_failed"
                self.stats.notes.append(f"size {size}: {why}")
                log.warning("vexplore: cudagraph: %s", why)
                self.new_pool()
        steps, out, keep, copied = _piecewise(self.parts, static, self.pool, restore, warm or reason == "full_failed")
        self.stats.captures += len(self.parts.compiled)
        return self._runtime(static, steps, out, keep), SizeInfo("piecewise", why, tuple(copied), reason=reason)

    def _runtime(self, static: list[Any], steps: list[Callable[[], Any]], out: Any, keep: list[Any]) -> RuntimePlan:
        ptrs = [a.data_ptr() if isinstance(a, torch.Tensor) else None for a in static]
        return RuntimePlan(static, ptrs, steps, out, _aliases(out, static, self.plan.fixed), keep)


def _allocated() -> int:
    return torch.cuda.memory_allocated() if torch.cuda.is_available() else 0


def _flat(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _aliases(out: Any, static: Sequence[Any], fixed: Sequence[int]) -> tuple[bool, ...]:
    """Per output: whether it is memory of a fixed input (a buffer or cache the graph returns)."""
    storages = {static[i].untyped_storage().data_ptr() for i in fixed}
    return tuple(isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() in storages for t in _flat(out))
