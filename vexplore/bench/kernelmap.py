"""Which FX nodes a profiled kernel computes, their source lines, and the work it does (estimated).

Within one piece, a kernel is found in this order:

1. Inductor's generated code (the piece's ``code``): its ``call()`` calls kernels in order, and the
   calls of extern kernels and Triton kernels carry a comment naming the piece's FX nodes they come
   from (``# Topologically Sorted Source Nodes: [h, relu]``). The k-th profiled run of a kernel in a
   piece's run is the k-th call of that name in the code.
2. Its name: Inductor names a fused kernel after the ops in it (``cpp_fused_add_relu_0``,
   ``triton_poi_fused_mul_silu_1``), an aten op is its own name (``aten::addmm``); the piece's nodes
   whose op has one of those names (``linear`` for ``addmm``, ...) are the kernel's, an op's k-th run
   the k-th such node.
3. A split op's piece runs one op: every node of the piece is its.

Source lines are the nodes' innermost frames as ``"path:line"``, relative to the working directory
(or to the module's root on ``sys.path``; a file in neither keeps its name only), never absolute.
Bytes and FLOPs are estimates from the nodes' shapes and dtypes at the profiled call: bytes are what
the node group reads from outside it and writes for use outside it; FLOPs are 2·M·N·K for matmuls
and linears, 4·B·H·L·S·D for attention, one per output element otherwise (views count none).
"""
from __future__ import annotations

import math
import operator
import os
import re
import sys
from typing import Any, Iterable, Sequence

import torch
import torch.fx as fx

from ..engine import _torch_compat as tc
from ..engine.ops import op_name

_SOURCE = re.compile(r'File "(?P<path>.+)", line (?P<line>\d+)')
_NODES_COMMENT = re.compile(r"#\s*(?:Topologically Sorted|Unsorted) Source Nodes: \[(?P<names>[^\]]*)\]")
_KERNEL_DEF = re.compile(r"^(?P<name>\w+) = async_compile\.\w+\(", re.M)
_INDUCTOR_CPP = re.compile(r"^graph_\d+_(?P<name>cpp_\w+)$")
_FUSED = re.compile(r"^(?:cpp|triton_\w+?)_fused_(?P<ops>\w+?)(?:_\d+)?$")
ALIASES = {"addmm": ("linear", "addmm", "matmul", "mm"), "mm": ("linear", "mm", "matmul"), "bmm": ("matmul", "bmm"),
           "baddbmm": ("matmul", "baddbmm"), "div": ("div", "truediv"), "_scaled_dot_product_flash_attention_for_cpu":
           ("scaled_dot_product_attention",), "_scaled_dot_product_efficient_attention": ("scaled_dot_product_attention",),
           "_scaled_dot_product_flash_attention": ("scaled_dot_product_attention",)}
_VIEWS = {"getitem", "view", "reshape", "transpose", "permute", "unsqueeze", "squeeze", "expand", "t", "size",
          "contiguous", "flatten", "unflatten", "split", "chunk", "narrow", "select", "slice", "to", "type_as", "detach"}
_MATMULS = {"linear", "matmul", "mm", "bmm", "addmm", "baddbmm"}


def kernel_key(name: str) -> str:
    """The name a kernel has in Inductor's code: ``graph_0_cpp_fused_relu_0`` -> ``cpp_fused_relu_0``,
    ``aten::addmm`` -> ``addmm``; other ops keep ``ns::op``, Triton kernels their name."""
    m = _INDUCTOR_CPP.match(name)
    if m:
        return m.group("name")
    return name[len("aten::"):] if name.startswith("aten::") else name


def short_name(target: str) -> str:
    """An op's last name: ``torch._C._nn.linear`` -> ``linear``, ``vxtest::mix`` -> ``mix``, ``operator.add`` -> ``add``."""
    return re.split(r"::|\.", target.split(".default")[0])[-1]


Calls = list[tuple[str, tuple[str, ...]]]   # Inductor's kernel calls in order: (kernel key, node names of its comment)


