"""Emergency fallback: a compiled piece that raises at call time runs eagerly from then on.

Compiling can succeed and the compiled code still fail when called: a custom op whose fake
kernel disagrees with its real one (Inductor asserts the strides it was promised), a kernel that
meets an input it was not built for. Such a failure must not take the model down. Each compiled
piece's runner is wrapped; on an exception the piece's own GraphModule (the eager reference) runs
the call, and — if eager succeeds where the compiled code failed — the piece stays eager for
good, with a VexploreFallbackWarning naming it and the error, and a RuntimeFallback on the
model (``cm.runtime_fallbacks``). If eager fails too, the error is the call's, not the
compile's: it is raised and nothing switches.

A piece that writes its inputs in place is not run again after a failure: the compiled code
may have done part of the writes, and repeating them could apply them twice. It switches to
eager for later calls and this call raises, saying so.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ...errors import VexploreError, VexploreFallbackWarning
from ...monitor.report import Piece


@dataclass(frozen=True)
class RuntimeFallback:
    """A compiled piece that raised at call time and runs eagerly since."""

    graph: int
    piece: int
    name: str                # the piece's name in the graph (submod_N)
    error_class: str
    error: str               # the exception's message (first line)
    retried: bool            # this call was run again eagerly (False: the piece writes inputs)

    def __str__(self) -> str:
        return f"graph {self.graph} piece {self.piece} ({self.name}): {self.error_class}: {self.error}"


class Guarded:
    """A compiled piece's runner that falls back to ``eager`` for good when it raises at call time."""

    __slots__ = ("fn", "eager", "piece", "on_fallback")

    def __init__(self, fn: Callable[..., Any], eager: Callable[..., Any], piece: Piece, graph: int,
                 on_fallback: Callable[[RuntimeFallback], None] | None) -> None:
        self.fn, self.eager, self.on_fallback = fn, eager, on_fallback
        self.piece = (graph, piece.index, piece.name, piece.writes)

    def __call__(self, *args: Any) -> Any:
        try:
            return self.fn(*args)
        except Exception as e:   # noqa: BLE001 — any failure of compiled code is a reason to fall back
            return self._fall_back(e, args)

    def _fall_back(self, err: Exception, args: tuple[Any, ...]) -> Any:
        graph, index, name, writes = self.piece
        first = (str(err).strip().splitlines() or [""])[0][:300]
        if writes:
            out, retried = None, False
        else:
            out, retried = self.eager(*args), True   # raises if eager fails too: then the call is at fault
        self.fn = self.eager
        fb = RuntimeFallback(graph, index, name, type(err).__name__, first, retried)
        if self.on_fallback is not None:
            self.on_fallback(fb)
        then = ("this call ran it eagerly" if retried else
                f"it writes {', '.join(writes)} in place and may have written part of it, so this call was not "
                "run again")
        warnings.warn(f"vexplore: {fb} — the compiled piece raised at call time; it runs eagerly from now on "
                      f"({then}).", VexploreFallbackWarning, stacklevel=2)
        if not retried:
            raise VexploreError(f"vexplore: {fb}. The compiled piece raised at call time after it may have written "
                                f"{', '.join(writes)}; call again: the piece runs eagerly from now on.") from err
        return out


def guard(runners: Mapping[str, Callable[..., Any]], pieces: Sequence[Piece], eager: Mapping[str, Callable[..., Any]],
          graph: int, on_fallback: Callable[[RuntimeFallback], None] | None) -> dict[str, Callable[..., Any]]:
    """``runners`` with each compiled piece's wrapped in a Guarded (split ops run eagerly already)."""
    out = dict(runners)
    for p in pieces:
        if p.kind == "compiled" and p.name in eager:
            out[p.name] = Guarded(runners[p.name], eager[p.name], p, graph, on_fallback)
    return out
