"""What a graph writes in place, found on the Dynamo graph vexplore holds.

vexplore never sees AOTAutograd's functionalised graph, so it finds writes itself: it runs the
graph once on fake copies of its inputs (under Dynamo's fake mode, so no real memory is
touched) and, per node, notes every tensor that changed — by the tensor's version counter
(in-place methods, ``x[i] = y``, ``out=``; views share their base's counter, so a write through
a view counts for the base) and by the op schemas the node dispatches to (an argument marked
``(a!)``: aten in-place ops and custom ops' ``mutates_args``). ``native_batch_norm`` writes its
running statistics in training mode without saying so in its schema; it is named here.

The result maps each written value to the nodes that write it, by node name: a graph input
(placeholder) or a value made inside the graph. split_module names a piece's placeholders after
the values they carry, so the same map answers "which inputs does this piece write".

For CUDA graphs two more questions, both answered without a GPU: how far a write into an input
reaches with the token count (``token_reach``: a KV cache written at as many rows as the call
has tokens, along which dim, and how many rows it has), and whether the inputs still hold the
state Dynamo traced on (``note_versions`` / ``written_since``: a capture on the call in hand
writes what that call writes; on a later state it may write where no call does).
"""
from __future__ import annotations

import logging
import operator
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
import torch.fx as fx
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .. import _torch_compat as tc

log = logging.getLogger(__name__)

# Ops that write arguments their schema does not mark as written: (training flag position,
# positions of the tensors written when it is true).
_UNDECLARED = {
    "aten::native_batch_norm": (5, (3, 4)),
    "aten::cudnn_batch_norm": (5, (3, 4)),
    "aten::miopen_batch_norm": (5, (3, 4)),
}


@dataclass(frozen=True)
class WriteMap:
    """Which values a graph writes in place.

    ``writers``: written value (node name) -> the nodes that write it. ``root_of``: node name ->
    the value whose memory it is (itself, or the base it is a view of). ``how``: how it was found.
    """

    writers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    root_of: Mapping[str, str] = field(default_factory=dict)
    how: str = "fake run"

    def __bool__(self) -> bool:
        return bool(self.writers)

    def inputs(self, gm: fx.GraphModule) -> dict[int, tuple[str, ...]]:
        """Placeholder index -> the nodes that write that input (directly or through a view)."""
        phs = [n for n in gm.graph.nodes if n.op == "placeholder"]
        return {i: self.writers[n.name] for i, n in enumerate(phs) if n.name in self.writers}

    def written_args(self, piece: fx.GraphModule) -> tuple[int, ...]:
        """Placeholder indices of ``piece`` (a split_module piece of this graph) that the piece
        writes: some node of the piece writes memory the placeholder's value shares."""
        names = {n.name for n in piece.graph.nodes if n.op not in ("placeholder", "output")}
        roots = {v for v, ws in self.writers.items() if names.intersection(ws)}
        roots = {self.root_of.get(v, v) for v in roots}
        phs = [n for n in piece.graph.nodes if n.op == "placeholder"]
        return tuple(i for i, n in enumerate(phs) if self.root_of.get(n.name, n.name) in roots)


def _base(t: torch.Tensor) -> torch.Tensor:
    while t._base is not None:
        t = t._base
    return t


