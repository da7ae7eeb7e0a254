"""Repeated structure in a graph: identical module blocks, or identical node sequences.

Blocks come from ``node.meta["nn_module_stack"]``: the nodes of ``blocks.3`` (any module path
ending in an index, as a ModuleList or Sequential gives them) form a block when they run as one
stretch. Where no module path repeats (a graph without that metadata, a loop over functions),
the longest stretch of the graph made of one node sequence over and over is found instead.
The split planner cuts at block boundaries, so identical blocks become identical pieces that
the unique-piece dedup compiles once.
"""
from __future__ import annotations

import hashlib
import operator
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.fx as fx

from .fingerprint import Symbols, canonical, input_spec
from ..ops import op_name

MIN_BLOCK_NODES = 2          # a repeated single op is no block worth a piece of its own

_ROOT = re.compile(r"^[A-Za-z_]\w*\[(['\"])[^'\"]*\1\]\.?")   # Dynamo's root: L['self']. / G['model'].
_INDEX = re.compile(r"\[(\d+)\]")                          # layers[3] -> layers.3


@dataclass(frozen=True)
class Block:
    """One occurrence of a repeated stretch of nodes."""

    name: str            # "blocks.3", or "copy 4" for a repeated node sequence
    start: int           # position of its first node in the planner's node list
    end: int             # one past its last node
    signature: str       # equal for blocks that hold the same ops on the same kinds of values

    @property
    def nodes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Repeats:
    """Blocks found in one container (a module list, or a repeated node sequence), in order."""

    container: str       # the module path that holds them ("blocks"), or "node sequence"
    source: str          # "module" (node.meta's nn_module_stack) | "sequence" (identical node runs)
    blocks: tuple[Block, ...]

    def identical(self, block: Block) -> int:
        """How many blocks of this container are identical to ``block`` (itself included)."""
        return sum(b.signature == block.signature for b in self.blocks)


