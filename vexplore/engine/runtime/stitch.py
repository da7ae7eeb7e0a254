"""Stitching: the plain callable that runs the pieces in order.

The parent GraphModule from split_module already calls its pieces in order; stitching puts each
compiled piece's callable in the parent's instance ``__dict__`` under the piece's name, which
Python finds before nn.Module's submodule lookup. Without CUDA graphs the graph runs the parent's
code as a plain function (``stitched``), bound to the parent: no torch.fx lazy-forward stub and
no nn.Module ``__call__`` chain, so the per-call overhead is one generated function plus one small
wrapper per piece. The GraphRunner Dynamo calls adds no frame of its own.
"""
from __future__ import annotations

import contextlib
import itertools
import linecache
import types
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.fx as fx

from .. import _torch_compat as tc


def normalize_output(gm: fx.GraphModule) -> tuple[fx.GraphModule, bool]:
    """A copy of ``gm`` that returns a tuple, and whether the original returned a single value.

    Inductor wants tuple outputs, and a loaded artifact returns a list where the fresh one may
    have returned a tensor; compiling the tuple form and unwrapping it (``unwrap``) keeps each
    piece's output structure the same for fresh, loaded and eager callables.
    """
    g = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    single = False
    for n in gm.graph.nodes:
        if n.op == "output":
            val = n.args[0]
            single = not isinstance(val, (tuple, list))
            g.output(fx.map_arg((val,) if single else tuple(val), lambda x: env[x]))
        else:
            env[n] = g.node_copy(n, lambda x: env[x])
    return fx.GraphModule(gm, g), single


def token_positions(inputs: Sequence[Any], token: Any) -> list[tuple[int, int | None]]:
    """(arg, dim) of every input that carries the token symbol (dim None for a SymInt arg).

    Inputs whose size is exactly the token count come first, so ``[0]`` reads the token count
    itself (not, say, 3 * tokens) wherever some input has it.
    """
    exact: list[tuple[int, int | None]] = []
    derived: list[tuple[int, int | None]] = []
    if token is None:
        return exact
    for i, x in enumerate(inputs):
        dims = [(None, x)] if isinstance(x, torch.SymInt) else list(enumerate(x.shape)) if isinstance(x, torch.Tensor) else []
        for d, s in dims:
            e = tc.sym_expr(s)
            if e == token:
                exact.append((i, d))
                break
            if token in getattr(e, "free_symbols", ()):
                derived.append((i, d))
                break
    return exact + derived


def unwrap(fn: Callable[..., Any], single: bool) -> Callable[..., Any]:
    """The piece's original calling convention around a tuple-returning callable."""
    if not single:
        return fn

    def one(*args: Any) -> Any:
        return fn(*args)[0]
    return one


class SizeDispatch:
    """Runs the static compile for a call's exact token count, else the general compile."""

    __slots__ = ("general", "by_size", "arg", "dim")

    def __init__(self, general: Callable[..., Any], by_size: dict[int, Callable[..., Any]], arg: int, dim: int | None) -> None:
        self.general, self.by_size, self.arg, self.dim = general, by_size, arg, dim

    def size_of(self, args: tuple[Any, ...]) -> int:
        a = args[self.arg]
        return int(a) if self.dim is None else a.shape[self.dim]

    def __call__(self, *args: Any) -> Any:
        return self.by_size.get(self.size_of(args), self.general)(*args)


class GraphRunner:
    """What the backend hands Dynamo: an indirection that ``recompile`` can re-point.

    Each runner has a class of its own whose ``__call__`` is ``fn`` itself (a staticmethod), so
    Python calls ``fn`` straight from the runner's type slot: re-pointable, yet no Python frame of
    its own between Dynamo's frame and the stitched code.
    """

    __slots__ = ()

    def __new__(cls, fn: Callable[..., Any]) -> "GraphRunner":
        self = object.__new__(type(cls.__name__, (cls,), {"__slots__": (), "__module__": cls.__module__}))
        self.fn = fn
        return self

    @property
    def fn(self) -> Callable[..., Any]:
        return type(self).__dict__["__call__"].__func__

    @fn.setter
    def fn(self, fn: Callable[..., Any]) -> None:
        type(self).__call__ = staticmethod(fn)


def install(parent: fx.GraphModule, runners: dict[str, Callable[..., Any]]) -> fx.GraphModule:
    for name, fn in runners.items():
        parent.__dict__[name] = fn
    return parent


_stitched_ids = itertools.count()


def stitched(parent: fx.GraphModule, runners: dict[str, Callable[..., Any]]) -> Callable[..., Any]:
    """The parent's code with ``runners`` installed, as a plain function bound to the parent.

    ``install(parent, runners).forward`` would be torch.fx's lazy-forward stub when the parent was
    never recompiled (it re-enters the module through nn.Module ``__call__``, five frames a call);
    this generates the parent's code once (public ``Graph.python_code``) and binds it, so a call is
    one frame that reads each piece's runner from the parent's ``__dict__``. The source is put in
    linecache under its own name so tracebacks show it.
    """
    install(parent, runners)
    code = parent.graph.python_code(root_module="self")
    name = f"<vexplore-stitched-{next(_stitched_ids)}>"
    linecache.cache[name] = (len(code.src), None, code.src.splitlines(True), name)
    scope: dict[str, Any] = dict(code.globals)
    exec(compile(code.src, name, "exec"), scope)   # noqa: S102 — torch.fx's own generated code
    return types.MethodType(scope["forward"], parent)


@contextlib.contextmanager
def piece_hooks(fn: Callable[..., Any], wrap: Callable[[str, Callable[..., Any]], Callable[..., Any]]) -> Iterator[bool]:
    """While inside: each piece runner of the stitched ``fn`` replaced by ``wrap(name, runner)``; after:
    the runners it had. For profiling (bench/profile.py puts a profiler range around each piece):
    nothing changes outside the ``with``, so the calls outside it pay nothing. ``fn`` itself stays
    the same object (it reads its runners from the parent's ``__dict__`` on every call).

    Yields whether ``fn`` is a stitched callable: a CUDA-graph runtime (or anything else) is left
    as it is and yields False.
    """
    parent = getattr(fn, "__self__", None)
    if not isinstance(fn, types.MethodType) or not isinstance(parent, fx.GraphModule):
        yield False
        return
    names = [n for n in parent._modules if n in parent.__dict__]
    kept = {n: parent.__dict__[n] for n in names}
    try:
        install(parent, {n: wrap(n, r) for n, r in kept.items()})
        yield True
    finally:
        install(parent, kept)
