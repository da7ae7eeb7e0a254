"""Where to cut a graph besides its split ops: ``CompileConfig.split_policy``.

    "ops"      cut only where a split op begins or ends (the pieces between run compiled)
    "repeats"  also cut at the boundaries of repeated blocks (repeats.py), so identical blocks
               become identical pieces and compile once
    "memory"   also cut wherever a stretch would pass ``max_piece_nodes`` / ``max_compile_mb``
               (costmodel.py), choosing, among the fewest pieces that keep each within the bound,
               the cuts that pass the fewest bytes (then the fewest tensors) from piece to piece

Split ops cut in every policy; "repeats" with a bound set also bounds the stretches between its
cuts. The plan is data: one ``Cut`` per place a piece begins, saying which policy chose it and
why, for split.py to cut at and for the report to show.
"""
from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

import torch.fx as fx

from ...config import DEFAULT_MAX_COMPILE_MB, CompileConfig
from ...monitor.report import Cut
from .costmodel import Crossing, crossings, node_units, units_mb
from ..ops import op_name
from .repeats import Block, Repeats, find_repeats, is_getitem

__all__ = ["Bounds", "Cut", "plan_cuts"]


@dataclass(frozen=True)
class Bounds:
    """How big one piece may be: nodes and estimated compile memory (None: unbounded)."""

    nodes: int | None = None
    mb: float | None = None

    @classmethod
    def of(cls, config: CompileConfig) -> "Bounds | None":
        """The config's bounds: "memory" always has one (``DEFAULT_MAX_COMPILE_MB`` when none is
        set), "repeats" only when one is set, "ops" none."""
        if config.split_policy == "ops":
            return None
        if config.max_piece_nodes is None and config.max_compile_mb is None:
            return cls(None, DEFAULT_MAX_COMPILE_MB) if config.split_policy == "memory" else None
        return cls(config.max_piece_nodes, config.max_compile_mb)

    def fits(self, nodes: int, units: float) -> bool:
        return (self.nodes is None or nodes <= self.nodes) and (self.mb is None or units_mb(units) <= self.mb)

    def text(self) -> str:
        parts = ([f"max_piece_nodes={self.nodes}"] if self.nodes is not None else []) + \
                ([f"max_compile_mb={self.mb:g}"] if self.mb is not None else [])
        return " and ".join(parts)


@dataclass(frozen=True)
class _View:
    """The planner's view of a graph: compute nodes in order, which are split ops, what crosses
    a cut after each, and running sums of their compile units."""

    nodes: tuple[fx.Node, ...]
    split: tuple[bool, ...]
    cross: tuple[Crossing, ...]
    units: tuple[float, ...]        # units[i] = units of nodes[:i]

    @classmethod
    def of(cls, gm: fx.GraphModule, is_split_point: Callable[[fx.Node], bool]) -> "_View":
        every = list(gm.graph.nodes)
        where = {n: i for i, n in enumerate(every)}
        nodes = tuple(n for n in every if n.op not in ("placeholder", "output"))
        kind: dict[fx.Node, bool] = {}
        for n in nodes:   # a getitem goes with its producer, as split.py places it
            kind[n] = kind.get(n.args[0], False) if is_getitem(n) else (n.op != "get_attr" and is_split_point(n))
        every_cross = crossings(every)
        return cls(nodes, tuple(kind[n] for n in nodes), tuple(every_cross[where[n]] for n in nodes),
                   tuple(itertools.accumulate((node_units(n) for n in nodes), initial=0.0)))

    def cuttable(self, p: int) -> bool:
        """Whether a policy may cut after ``nodes[p]``: inside a compiled stretch, not before a getitem,
        and only where every value crossing is a tensor (a piece cannot return a torch.Size or a dtype)."""
        return p + 1 < len(self.nodes) and not self.split[p] and not self.split[p + 1] \
            and not is_getitem(self.nodes[p + 1]) and self.cross[p].opaque == 0

    def cut(self, p: int, policy: str, reason: str) -> Cut:
        c = self.cross[p]
        return Cut(policy, reason, self.nodes[p].name, c.tensors, c.bytes)


def plan_cuts(gm: fx.GraphModule, config: CompileConfig, is_split_point: Callable[[fx.Node], bool]) -> tuple[Cut, ...]:
    """Every place a piece of ``gm`` begins (after its first), in graph order, each with the policy
    that chose it and why (see the module docstring)."""
    view = _View.of(gm, is_split_point)
    cuts = _ops_cuts(view)
    if config.split_policy == "repeats":
        cuts.update(_repeat_cuts(view, set(cuts)))
    bounds = Bounds.of(config)
    if bounds is not None:
        cuts.update(_memory_cuts(view, bounds, set(cuts)))
    return tuple(cuts[p] for p in sorted(cuts))


