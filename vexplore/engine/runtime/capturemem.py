"""How much device memory a CUDA-graph capture of one size needs, estimated before capturing.

A vision model whose dim 0 is the batch gets the default capture sizes up to 512, and a
capture that runs out of memory takes the compile down (or leaves the device without room for
the model's own work). Each size is estimated first, from the graph Dynamo captured: the peak
of the intermediate values alive at once when the graph runs in order (each value freed after
its last use, views free) at that token count, plus the buffers the inputs are copied into.
A piecewise capture drops each piece's output once the last piece reading it is captured
(``dead_after``), so the graphs' shared pool reuses that memory for later pieces, as the whole
graph reuses it; what a split op reads or returns stays (its eager step runs on those tensors at
every replay) and is added (``pinned_bytes``). Sizes whose estimate does not fit the budget are
not captured (they run without graphs, saying why).
Measured on an H200 (toy Llama, 4 layers, fp16), before piecewise captures let piece outputs go:
after capture a size held what it kept (outputs, piece outputs, input buffers) plus cuBLAS's 32 MiB
workspace for the capture stream, once; the transient peak was freed back to the graphs' pool.
The letting go is not yet measured on a GPU (benchmarks/buffer_bench.py --device cuda does it).
The estimate ignores Inductor's buffer reuse inside a kernel and fusion (fewer, not more bytes),
so it errs high; the report sets it beside the memory each capture really held.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Iterable

import torch
import torch.fx as fx

from ..ops import op_name

# Ops whose result is a view of an input (no new memory); reshape/flatten/contiguous may copy,
# but rarely do on the activations of a forward pass.
_VIEWS = {"view", "reshape", "transpose", "permute", "expand", "unsqueeze", "squeeze", "t", "narrow", "select",
          "split", "chunk", "unflatten", "flatten", "contiguous", "__getitem__", "getitem", "view_as", "expand_as",
          "unbind", "detach", "alias", "movedim", "swapaxes", "as_strided", "unfold", "diagonal", "real", "imag"}


def _is_view(n: fx.Node) -> bool:
    if n.target is operator.getitem:
        return True
    name = op_name(n).split("::")[-1].rsplit(".", 1)[-1]
    return name in _VIEWS or n.op == "call_method" and str(n.target) in _VIEWS


def nbytes(val: Any, ev: Callable[[Any], int]) -> int:
    """Bytes of a (fake) tensor or a tuple of them, each dim evaluated by ``ev`` (symbols -> ints)."""
    if isinstance(val, torch.Tensor):
        n = 1
        for s in val.shape:
            n *= ev(s)
        return n * val.element_size()
    if isinstance(val, (tuple, list)):
        return sum(nbytes(v, ev) for v in val)
    return 0


def peak_bytes(gm: fx.GraphModule, ev: Callable[[Any], int]) -> int:
    """The most bytes of intermediate values alive at once when ``gm`` runs node by node.

    Inputs and parameters are the caller's and not counted; outputs stay alive to the end.
    Values come from the nodes' fake values (``meta["example_value"]`` or ``meta["val"]``).
    """
    dead = dead_after(gm.graph)
    live = peak = 0
    held: dict[fx.Node, int] = {}
    for n in gm.graph.nodes:
        if n.op in ("placeholder", "get_attr", "output"):
            continue
        b = 0 if _is_view(n) else nbytes(_val(n), ev)
        held[n] = b
        live += b
        peak = max(peak, live)
        live -= sum(held.pop(a, 0) for a in dead.get(n, ()))
    return peak


def dead_after(graph: fx.Graph) -> dict[fx.Node, list[fx.Node]]:
    """For each node, the values it is the last to read (in graph order): they may be freed once
    it has run. Values the output node reads live to the end and are never listed."""
    last: dict[fx.Node, fx.Node] = {}
    for n in graph.nodes:
        for a in n.all_input_nodes:
            last[a] = n
    out: dict[fx.Node, list[fx.Node]] = {}
    for v, n in last.items():
        if n.op != "output":
            out.setdefault(n, []).append(v)
    return out


def pinned_bytes(parent: fx.GraphModule, split_ops: Iterable[str], ev: Callable[[Any], int]) -> int:
    """Bytes a piecewise capture cannot give back to the pool: the values split-op pieces read
    (other than the graph's inputs) and return. Each split op runs eagerly between replays on the
    very tensors it was captured with, so they stay alive as long as the capture."""
    names, total = set(split_ops), 0
    for n in parent.graph.nodes:
        if n.op != "call_module" or str(n.target) not in names:
            continue
        sub = parent._modules[str(n.target)]   # not getattr: an installed parent has the runner there
        phs = [p for p in sub.graph.nodes if p.op == "placeholder"]
        total += sum(nbytes(_val(p), ev) for a, p in zip(n.args, phs) if isinstance(a, fx.Node) and a.op != "placeholder")
        out = next(o for o in sub.graph.nodes if o.op == "output")
        total += sum(nbytes(_val(a), ev) for a in out.all_input_nodes)
    return total


def _val(n: fx.Node) -> Any:
    return n.meta.get("example_value", n.meta.get("val"))


def evaluator(hints: dict[Any, int], tied: Iterable[Any], size: int | None) -> Callable[[Any], int]:
    """Symbols -> ints: the token symbols (``tied``) at ``size``, every other one at its traced value."""
    subs = dict(hints)
    if size is not None:
        subs.update(dict.fromkeys(tied, size))

    def ev(s: Any) -> int:
        e = s.node.expr if isinstance(s, torch.SymInt) else s
        return int(e.xreplace(subs)) if hasattr(e, "xreplace") else int(e)
    return ev


def budget_bytes(limit_mb: float | None) -> tuple[int, str]:
    """The bytes captures may take, and where that figure comes from (``limit_mb`` or the device)."""
    if limit_mb is not None:
        return int(limit_mb * 2**20), f"cudagraph_memory_mb={limit_mb:g}"
    free, _total = torch.cuda.mem_get_info()
    return int(free * 0.9), f"90 % of the {free / 2**20:.0f} MiB the device had free"
