"""Piece and CompileReport: everything one compile produced, as frozen, JSON-ready data.

The UI draws only these objects; it never reaches into the engine.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .events import CompileEvent
from .persist import from_jsonable, read_report, to_jsonable, write_report
from .phases import derive_phases
from .profile import RuntimeCounters, RuntimeProfile
from .trace import write_chrome_trace
from .tuning import TuneRecord

COUNTER_KEYS = (
    "graphs_seen", "pieces", "compiled_pieces", "unique_pieces", "inductor_compiles",
    "eager_compiles", "cache_hits_memory", "cache_hits_disk", "cache_hits_remote", "cache_misses",
    "fallbacks", "cudagraph_captures",
    # beyond the public list
    "isolated_nodes", "conservative_retries", "validation_mismatches", "cache_bytes_written",
    "cache_bytes_read", "cache_rejected", "worker_compiles", "worker_timeout", "worker_crashed",
    # Inductor compiles in this process that Inductor's own caches served or missed (torch's counters)
    "fxgraph_cache_hits", "fxgraph_cache_misses", "aot_autograd_cache_hits", "aot_autograd_cache_misses",
)


@dataclass(frozen=True)
class CompileWarning:
    """A warning of one compile. ``kind`` says what, for code (no_split, autograd, cudagraph_skip,
    cudagraph, validation, size_one, decode_trace,
    fast_path, split_op_missing, token_specialized); ``message`` says it to the user (``str(w)``; ``"text" in w`` searches it)."""

    kind: str
    message: str
    graph: int | None = None
    piece: int | None = None
    # split_op_missing / no_split: the split ops the user named that match no node, and for each the
    # closest name the graph calls (if any), as code reads them; the message says the same in words
    ops: tuple[str, ...] = ()
    suggested: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message

    def __contains__(self, text: str) -> bool:
        return text in self.message

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PieceNode:
    """One node of a piece, for the graph view (name, op, target, shape, module path, source)."""

    name: str
    op: str
    target: str
    shape: str | None = None
    dtype: str | None = None
    module: str | None = None
    source: str | None = None
    inputs: tuple[str, ...] = ()
    code: str | None = None          # the source line itself (the line after ``source`` in the trace)


@dataclass(frozen=True)
class Cut:
    """Why a piece begins where it does: the cut after ``after_node`` that starts it, the split
    policy that chose it ("ops": a split op begins or ends there; "repeats"; "memory") and why."""

    policy: str                     # "ops" | "repeats" | "memory"
    reason: str                     # e.g. "repeats: block blocks.3 begins (12 identical blocks of 5 nodes in blocks)"
    after_node: str                 # the graph node the cut follows (Dynamo's node name)
    crossing_tensors: int = 0       # values computed before the cut and used after it
    crossing_bytes: int = 0         # their estimated size (symbolic sizes at the values traced)


@dataclass(frozen=True)
class Fallback:
    """Why a compiled piece did not compile as configured, as fields code branches on. ``text()`` is
    the prose, ``Piece.fallback_reason``: written from these fields, never read back.

    The ladder's rungs (engine/build/ladder.py): Inductor, Inductor with conservative options, the
    failing op cut out to run eagerly (isolate), eager."""

    kind: str                        # the first try: "error" | "timeout" | "crashed" | "restart" (Dynamo's signal)
    rung: str                        # where it ended: "conservative" | "isolate" | "eager"
    error: str                       # the first failure: "category: ExcClass: first line"
    category: str = "other"          # its category: "unsupported op / lowering error" | "out of memory" | "timeout" |
                                     # "post-grad pass error" | "dynamo restart" | "other"
    cause: str | None = None         # what the user can fix: "c++ compiler" | "triton" | "inductor options" | None
    op: str | None = None            # the op Inductor could not lower (ns::op.overload), when known
    retry_error: str | None = None   # the conservative retry's failure, when it was tried and failed
    isolated: tuple[str, ...] = ()   # isolate: the nodes cut out (calling ``op``)
    failed_parts: tuple[tuple[str, int, str], ...] = ()   # isolate: sub-pieces that failed too: (name, nodes, error)
    compiled_parts: int = 0          # isolate: sub-pieces that compiled

    def text(self) -> str:
        """The prose a user reads (``Piece.fallback_reason``)."""
        if self.kind == "restart":
            return (f"dynamo restart: {self.error}; Inductor asked Dynamo to trace this graph again (a Python number "
                    "read after a graph break must be specialized), which only a model call can do; it runs eagerly "
                    "(correct). Call vx.compile(model) again to trace and compile it")
        if self.kind in ("timeout", "crashed"):
            return f"{self.kind}: {self.error}; ran eagerly"
        if self.rung == "conservative":
            return f"{self.error}; compiled with conservative Inductor options"
        why = self.retry_error or self.error
        if self.rung == "eager":
            return f"{why}; ran eagerly"
        text = f"{why}; isolated {', '.join(self.isolated)} ({self.op}) to run eagerly"
        for name, nodes, err in self.failed_parts:
            text += f"; sub-piece {name} ({nodes} nodes) failed too and runs eagerly ({err})"
        n = self.compiled_parts
        return text + ("; the rest compiled" if n and not self.failed_parts else
                       f"; {n} sub-piece(s) compiled" if n else "; nothing compiled")


@dataclass(frozen=True)
class Miss:
    """One cache miss of a piece at one size, as fields code counts; ``reason`` is the prose
    (``Piece.miss_reasons``)."""

    size: int | None                 # None: the general compile
    reason: str                      # the cache's explanation, as the user reads it
    differs: tuple[str, ...] = ()    # key parts the nearest stored key differs in ("config.mode", "inputs[0]",
                                     # "graph", "versions.torch", ...); empty: nothing stored to compare with
    rejected: tuple[str, ...] = ()   # tiers that refused an entry on the way (damaged, other format, failed to load)


@dataclass(frozen=True)
class Piece:
    """One part of a graph after splitting (each field is described beside it)."""

    index: int
    graph: int
    name: str
    kind: str                       # "compiled" | "split_op"
    nodes: int
    unique_key: str | None
    same_as: int | None
    compiler: str | None            # "inductor" | "eager"; None for split_op
    compile_s: float
    cache: str | None               # "memory" | "disk" | "remote" | "miss" | None
    fallback_reason: str | None
    split_ops: tuple[str, ...] = ()             # op names a split_op piece runs
    sizes: tuple[int | None, ...] = ()          # compiled sizes; None = the general compile
    cache_by_size: tuple[tuple[int | None, str | None], ...] = ()
    isolated: tuple[str, ...] = ()              # nodes cut out to run eagerly by the ladder
    validation: str | None = None               # "ok ...", "mismatch: ...", None when not validated
    max_rel_err: float | None = None
    code: str | None = None                     # Inductor's generated source, when it was kept
    graph_nodes: tuple[PieceNode, ...] = ()
    input_shapes: tuple[str, ...] = ()
    miss_reasons: tuple[str, ...] = ()
    compiled_in: str | None = None              # "worker pid N", or why it compiled in this process
    writes: tuple[str, ...] = ()                # graph inputs it writes in place (buffers, arguments)
    cudagraph_skip_reason: str | None = None    # why it runs without a CUDA graph the config asked for
    passes: tuple[tuple[str, str], ...] = ()    # post-grad passes Inductor ran on it: (name, uuid), in order
    # the post-grad graph they saw: ("input", text), then (pass name, text after it); empty when
    # Inductor's own cache served the compile (the passes did not run) or there are no passes
    pass_graphs: tuple[tuple[str, str], ...] = ()
    cut: Cut | None = None                      # why it begins here; None for a graph's first piece
    fallback: Fallback | None = None            # fallback_reason as fields (None in reports saved before format 2)
    misses: tuple[Miss, ...] = ()               # miss_reasons as fields (empty in reports saved before format 2)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["graph_nodes"] = [dataclasses.asdict(n) for n in self.graph_nodes]
        return d


@dataclass(frozen=True)
class CompileReport:
    """Everything one compile produced: pieces in execution order, events, counters."""

    pieces: tuple[Piece, ...]
    events: tuple[CompileEvent, ...]
    counters: dict[str, int]
    strategy: str                    # what was used: "full" | "piecewise" (several graphs: joined by ",")
    strategy_reason: str
    config: dict[str, Any]
    wall_s: float
    graph_breaks: tuple[str, ...] = ()
    warnings: tuple[CompileWarning, ...] = ()
    device: str = "cpu"
    versions: dict[str, str] = field(default_factory=dict)
    kind: str = "compile"            # "compile" (a model call) | "recompile"
    id: int = 0
    validation: tuple[str, ...] = ()  # validate=True: each graph end to end against eager, one line each
    phases: dict[str, float] = field(default_factory=dict)   # seconds by phase, adding up to wall_s (phases.py)
    profiles: tuple[RuntimeProfile, ...] = ()   # cm.profile(...) runs on this compile, newest last (monitor/profile.py)
    runtime: RuntimeCounters = field(default_factory=RuntimeCounters)   # CUDA-graph counts at the latest profile
    tunes: tuple[TuneRecord, ...] = ()   # vx.tune runs on this model that ended at this report, newest last (monitor/tuning.py)

    @property
    def unique_pieces(self) -> list[Piece]:
        return [p for p in self.pieces if p.kind == "compiled" and p.same_as is None]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (dicts, lists, strings, numbers): what ``save`` writes, so a
        loaded report's to_dict() equals the saved one's."""
        return to_jsonable({
            "id": self.id, "kind": self.kind, "strategy": self.strategy,
            "strategy_reason": self.strategy_reason, "config": self.config, "wall_s": self.wall_s,
            "device": self.device, "versions": dict(self.versions), "counters": dict(self.counters),
            "graph_breaks": list(self.graph_breaks), "warnings": [w.to_dict() for w in self.warnings],
            "validation": list(self.validation), "phases": dict(self.phases),
            "pieces": [p.to_dict() for p in self.pieces],
            "events": [e.to_dict() for e in self.events],
            "profiles": [p.to_dict() for p in self.profiles], "runtime": self.runtime.to_dict(),
            "tunes": [t.to_dict() for t in self.tunes],
        })

    def save(self, path: str | os.PathLike[str]) -> pathlib.Path:
        """Write this report to ``path`` (versioned JSON): everything the explorer shows, so
        ``vx.explore(vx.load_report(path))`` replays it anywhere, without the model or a GPU."""
        return write_report(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CompileReport":
        """The report ``to_dict()`` made (also after a JSON round trip); ``config`` stays as JSON gave it.
        A report saved before ``phases`` existed gets them derived from its events."""
        report = from_jsonable(cls, d)
        if "phases" not in d:
            report = dataclasses.replace(report, phases=derive_phases(report.events, report.wall_s))
        return report

    def to_chrome_trace(self, path: str | os.PathLike[str]) -> pathlib.Path:
        """Write this report's events as a Chrome trace (JSON trace events; chrome://tracing and
        https://ui.perfetto.dev open it): a track per phase, and one per compile worker process."""
        return write_chrome_trace(path, self.events, self.wall_s, f"vexplore report {self.id} ({self.kind})", self.profiles)

    def table(self) -> str:
        """A plain-text table of the pieces, as the CLI prints it."""
        head = f"{'#':>3} {'g':>2} {'kind':<9}{'nodes':>6}  {'same':>5}  {'compiler':<9}{'compile_s':>10}  {'cache':<7} note"
        rows = [head]
        for p in self.pieces:
            note = p.fallback_reason or (", ".join(p.split_ops) if p.kind == "split_op" else "")
            if p.writes:
                note = (note + "; " if note else "") + "writes " + ", ".join(p.writes)
            if p.validation and not p.validation.startswith("ok"):
                note = (note + "; " if note else "") + p.validation
            rows.append(f"{p.index:>3} {p.graph:>2} {p.kind:<9}{p.nodes:>6}  "
                        f"{'' if p.same_as is None else p.same_as:>5}  {p.compiler or '-':<9}"
                        f"{p.compile_s:>10.3f}  {p.cache or '-':<7} {note}")
        return "\n".join(rows)


def load_report(path: str | os.PathLike[str]) -> CompileReport:
    """``vx.load_report(path)``: the report ``report.save(path)`` wrote. Needs no model and no GPU;
    a file of another format version, or not a report, raises ReportFileError saying what to do."""
    return CompileReport.from_dict(read_report(path))


def derive(pieces: Sequence[Piece], events: Sequence[CompileEvent], graphs: int, configured: str,
           validation: Sequence[str] = ()) -> dict[str, int]:
    """Every counter of a report, from its pieces and events alone (the public list, and more).

    Counted over unique work: a same_as piece adds only to pieces/compiled_pieces. Per-piece
    facts (cache tier per size, compiler, isolation, fallback, validation) come from the pieces;
    what a step did (Inductor compiles, retries, worker outcomes, bytes, captures) from the
    ``counts`` its event carries. ``configured``: the compiler the config asked for.
    """
    c = dict.fromkeys(COUNTER_KEYS, 0)
    c["graphs_seen"] = graphs
    c["pieces"] = len(pieces)
    compiled = [p for p in pieces if p.kind == "compiled"]
    c["compiled_pieces"] = len(compiled)
    c["unique_pieces"] = len({p.unique_key for p in compiled})
    for p in compiled:
        c["validation_mismatches"] += bool(p.validation and p.validation.startswith("mismatch"))
        if p.same_as is not None:
            continue
        c["eager_compiles"] += p.compiler == "eager"
        c["isolated_nodes"] += len(p.isolated)
        c["fallbacks"] += p.fallback_reason is not None and (p.compiler != configured or bool(p.isolated))
        for _, tier in p.cache_by_size:
            if tier == "miss":
                c["cache_misses"] += 1
            elif tier in ("memory", "disk", "remote"):
                c[f"cache_hits_{tier}"] += 1
    c["validation_mismatches"] += sum(line.split(": ", 1)[-1].startswith("mismatch") for line in validation)
    for e in events:
        for k, v in e.counts.items():
            c[k] = c.get(k, 0) + v
    return c
