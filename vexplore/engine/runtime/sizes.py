"""Size policy for CUDA graphs: which capture sizes a graph has, when each is captured, whether
each is captured full or piecewise, and which size a call replays.

A call decides its size once (``pick_size``): its own token count when that size is captured,
the next captured size when ``cudagraph_pad`` lets it pad up, else none (it runs without graphs,
counted). ``cudagraph="full"`` captures every size full, ``"piecewise"`` every size piecewise,
and ``"full_and_piecewise"`` full up to ``cudagraph_full_max`` tokens and piecewise above. Its
default (512) captures every default size whole: the pieces of a dynamic compile with eager split
ops between them took 1.36x a static reduce-overhead graph at 256 tokens on an H100, and a size
whose whole capture fails is captured piecewise anyway. A lower limit keeps attention out of large
graphs, as vLLM does for its prefills, whose attention metadata changes per call.

When each size is captured is the size plan's (``size_plan``, inputplan.plan_sizes), decided
without a GPU: a graph that writes a cache in place captures at compile time only the sizes whose
capture writes within what the call in hand writes; the others at their first call, with that
call, and a size longer than the cache never (putting a cache back cannot undo a write past its
end: on the GPU a device assert that ends the CUDA context). A recompile's inputs hold a later
state than the call that traced the graph, so there every size of such a graph waits for its
first call. ``cudagraph_capture="first_call"`` makes every size wait for its first call (the
compiling call then captures only its own size, where "ahead" captures the ten default sizes: 0.7 s
of an 8-layer model's warm first call on an H100, benchmarks/README.md).
"""
from __future__ import annotations

import bisect
import dataclasses
from typing import Any, Sequence

import torch.fx as fx

from .inputplan import GraphInputs, InputPlan, SizeDecision, SizePlan, plan_sizes
from ..capture.writes import token_reach, written_since

DEFAULT_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


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


FIRST_CALL_WHY = ('cudagraph_capture="first_call": captured at its first call, with that call, as torch\'s '
                  'reduce-overhead captures, not ahead in the compiling call')


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
    sp = plan_sizes(plan, sizes, plan.count(graph.real), reach, fresh, config.cudagraph_pad)
    if getattr(config, "cudagraph_capture", "ahead") == "first_call":   # what "now" would capture waits for its call
        sp = dataclasses.replace(sp, decisions=tuple(
            SizeDecision(d.size, "first_call", "asked_first_call", FIRST_CALL_WHY) if d.when == "now" else d
            for d in sp.decisions))
    return plan, sp


class SizePolicy:
    """The sizes one graph serves with CUDA graphs (``config``: the CompileConfig; ``sizes``: the
    size plan's; ``pad``: whether calls pad up to a captured size), and each size's mode."""

    def __init__(self, config: Any, plan: InputPlan, sizes: Sequence[int | None], pad: bool) -> None:
        self.config, self.pad = config, pad
        self.sizes = sorted(s for s in sizes if s is not None)   # ascending; a dropped size leaves
        self.at = plan.size_at()                # (input, dim) holding the token count; None: static graph
        self.skipped: set[int | None] = set()   # sizes not captured (too big, or capture failed): run without

    def mode_for(self, size: int | None) -> tuple[str, str]:
        """("full" | "piecewise", why) for a capture of ``size``."""
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

    def tokens(self, args: Sequence[Any]) -> int | None:
        """The call's token count (None for a graph without a token dim)."""
        if self.at is None:
            return None
        i, d = self.at
        return int(args[i]) if d is None else args[i].shape[d]

    def size_of(self, args: Sequence[Any]) -> tuple[int | None, int | None] | None:
        """(the call's token count, the capture size it replays), or None when the call runs
        without graphs (no captured size fits it, or its size was dropped)."""
        n = self.tokens(args)
        size = None if n is None else pick_size(n, self.sizes, self.pad)
        if (size is None and self.at is not None) or size in self.skipped:
            return None
        return n, size

    def drop(self, size: int | None) -> None:
        """Serve ``size`` without CUDA graphs from now on (a call of it is not padded up either)."""
        self.skipped.add(size)
        self.sizes = [s for s in self.sizes if s != size]
