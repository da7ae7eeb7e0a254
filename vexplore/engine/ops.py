"""op_name: the stable name of what an FX node calls, as splitting_ops match it."""
from __future__ import annotations

from typing import Iterable

import torch
import torch.fx as fx

# Builtin modules whose C names differ from the import name users write.
_MODULE_ALIASES = {"_operator": "operator", "builtins": "builtins"}


def _callable_name(fn: object) -> str:
    if isinstance(fn, torch._ops.OpOverload):
        return f"{fn._schema.name}.{fn._overloadname}"
    if isinstance(fn, torch._ops.OpOverloadPacket):
        return fn._qualified_op_name
    if isinstance(fn, torch._ops.HigherOrderOperator):
        return f"higher_order::{fn.name()}"
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qual = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__qualname__
    if qual.startswith("_VariableFunctionsClass."):  # torch.rsqrt & co. are methods of a C class
        qual = fn.__name__
    return f"{_MODULE_ALIASES.get(module, module)}.{qual}"


def op_name(node: fx.Node) -> str:
    """Name what ``node`` calls.

    ``"ns::op.overload"`` for torch op overloads (custom ops included), ``"ns::op"`` for an op
    packet, the dotted qualified name for Python functions and builtins (e.g.
    ``"torch._C._nn.scaled_dot_product_attention"``), ``"torch.Tensor.<method>"`` for methods,
    the module class's qualified name for ``call_module``, and the node's opcode otherwise.
    Never holds memory addresses, so it is safe to hash.
    """
    if node.op == "call_function":
        return _callable_name(node.target)
    if node.op == "call_method":
        return f"torch.Tensor.{node.target}"
    if node.op == "call_module":
        owner = node.graph.owning_module
        if owner is not None:
            mod = owner.get_submodule(str(node.target))
            return f"{type(mod).__module__}.{type(mod).__qualname__}"
        return f"module.{node.target}"
    return node.op


def matches(name: str, patterns: Iterable[str]) -> bool:
    """True when op ``name`` is one of ``patterns``; a pattern without overload matches every overload.

    A node that calls an op packet (``"ns::op"``) also matches patterns naming one of its overloads.
    """
    for pat in patterns:
        if name == pat:
            return True
        if "::" in pat and "::" in name:
            if "." not in pat.split("::", 1)[1] and name.startswith(pat + "."):
                return True
            if "." not in name.split("::", 1)[1] and pat.startswith(name + "."):
                return True
    return False
