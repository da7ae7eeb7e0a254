"""Split ops that can write into a preallocated output (so piece boundaries keep their addresses).

A split op runs eagerly between CUDA-graph replays; its result must reach the next graph's input
buffer. With an out variant it is written there directly; without one it is computed into a
fresh tensor and copied (one device copy per split op per call, which the report names).

Found without registration: an ``out`` overload of the op (aten's convention, ``ns::op.out``),
or a sibling custom op ``ns::<op>_out`` taking the same arguments plus a written ``out``
(serving engines' attention takes its output buffer this way).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from ..ops import op_name


@dataclass(frozen=True)
class OutVariant:
    """An op that writes a split-op piece's result into a given tensor."""

    fn: Callable[..., Any]
    where: tuple[tuple[str, Any], ...]     # per op argument: ("arg", piece argument index) | ("const", value)

    def __call__(self, *args: Any) -> Any:
        """The piece's arguments, then ``out``."""
        return self.bind(args[:-1], args[-1])()

    def bind(self, args: Sequence[Any], out: Any) -> Callable[[], Any]:
        """A call with its arguments chosen once (a runtime plan's step: the tensors never move)."""
        call = tuple(args[v] if kind == "arg" else v for kind, v in self.where) + (out,)
        fn = self.fn
        return lambda: fn(*call)


def out_variant(piece: fx.GraphModule) -> tuple[OutVariant | None, str]:
    """(an OutVariant writing the piece's result into a given tensor, or None; the op's name)
    for a split-op piece that is one op call returning one tensor."""
    calls = [n for n in piece.graph.nodes if n.op not in ("placeholder", "output")]
    out_node = next(n for n in reversed(piece.graph.nodes) if n.op == "output")
    if len(calls) != 1 or out_node.args[0] is not calls[0] or calls[0].op != "call_function" or calls[0].kwargs:
        return None, ", ".join(op_name(n) for n in calls)
    call, name = calls[0], op_name(calls[0])
    packet = call.target.overloadpacket if isinstance(call.target, torch._ops.OpOverload) else call.target
    if not isinstance(packet, torch._ops.OpOverloadPacket):
        return None, name
    ns, op = packet._qualified_op_name.split("::")
    sibling = getattr(getattr(torch.ops, ns), f"{op}_out", None)
    if "out" in packet.overloads():
        fn: Callable[..., Any] = lambda *a: getattr(packet, "out")(*a[:-1], out=a[-1])  # noqa: E731
    elif sibling is not None and _writes_last(sibling):
        fn = sibling.default
    else:
        return None, name
    phs = [n for n in piece.graph.nodes if n.op == "placeholder"]
    where = tuple(("arg", phs.index(a)) if isinstance(a, fx.Node) else ("const", a) for a in call.args)
    return OutVariant(fn, where), name


def _writes_last(packet: Any) -> bool:
    schema = getattr(getattr(packet, "default", None), "_schema", None)
    args = schema.arguments if schema is not None else []
    return bool(args) and args[-1].alias_info is not None and args[-1].alias_info.is_write
