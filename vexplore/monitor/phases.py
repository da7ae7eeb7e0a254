"""``report.phases``: a compile's wall time split by phase, from its events and torch's own metrics.

Every instant of the model call (or ``recompile``) goes to exactly one phase, so the phases add up
to ``report.wall_s``:

    dynamo             Dynamo's trace (``dynamo_trace``) and its work after the backend returned
                       (``dynamo_guards``: guards and bytecode, timed by torch)
    inductor_startup   Inductor's one-time start-up in this process (imports, the CPU ISA probe,
                       the torch source hash, the precompiled C++ header, the pattern matcher's
                       patterns): charged to the compile that paid it, 0 for every later one
    aot_lowering       AOTAutograd and Inductor's lowering and code generation
    kernel_compile     C++ / Triton kernel compiles (as Inductor's generated module loads)
    cache_load         vexplore's tiers, and Inductor's own FX graph / AOTAutograd cache hits
    worker_compile     waiting on vexplore's compile workers (their start, their compiles: each
                       worker's jobs are a track of their own in the trace), loading their artifacts
    cudagraph_capture  CUDA graph warm-ups and captures
    vexplore           vexplore's own work: capture analysis, split, fake propagation, planning and
                       cache keys, store, stitch, validate
    first_run          the compiled graphs' first run on the call's inputs (a model call's report)
    other              what no event covers (Python between steps, torch.compile's own entry)

Events nest (``graph`` > ``compile`` > ``inductor_startup``) and overlap (jobs in several workers):
an instant belongs to the latest-started event covering it, the innermost one. That event's own
time goes to its step's phase, except an Inductor compile or load in this process, which is split
by ``CompileEvent.torch_s``: the seconds torch's compile-time metrics (``dynamo_timed``) saw inside
it. Torch gives durations, not positions, so within one event the parts are laid out in the order
Inductor runs them; the totals are exact, their placement inside the event is not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from .events import CompileEvent

PHASES = ("dynamo", "inductor_startup", "aot_lowering", "kernel_compile", "cache_load", "worker_compile",
          "cudagraph_capture", "vexplore", "first_run", "other")
_STEP_PHASE = {"dynamo_trace": "dynamo", "dynamo_guards": "dynamo", "inductor_startup": "inductor_startup",
               "cudagraph_capture": "cudagraph_capture", "run": "first_run", "workers": "worker_compile"}


@dataclass(frozen=True)
class Slice:
    """A stretch of one event's own time spent in one phase (seconds since the report's start)."""

    phase: str
    start_s: float
    duration_s: float
    event: int                      # index into the report's events


def inductor_cache_hit(ev: CompileEvent) -> bool:
    """Whether a compile was served by Inductor's own caches (FX graph or AOTAutograd), no miss."""
    hits = ev.counts.get("fxgraph_cache_hits", 0) + ev.counts.get("aot_autograd_cache_hits", 0)
    misses = ev.counts.get("fxgraph_cache_misses", 0) + ev.counts.get("aot_autograd_cache_misses", 0)
    return ev.step == "compile" and hits > 0 and misses == 0


def event_phases(ev: CompileEvent) -> dict[str, float]:
    """Seconds of ``ev``'s own work by phase: its duration, less an Inductor start-up inside it
    (an event of its own)."""
    if ev.step in _STEP_PHASE:
        return {_STEP_PHASE[ev.step]: ev.duration_s}
    worker = ev.worker is not None
    if ev.step == "compile" and worker:
        return {"worker_compile": ev.duration_s}
    if ev.step not in ("compile", "load"):
        return {"vexplore": ev.duration_s}
    t = ev.torch_s
    own = max(0.0, ev.duration_s - t.get("startup_s", 0.0))
    pch = t.get("startup_pch_s", 0.0)
    first = [("inductor_startup", pch + t.get("startup_patterns_s", 0.0))]
    if ev.step == "load":
        rest = "worker_compile" if worker else ("cache_load" if ev.tier not in (None, "miss") else "vexplore")
        return _allocate(own, first + [("kernel_compile", t.get("kernel_wait_s", 0.0))], rest)
    first.append(("vexplore", t.get("artifact_save_s", 0.0)))   # standalone_compile's artifact saved for the tiers
    if inductor_cache_hit(ev):   # loading from Inductor's cache; a kernel it lacks compiles while it waits
        return _allocate(own, first + [("kernel_compile", t.get("kernel_wait_s", 0.0))], "cache_load")
    loads = t.get("inductor_load_s", 0.0)
    kernels = t.get("module_load_s", 0.0) - pch - loads   # the header is built as the first module loads
    return _allocate(own, first + [("kernel_compile", kernels), ("cache_load", loads)], "aot_lowering")


