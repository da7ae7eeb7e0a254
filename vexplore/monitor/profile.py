"""RuntimeProfile and RuntimeCounters: where a compiled model's run time goes, as frozen, JSON-ready data.

A RuntimeProfile is what ``cm.profile(*inputs)`` measured (bench/profile.py says how): time per
call, the device's busy time and the host gaps between kernels, and one ``KernelRow`` per kernel
call site, mapped to the piece that ran it, the FX nodes it computes and the user's source lines.
It lives here, beside the report's other records, so a saved report carries its profiles and a
replayed report shows them without the model.

What "device" means:

- CUDA: the GPU. ``device_ms`` is the kernels' time on the GPU per call (the sum of their durations;
  kernels on several streams that overlap count twice).
- CPU: there is no separate device, so the "kernels" are the work the host does for the model: the
  C++ kernels Inductor generated and the aten ops the pieces call (each with the ops it calls in
  turn, e.g. ``aten::addmm`` with its ``aten::copy_``), and the split ops. ``device_ms`` is their
  time per call: the sum of those ops' self times. What remains of the span is the Python between
  them (the wrappers, Dynamo's guards, vexplore's stitched code): ``host_gap_ms``.

RuntimeCounters are the engine's CUDA-graph counts (replays, uncaptured calls, recaptures, padded
calls), read from each graph's stats; empty where nothing ran under CUDA graphs (the CPU).
This module reads the engine's objects by their fields only: monitor/ imports nothing of the engine.
"""
from __future__ import annotations

import dataclasses
import random
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from .persist import from_jsonable, to_jsonable

SizeCount = tuple[int | None, int]     # (size, count); size None: a graph without a token dim


@dataclass(frozen=True)
class KernelRow:
    """One kernel call site: the same kernel of the same piece, over the profiled calls.

    ``piece`` is the report's piece index (None: the kernel ran outside every piece, e.g. inside a
    whole-graph CUDA-graph replay); ``nodes`` the FX node names it computes (empty when not known);
    ``source_lines`` the user's ``"path:line"`` of those nodes (relative to the working directory or
    the module's root, never absolute). ``bytes``/``flops`` are estimated from the nodes' shapes and
    dtypes (``estimated``); ``gbps``/``tflops`` are those over ``mean_ms``; ``limit_share`` = the
    time at the device's roofline / the measured time (None where peaks are unknown: the CPU).
    """

    name: str
    piece: int | None
    nodes: tuple[str, ...]
    source_lines: tuple[str, ...]
    calls: int
    total_ms: float
    mean_ms: float
    bytes: int | None = None
    flops: int | None = None
    estimated: bool = True
    gbps: float | None = None
    tflops: float | None = None
    limit_share: float | None = None


@dataclass(frozen=True)
class Rollup:
    """Rows rolled up under one key (a piece index, or a source line): exact sums of the rows'
    ``total_ms``; ``mean_ms`` per profiled call; ``share`` of the profile's device time."""

    key: int | str | None
    total_ms: float
    mean_ms: float
    share: float
    kernels: int


@dataclass(frozen=True)
class TraceSlice:
    """One span of the profiled calls for the Chrome trace: ``track`` "call" (a whole call), "piece"
    (a piece's run, on the host) or "kernel"; ms from the first profiled call's start."""

    track: str
    name: str
    start_ms: float
    dur_ms: float
    call: int
    piece: int | None = None


BUILD_TOLERANCE = 0.05   # the rule: a profiling build's pieces within 5 % of the production build's