def module_path(node: fx.Node) -> str | None:
    """The path of the innermost module that ran ``node`` (``"blocks.3.norm"``), or None."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    last = list(stack.values())[-1]
    path = str(last[0] if isinstance(last, tuple) else last)
    return _INDEX.sub(r".\1", _ROOT.sub("", path)) or None


def span_signature(span: Sequence[fx.Node]) -> str:
    """A hash of a stretch of nodes that ignores names and which parameters it reads: its ops,
    how they connect, and the specs of what it reads from outside, in order of first use."""
    sym, idx, outside, lines = Symbols(), {n: i for i, n in enumerate(span)}, [], []
    for n in span:
        for a in n.all_input_nodes:
            if a not in idx:
                idx[a] = len(span) + len(outside)
                outside.append(a)
        what = op_name(n) if n.op.startswith("call_") else n.op
        lines.append(f"{what}{canonical(n.args, idx, sym)}{canonical(n.kwargs, idx, sym)}")
    head = ";".join(input_spec(a.meta.get("val", a.meta.get("example_value")), sym) for a in outside)
    return hashlib.sha256("\n".join([head, *lines]).encode()).hexdigest()[:16]


def find_repeats(nodes: Sequence[fx.Node], boundary_cost: Callable[[int], int]) -> list[Repeats]:
    """Repeated blocks among ``nodes`` (a graph's compute nodes in order): module blocks where
    node.meta has them, else one repeated node sequence, its phase where ``boundary_cost``
    (bytes crossing a cut before position i) is least. Empty when nothing repeats."""
    found = module_repeats(nodes)
    if found:
        return found
    seq = sequence_repeats(nodes, boundary_cost)
    return [seq] if seq is not None else []


def _runs(paths: Sequence[str | None]) -> dict[str, list[list]]:
    """Container path -> its blocks' runs ``[name, first, last]``: a run is a stretch of nodes of
    one indexed child (``blocks.3``) that no node of a sibling interrupts."""
    runs: dict[str, list[list]] = {}
    for i, p in enumerate(paths):
        segs = p.split(".") if p else []
        for k in range(1, len(segs)):
            if segs[k].isdigit():
                container, name = ".".join(segs[:k]), ".".join(segs[:k + 1])
                rs = runs.setdefault(container, [])
                if rs and rs[-1][0] == name:
                    rs[-1][2] = i
                else:
                    rs.append([name, i, i])
    return runs


def module_repeats(nodes: Sequence[fx.Node]) -> list[Repeats]:
    """Containers whose blocks repeat, outermost first; a container inside a chosen one's block
    is left out (the outer blocks already make identical pieces)."""
    chosen: list[Repeats] = []
    runs = _runs([module_path(n) if n.op.startswith("call_") else None for n in nodes])
    for container in sorted(runs, key=lambda c: (c.count("."), c)):
        if any(container.startswith(b.name + ".") for r in chosen for b in r.blocks):
            continue
        blocks = tuple(Block(name, first, last + 1, span_signature(nodes[first:last + 1]))
                       for name, first, last in runs[container])
        sigs = [b.signature for b in blocks]
        if any(b.nodes >= MIN_BLOCK_NODES and sigs.count(b.signature) >= 2 for b in blocks):
            chosen.append(Repeats(container, "module", blocks))
    return chosen


def _relative_signatures(nodes: Sequence[fx.Node]) -> list[int]:
    """Each node's op and arguments, its inputs named by how far back they are (graph inputs by
    spec), as small ints: equal for the same node in two copies of a repeated sequence."""
    pos = {n: i for i, n in enumerate(nodes)}
    ids: dict[str, int] = {}
    out = []
    for i, n in enumerate(nodes):
        sym, idx, ins = Symbols(), {}, []
        for a in n.all_input_nodes:
            idx[a] = i - pos[a] if a in pos else -1 - len(ins)
            if a not in pos:
                ins.append(input_spec(a.meta.get("val", a.meta.get("example_value")), sym))
        what = op_name(n) if n.op.startswith("call_") else n.op
        text = f"{what}{canonical(n.args, idx, sym)}{canonical(n.kwargs, idx, sym)}|{';'.join(ins)}"
        out.append(ids.setdefault(text, len(ids)))
    return out


def _longest_run(eq: torch.Tensor) -> tuple[int, int]:
    """(length, start) of the longest stretch of True in ``eq``."""
    padded = torch.cat([torch.zeros(1, dtype=torch.int8), eq.to(torch.int8), torch.zeros(1, dtype=torch.int8)])
    d = torch.diff(padded)
    starts, ends = (d == 1).nonzero().flatten(), (d == -1).nonzero().flatten()
    if len(starts) == 0:
        return 0, 0
    k = int((ends - starts).argmax())
    return int(ends[k] - starts[k]), int(starts[k])


def sequence_repeats(nodes: Sequence[fx.Node], boundary_cost: Callable[[int], int]) -> Repeats | None:
    """The period covering the most nodes with two or more identical copies in a row (the shortest
    such period on a tie), cut at the phase whose boundaries pass the fewest bytes."""
    sig = torch.tensor(_relative_signatures(nodes), dtype=torch.int64)
    n, best = len(nodes), None
    for p in range(MIN_BLOCK_NODES, n // 2 + 1):
        length, start = _longest_run(sig[:-p] == sig[p:])
        span = length + p                      # nodes start..start+span are periodic with period p
        if span // p >= 2 and (best is None or (span // p) * p > (best[2] // best[0]) * best[0]):
            best = (p, start, span)
    if best is None:
        return None
    p, start, span = best

    def phase_key(phi: int) -> tuple[float, int]:
        copies = (span - phi) // p
        return (sum(boundary_cost(start + phi + k * p) for k in range(copies + 1)) / (copies + 1), -copies)

    phi = min((f for f in range(p) if (span - f) // p >= 2), key=phase_key)
    first = start + phi
    blocks = tuple(Block(f"copy {k + 1}", first + k * p, first + (k + 1) * p, "sequence")
                   for k in range((span - phi) // p))
    return Repeats(f"a {p}-node sequence", "sequence", blocks)


def is_getitem(node: fx.Node) -> bool:
    """A getitem of another node: it stays in its producer's piece, so no cut goes before it."""
    return node.target is operator.getitem and bool(node.args) and isinstance(node.args[0], fx.Node)