def _ops_cuts(view: _View) -> dict[int, Cut]:
    """Where a split op begins or ends, as split.py cuts there anyway: recorded with its reason."""
    out: dict[int, Cut] = {}
    prev = None
    for i, n in enumerate(view.nodes):
        if is_getitem(n):
            continue
        if prev is not None and view.split[i] != view.split[prev]:
            why = (f"ops: split op {op_name(n)} (in splitting_ops) runs eagerly" if view.split[i]
                   else f"ops: after split op {op_name(view.nodes[prev])}")
            out[i - 1] = view.cut(i - 1, "ops", why)
        prev = i
    return out


def _repeat_cuts(view: _View, taken: set[int]) -> dict[int, Cut]:
    """A cut before every block of each repeated container, and after its last block."""
    def cost(i: int) -> int:
        return view.cross[i - 1].bytes if 0 < i <= len(view.nodes) else 0

    out: dict[int, Cut] = {}
    for rep in find_repeats(view.nodes, cost):
        for b in rep.blocks:
            _add(out, view, taken, b.start - 1, f"repeats: block {b.name} begins ({_count(rep, b)})")
        last = rep.blocks[-1]
        _add(out, view, taken, last.end - 1, f"repeats: the blocks of {rep.container} end after {last.name} "
                                              f"({_count(rep, last)})")
    return out


def _count(rep: Repeats, block: Block) -> str:
    where = f"in {rep.container}" if rep.source == "module" else "found by node sequence; no module blocks repeat"
    return f"{rep.identical(block)} identical blocks of {block.nodes} nodes {where}"


def _add(out: dict[int, Cut], view: _View, taken: set[int], p: int, reason: str) -> None:
    if p >= 0 and p not in taken and p not in out and view.cuttable(p):
        out[p] = view.cut(p, "repeats", reason)


def _stretches(view: _View, taken: set[int]) -> list[tuple[int, int]]:
    """Compiled stretches ``[a, b]`` (inclusive) between split ops and the cuts made so far."""
    out, a = [], None
    for i in range(len(view.nodes)):
        if view.split[i]:
            a = None
            continue
        a = i if a is None else a
        if i + 1 == len(view.nodes) or view.split[i + 1] or i in taken:
            out.append((a, i))
            a = None
    return out


def _memory_cuts(view: _View, bounds: Bounds, taken: set[int]) -> dict[int, Cut]:
    """Within each stretch over ``bounds``: the fewest pieces within it, cut where least crosses."""
    out: dict[int, Cut] = {}
    for a, b in _stretches(view, taken):
        if bounds.fits(b - a + 1, view.units[b + 1] - view.units[a]):
            continue
        ends = _best_ends(view, bounds, a, b)
        starts = [a] + [e + 1 for e in ends]
        for s, e in zip(starts, ends):
            n, mb = e - s + 1, units_mb(view.units[e + 1] - view.units[s])
            out[e] = view.cut(e, "memory", f"memory: {n} nodes (~{mb:.1f} MB to compile) before it, of a "
                                           f"{b - a + 1}-node stretch over {bounds.text()}; {view.cross[e].text()}, "
                                           "the least of the cuts that keep every piece within the bound")
    return out


def _best_ends(view: _View, bounds: Bounds, a: int, b: int) -> list[int]:
    """The cut positions in ``[a, b)`` that split ``[a, b]`` into the fewest pieces within ``bounds``,
    and of those the ones passing the fewest bytes, then tensors. A stretch no cut can shorten
    (one op and its getitems) stays whole, over the bound.

    best[j] = cost of cutting after cands[j] + the least best[i] over the starts i whose piece
    (cands[i], cands[j]] fits; those starts are a window that only moves right as j grows, so a
    deque of increasing scores gives each minimum at once (linear in the stretch)."""
    cands = [a - 1] + [p for p in range(a, b) if view.cuttable(p)] + [b]
    best: list[tuple[int, int, int]] = [(0, 0, 0)]
    prev: list[int] = [-1]
    window: deque[int] = deque()
    lo = 0
    for j in range(1, len(cands)):
        e = cands[j]
        while window and best[window[-1]] >= best[j - 1]:
            window.pop()
        window.append(j - 1)
        while lo < j - 1 and not bounds.fits(e - cands[lo], view.units[e + 1] - view.units[cands[lo] + 1]):
            lo += 1
        while window[0] < lo:
            window.popleft()
        i = window[0]
        c = view.cross[e] if e != b else Crossing(0, 0)
        best.append((best[i][0] + 1, best[i][1] + c.bytes, best[i][2] + c.tensors))
        prev.append(i)
    ends, j = [], prev[-1]
    while j > 0:
        ends.append(cands[j])
        j = prev[j]
    return ends[::-1]


def policy_summary(cuts: Sequence[Cut]) -> str:
    """``"3 cuts: 2 repeats, 1 memory"`` (the policies' own, split ops left out)."""
    mine = [c.policy for c in cuts if c.policy != "ops"]
    counts = ", ".join(f"{mine.count(p)} {p}" for p in dict.fromkeys(mine))
    return f"{len(mine)} cut{'s' if len(mine) != 1 else ''}" + (f": {counts}" if counts else "")
