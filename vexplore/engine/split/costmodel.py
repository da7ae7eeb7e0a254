"""The cost model the split planner reads: what a node costs to compile, how many bytes a value
holds, and which values are live across each place a graph could be cut.

Everything is estimated from the graph alone (op names and the fake values Dynamo left in
``node.meta``), so planning compiles nothing. The compile figures are calibrated against the
peak RSS growth of CPU Inductor compiles (torch 2.13, residual MLP blocks: ~1.4 MB per block of
layer_norm, two linears, gelu and an add); they order pieces well, they are not a promise.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.fx as fx

from ...cache.cli import human
from .. import _torch_compat as tc
from ..runtime.capturemem import nbytes
from ..ops import op_name

# Compile cost per node kind, in units: one unit is one pointwise op. A view lowers to almost
# nothing; a matmul or conv to an extern kernel call plus its layout handling; a norm or softmax
# to several reductions and pointwise ops.
KIND_UNITS: dict[str, float] = {"view": 0.25, "pointwise": 1.0, "matmul": 2.0, "reduction": 3.0}
MB_PER_UNIT = 0.15          # peak compile memory per unit (CPU Inductor, torch 2.13)

_VIEW_WORDS = ("view", "reshape", "permute", "transpose", "expand", "squeeze", "unsqueeze", "flatten",
               "contiguous", "size", "getitem", "slice", "select", "split", "chunk", "narrow", "t", "clone",
               "detach", "to", "type_as", "float", "half", "bfloat16")
_MATMUL_WORDS = ("linear", "matmul", "mm", "conv", "einsum")
_REDUCTION_WORDS = ("norm", "softmax", "softmin", "sum", "mean", "max", "var", "std", "cumsum", "logsumexp",
                    "argmax", "argmin", "prod", "amax", "amin", "topk", "sort", "pool2d", "pool1d", "pool3d")


def node_kind(node: fx.Node) -> str:
    """"view" | "matmul" | "reduction" | "pointwise": how the planner prices ``node``."""
    if node.target is operator.getitem:
        return "view"
    name = op_name(node)
    # "aten::mm.default" -> "mm"; "torch.nn.functional.layer_norm" -> "layer_norm"
    word = (name.split("::", 1)[1].split(".")[0] if "::" in name else name.rsplit(".", 1)[-1]).lower().strip("_")
    tokens = word.split("_")
    if word in _VIEW_WORDS:
        return "view"
    if any(t.startswith(w) or t.endswith(w) for t in tokens for w in _MATMUL_WORDS):
        return "matmul"
    if any(t in _REDUCTION_WORDS for t in tokens):
        return "reduction"
    return "pointwise"


def node_units(node: fx.Node) -> float:
    """What ``node`` costs to compile, in pointwise-op units (placeholders and constants: none)."""
    if not node.op.startswith("call_"):
        return 0.0
    return KIND_UNITS[node_kind(node)]


def units_mb(units: float) -> float:
    """Estimated peak compile memory of a piece of ``units``, in MB."""
    return units * MB_PER_UNIT


def _hint(s: Any) -> int:
    try:
        return tc.sym_hint(s)
    except Exception:   # an unbacked size has no hint: it counts as one
        return 1


def value_bytes(value: Any) -> int:
    """Bytes a node's value holds (from its fake tensor; symbolic sizes at the values Dynamo saw)."""
    if isinstance(value, (torch.SymInt, int, float, bool)):
        return 8
    return nbytes(value, _hint)


def node_bytes(node: fx.Node) -> int:
    return value_bytes(node.meta.get("val", node.meta.get("example_value")))


@dataclass(frozen=True)
class Crossing:
    """What a cut after one node passes from the piece before it to the pieces after it."""

    tensors: int         # activations (values computed in the graph) live across the cut
    bytes: int           # their size, estimated
    opaque: int = 0      # of them, values that are not tensors (a torch.Size, a dtype, a slice): a piece
                         # cannot hand those on (Inductor compiles pieces that return tensors), so no cut here

    def text(self) -> str:
        many = self.tensors != 1
        return f"{self.tensors} tensor{'s' if many else ''} ({human(self.bytes)}) cross{'' if many else 'es'}"


def crossings(nodes: Sequence[fx.Node]) -> list[Crossing]:
    """For each position i of ``nodes`` (a graph's nodes in order): what a cut after ``nodes[i]``
    passes on. Graph inputs and constants are not counted: they live anyway."""
    pos = {n: i for i, n in enumerate(nodes)}
    ends: dict[int, list[fx.Node]] = {}
    for n in nodes:
        if n.op.startswith("call_") and n.users:
            ends.setdefault(max(pos[u] for u in n.users), []).append(n)
    out, live, size, opaque = [], 0, 0, 0
    born = {n: node_bytes(n) for ns in ends.values() for n in ns}
    odd = {n for n in born if not isinstance(n.meta.get("val", n.meta.get("example_value")), torch.Tensor)}
    for i, n in enumerate(nodes):
        if n in born:
            live, size, opaque = live + 1, size + born[n], opaque + (n in odd)
        for d in ends.get(i, ()):
            live, size, opaque = live - 1, size - born[d], opaque - (d in odd)
        out.append(Crossing(live, size, opaque))
    return out


