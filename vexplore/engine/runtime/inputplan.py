"""InputPlan: how each input of a graph reaches its CUDA-graph replays.

- **At its own address** (``fixed``): parameters, module buffers, and arguments the graph
  writes in place whose shape does not depend on the token count (a KV cache passed at every
  call). The captured kernels read and write the caller's own tensor, so in-place writes land
  where the caller sees them and nothing is copied. When such an input moves (a weight swapped,
  a rotary cache rebuilt at the same shape, a new KV cache per ``generate()`` call) each size is
  captured again at the new address at its next call, and captures holding the old address are
  dropped; an input that moves again within ``REBIND_CALLS`` calls of its last move (a new tensor
  every call or so) is copied from then on (``moved``): a capture per call would cost more.
- **Copied** (``copied``): every other tensor (token-dependent activations, other arguments)
  has a buffer per capture size, copied in when a call passes another tensor and copied back
  after the replay when the graph writes it.

"Token-dependent" means a dim holds the token symbol, or another symbol that had the same value
when Dynamo traced (positions, masks: Dynamo does not always unify them with the tokens). A
capture of size ``s`` gives all of them ``s``; a call whose shapes disagree runs without
graphs, so a wrong guess costs speed, never correctness.

**Which sizes are captured when** (``plan_sizes``, a ``SizePlan``; decided without a GPU). A
capture runs the graph (warm-ups, then the replay that fills the outputs) on the inputs in hand,
and what it writes into an input that outlives the call (a KV cache, its length counter) is put
back afterwards. Putting back cannot undo a write past the end of a cache: on the GPU that is a
device assert that ends the process's CUDA context. So a size is captured ahead only when its
capture writes within what the call in hand writes; otherwise it is captured at its first call,
with that call (same size, same state: it writes what the call writes), or, when no call of
that size can fit the cache at all, never (it runs without graphs, saying why). Padding a call
up to a captured size is off for a graph that writes its inputs: the pad rows would be written
too (into the cache's next rows, past its end near the end, and its length advanced by them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from .. import _torch_compat as tc
from ..capture.writes import Reach


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


# An input used in place that moves again within this many calls (of any graph under CUDA graphs in the
# process: replay.CALLS) of its last move is copied from then on. A cache rebound per generation (tens of
# calls apart) keeps being captured in place.
REBIND_CALLS = 8


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
    last_move: dict[int, int] = field(default_factory=dict)   # fixed input -> the call count at its last move

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

    def count(self, args: Sequence[Any]) -> int | None:
        """The token count of a call with ``args`` (None for a static graph)."""
        at = self.size_at()
        if at is None:
            return None
        i, d = at
        return int(args[i]) if d is None else int(args[i].shape[d])

    def static_inputs(self, size: int | None, args: Sequence[Any]) -> list[Any]:
        """The graph inputs a capture of ``size`` uses: fixed ones as they are, the others in new
        buffers of the size's shape holding the leading rows of ``args`` where they fit (a capture
        of the call's size or less then sees the call's first positions, so it writes a part of
        what the call writes), zeros where they do not."""
        static = list(args)
        for i in self.copied:
            a = args[i]
            shape = self.at_size(i, size) if i in self.dims else list(a.shape)
            if shape == list(a.shape):
                static[i] = a.clone()
                continue
            buf = torch.zeros(shape, dtype=a.dtype, device=a.device)
            if len(shape) == a.dim() and all(k <= m for k, m in zip(shape, a.shape)):
                buf.copy_(a[tuple(slice(0, k) for k in shape)])
            static[i] = buf
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

    def moved(self, i: int, ptr: int, current: dict[int, int], call: int) -> bool:
        """Note that input ``i`` now lives at ``ptr`` (``call``: the process's count of CUDA-graph calls); True when
        the plan changed: it moved again within REBIND_CALLS calls of its last move, and is copied
        from now on."""
        if current.get(i) == ptr:
            return False
        current[i] = ptr
        last, self.last_move[i] = self.last_move.get(i), call
        if last is None or call - last >= REBIND_CALLS:
            return False
        self.fixed.remove(i)
        self.copied.append(i)
        return True


@dataclass(frozen=True)
class SizeDecision:
    """When one capture size is captured, decided before any call, and why."""

    size: int | None
    when: str     # "now" (at compile, on the call in hand) | "first_call" (with the first call of that size) | "never"
    reason: str   # a code: see plan_sizes
    why: str      # the same in words, naming the inputs


@dataclass(frozen=True)
class SizePlan:
    """Per capture size (largest first) when it is captured, and whether calls pad up to one."""

    decisions: tuple[SizeDecision, ...]
    pad: bool
    pad_reason: str | None = None   # why padding was refused: "writes_inputs" | "derived_token_dim"
    pad_why: str | None = None

    def sizes(self, when: str) -> list[int | None]:
        return [d.size for d in self.decisions if d.when == when]


def plan_sizes(plan: InputPlan, sizes: Sequence[int | None], n: int | None, reach: Sequence[Reach],
               fresh: bool, pad: bool) -> SizePlan:
    """Decide each capture size of a graph (``n``: the token count of the call in hand; ``reach``:
    writes.token_reach; ``fresh``: the written inputs still hold the state Dynamo traced on, so
    the inputs in hand are a call's, not a later state). Only inputs written in place whose shape
    does not follow the token count matter (a cache; a token-sized written input is copied into a
    buffer of the capture's own size). Reasons, in the order they are tried:

    - ``no_held_writes`` (now): the graph writes no such input;
    - ``longer_than_cache`` (never): a capture of ``s`` tokens writes ``s`` rows along a dim with
      fewer, so no call of that size fits;
    - ``state_moved`` (first_call): such an input was written since the trace (a recompile): the
      state in hand is not a call's, and a capture on it may write where no call does;
    - ``within_call`` (now): ``s`` is the call's size or less (a static graph: its one size): the
      capture writes a part of what the call writes;
    - ``above_call`` (first_call): the input is written at as many rows as the call has tokens,
      and the room left there is only known to hold the call's ``n``;
    - ``fixed_extent`` (now): what the graph writes does not grow with the token count.
    """
    held = [i for i in sorted(plan.written) if i not in plan.dims]
    grows = [r for r in reach if r.tokens and r.input in held]
    short = min((r for r in grows if r.rows is not None), key=lambda r: r.rows or 0, default=None)
    names = ", ".join(plan.names[i] for i in held)
    out = []
    for s in sizes:
        within = s is None or (n is not None and s <= n)
        if not held:
            d = SizeDecision(s, "now", "no_held_writes", "the graph writes no input that outlives the call")
        elif short is not None and s is not None and s > (short.rows or 0) and not (fresh and within):
            d = SizeDecision(s, "never", "longer_than_cache",
                             f"not captured: a capture of {s} tokens writes {s} rows into {plan.names[short.input]} "
                             f"({short.node}), which has {short.rows} along dim {short.dim}; runs without CUDA graphs")
        elif not fresh:
            d = SizeDecision(s, "first_call", "state_moved",
                             f"the graph's inputs were written since Dynamo traced it ({names}): a capture now would "
                             "run on a later state than a call brings, so the first call of this size captures it")
        elif within:
            why = "the graph's one size, on the call in hand" if s is None else \
                f"at most the call in hand's {n} tokens: its capture writes a part of what that call writes"
            d = SizeDecision(s, "now", "within_call", why)
        elif grows:
            r = grows[0]
            d = SizeDecision(s, "first_call", "above_call",
                             f"{plan.names[r.input]} is written at as many rows as a call has tokens ({r.node}), and "
                             f"the room left there is only known to hold the call in hand's {n}")
        else:
            d = SizeDecision(s, "now", "fixed_extent", f"what the graph writes in place ({names}) does not grow with "
                             "the token count")
        out.append(d)
    return SizePlan(tuple(out), *_pad(plan, pad))


def _pad(plan: InputPlan, pad: bool) -> tuple[bool, str | None, str | None]:
    if not pad:
        return False, None, None
    if plan.written:   # pad rows would write too: a cache's next rows (past its end near it), and move its length on
        names = ", ".join(plan.names[i] for i in sorted(plan.written))
        return False, "writes_inputs", (f"cudagraph_pad is off for this graph: it writes {names} in place, and "
                                        "padding rows would write as well; sizes not captured run without graphs")
    if not plan.paddable():
        return False, "derived_token_dim", ("cudagraph_pad is off for this graph: an input's token dim is derived "
                                            "(e.g. 2*tokens), so rows cannot be padded")
    return True, None, None