@dataclass(frozen=True)
class PieceCheck:
    """A piece's time per call (its run, host included) in the production build and in the profiling
    build that named its kernels: their agreement says the profiling build measured the same work.

    ``production_ms`` / ``profiling_ms``: the medians of the piece's runs in each build. The calls of the
    two builds alternate in one profiler session, each profiling call beside a production call (a
    pair). ``diff`` compares the builds' lower quintiles (p20 of the piece's runs: its time when the
    machine left it alone; a shared machine's stalls move medians far more), profiling / production - 1;
    ``diff_low``..``diff_high`` its 95 % interval (the pairs resampled, ``RESAMPLES`` times, seeded by
    the piece); ``ranges`` the profiler ranges per call the profiling build adds to the piece (one per
    C++ kernel call). Checks saved before pairs existed have ``pairs`` 0 and ``diff`` None.
    """

    piece: int
    production_ms: float
    profiling_ms: float
    pairs: int = 0
    diff: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None
    ranges: int = 0

    @classmethod
    def paired(cls, piece: int, pairs: Sequence[tuple[float, float]], ranges: int = 0) -> "PieceCheck":
        """From ``(production_ms, profiling_ms)`` of each pair of neighbouring calls."""
        a, b = [x for x, _ in pairs], [y for _, y in pairs]
        if not pairs:
            return cls(piece, 0.0, 0.0, 0, None, None, None, ranges)
        diff = _ratio(a, b)
        rng, n, boots = random.Random(piece), len(pairs), []
        for _ in range(RESAMPLES if diff is not None else 0):
            idx = rng.choices(range(n), k=n)
            r = _ratio([a[i] for i in idx], [b[i] for i in idx])
            if r is not None:
                boots.append(r)
        boots.sort()
        low, high = (boots[int(0.025 * len(boots))], boots[-1 - int(0.025 * len(boots))]) if boots else (None, None)
        return cls(piece, statistics.median(a), statistics.median(b), n, diff, low, high, ranges)

    def verdict(self, tolerance: float = BUILD_TOLERANCE) -> str:
        """"agrees": the interval of ``diff`` lies within ±tolerance; "differs": it lies wholly outside
        (the profiling build is slower, or faster, beyond the tolerance); "unresolved": neither (the
        calls were too noisy to tell, or the check predates pairs)."""
        if self.diff_low is None or self.diff_high is None:
            return "unresolved"
        if -tolerance <= self.diff_low and self.diff_high <= tolerance:
            return "agrees"
        if self.diff_low > tolerance or self.diff_high < -tolerance:
            return "differs"
        return "unresolved"


RESAMPLES = 200


def low_quintile(xs: Sequence[float]) -> float:
    """The p20 of ``xs`` (statistics.quantiles, exclusive method); a single value is itself."""
    return statistics.quantiles(xs, n=5)[0] if len(xs) > 1 else xs[0]


def _ratio(a: Sequence[float], b: Sequence[float]) -> float | None:
    la = low_quintile(a)
    return low_quintile(b) / la - 1.0 if la > 0 else None


def build_verdict(checks: Sequence[PieceCheck], tolerance: float = BUILD_TOLERANCE) -> str:
    """The profile's verdict over the pieces with at least 5 % of the production call time: "differs"
    if one differs, "agrees" if all agree, else "unresolved"; "" without checks."""
    total = sum(c.production_ms for c in checks)
    verdicts = [c.verdict(tolerance) for c in checks if c.production_ms > 0 and c.production_ms >= 0.05 * total]
    if not verdicts:
        return ""
    if "differs" in verdicts:
        return "differs"
    return "agrees" if all(v == "agrees" for v in verdicts) else "unresolved"


