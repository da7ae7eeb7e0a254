"""Stitching: the plain callable that runs the pieces in order.

The parent GraphModule from split_module already calls its pieces in order; stitching puts each
compiled piece's callable in the parent's instance ``__dict__`` under the piece's name, which
Python finds before nn.Module's submodule lookup. The per-call overhead is the parent's
generated forward plus one small wrapper per piece.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from . import _torch_compat as tc


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


def token_dims(inputs: Sequence[Any], token: Any) -> list[tuple[int, int | None]]:
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
    """What the backend hands Dynamo: an indirection that ``recompile`` can re-point."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)


def install(parent: fx.GraphModule, runners: dict[str, Callable[..., Any]]) -> fx.GraphModule:
    for name, fn in runners.items():
        parent.__dict__[name] = fn
    return parent