def code_calls(code: str | None) -> Calls:
    """The kernel calls of Inductor's ``call()``, in order, each with the FX node names its comment
    gives (empty where none does: the CPU's C++ kernels)."""
    if not code:
        return []
    defined = set(_KERNEL_DEF.findall(code))
    body = code.split("def call(", 1)[1] if "def call(" in code else ""
    out: Calls = []
    pending: tuple[str, ...] = ()
    for line in body.splitlines():
        s = line.strip()
        m = _NODES_COMMENT.match(s)
        if m:
            pending = tuple(n.strip() for n in m.group("names").split(",") if n.strip())
            continue
        key = _called(s, defined)
        if key is not None:
            out.append((key, pending))
            pending = ()
    return out


def _called(line: str, defined: set[str]) -> str | None:
    m = re.match(r"^(?:\w+ = )?(?P<callee>[\w.]+?)(?:\.run)?\(", line)
    if not m:
        return None
    callee = m.group("callee")
    if callee in defined:
        return callee
    for prefix in ("extern_kernels.", "torch.ops.aten.", "aten."):
        if callee.startswith(prefix):
            return callee[len(prefix):].split(".")[0]
    if callee.startswith("torch.ops."):
        ns, op = callee.split(".")[2:4]
        return f"{ns}::{op}"
    return None


def match_nodes(key: str, ordinal: int, nodes: Sequence[Any], calls: Calls) -> tuple[str, ...]:
    """The names of ``nodes`` (a piece's PieceNodes, in graph order) that the ``ordinal``-th run of kernel
    ``key`` computes: its comment's nodes; else, for a fused kernel, the nodes its name names, kept to those
    between the nodes of the commented calls before and after it; else an op's ``ordinal``-th node of its name."""
    at = [i for i, (k, _) in enumerate(calls) if k == key]
    pos = at[ordinal] if ordinal < len(at) else None
    own = _own(key, calls[pos][1], nodes) if pos is not None else []
    if own:
        return tuple(nodes[i].name for i in own)
    fused = _FUSED.match(key)
    if fused:
        words = fused.group("ops").split("_")
        hits = [i for i, n in enumerate(nodes) if _in_words(short_name(n.target), words)]
        lo, hi = _window(calls, pos, nodes) if pos is not None else (-1, len(nodes))
        return tuple(nodes[i].name for i in ([i for i in hits if lo < i < hi] or hits))
    wanted = ALIASES.get(short_name(key), (short_name(key),))
    hits = [n.name for n in nodes if short_name(n.target) in wanted]
    return (hits[ordinal],) if ordinal < len(hits) else ()


def _own(key: str, names: tuple[str, ...], nodes: Sequence[Any]) -> list[int]:
    """Positions of the nodes a call's comment names; an extern op's comment may name the nodes whose buffer
    it reuses too (a relu before an addmm), so the nodes of its own op win where there are any."""
    mine = [i for i, n in enumerate(nodes) if n.name in names]
    if _FUSED.match(key):
        return mine
    wanted = ALIASES.get(short_name(key), (short_name(key),))
    return [i for i in mine if short_name(nodes[i].target) in wanted] or mine


def _window(calls: Calls, pos: int, nodes: Sequence[Any]) -> tuple[int, int]:
    """(last node of the nearest commented call before ``pos``, first node of the nearest one after)."""
    lo, hi = -1, len(nodes)
    for k, names in reversed(calls[:pos]):
        own = _own(k, names, nodes)
        if own:
            lo = max(own)
            break
    for k, names in calls[pos + 1:]:
        own = _own(k, names, nodes)
        if own:
            hi = min(own)
            break
    return lo, hi


def _in_words(name: str, words: list[str]) -> bool:
    parts = name.split("_")
    return any(words[i:i + len(parts)] == parts for i in range(len(words) - len(parts) + 1))


def source_line(source: str | None) -> str | None:
    """``File "/abs/pkg/mod.py", line 12, in f`` -> ``pkg/mod.py:12`` (relative; see the module docstring)."""
    m = _SOURCE.search(source or "")
    if not m:
        return None
    path = os.path.abspath(m.group("path"))
    roots = [os.getcwd()] + sorted((os.path.abspath(p) for p in sys.path if p), key=len, reverse=True)
    for root in roots:
        if path.startswith(root.rstrip(os.sep) + os.sep):
            return f"{os.path.relpath(path, root)}:{m.group('line')}"
    return f"{os.path.basename(path)}:{m.group('line')}"