@dataclass(frozen=True)
class RuntimeCounters:
    """CUDA-graph counts over a model's graphs: captures, replays (in all and per capture size),
    calls that ran without graphs (and the sizes they came at), recaptures (an input's address
    moved), padded calls (replayed at a larger capture size). All zero where nothing ran under CUDA graphs."""

    captures: int = 0
    replays: int = 0
    replays_by_size: tuple[SizeCount, ...] = ()
    uncaptured_calls: int = 0
    uncaptured_sizes: tuple[SizeCount, ...] = ()
    recaptures: int = 0
    padded_calls: int = 0
    uncaptured_why: tuple[tuple[int | None, str], ...] = ()   # per size without a graph, why (first graph's words)

    @classmethod
    def of(cls, stats: Iterable[Any]) -> "RuntimeCounters":
        """The sum over graph stats objects (the engine's GraphStats; None for a graph without CUDA
        graphs), read by field. Per-size counts are read where the stats keep them
        (``replays_by_size`` / ``uncaptured_sizes``: dicts size -> count)."""
        total: dict[str, int] = dict.fromkeys(("captures", "replays", "uncaptured_calls", "recaptures", "padded_calls"), 0)
        by_size: dict[int | None, int] = {}
        uncaptured: dict[int | None, int] = {}
        why: dict[int | None, str] = {}
        for s in stats:
            if s is None:
                continue
            for k in total:
                total[k] += int(getattr(s, k, 0) or 0)
            _add(by_size, getattr(s, "replays_by_size", None))
            _add(uncaptured, getattr(s, "uncaptured_sizes", None))
            for n in getattr(s, "uncaptured_sizes", None) or {}:
                if n not in why and callable(getattr(s, "why_uncaptured", None)):
                    why[n] = s.why_uncaptured(n)
        return cls(replays_by_size=_pairs(by_size), uncaptured_sizes=_pairs(uncaptured),
                   uncaptured_why=tuple(sorted(why.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))), **total)

    @property
    def empty(self) -> bool:
        return self == RuntimeCounters()

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RuntimeCounters":
        return from_jsonable(cls, dict(d), "runtime")


