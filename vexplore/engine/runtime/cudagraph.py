"""CUDA graphs for one graph, the entry point: ``apply`` puts a graph under CUDA graphs, a
RuntimePlan per capture size, and says how each size is served.

Each job has a module of its own:

- sizes.py      size policy: the capture sizes, when each is captured (``size_plan``), full or
                piecewise, and which size a call replays;
- admission.py  memory admission: each size estimated against the budget (capturemem.py), then
                captured, or served without graphs, saying why;
- capture.py    capture: a size's CUDA graphs and the RuntimePlan that replays them;
- replay.py     the callable: per call, the size, the inputs, the steps, the outputs;
- stats.py      the records they leave: GraphStats and a SizeInfo per size.
"""
from __future__ import annotations

from typing import Any, Callable

from ...monitor.events import EventRecorder
from .admission import Admission
from .graphcapture import Capturer, GraphParts
from .inputplan import GraphInputs, SizePlan
from .replay import GraphCudaGraphs
from .sizes import SizePolicy, size_plan
from .stats import GraphStats, SizeInfo

__all__ = ["apply", "size_plan", "GraphParts", "GraphStats", "SizeInfo"]


def apply(config: Any, parts: GraphParts, graph: GraphInputs, rec: EventRecorder, index: int, later: Any = None
          ) -> tuple[Callable[..., Any], GraphStats, str | None]:
    """Capture the sizes of ``graph`` its size plan captures now (``config``: the CompileConfig);
    returns (callable, stats, note). One ``cudagraph_capture`` event per size captured or refused
    now says its mode and why, with its time and device memory. ``later``: the graph compiled whole,
    being built off the call path (build/background.WholeLater), which the callable takes when ready."""
    plan, sp = size_plan(config, graph, parts.source)
    stats = GraphStats(plan={d.size: d for d in sp.decisions})
    policy = SizePolicy(config, plan, [d.size for d in sp.decisions], sp.pad)
    capturer = Capturer(parts, plan, stats)
    admission = Admission(capturer, policy, config.cudagraph_memory_mb)
    runtime = GraphCudaGraphs(plan, policy, admission, capturer.fallback, stats, later)
    for d in sp.decisions:
        if d.when == "first_call":
            continue
        with rec.step("cudagraph_capture", graph=index, size=d.size) as step:
            before = stats.captures
            info = admission.admit(d.size, graph.real) if d.when == "now" else admission.refuse(d)
            step.kw.update(detail=_capture_detail(info), counts={"cudagraph_captures": stats.captures - before})
    return runtime, stats, _note(sp, stats)


def _note(sp: SizePlan, stats: GraphStats) -> str | None:
    """What the report says of a graph's sizes: padding refused, sizes left to their first call
    (by reason), captured piecewise after a full capture failed, run without graphs."""
    notes = [sp.pad_why]
    for reason in ("above_call", "state_moved"):   # "asked_first_call" is the config's own choice: no note
        later = [d for d in sp.decisions if d.when == "first_call" and d.reason == reason]
        if later:
            shown = [d.size for d in later]
            which = "its one size is captured at its" if shown == [None] else f"sizes {shown} are captured at their"
            notes.append(f"{which} first call, with that call: {later[0].why}")
    fallen = [s for s, i in stats.sizes.items() if i.mode == "piecewise" and i.reason == "full_failed"]
    if fallen:
        notes.append(f"sizes {fallen} captured piecewise: {stats.sizes[fallen[0]].why}")
    none = [s for s, i in stats.sizes.items() if i.mode == "none"]
    if none:
        notes.append(f"sizes {none} run without CUDA graphs: {stats.sizes[none[0]].why}")
    return "; ".join(n for n in notes if n) or None


def _capture_detail(info: SizeInfo) -> str:
    if info.mode == "none":
        return info.why
    copied = f"; split ops copied into the next graph's buffer (no out variant): {', '.join(info.copied)}" \
        if info.copied else ""
    return f"{info.mode} ({info.why}); {info.memory_mb:.1f} MiB held (estimated {info.estimate_mb:.1f}){copied}"
