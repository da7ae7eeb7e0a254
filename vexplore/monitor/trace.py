"""A report's events as a Chrome trace: the JSON trace-event format chrome://tracing and Perfetto load.

    {"traceEvents": [...], "displayTimeUnit": "ms"}    "X" complete events (ts, dur in µs), "M" names

The compiling process (pid 1) has a track with the whole call, a track with every step as vexplore
recorded it (nested), and a track per phase (``phases.py``: its slices, then what no event covered
as ``other``). Each compile worker process is a process of its own, under its real pid, with one
track of the jobs it compiled. Each runtime profile (``cm.profile``) follows the compile on the
timeline as a process of its own: a track of the profiled calls, one of the pieces' runs on the host,
and one of the kernels on the device (named as in the profile's rows).
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Sequence

from .events import CompileEvent
from .phases import PHASES, Slice, slices
from .profile import RuntimeProfile

MAIN_PID = 1
PROFILE_PID0 = 1_000_000      # profile k is process PROFILE_PID0 + k (worker processes keep their real pids)
PROFILE_GAP_S = 0.001         # between the compile and the first profile, and between profiles
_PROFILE_TIDS = {"call": 1, "piece": 2, "kernel": 3}
_WALL_TID, _STEPS_TID, _PHASE_TID0 = 1, 2, 10


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 3)


def _name(ev: CompileEvent) -> str:
    where = f" p{ev.piece}" if ev.piece is not None else (f" g{ev.graph}" if ev.graph is not None else "")
    return f"{ev.step}{where}" + (f" @{ev.size}" if ev.size is not None else "")


def _args(ev: CompileEvent) -> dict[str, Any]:
    keys = ("graph", "piece", "size", "tier", "compiler", "detail", "error_class")
    out: dict[str, Any] = {k: getattr(ev, k) for k in keys if getattr(ev, k) is not None}
    if ev.counts:
        out["counts"] = dict(ev.counts)
    if ev.torch_s:
        out["torch_s"] = {k: round(v, 6) for k, v in ev.torch_s.items()}
    return out


def _complete(name: str, cat: str, span: tuple[float, float], track: tuple[int, int],
              args: dict[str, Any]) -> dict[str, Any]:
    """An "X" event: ``span`` (start, duration) in seconds, on ``track`` (pid, tid)."""
    return {"name": name, "cat": cat, "ph": "X", "ts": _us(span[0]), "dur": _us(span[1]), "pid": track[0],
            "tid": track[1], "args": args}


def _meta(kind: str, pid: int, tid: int, name: str, sort: int) -> list[dict[str, Any]]:
    """The name and sort order of a process (kind "process") or a thread (kind "thread")."""
    return [{"name": f"{kind}_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}},
            {"name": f"{kind}_sort_index", "ph": "M", "pid": pid, "tid": tid, "args": {"sort_index": sort}}]


def _uncovered(cuts: list[Slice], wall_s: float) -> list[tuple[float, float]]:
    """The stretches of [0, wall_s] no slice covers (the ``other`` phase)."""
    out, t = [], 0.0
    for s in sorted(cuts, key=lambda s: s.start_s):
        if s.start_s > t:
            out.append((t, s.start_s))
        t = max(t, s.start_s + s.duration_s)
    if wall_s > t:
        out.append((t, wall_s))
    return [(a, b) for a, b in out if b - a > 1e-9]


def _phase_tracks(events: Sequence[CompileEvent], wall_s: float) -> list[dict[str, Any]]:
    cuts = slices(events)
    out: list[dict[str, Any]] = []
    tid = {p: _PHASE_TID0 + i for i, p in enumerate(PHASES)}
    for s in cuts:
        ev = events[s.event]
        out.append(_complete(_name(ev), s.phase, (s.start_s, s.duration_s), (MAIN_PID, tid[s.phase]),
                             {"phase": s.phase, "event": s.event, **_args(ev)}))
    for a, b in _uncovered(cuts, wall_s):
        out.append(_complete("other", "other", (a, b - a), (MAIN_PID, tid["other"]), {"phase": "other"}))
    used = {e["tid"] for e in out}
    for p in PHASES:
        if tid[p] in used:
            out += _meta("thread", MAIN_PID, tid[p], f"phase: {p}", tid[p])
    return out


def _worker_tracks(events: Sequence[CompileEvent]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pids: list[int] = []
    for i, ev in enumerate(events):
        pid = ev.worker
        if pid is None or ev.step != "compile":
            continue
        if pid not in pids:
            pids.append(pid)
            out += _meta("process", pid, 0, f"compile worker pid {pid}", 1 + len(pids))
            out += _meta("thread", pid, 1, "compile", 1)
        out.append(_complete(_name(ev), "worker_compile", (ev.start_s, ev.duration_s), (pid, 1), {"event": i, **_args(ev)}))
    return out


def _profile_tracks(profiles: Sequence[RuntimeProfile], wall_s: float) -> list[dict[str, Any]]:
    """Each profile's calls, pieces and kernels, one after another from the compile's end."""
    out: list[dict[str, Any]] = []
    t = wall_s + PROFILE_GAP_S
    for k, prof in enumerate(profiles):
        pid = PROFILE_PID0 + k
        where = "device" if prof.device and not prof.device.startswith("cpu") else "cpu"
        out += _meta("process", pid, 0, f"profile {k}: {prof.calls} calls on {prof.device}", 100 + k)
        for track, name in (("call", "calls"), ("piece", "pieces (host)"), ("kernel", f"kernels ({where})")):
            out += _meta("thread", pid, _PROFILE_TIDS[track], name, _PROFILE_TIDS[track])
        for s in prof.slices:
            args: dict[str, Any] = {"call": s.call} if s.piece is None else {"call": s.call, "piece": s.piece}
            out.append(_complete(s.name, f"profile_{s.track}", (t + s.start_ms / 1e3, s.dur_ms / 1e3),
                                 (pid, _PROFILE_TIDS.get(s.track, 9)), args))
        t += max((s.start_ms + s.dur_ms for s in prof.slices), default=0.0) / 1e3 + PROFILE_GAP_S
    return out


def chrome_trace(events: Sequence[CompileEvent], wall_s: float, title: str,
                 profiles: Sequence[RuntimeProfile] = ()) -> dict[str, Any]:
    """The trace-event JSON object of one report (see the module docstring)."""
    out = _meta("process", MAIN_PID, 0, f"{title}: the compiling process", 0)
    out += _meta("thread", MAIN_PID, _WALL_TID, "wall (the whole call)", _WALL_TID)
    out += _meta("thread", MAIN_PID, _STEPS_TID, "steps (vexplore's events)", _STEPS_TID)
    out.append(_complete(title, "wall", (0.0, wall_s), (MAIN_PID, _WALL_TID), {"wall_s": wall_s}))
    for i, ev in enumerate(events):
        if ev.worker is None or ev.step != "compile":
            out.append(_complete(_name(ev), ev.step, (ev.start_s, ev.duration_s), (MAIN_PID, _STEPS_TID),
                                 {"event": i, **_args(ev)}))
    out += _phase_tracks(events, wall_s)
    out += _worker_tracks(events)
    out += _profile_tracks(profiles, wall_s)
    return {"traceEvents": out, "displayTimeUnit": "ms"}


def write_chrome_trace(path: str | os.PathLike[str], events: Sequence[CompileEvent], wall_s: float,
                       title: str, profiles: Sequence[RuntimeProfile] = ()) -> pathlib.Path:
    """Write ``chrome_trace(...)`` to ``path`` (missing parent folders are made); returns the path."""
    path = pathlib.Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(chrome_trace(events, wall_s, title, profiles)), encoding="utf-8")
    return path
