"""InputPlan: how each input of a graph reaches its CUDA-graph replays.

- **At its own address** (``fixed``): parameters, module buffers, and arguments the graph
  writes in place whose shape does not depend on the token count (a KV cache passed at every
  call). The captured kernels read and write the caller's own tensor, so in-place writes land
  where the caller sees them and nothing is copied. When such an input moves (a weight swapped,
  a rotary cache rebuilt at the same shape) its size is captured again; an input that moves a
  second time is copied from then on (``moved``).
- **Copied** (``copied``): every other tensor (token-dependent activations, other arguments)
  has a buffer per capture size, copied in when a call passes another tensor and copied back
  after the replay when the graph writes it.

"Token-dependent" means a dim holds the token symbol, or another symbol that had the same value
when Dynamo traced (positions, masks: Dynamo does not always unify them with the tokens). A
capture of size ``s`` gives all of them ``s``; a call whose shapes disagree runs without
graphs, so a wrong guess costs speed, never correctness.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from . import _torch_compat as tc


@dataclass(frozen=True)
class GraphInputs:
    """What CUDA graphs need to know of one captured graph's inputs."""

    real: Sequence[Any]                    # the inputs of the call that compiled the graph
    fake: Sequence[Any]                    # Dynamo's fake values of them
    token: Any                             # the token symbol, None when the graph is static
    roles: Sequence[str]                   # "parameter" | "buffer" | "argument" | "value", per input
    names: Sequence[str]                   # per input, as the report names them
    written: Mapping[int, tuple[str, ...]] = field(default_factory=dict)   # input -> nodes writing it
    hints: Mapping[Any, int] = field(default_factory=dict)                 # symbol -> value when traced


def _symbols(e: Any) -> set[Any]:
    return set(getattr(e, "free_symbols", ()))


@dataclass
class InputPlan:
    """How each graph input reaches a replay (see the module docstring)."""

    fixed: list[int]                       # used at their own address, checked per replay
    copied: list[int]                      # copied into buffers of the capture
    scalars: list[int]                     # ints that are not token-dependent: a call must match the capture
    dims: dict[int, int | None]            # token-dependent inputs -> a token dim (None: an int input)
    written: set[int]
    names: Sequence[str]
    exprs: dict[int, Any] = field(default_factory=dict)     # token-dependent input -> shape (or value) exprs
    tied: frozenset[Any] = frozenset()                      # the symbols that stand for the token count
    hints: Mapping[Any, int] = field(default_factory=dict)
    moves: Counter = field(default_factory=Counter)

    @classmethod
    def make(cls, g: GraphInputs) -> "InputPlan":
        hints = dict(g.hints)
        tied = frozenset(s for s, v in hints.items() if g.token is not None and v == hints.get(g.token, -1))
        tied = tied | ({g.token} if g.token is not None else set())
        fixed, copied, scalars, dims, exprs = [], [], [], {}, {}
        for i, (r, f) in enumerate(zip(g.real, g.fake)):
            if isinstance(r, torch.Tensor):
                shape = [tc.sym_expr(d) for d in f.shape]
                tok = [k for k, e in enumerate(shape) if _symbols(e) & tied]
                if tok:
                    exact = [k for k in tok if shape[k] in tied]
                    dims[i], exprs[i] = (exact or tok)[0], shape
                stable = g.roles[i] in ("parameter", "buffer") or i in g.written
                (fixed if stable and not tok else copied).append(i)
            elif isinstance(r, int) and not isinstance(r, bool):
                e = tc.sym_expr(f)
                if _symbols(e) & tied:
                    dims[i], exprs[i] = None, e
                else:
                    scalars.append(i)
        return cls(fixed, copied, scalars, dims, set(g.written), g.names, exprs, tied, hints)

    def size_at(self) -> tuple[int, int | None] | None:
        """(input, dim) that holds the call's token count exactly, or None for a static graph."""
        for i, d in self.dims.items():
            e = self.exprs[i] if d is None else self.exprs[i][d]
            if e in self.tied:
                return i, d
        return None

    def paddable(self) -> bool:
        """Padding cuts rows along each input's token dim: only when every such dim is the count itself."""
        return all((self.exprs[i] if d is None else self.exprs[i][d]) in self.tied for i, d in self.dims.items())

    def at_size(self, i: int, size: int) -> Any:
        """Input ``i``'s shape (or value, for an int) in a capture of ``size`` tokens."""
        subs = dict(self.hints)
        subs.update(dict.fromkeys(self.tied, size))

        def ev(e: Any) -> int:
            return int(e.xreplace(subs)) if hasattr(e, "xreplace") else int(e)
        e = self.exprs[i]
        return ev(e) if self.dims[i] is None else [ev(x) for x in e]

    def static_inputs(self, size: int | None, args: Sequence[Any], fill: bool) -> list[Any]:
        """The graph inputs a capture of ``size`` uses: fixed ones as they are, the others in new
        buffers of the size's shape (filled from ``args`` when ``fill`` and the shapes agree,
        zeros otherwise; fixed-shape copied inputs always start as a copy of ``args``)."""
        static = list(args)
        for i in self.copied:
            a = args[i]
            shape = self.at_size(i, size) if i in self.dims else list(a.shape)
            same = list(a.shape) == shape and (fill or i not in self.dims)
            static[i] = a.clone() if same else torch.zeros(shape, dtype=a.dtype, device=a.device)
        for i, d in self.dims.items():
            if d is None:
                static[i] = self.at_size(i, size)
        return static

    def skip_reason(self, real: Sequence[Any]) -> str | None:
        """Why this graph cannot be served by CUDA graphs at all, or None."""
        storages: dict[int, list[int]] = {}
        for i in self.fixed + self.copied:
            storages.setdefault(real[i].untyped_storage().data_ptr(), []).append(i)
        for group in storages.values():
            copied_writes = [i for i in group if i in self.written and i in self.copied]
            if len(group) > 1 and copied_writes:
                names = ", ".join(self.names[i] for i in group)
                return (f"inputs {names} share memory and {self.names[copied_writes[0]]} is written in place: "
                        "copying them into separate graph buffers would lose the write")
        return None

    def moved(self, i: int, ptr: int, current: dict[int, int]) -> bool:
        """Note that input ``i`` now lives at ``ptr``; True when the plan changed (it is copied from now)."""
        if current.get(i) == ptr:
            return False
        current[i] = ptr
        self.moves[i] += 1
        if self.moves[i] < 2:
            return False
        self.fixed.remove(i)
        self.copied.append(i)
        return True
