"""PieceJob and BuildResult: one unique piece at one size, and how it came to be.

A compile plans one PieceJob per unique piece and size (the general, dynamic compile and each
of ``compile_sizes``). The cache tiers resolve the jobs they hold; an executor and the fallback
ladder build the rest: each try is an Attempt (wherever it ran), and the outcome is one
BuildResult: what the memory tier and the artifact keep (``to_meta``/``from_meta``), and what
becomes the Piece of the report.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch.fx as fx

from ...cache.keys import CacheKey
from ...monitor.report import Fallback, Miss


@dataclass(frozen=True)
class PieceJob:
    """One unique piece at one size, to look up or build."""

    unique_key: str
    piece: int | None              # index of the first piece with this unique key (events name it); None: the graph compiled whole
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
    """One try at compiling a job with Inductor, wherever it ran: this process, or a compile worker
    (which sends it back over its pipe, without ``fn`` and ``exc``)."""

    # ok | error | restart (Dynamo's signal to trace again; exc holds it) | unsaveable | timeout | crashed
    # | unreached (a Ray task that failed before it compiled: compiled in this process instead)
    status: str
    fn: Callable[..., Any] | None = None
    data: bytes | None = None      # artifact bytes, when they can be saved
    code: str | None = None        # the generated source
    error: str | None = None       # compilers.describe of the failure
    where: str | None = None       # None: this process, as configured; "in-process: <why no worker>"; "worker pid N"; "ray node H worker pid N"
    seconds: float = 0.0           # compile (and, from a worker, load) time
    exc: BaseException | None = field(default=None, compare=False)   # in-process failures only
    pass_graphs: tuple[tuple[str, str], ...] = ()   # the post-grad graph before the passes and after each
    failure: Failure | None = None  # a failure's category, cause and op, read off the exception where it was caught
    job: str | None = None         # a worker's: the job id it answers
    pid: int | None = None         # a worker's: its pid (None: this process)
    started: float = 0.0           # a worker's: perf_counter in the parent when the job went to it
    rss_peak_mb: float | None = None   # a worker's peak RSS
    error_class: str | None = None     # the exception class of an error or restart


@dataclass(frozen=True)
class Failure:
    """What an exception said, as fields (compilers.failure reads it once, where it was caught)."""

    category: str                  # compilers.classify
    cause: str | None = None       # "c++ compiler" | "triton" | "inductor options" | None
    op: str | None = None          # the op Inductor could not lower, when it names one


@dataclass(frozen=True)
class BuildResult:
    """How one job's callable came to be: compiled (and how), or loaded from a tier. The one record
    of a piece's outcome at one size: the memory tier keeps it (``to_meta``), artifacts carry it, and
    the report's Piece is made of it. ``to_meta``/``from_meta`` are its one serialisation pair."""

    fn: Callable[..., Any]         # tuple-returning callable (the GraphModule itself when eager)
    compiler: str                  # "inductor" | "eager" (isolate: "inductor" when any part compiled)
    tier: str | None = None        # memory | disk | remote when loaded; "miss" when built; None: no cache
    fallback: Fallback | None = None   # why it did not compile as configured (fields; .text() is the prose)
    isolated: tuple[str, ...] = ()  # nodes that run eagerly inside an otherwise compiled piece
    code: str | None = None
    data: bytes | None = None
    compiled_in: str | None = None
    seconds: float = 0.0           # compile or load work for this job
    miss: Miss | None = None       # why the tiers did not have it (when they were asked)
    passes: tuple[tuple[str, str], ...] = ()   # post-grad passes Inductor ran on it: (name, uuid), in order
    pass_graphs: tuple[tuple[str, str], ...] = ()   # the graph they saw: ("input", text), then (pass, text after it)

    @property
    def fallback_reason(self) -> str | None:
        return self.fallback.text() if self.fallback is not None else None

    def to_meta(self) -> dict[str, Any]:
        """JSON-ready: what the memory tier keeps beside the callable and an artifact's header carries."""
        return {"compiler": self.compiler, "isolated": list(self.isolated), "code": self.code,
                "passes": [list(p) for p in self.passes],
                "pass_graphs": [list(p) for p in self.pass_graphs],
                "fallback": dataclasses.asdict(self.fallback) if self.fallback is not None else None}

    @classmethod
    def from_meta(cls, fn: Callable[..., Any], meta: Mapping[str, Any], tier: str, seconds: float,
                  code: str | None = None) -> "BuildResult":
        """Inverse of ``to_meta``: the record of a callable a tier loaded (``code``: what loading it generated)."""
        fb = meta.get("fallback")
        fallback = None if not fb else Fallback(**{**fb, "isolated": tuple(fb.get("isolated", ())),
                                                   "failed_parts": tuple(tuple(x) for x in fb.get("failed_parts", ()))})
        return cls(fn, meta.get("compiler", "inductor"), tier, fallback, tuple(meta.get("isolated", ())),
                   code or meta.get("code"), seconds=seconds,
                   passes=tuple(tuple(p) for p in meta.get("passes") or ()),
                   pass_graphs=tuple(tuple(p) for p in meta.get("pass_graphs") or ()))
