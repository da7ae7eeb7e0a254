"""split_graph: cut a graph at split ops with torch.fx's split_module, and fake-propagate inputs.

Policy is passed in (``is_split_point``, and the planner's ``cuts``: policy.py); the result is
data: a parent GraphModule that calls the pieces in order, and one PieceSpec per piece.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx
from torch.fx.passes.split_module import split_module

from ...monitor.report import Cut
from .. import _torch_compat as tc
from ..ops import op_name


@dataclass(frozen=True)
class PieceSpec:
    index: int
    name: str                     # attribute name in Split.gm (submod_N)
    kind: str                     # "compiled" | "split_op"
    module: fx.GraphModule
    split_ops: tuple[str, ...]
    cut: Cut | None = None        # the cut it begins at (None: the graph's first piece, or no plan given)

    @property
    def nodes(self) -> int:
        return sum(n.op not in ("placeholder", "output") for n in self.module.graph.nodes)


@dataclass(frozen=True)
class Split:
    gm: fx.GraphModule            # the stitched parent: calls each piece in order
    pieces: tuple[PieceSpec, ...]


def _partition(gm: fx.GraphModule, is_split_point: Callable[[fx.Node], bool],
               cuts: dict[str, Cut]) -> tuple[dict[fx.Node, int], set[int], dict[int, Cut]]:
    """Piece id per node, the ids of split-op pieces, and the cut each piece begins at. A cut
    after a node starts a new compiled piece at the next node that is not a getitem."""
    part: dict[fx.Node, int] = {}
    split_ids: set[int] = set()
    starts: dict[int, Cut] = {}
    pid, cur, pending = 0, None, None
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        # getitem stays with its producer, so multi-output ops are never cut apart.
        if node.target is operator.getitem and isinstance(node.args[0], fx.Node) and node.args[0] in part:
            part[node] = part[node.args[0]]
        else:
            kind = "split_op" if node.op != "get_attr" and is_split_point(node) else "compiled"
            if kind != cur or (pending is not None and kind == "compiled"):  # consecutive split ops share one piece
                pid, cur = pid + 1, kind
                if pending is not None:
                    starts[pid] = pending
            pending = None
            part[node] = pid
            if kind == "split_op":
                split_ids.add(pid)
        pending = cuts.get(node.name, pending)
    return part, split_ids, starts


def split_graph(gm: fx.GraphModule, is_split_point: Callable[[fx.Node], bool], cuts: Sequence[Cut] = ()) -> Split:
    """Split ``gm`` before and after every node ``is_split_point`` accepts, and after the node each
    of ``cuts`` names (a cut inside a compiled stretch starts a new compiled piece).

    Pieces keep the original order (``keep_original_order``); consecutive split ops share a
    piece, and a getitem stays with its producer. No split point and no cut give one compiled piece.
    """
    part, split_ids, starts = _partition(gm, is_split_point, {c.after_node: c for c in cuts})
    parent = split_module(gm, gm, lambda n: part[n], keep_original_order=True,
                          keep_original_node_name=True)
    pieces = []
    for node in parent.graph.nodes:
        if node.op != "call_module":
            continue
        pid = int(str(node.target).rsplit("_", 1)[1])
        mod = getattr(parent, str(node.target))
        kind = "split_op" if pid in split_ids else "compiled"
        ops = tuple(dict.fromkeys(op_name(n) for n in mod.graph.nodes
                                  if kind == "split_op" and n.op not in ("placeholder", "output")
                                  and n.target is not operator.getitem))
        pieces.append(PieceSpec(len(pieces), str(node.target), kind, mod, ops, starts.get(pid)))
    return Split(parent, tuple(pieces))


class _RecordInputs(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.inputs: dict[str, tuple[Any, ...]] = {}
        self.outputs: dict[str, Any] = {}

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        self.inputs[str(target)] = tuple(args)
        out = super().call_module(target, args, kwargs)
        self.outputs[str(target)] = out
        return out


def propagate(split: Split, inputs: Sequence[Any], fake_mode: Any | None,
              grad: bool = False) -> tuple[dict[str, tuple], dict[str, Any]]:
    """Run the parent graph on ``inputs`` and record each piece's inputs and outputs.

    With Dynamo's fake mode and the graph's fake inputs this gives each piece's example inputs
    (fake tensors and SymInts of the same ShapeEnv); with real inputs it gives eager references.
    ``grad``: run with autograd on, so values derived from inputs that require grad do too.
    """
    interp = _RecordInputs(split.gm)
    with torch.set_grad_enabled(grad):
        if fake_mode is not None:
            with fake_mode, tc.guards_suppressed(fake_mode):
                interp.run(*inputs)
        else:
            interp.run(*inputs)
    return interp.inputs, interp.outputs


def example_inputs(split: Split, inputs: Sequence[Any], fake_mode: Any, grad: bool = False) -> tuple[dict[str, tuple], str]:
    """Each piece's fake example inputs, and how they were found.

    Dynamo's fake propagation already left each value's fake tensor in ``node.meta
    ["example_value"]``, and split_module copies it onto the pieces' placeholders: use those when
    every placeholder has one, else propagate ``inputs`` through the pieces under ``fake_mode``
    (graphs that did not come from Dynamo, and the worker's rebuilt graphs).
    """
    found: dict[str, tuple] = {}
    for p in split.pieces:
        vals = tuple(n.meta.get("example_value") for n in p.module.graph.nodes if n.op == "placeholder")
        if any(v is None for v in vals):
            return propagate(split, inputs, fake_mode, grad)[0], "propagated under the graph's fake mode"
        found[p.name] = vals
    return found, "Dynamo's fake values (node.meta)"