@dataclass(frozen=True)
class RuntimeProfile:
    """Where the run time of ``calls`` warm calls went (see the module docstring for "device").

    ``wall_ms``: median time per call without the profiler; ``profiled_wall_ms``: the same under it.
    ``device_ms``: median busy time per call. ``span_ms``: median time per call from its first kernel's
    start (on CUDA: from the call's entry into its first graph) to its last kernel's end, measured as
    ``span_timer`` says: "cuda events" (CUDA: calls without the profiler, whose own per-launch work widens
    the gaps between kernels) or "profiler trace" (the CPU; a profile saved before the events: "").
    ``traced_span_ms``: the same span in the profiler's trace. ``host_gap_ms``: span minus device busy
    time, per call in the trace, or of the medians with CUDA events (the device waiting for the host).
    ``lead_in_ms``: median host time from the call's start to its first graph (Dynamo's guards, the
    model's Python around the graph), which CUDA-event time around a call holds and the span not (CUDA:
    by the same events; the CPU: in the trace, to the first piece's range).
    Medians, because a shared machine's stalls move means and not medians; the rows keep every call
    (``total_ms`` / ``calls`` is the mean busy time). ``attributed_share``: the share of the rows'
    device time in rows mapped to a piece and a source line. ``build``: "production" (the model's own pieces ran) or "profiling" (a build of the
    same pieces that names its kernels; ``build_check`` compares the two per piece, ``build_verdict``
    says whether they agree within ``BUILD_TOLERANCE``: "agrees" | "differs" | "unresolved", "" without
    a profiling build or in a profile saved before verdicts; ``build_agrees`` the same as a flag: True,
    False, or None where the check could not tell).
    """

    wall_ms: float
    device_ms: float
    span_ms: float
    host_gap_ms: float
    rows: tuple[KernelRow, ...]
    attributed_share: float
    calls: int
    device: str
    profiled_wall_ms: float = 0.0
    warmup: int = 0
    build: str = "production"
    build_check: tuple[PieceCheck, ...] = ()
    runtime: RuntimeCounters = field(default_factory=RuntimeCounters)
    slices: tuple[TraceSlice, ...] = ()
    inputs: tuple[str, ...] = ()
    note: str = ""
    profile_s: float = 0.0          # what cm.profile took, all in (builds, calls, analysis)
    build_verdict: str = ""
    traced_span_ms: float = 0.0
    span_timer: str = ""
    lead_in_ms: float = 0.0

    @property
    def build_agrees(self) -> bool | None:
        """True: the profiling build's pieces agree with the production build's within 5 % ("agrees");
        False: a piece differs beyond it ("differs"); None: the check could not tell ("unresolved"), or
        there was no profiling build (or the profile was saved before verdicts)."""
        return {"agrees": True, "differs": False}.get(self.build_verdict)

    @property
    def total_ms(self) -> float:
        """Device time over all profiled calls: the sum of the rows (what the rollups add up to)."""
        return sum(r.total_ms for r in self.rows)

    def by_piece(self) -> tuple[Rollup, ...]:
        """Rows summed per piece, in piece order (kernels outside every piece last, key None)."""
        groups: dict[Any, list[KernelRow]] = {}
        for r in self.rows:
            groups.setdefault(r.piece, []).append(r)
        order = sorted(groups, key=lambda p: (p is None, p if p is not None else 0))
        return tuple(self._rollup(k, [(r, r.total_ms) for r in groups[k]]) for k in order)

    def by_source(self) -> tuple[Rollup, ...]:
        """Rows summed per source line, largest first (rows without a line under key None). A kernel
        of several lines splits its time equally among them, so the rollups still sum to the total."""
        groups: dict[Any, list[tuple[KernelRow, float]]] = {}
        for r in self.rows:
            lines = r.source_lines or (None,)
            for line in lines:
                groups.setdefault(line, []).append((r, r.total_ms / len(lines)))
        rolled = [self._rollup(k, v) for k, v in groups.items()]
        return tuple(sorted(rolled, key=lambda u: (u.key is None, -u.total_ms)))

    def top(self, n: int = 10) -> tuple[KernelRow, ...]:
        """The ``n`` rows with the most device time."""
        return tuple(sorted(self.rows, key=lambda r: -r.total_ms)[:n])

    def build_diff(self) -> float | None:
        """The largest relative difference of a piece's time between the production and the profiling
        build (its paired ``diff``; for a check saved before pairs, of the medians), in absolute value,
        over pieces with at least 5 % of the production call time (None without a profiling build)."""
        total = sum(c.production_ms for c in self.build_check)
        diffs = [abs(c.diff if c.diff is not None else c.profiling_ms / c.production_ms - 1.0) for c in self.build_check
                 if c.production_ms > 0 and c.production_ms >= 0.05 * total]
        return max(diffs) if diffs else None

    def _rollup(self, key: Any, parts: list[tuple[KernelRow, float]]) -> Rollup:
        total = sum(ms for _, ms in parts)
        grand = self.total_ms
        return Rollup(key, total, total / self.calls if self.calls else 0.0, total / grand if grand else 0.0,
                      len({id(r) for r, _ in parts}))

    def table(self, n: int = 15) -> str:
        """The top rows as plain text (what ``%vxprofile`` prints)."""
        head = (f"{self.calls} calls on {self.device}: wall {self.wall_ms:.3f} ms, device {self.device_ms:.3f} ms, "
                f"span {self.span_ms:.3f} ms, host gap {self.host_gap_ms:.3f} ms, "
                + (f"lead-in {self.lead_in_ms:.3f} ms, " if self.lead_in_ms else "")
                + f"attributed {self.attributed_share:.0%}")
        rows = [head, f"{'kernel':<40} {'piece':>5} {'mean_ms':>9} {'share':>6}  source"]
        grand = self.total_ms or 1.0
        for r in self.top(n):
            rows.append(f"{r.name[:40]:<40} {'-' if r.piece is None else r.piece:>5} {r.mean_ms:>9.4f} "
                        f"{r.total_ms / grand:>6.1%}  {', '.join(r.source_lines) or '-'}")
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what a saved report holds); ``from_dict`` rebuilds an equal profile."""
        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RuntimeProfile":
        return from_jsonable(cls, dict(d), "profile")


def _add(into: dict[int | None, int], counts: Any) -> None:
    if isinstance(counts, Mapping):
        for size, n in counts.items():
            into[size] = into.get(size, 0) + int(n)


def _pairs(counts: dict[int | None, int]) -> tuple[SizeCount, ...]:
    return tuple(sorted(counts.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))