def _allocate(total: float, wants: Sequence[tuple[str, float]], rest: str) -> dict[str, float]:
    """``total`` seconds handed out to ``wants`` in order (each clamped to what is left), the rest to ``rest``."""
    out: dict[str, float] = {}
    for phase, s in wants:
        s = min(max(s, 0.0), total)
        if s > 0:
            out[phase] = out.get(phase, 0.0) + s
            total -= s
    if total > 0:
        out[rest] = out.get(rest, 0.0) + total
    return out


def owned(events: Sequence[CompileEvent]) -> list[list[tuple[float, float]]]:
    """For each event, the stretches of time it owns: covered by it and by no event that began later."""
    ends = [e.start_s + e.duration_s for e in events]
    bounds = sorted({t for e, end in zip(events, ends) for t in (e.start_s, end)})
    order = sorted(range(len(events)), key=lambda i: events[i].start_s)
    out: list[list[tuple[float, float]]] = [[] for _ in events]
    active: list[int] = []
    k = 0
    for a, b in zip(bounds, bounds[1:]):
        while k < len(order) and events[order[k]].start_s <= a:
            active.append(order[k])
            k += 1
        active = [i for i in active if ends[i] > a]
        if not active:
            continue
        w = max(active, key=lambda i: (events[i].start_s, -events[i].duration_s, i))
        segs = out[w]
        if segs and segs[-1][1] == a:
            segs[-1] = (segs[-1][0], b)
        else:
            segs.append((a, b))
    return out


def slices(events: Sequence[CompileEvent]) -> list[Slice]:
    """Every event's own time as phase slices, laid over the stretches it owns (see ``owned``)."""
    out: list[Slice] = []
    for i, (ev, segs) in enumerate(zip(events, owned(events))):
        mine = sum(b - a for a, b in segs)
        parts = event_phases(ev)
        total = sum(parts.values())
        if mine <= 0 or total <= 0:
            continue
        wants = [(p, parts[p] * mine / total) for p in PHASES if parts.get(p)]
        out.extend(_lay(wants, segs, i))
    return out


def _lay(wants: list[tuple[str, float]], segs: list[tuple[float, float]], event: int) -> list[Slice]:
    """Phase amounts laid one after another over the segments (a phase may span several)."""
    out: list[Slice] = []
    queue = list(segs)
    for phase, amount in wants:
        while amount > 1e-12 and queue:
            a, b = queue[0]
            step = min(amount, b - a)
            out.append(Slice(phase, a, step, event))
            amount -= step
            queue[0] = (a + step, b)
            if queue[0][0] >= b - 1e-12:
                queue.pop(0)
    return out


def derive_phases(events: Sequence[CompileEvent], wall_s: float) -> dict[str, float]:
    """Seconds by phase (every name of PHASES); ``other`` is the wall time no event covers."""
    out = dict.fromkeys(PHASES, 0.0)
    for s in slices(events):
        out[s.phase] += s.duration_s
    out["other"] = max(0.0, wall_s - sum(out.values()))
    return out


def phases_line(phases: Mapping[str, float], wall_s: float) -> str:
    """``dynamo 1.02 s · aot_lowering 0.80 s · ... · other 0.01 s (wall 2.31 s)``: the phases that took time."""
    parts = [f"{p} {phases[p]:.2f} s" for p in PHASES if phases.get(p, 0.0) >= 0.005]
    return " · ".join(parts or ["nothing measured"]) + f" (wall {wall_s:.2f} s)"
