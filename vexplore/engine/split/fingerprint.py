"""Structural fingerprints of pieces, stable across processes.

Built from ops, targets, argument structure, constants and input specs (shapes, strides,
dtypes, dynamic dims): never from object addresses or node names, and with symbol names
normalized by first appearance (s77 and s12 in the same position give the same text).
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Sequence

import torch
import torch.fx as fx

from .._torch_compat import sym_expr
from ..ops import _callable_name, op_name

_SYMBOL = re.compile(r"\b[a-z]{1,2}\d+\b")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


class _Symbols:
    """Renames shape symbols to z0, z1, ... in order of first appearance."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        def sub(m: re.Match) -> str:
            return self.names.setdefault(m.group(0), f"z{len(self.names)}")
        return _SYMBOL.sub(sub, text)


def _dims(xs: Sequence[Any], sym: _Symbols) -> str:
    return ",".join(sym(str(sym_expr(x))) for x in xs)


def input_spec(x: Any, sym: _Symbols, grad: bool = False) -> str:
    """One input's spec; with ``grad`` (a compile for autograd) a tensor says whether it requires grad."""
    if isinstance(x, torch.Tensor):
        rg = "|grad" if grad and x.requires_grad else ""
        return f"T[{_dims(x.shape, sym)}|{_dims(x.stride(), sym)}|{x.dtype}|{x.device.type}{rg}]"
    if isinstance(x, torch.SymInt):
        return f"S[{sym(str(sym_expr(x)))}]"
    if isinstance(x, (int, float, bool)) or x is None:
        return f"C[{x!r}]"
    return f"O[{type(x).__qualname__}]"


def _tensor_const(t: torch.Tensor) -> str:
    head = f"{tuple(t.shape)}|{t.dtype}"
    try:
        # all of it, as raw bytes (numpy has no bf16): constants differing anywhere differ here
        data = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    except Exception:  # fake or meta tensors carry no data
        return head
    return f"{head}|{hashlib.sha256(data).hexdigest()[:16]}"


def _canon(a: Any, idx: dict[fx.Node, int], sym: _Symbols) -> str:
    if isinstance(a, fx.Node):
        return f"%{idx[a]}"
    if isinstance(a, tuple):
        return "(" + ",".join(_canon(x, idx, sym) for x in a) + ")"
    if isinstance(a, list):
        return "[" + ",".join(_canon(x, idx, sym) for x in a) + "]"
    if isinstance(a, dict):
        return "{" + ",".join(f"{k}:{_canon(v, idx, sym)}" for k, v in sorted(a.items(), key=lambda kv: str(kv[0]))) + "}"
    if isinstance(a, slice):
        return f"slice({_canon(a.start, idx, sym)},{_canon(a.stop, idx, sym)},{_canon(a.step, idx, sym)})"
    if a is None or isinstance(a, (bool, int, float, str, complex)):
        return repr(a)
    if isinstance(a, (torch.dtype, torch.device, torch.memory_format, torch.layout)):
        return str(a)
    if isinstance(a, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return sym(str(sym_expr(a)))
    if isinstance(a, torch.Tensor):
        return f"tensor({_tensor_const(a)})"
    if callable(a):
        return _callable_name(a)
    return f"{type(a).__qualname__}:{_ADDRESS.sub('@', repr(a))}"


def canonical(a: Any, idx: dict[fx.Node, int], sym: "_Symbols") -> str:
    """A node's args or kwargs as canonical text: nodes by their number in ``idx``, shape symbols
    renamed by ``sym`` (``Symbols()``), no addresses (what the repeat finder compares blocks by)."""
    return _canon(a, idx, sym)


Symbols = _Symbols


def inputs_text(inputs: Sequence[Any], sym: "_Symbols | None" = None, grad: bool = False) -> str:
    """Canonical specs of a piece's inputs; ``sym`` numbers symbols (shared with the graph text).

    With ``grad`` the specs say which inputs require grad: a compile for autograd differs from
    the inference compile exactly when some input does (AOTAutograd's own rule).
    """
    sym = sym if sym is not None else _Symbols()
    return ";".join(input_spec(x, sym, grad) for x in inputs)


def fingerprint(gm: fx.GraphModule, inputs: Sequence[Any], grad: bool = False) -> tuple[str, str, str]:
    """(graph hash, canonical input specs, canonical graph text) of a piece (``grad``: see inputs_text)."""
    sym = _Symbols()
    itext = inputs_text(inputs, sym, grad)
    idx: dict[fx.Node, int] = {}
    lines = []
    for i, node in enumerate(gm.graph.nodes):
        idx[node] = i
        if node.op == "get_attr":
            val = gm
            for part in str(node.target).split("."):
                val = getattr(val, part)
            what = f"tensor({_tensor_const(val)})" if isinstance(val, torch.Tensor) else type(val).__qualname__
            lines.append(f"{i}:get_attr:{what}")
            continue
        target = op_name(node) if node.op not in ("placeholder", "output") else ""
        lines.append(f"{i}:{node.op}:{target}{_canon(node.args, idx, sym)}{_canon(node.kwargs, idx, sym)}")
    graph_text = "\n".join(lines)
    return hashlib.sha256(graph_text.encode()).hexdigest(), itext, graph_text