def source_lines(names: Iterable[str], nodes: Sequence[Any]) -> tuple[str, ...]:
    by_name = {n.name: n for n in nodes}
    lines = (source_line(by_name[n].source) for n in names if n in by_name)
    return tuple(dict.fromkeys(x for x in lines if x))


class Shapes:
    """The concrete sizes of a graph's values at the profiled call: the graph's symbols bound from the
    values its inputs had (``args``, in placeholder order)."""

    def __init__(self, gm: fx.GraphModule, args: Sequence[Any]) -> None:
        self.nodes = {n.name: n for n in gm.graph.nodes}
        self.bind: dict[Any, int] = {}
        phs = [n for n in gm.graph.nodes if n.op == "placeholder"]
        for ph, arg in zip(phs, args):
            val = _value(ph)
            if isinstance(val, torch.SymInt) and isinstance(arg, int):
                self._bind(val, arg)
            elif isinstance(val, torch.Tensor) and isinstance(arg, tuple):
                for s, real in zip(val.shape, arg):
                    self._bind(s, real)

    def _bind(self, s: Any, real: int) -> None:
        e = tc.sym_expr(s)
        if getattr(e, "is_Symbol", False):
            self.bind[e] = int(real)

    def dims(self, node: Any) -> tuple[int, ...] | None:
        val = _value(node) if isinstance(node, fx.Node) else None
        if not isinstance(val, torch.Tensor):
            return None
        out = []
        for s in val.shape:
            e = tc.sym_expr(s)
            e = e.xreplace(self.bind) if hasattr(e, "xreplace") else e
            try:
                out.append(int(e))
            except TypeError:   # a symbol no input binds
                return None
        return tuple(out)

    def nbytes(self, node: Any) -> int | None:
        d = self.dims(node)
        return None if d is None else math.prod(d) * _value(node).dtype.itemsize

    def dtype(self, node: Any) -> str | None:
        val = _value(node) if isinstance(node, fx.Node) else None
        return str(val.dtype) if isinstance(val, torch.Tensor) else None

    def work(self, names: Sequence[str]) -> tuple[int | None, int | None, str | None]:
        """(bytes, flops, dtype) of the node group ``names`` (see the module docstring)."""
        group = [self.nodes[n] for n in names if n in self.nodes]
        if not group:
            return None, None, None
        inside = set(group)
        reads = {a for n in group for a in n.all_input_nodes if a not in inside}
        writes = {n for n in group if any(u not in inside for u in n.users)}
        sizes = [self.nbytes(x) for x in reads | writes]
        flops = [node_flops(n, self) for n in group]
        nbytes = sum(s for s in sizes if s) if any(s is not None for s in sizes) else None
        total = sum(f for f in flops if f) if any(f is not None for f in flops) else None
        return nbytes, total, next((d for d in map(self.dtype, group) if d), None)


def _value(node: fx.Node) -> Any:
    return node.meta.get("example_value", node.meta.get("val"))


def node_flops(node: fx.Node, shapes: Shapes) -> int | None:
    """The FLOPs of one node at the profiled sizes (estimate; None where its output size is unknown)."""
    name = short_name(op_name(node)) if node.op.startswith("call_") else ""
    if node.op == "call_function" and node.target is operator.matmul:
        name = "matmul"
    if name in _VIEWS:
        return 0
    out = shapes.dims(node)
    if out is None:
        return None
    args = [a for a in node.args if isinstance(a, fx.Node)]
    if name in _MATMULS and args:
        a = shapes.dims(args[1] if name in ("addmm", "baddbmm") and len(args) > 2 else args[0])
        return 2 * math.prod(out) * a[-1] if a else None
    if name == "scaled_dot_product_attention" and len(args) >= 2:
        q, k = shapes.dims(args[0]), shapes.dims(args[1])
        return 4 * math.prod(q[:-2]) * q[-2] * k[-2] * q[-1] if q and k and len(q) >= 2 else None
    return math.prod(out)
