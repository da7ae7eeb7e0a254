"""CapturedGraph: a graph Dynamo handed the backend, with what vexplore learned about its inputs.

Kept with the CompiledModel so recompile never re-traces. Per input it knows the role
(parameter, buffer, argument, value) and a name the user recognises, which inputs the graph
writes in place (``writes.find_writes``), the token symbol, and whether the graph runs with
autograd. Each placeholder keeps its input's version counter at the trace (``writes.note_versions``),
so a later compile of the graph (a recompile) can tell that its inputs hold a later state.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from .. import _torch_compat as tc
from .writes import WriteMap, find_writes, note_versions


@dataclass
class CapturedGraph:
    """A graph Dynamo handed the backend, kept so recompile never re-traces."""

    gm: fx.GraphModule
    fake_inputs: list[Any]
    fake_mode: Any
    real_inputs: list[Any]
    token: Any                       # the sympy symbol of the token dim, None when static
    index: int = 0                   # its place among the model's captured graphs
    roles: tuple[str, ...] = ()      # per input: "parameter" | "buffer" | "argument" | "value"
    names: tuple[str, ...] = ()      # per input: the model's name for it, or Dynamo's placeholder name
    writes: WriteMap = field(default_factory=WriteMap)   # what the graph writes in place
    grad: bool = False               # traced with grad enabled and an input requiring grad
    runner: Callable[..., Any] | None = None   # runtime.stitch.GraphRunner, set by the model (runtime/ sits above capture/)
    graph_stats: Any = None          # cudagraph.GraphStats of the latest compile with CUDA graphs

    @classmethod
    def from_dynamo(cls, gm: fx.GraphModule, example_inputs: Sequence[Any], index: int = 0, model: Any = None,
                    token_dims: dict[str, int] | None = None) -> "CapturedGraph":
        """``model``: what vx.compile wraps (its parameters, buffers and tensor attributes are
        recognised among the inputs by identity); ``token_dims``: input name (``args[0]``,
        ``input_ids``) -> the dim vexplore marked dynamic (it names the token symbol)."""
        phs = [n for n in gm.graph.nodes if n.op == "placeholder"]
        fakes = [n.meta.get("example_value") for n in phs]
        fake_mode = tc.fake_mode_of(gm)
        if fake_mode is None or any(f is None for f in fakes):
            from torch._subclasses.fake_tensor import FakeTensorMode
            fake_mode = FakeTensorMode()
            fakes = [fake_mode.from_tensor(x) if isinstance(x, torch.Tensor) else x for x in example_inputs]
        real = [tc.sym_hint(x) if isinstance(x, torch.SymInt) else x for x in example_inputs]
        note_versions(gm, real)   # the call in hand's state: CUDA graphs capture ahead only on it (size_plan)
        roles, names = input_roles(phs, real, model)
        grad = torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in real)
        token = _token_symbol(fakes, names, token_dims or {})
        return cls(gm, list(fakes), fake_mode, real, token, index, roles, names, find_writes(gm, fakes, fake_mode), grad)

    def written_inputs(self) -> dict[int, tuple[str, ...]]:
        """Input index -> the nodes that write it in place."""
        return self.writes.inputs(self.gm)


def _token_symbol(fakes: Sequence[Any], names: Sequence[str], marked: dict[str, int]) -> Any:
    """The token count's symbol: the dim vexplore marked dynamic on an input, when it is
    symbolic in this graph (Dynamo specializes a 1-token call; then there is none, even if
    another dim is dynamic). Without marks, the first symbol among the inputs' sizes."""
    if marked:
        for f, name in zip(fakes, names):
            dim = marked.get(name)
            if dim is not None and isinstance(f, torch.Tensor) and dim < f.dim():
                e = tc.sym_expr(f.shape[dim])
                if getattr(e, "is_Symbol", False):
                    return e
        return None
    for f in fakes:
        dims = [f] if isinstance(f, torch.SymInt) else list(f.shape) if isinstance(f, torch.Tensor) else []
        syms = [tc.sym_expr(d) for d in dims if isinstance(d, torch.SymInt)]
        if syms and getattr(syms[0], "is_Symbol", False):
            return syms[0]
    return None


def specialized_token(fakes: Sequence[Any], names: Sequence[str], marked: dict[str, int]) -> tuple[str, int, str] | None:
    """(input, dim, where) when a dim vexplore marked dynamic was specialized to a constant by a
    guard in the model's code: that graph serves one length only."""
    for f, name in zip(fakes, names):
        dim = marked.get(name)
        if dim is not None and isinstance(f, torch.Tensor) and dim < f.dim():
            where = tc.specialized_at(f.shape[dim])
            if where is not None:
                return name, dim, where
    return None


def token_count(real: Sequence[Any], names: Sequence[str], marked: dict[str, int]) -> int | None:
    """The token count of the call that traced the graph: the size of the first marked dim among
    its real inputs (None without one)."""
    for x, name in zip(real, names):
        dim = marked.get(name)
        if dim is not None and isinstance(x, torch.Tensor) and dim < x.dim():
            return int(x.shape[dim])
    return None


def input_roles(placeholders: Sequence[fx.Node], real: Sequence[Any], model: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Per graph input, its role and name: "parameter" / "buffer" (registered buffers and plain
    tensor attributes of the model's modules, which keep their address between calls) by
    identity against ``model``, "argument" for other tensors, "value" for the rest."""
    params: dict[int, str] = {}
    state: dict[int, str] = {}
    if isinstance(model, torch.nn.Module):
        params = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        state = {id(b): n for n, b in model.named_buffers(remove_duplicate=False)}
        for prefix, mod in model.named_modules():
            for k, v in vars(mod).items():
                if isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter):
                    state.setdefault(id(v), f"{prefix}.{k}" if prefix else k)
    roles, names = [], []
    for ph, r in zip(placeholders, real):
        if not isinstance(r, torch.Tensor):
            roles.append("value")
        elif id(r) in params or isinstance(r, torch.nn.Parameter):
            roles.append("parameter")
        else:
            roles.append("buffer" if id(r) in state else "argument")
        names.append(params.get(id(r)) or state.get(id(r)) or _input_name(ph))
    return tuple(roles), tuple(names)


_ARG = re.compile(r"^L_(args_(\d+)|kwargs_(\w+?))_$")


def _input_name(ph: fx.Node) -> str:
    """The caller's name for a graph input: from its Dynamo source where Dynamo recorded one
    (``past_key_values.layers[0].keys``, never Dynamo's ``L_kwargs_past_key_values_layers_0_keys``),
    else from the placeholder (``args[0]``, ``input_ids``)."""
    from .explain import source_name   # explain names sources in the user's terms; it imports nothing of ours

    source = tc.placeholder_source(ph)
    return source_name(source, str(ph.target)) if source else _arg_name(str(ph.target))


def _arg_name(target: str) -> str:
    """``args[0]`` or the keyword for what the caller passed (Dynamo names them L_args_0_,
    L_kwargs_cache_ in vexplore's entry function), else Dynamo's own placeholder name."""
    m = _ARG.match(target)
    if m is None:
        return target
    return f"args[{m.group(2)}]" if m.group(2) is not None else m.group(3)
