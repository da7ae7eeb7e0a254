"""PieceJob and BuildResult: one unique piece at one size, and how it came to be.

A compile plans one PieceJob per unique piece and size (the general, dynamic compile and each
of ``compile_sizes``). The cache tiers resolve the jobs they hold; an executor and the fallback
ladder build the rest. Either way the outcome is one BuildResult: it is what the memory tier
keeps (``info``), and what becomes the Piece of the report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch.fx as fx

from ...cache.keys import CacheKey


@dataclass(frozen=True)
class PieceJob:
    """One unique piece at one size, to look up or build."""

    unique_key: str
    piece: int                     # index of the first piece with this unique key (events name it)
    graph: int
    size: int | None               # None: the general (dynamic) compile
    gm: fx.GraphModule             # normalised: returns a tuple (stitch.normalize_output)
    inputs: tuple[Any, ...]        # fake example inputs (general) or concrete ones (a size)
    fake_mode: Any                 # Dynamo's fake mode for the general compile; None for a size
    key: CacheKey                  # what the artifact is stored under
    grad: bool = False             # compile for autograd

    @property
    def id(self) -> str:
        return self.key.digest


@dataclass(frozen=True)
class Attempt:
    """One try at compiling a job with Inductor, wherever it ran."""

    status: str                    # ok | error | restart (Dynamo's signal to trace again; exc holds it) | timeout | crashed
    fn: Callable[..., Any] | None = None
    data: bytes | None = None      # artifact bytes, when they can be saved
    code: str | None = None        # the generated source
    error: str | None = None       # compilers.describe of the failure
    where: str | None = None       # None: this process, as configured; "in-process: <why no worker>"; "worker pid N"
    seconds: float = 0.0           # compile (and, from a worker, load) time
    exc: BaseException | None = field(default=None, compare=False)   # in-process failures only
    pass_graphs: tuple[tuple[str, str], ...] = ()   # the post-grad graph before the passes and after each


@dataclass(frozen=True)
class BuildResult:
    """How one job's callable came to be: compiled (and how), or loaded from a tier."""

    fn: Callable[..., Any]         # tuple-returning callable (the GraphModule itself when eager)
    compiler: str                  # "inductor" | "eager" (isolate: "inductor" when any part compiled)
    tier: str | None = None        # memory | disk | remote when loaded; "miss" when built; None: no cache
    fallback_reason: str | None = None
    isolated: tuple[str, ...] = ()  # nodes that run eagerly inside an otherwise compiled piece
    code: str | None = None
    data: bytes | None = None
    compiled_in: str | None = None
    seconds: float = 0.0           # compile or load work for this job
    miss_reason: str | None = None
    passes: tuple[tuple[str, str], ...] = ()   # post-grad passes Inductor ran on it: (name, uuid), in order
    pass_graphs: tuple[tuple[str, str], ...] = ()   # the graph they saw: ("input", text), then (pass, text after it)

    def info(self) -> dict[str, Any]:
        """What the memory tier keeps beside the callable, and artifact headers carry."""
        return {"compiler": self.compiler, "reason": self.fallback_reason, "isolated": list(self.isolated),
                "code": self.code, "compiled_in": self.compiled_in, "passes": [list(p) for p in self.passes],
                "pass_graphs": [list(p) for p in self.pass_graphs]}

    @classmethod
    def from_info(cls, fn: Callable[..., Any], info: Mapping[str, Any], tier: str, seconds: float) -> "BuildResult":
        return cls(fn, info.get("compiler", "inductor"), tier, info.get("reason"), tuple(info.get("isolated", ())),
                   info.get("code"), seconds=seconds, passes=tuple(tuple(p) for p in info.get("passes") or ()),
                   pass_graphs=tuple(tuple(p) for p in info.get("pass_graphs") or ()))