def _schema_writes(func: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[torch.Tensor]:
    """The tensors ``func`` writes by its schema (plus the undeclared writes of _UNDECLARED)."""
    schema = getattr(func, "_schema", None)
    if schema is None:
        return []
    out: list[torch.Tensor] = []
    for i, a in enumerate(schema.arguments):
        if a.alias_info is not None and a.alias_info.is_write:
            v = args[i] if i < len(args) else kwargs.get(a.name)
            out.extend(x for x in tree_flatten(v)[0] if isinstance(x, torch.Tensor))
    flag = _UNDECLARED.get(schema.name)
    if flag is not None and len(args) > flag[0] and args[flag[0]] is True:
        out.extend(args[i] for i in flag[1] if isinstance(args[i], torch.Tensor))
    return out


class _SchemaSpy(TorchDispatchMode):
    """Notes the tensors each dispatched op writes by its schema."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[torch.Tensor] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        self.written.extend(_schema_writes(func, args, kwargs))
        return func(*args, **kwargs)


class _Finder(fx.Interpreter):
    """Runs the graph, noting per node which values' memory it wrote."""

    def __init__(self, gm: fx.GraphModule, spy: _SchemaSpy) -> None:
        super().__init__(gm)
        self.spy = spy
        self.owner: dict[int, str] = {}          # id(base tensor) -> node name that made it
        self.bases: list[torch.Tensor] = []      # keeps them alive, so no id is reused mid-run
        self.root_of: dict[str, str] = {}
        self.writers: dict[str, list[str]] = {}

    def run_node(self, n: fx.Node) -> Any:
        with self._set_current_node(n):
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            seen = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
            before = [t._version for t in seen]
            self.spy.written.clear()
            out = getattr(self, n.op)(n.target, args, kwargs)
            hit = [t for t, v in zip(seen, before) if t._version != v] + self.spy.written
            for t in hit:
                root = self.owner.get(id(_base(t)))
                if root is not None and n.name not in self.writers.setdefault(root, []):
                    self.writers[root].append(n.name)
            self._own(n, out)
            return out

    def _own(self, n: fx.Node, out: Any) -> None:
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                base = _base(t)
                if id(base) not in self.owner:
                    self.owner[id(base)] = n.name
                    self.bases.append(base)
                self.root_of.setdefault(n.name, self.owner[id(base)])


def find_writes(gm: fx.GraphModule, inputs: Sequence[Any], fake_mode: Any) -> WriteMap:
    """Run ``gm`` on fake copies of ``inputs`` (Dynamo's fake values) and map what it writes.

    The copies keep Dynamo's own fake values untouched. A graph none of whose nodes can write
    (``may_write``) is not run: the fake run costs about as much as Dynamo's own propagation
    (0.5 s for 1,400 nodes on the 2-core CPU). Without a fake mode, or when the fake run fails,
    a static scan of in-place-looking nodes stands in (it may over-report, which only costs
    copies, never correctness).
    """
    if not any(may_write(n) for n in gm.graph.nodes):
        return WriteMap(how="node scan: no node writes")
    if fake_mode is None:
        return static_writes(gm)
    spy = _SchemaSpy()
    finder = _Finder(gm, spy)
    try:
        with fake_mode, torch.no_grad(), tc.guards_suppressed(fake_mode):
            copies = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
            with spy:
                finder.run(*copies)
    except Exception as e:  # e.g. a custom op without a fake impl: Dynamo had one, but be safe
        log.info("vexplore: fake run to find in-place writes failed (%s); scanning nodes instead", e)
        return static_writes(gm)
    return WriteMap({k: tuple(v) for k, v in finder.writers.items()}, dict(finder.root_of))


# Names of torch functions that write an argument without an in-place name or a schema that says so.
_WRITES_UNMARKED = ("batch_norm", "instance_norm")
_INPLACE_OPERATORS = {operator.setitem, operator.iadd, operator.isub, operator.imul, operator.itruediv,
                      operator.ifloordiv, operator.imod, operator.ipow, operator.iand, operator.ior,
                      operator.ixor, operator.ilshift, operator.irshift, operator.imatmul}


def may_write(n: fx.Node) -> bool:
    """Whether node ``n`` might write one of its arguments: False only for calls known not to
    (ops whose schema writes nothing, plain operators, functions and methods without an
    in-place name, an ``out=`` or ``inplace=True``)."""
    if n.op in ("placeholder", "output", "get_attr"):
        return False
    if n.op == "call_module" or "out" in n.kwargs or n.kwargs.get("inplace") is True or any(a is True for a in n.args[1:]):
        return True   # an opaque module, out=, or a flag that may say inplace
    target = n.target
    if n.op == "call_method":
        return str(target).endswith("_") or str(target) == "__setitem__"
    if target in _INPLACE_OPERATORS:
        return True
    if isinstance(target, torch._ops.HigherOrderOperator):
        return True
    schema = getattr(target, "_schema", None) or getattr(getattr(target, "default", None), "_schema", None)
    if schema is not None:
        return schema.is_mutable or schema.name in _UNDECLARED
    name = getattr(target, "__name__", "")
    return name.endswith("_") or any(w in name for w in _WRITES_UNMARKED)


@dataclass(frozen=True)
class Reach:
    """How far one node's write into a graph input reaches as the token count grows."""

    input: int              # placeholder index of the written input
    node: str               # the node that writes it
    tokens: bool            # its extent (or position) depends on the token count
    dim: int | None = None  # the written tensor's dim the token rows run along (None: not found)
    rows: int | None = None # that dim's length: the most token rows any call can write there


def token_reach(gm: fx.GraphModule, written: Mapping[int, Sequence[str]], tied: frozenset[Any]) -> tuple[Reach, ...]:
    """Per write into an input of ``gm`` (``written``: placeholder index -> writing nodes), whether
    its extent follows the token count (``tied``: the symbols that stand for it), read from
    Dynamo's fake values on the nodes. The dim and its rows are named only for writes whose rows
    are known: an op with a ``dim`` argument (``index_copy_(2, pos, k)`` into a [b, h, rows, d]
    cache; index_add_, scatter_) and an indexed assignment, whose token-sized value aligns with
    the written tensor from the right (``cache[pos] = v``, index_put_). Any other write (a custom
    op, a paged cache) keeps its rows unknown. A 0-d input (a length counter) has no rows to run
    past and is left out. Without fake values (a graph that lost its meta) a write counts as
    token-sized with rows unknown: that costs captures, never correctness."""
    phs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    nodes = {n.name: n for n in gm.graph.nodes}
    out = []
    for i, names in sorted(written.items()):
        base = _fake(phs[i]) if i < len(phs) else None
        if isinstance(base, torch.Tensor) and base.dim() == 0:
            continue
        for name in names:
            n = nodes.get(name)
            if n is not None:
                out.append(_reach(i, n, base, tied))
    return tuple(out)


_DIM_WRITES = {"index_copy_", "index_copy", "index_add_", "index_add", "scatter_", "scatter", "scatter_add_",
               "scatter_add", "scatter_reduce_", "scatter_reduce", "index_fill_", "index_fill"}
_INDEXED_WRITES = {"setitem", "__setitem__", "index_put_", "index_put", "_index_put_impl_"}


def _fake(n: Any) -> Any:
    return n.meta.get("example_value", n.meta.get("val")) if isinstance(n, fx.Node) else n


def _reach(i: int, n: fx.Node, base: Any, tied: frozenset[Any]) -> Reach:
    flat = tree_flatten((n.args, n.kwargs))[0]
    args = [_fake(a) for a in flat]
    if base is None or any(isinstance(a, fx.Node) and v is None for a, v in zip(flat, args)):
        return Reach(i, n.name, True)
    target = next((a for a in args if isinstance(a, torch.Tensor) and _base(a) is _base(base)), base)
    others = [a for a in args if a is not target]
    if target.dim() == 0 or not (_tied_dims(target, tied) or any(_tied_dims(a, tied) for a in others)):
        return Reach(i, n.name, False)
    if _tied_dims(target, tied):   # a view sized by the tokens (narrow, a slice): its base's rows are not known here
        return Reach(i, n.name, True)
    op = (str(n.target) if n.op == "call_method" else getattr(n.target, "__name__", "")).split(".")[0]
    if op in _DIM_WRITES and len(n.args) > 1 and isinstance(n.args[1], int):
        dim = n.args[1] % target.dim()
        rows = target.shape[dim]
        return Reach(i, n.name, True, dim, rows if isinstance(rows, int) else None)
    if op in _INDEXED_WRITES:
        for v in others:
            if isinstance(v, torch.Tensor) and v.dtype == target.dtype and 0 < v.dim() <= target.dim():
                shift = target.dim() - v.dim()
                for k in _tied_dims(v, tied):
                    rows = target.shape[k + shift]
                    if isinstance(rows, int):
                        return Reach(i, n.name, True, k + shift, rows)
    return Reach(i, n.name, True)


def _tied_dims(v: Any, tied: frozenset[Any]) -> list[int]:
    """The dims of ``v`` (a fake tensor; a SymInt counts as one dim) whose size involves the token count."""
    dims = list(v.shape) if isinstance(v, torch.Tensor) else [v] if isinstance(v, torch.SymInt) else []
    return [k for k, d in enumerate(dims) if set(getattr(tc.sym_expr(d), "free_symbols", ())) & tied]


_VERSION = "vexplore_version"


def note_versions(gm: fx.GraphModule, real: Sequence[Any]) -> None:
    """Keep each tensor input's version counter on its placeholder (``node.meta``), as Dynamo
    handed the graph over: ``written_since`` tells later whether the inputs still hold that state."""
    for ph, x in zip((n for n in gm.graph.nodes if n.op == "placeholder"), real):
        ph.meta[_VERSION] = _version(x)


def written_since(gm: fx.GraphModule | None, real: Sequence[Any], indices: Sequence[int]) -> list[int]:
    """The inputs among ``indices`` written since ``note_versions`` (by the call that traced the
    graph, or any later one), or whose state cannot be told (no note, an inference tensor)."""
    phs = [n for n in gm.graph.nodes if n.op == "placeholder"] if gm is not None else []
    out = []
    for i in indices:
        then = phs[i].meta.get(_VERSION) if i < len(phs) else None
        if then is None or then != _version(real[i]):
            out.append(i)
    return out


def _version(x: Any) -> int | None:
    if not isinstance(x, torch.Tensor):
        return None
    try:
        return x._version
    except RuntimeError:   # an inference tensor keeps no version counter
        return None


_VIEWISH = {"getitem", "view", "reshape", "narrow", "select", "transpose", "permute", "unsqueeze",
            "squeeze", "expand", "flatten", "unflatten", "as_strided", "chunk", "split", "t", "diagonal"}


def static_writes(gm: fx.GraphModule) -> WriteMap:
    """In-place-looking nodes (``x.op_()``, ``x[i] = y``, ``out=``, arguments an op's schema
    marks written), each charged to the value the written argument derives from through
    view-like nodes."""
    root_of: dict[str, str] = {}
    writers: dict[str, list[str]] = {}
    for n in gm.graph.nodes:
        first = n.args[0] if n.args and isinstance(n.args[0], fx.Node) else None
        name = str(n.target) if n.op == "call_method" else getattr(n.target, "__name__", "")
        view = first is not None and (name in _VIEWISH or n.target is operator.getitem)
        root_of[n.name] = root_of.get(first.name, first.name) if view and first is not None else n.name
        for t in _static_targets(n, name, first):
            writers.setdefault(root_of.get(t.name, t.name), []).append(n.name)
    return WriteMap({k: tuple(v) for k, v in writers.items()}, root_of, how="node scan")


def _static_targets(n: fx.Node, name: str, first: fx.Node | None) -> list[fx.Node]:
    if n.op not in ("call_method", "call_function"):
        return []
    targets = [n.kwargs["out"]] if isinstance(n.kwargs.get("out"), fx.Node) else []
    in_place = (name.endswith("_") and not name.endswith("__")) or n.target is operator.setitem or name == "__setitem__"
    if first is not None and in_place:
        targets.append(first)
    target = n.target
    schema = getattr(target, "_schema", None) or getattr(getattr(target, "default", None), "_schema", None)
    if schema is not None:
        for i, a in enumerate(schema.arguments):
            v = n.args[i] if i < len(n.args) else n.kwargs.get(a.name)
            if a.alias_info is not None and a.alias_info.is_write and isinstance(v, fx.Node):
                targets.append(v)
    return targets
