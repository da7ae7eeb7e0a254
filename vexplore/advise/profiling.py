"""Detectors over runtime profiles (``cm.profile``): where a call's time goes says what to change.

They read the latest profile of the model's latest report (``report.profiles[-1]``: a profile taken
before a recompile says nothing about what runs now) and the CUDA-graph counts (``cm.runtime``, else
the report's snapshot). Each advice's evidence holds the profile's figures and its config is timed by
``apply`` (metric ``median_ms``: calls of the model before and after).

- ``host-bound``: the GPU idles over 30 % of a call (``1 - device_ms / wall_ms``). CUDA only: on the
  CPU the "device" is the host itself (monitor/profile.py), its gaps are the Python between ops, and
  CUDA graphs, the fix, do not exist there; where that Python is vexplore's hand-offs between
  pieces, ``split-op-overhead`` says so on either device. Without CUDA graphs the config turns them
  on (``cudagraph="auto"``); with graphs on and calls at uncaptured sizes, ``uncaptured-size`` speaks
  instead; with every call replayed the advice names what is left and has no config.
- ``uncaptured-size``: calls at sizes no CUDA graph serves ran kernel by kernel. The config adds those
  sizes to ``cudagraph_sizes`` (and to ``compile_sizes`` where the config compiles sizes statically).
  Only where graphs ran: the counts are empty on the CPU.
- ``far-from-limit``: a kernel with over 10 % of the device time runs at under 30 % of its limit share
  (time at the roofline / measured time). Needs the device's peaks, so CUDA only (the CPU has no
  limit share). The config tries ``mode="max-autotune"``, or, already there, a static compile of the
  profiled size (``compile_sizes``).
- ``split-op-overhead``: over 30 % of a call passes outside the compiled pieces: in the eager split
  ops and the host's hand-offs around them. From the profile's piece ranges (medians over calls),
  else its rows. On CUDA the config captures the split ops too at that size
  (``cudagraph="full_and_piecewise"``, ``cudagraph_full_max`` raised to cover the size); on the CPU,
  which has no graphs to capture them, it compiles one graph (``strategy="full"``): no cuts, no
  hand-offs, fusion across where the cuts were.
"""
from __future__ import annotations

import statistics
from typing import Any

from ..config import CompileConfig
from ..engine.runtime.sizes import DEFAULT_SIZES
from ..monitor.profile import RuntimeCounters, RuntimeProfile
from ..monitor.report import CompileReport
from .advice import Advice, Context

IDLE_SHARE = 0.30        # host-bound: the GPU idle this share of a call or more
KERNEL_SHARE = 0.10      # far-from-limit: a kernel with this share of the device time or more...
FAR_LIMIT = 0.30         # ...at under this share of its limit
BETWEEN_SHARE = 0.30     # split-op-overhead: this share of a call or more outside the compiled pieces

# The codes these detectors add to the advisor's (advisor.py registers them; "host-bound" is there already)
CODES: dict[str, str] = {
    "uncaptured-size": "calls came at sizes no CUDA graph serves and ran kernel by kernel",
    "far-from-limit": "a kernel with much of the device time runs far from the device's memory or compute limit",
    "split-op-overhead": "much of each call passes outside the compiled pieces: eager split ops and the hand-offs around them",
}


def latest_profile(ctx: Context) -> tuple[CompileReport, RuntimeProfile] | None:
    """(the latest report, its latest profile), or None when the model runs a config not profiled."""
    rep = ctx.latest
    if rep is None or not rep.profiles:
        return None
    return rep, rep.profiles[-1]


def _cuda(rep: CompileReport, prof: RuntimeProfile) -> bool:
    return rep.device == "cuda" or prof.device.lower().startswith(("cuda", "nvidia"))


def _runtime(ctx: Context, rep: CompileReport) -> RuntimeCounters:
    live = getattr(ctx.cm, "runtime", None)
    return live if isinstance(live, RuntimeCounters) and not live.empty else rep.runtime


def _figures(prof: RuntimeProfile) -> dict[str, Any]:
    return {"wall_ms": round(prof.wall_ms, 4), "device_ms": round(prof.device_ms, 4),
            "host_gap_ms": round(prof.host_gap_ms, 4), "span_ms": round(prof.span_ms, 4), "calls": prof.calls}


def host_bound(ctx: Context) -> list[Advice]:
    """The GPU idle over IDLE_SHARE of a call, by the profile (CUDA only: the module docstring says why)."""
    found = latest_profile(ctx)
    if found is None or not _cuda(*found) or found[1].wall_ms <= 0:
        return []
    rep, prof = found
    idle = max(0.0, prof.wall_ms - prof.device_ms) / prof.wall_ms
    if idle <= IDLE_SHARE:
        return []
    cfg, runtime = ctx.cm.config, _runtime(ctx, rep)
    evidence = {**_figures(prof), "idle_share": round(idle, 4), "replays": runtime.replays,
                "uncaptured_calls": runtime.uncaptured_calls}
    said = (f"the GPU is idle {idle:.0%} of each call ({prof.device_ms:.3f} ms of kernels in {prof.wall_ms:.3f} ms; "
            f"{prof.host_gap_ms:.3f} ms of gaps between kernels): the host's launches and Python set the pace.")
    if cfg.cudagraph == "none":
        return [Advice("host-bound", "warning", said + " Capture CUDA graphs: CompileConfig(cudagraph='auto') replays "
                       "each size's kernels in one launch.", evidence, cfg.replace(cudagraph="auto"), "median_ms")]
    if runtime.uncaptured_calls:
        return []     # uncaptured-size names the sizes and adds them
    return [Advice("host-bound", "info", said + " Every call replayed a CUDA graph, so what is left is the host's work "
                   "between replays (inputs copied in, eager split ops between pieces: see split-op-overhead) or "
                   "kernels too short to fill the GPU.", evidence)]


def uncaptured_size(ctx: Context) -> list[Advice]:
    """Calls at sizes without a CUDA graph (the runtime counts), with the sizes added to the capture list."""
    rep = ctx.latest
    if rep is None:
        return []
    runtime = _runtime(ctx, rep)
    sized = [(s, n) for s, n in runtime.uncaptured_sizes if s is not None and n > 0]
    if not runtime.uncaptured_calls or not sized:
        return []
    cfg = ctx.cm.config
    sizes = sorted(s for s, _ in sized)
    capture = tuple(sorted(set(cfg.cudagraph_sizes or DEFAULT_SIZES) | {s for s in sizes if s >= 2}))
    changes: dict[str, Any] = {"cudagraph_sizes": capture}
    if cfg.compile_sizes:
        changes["compile_sizes"] = tuple(sorted(set(cfg.compile_sizes) | set(sizes)))
    config = cfg.replace(**changes) if capture != tuple(cfg.cudagraph_sizes or ()) or "compile_sizes" in changes else None
    named = ", ".join(f"{s} ({n} call{'s' if n != 1 else ''})" for s, n in sized[:8])
    calls = runtime.replays + runtime.uncaptured_calls
    return [Advice(
        "uncaptured-size", "warning",
        f"{runtime.uncaptured_calls} of {calls} calls ran without CUDA graphs, at sizes no graph serves: {named}. "
        f"Each ran its kernels one launch at a time. Add the sizes to the capture list: "
        f"CompileConfig(cudagraph_sizes={list(capture)!r}"
        + (f", compile_sizes={list(changes['compile_sizes'])!r}" if "compile_sizes" in changes else "") + ")"
        + (" (or cudagraph_pad=True to replay the next larger size)." if not cfg.cudagraph_pad else "."),
        {"uncaptured_sizes": [[s, n] for s, n in sized], "uncaptured_calls": runtime.uncaptured_calls,
         "replays": runtime.replays, "capture_sizes": list(cfg.cudagraph_sizes or DEFAULT_SIZES)},
        config, "median_ms" if config is not None else None)]


def _profiled_size(prof: RuntimeProfile) -> int | None:
    """The size the profiled calls ran at, where the CUDA-graph counts say (the most replayed size)."""
    counts = [(n, s) for s, n in (*prof.runtime.replays_by_size, *prof.runtime.uncaptured_sizes) if s is not None]
    return max(counts)[1] if counts else None


def far_from_limit(ctx: Context) -> list[Advice]:
    """Kernels with over KERNEL_SHARE of the device time at under FAR_LIMIT of their limit (CUDA: the CPU has no limit)."""
    found = latest_profile(ctx)
    if found is None:
        return []
    _rep, prof = found
    total = prof.total_ms
    far = sorted((r for r in prof.rows if r.limit_share is not None and total > 0
                  and r.total_ms / total > KERNEL_SHARE and r.limit_share < FAR_LIMIT), key=lambda r: -r.total_ms)
    if not far:
        return []
    cfg, size = ctx.cm.config, _profiled_size(prof)
    if cfg.mode != "max-autotune":
        config, fix = cfg.replace(mode="max-autotune"), "try Inductor's autotuning: CompileConfig(mode='max-autotune')"
    elif size is not None and size not in cfg.compile_sizes:
        config = cfg.replace(compile_sizes=tuple(sorted({*cfg.compile_sizes, size})))
        fix = f"compile that size statically: CompileConfig(compile_sizes={list(config.compile_sizes)!r})"
    else:
        config, fix = None, "autotuning and a static compile of the size are in place already: the kernel is what it is"
    k = far[0]
    where = f"piece {k.piece}" if k.piece is not None else "a whole-graph replay"
    lines = f" ({', '.join(k.source_lines[:3])})" if k.source_lines else ""
    return [Advice(
        "far-from-limit", "info",
        f"kernel {k.name} in {where}{lines} takes {k.total_ms / total:.0%} of the device time at {k.limit_share:.0%} of "
        f"what the device's memory bandwidth and FLOP/s allow ({k.mean_ms:.3f} ms per run"
        + (f", {k.gbps:.0f} GB/s" if k.gbps is not None else "") + (f", {k.tflops:.1f} TFLOP/s" if k.tflops else "")
        + f"): {fix}." + (f" {len(far) - 1} more kernel(s) like it (evidence)." if len(far) > 1 else ""),
        {"kernels": [{"name": r.name, "piece": r.piece, "share": round(r.total_ms / total, 4),
                      "limit_share": round(r.limit_share, 4), "mean_ms": round(r.mean_ms, 4),
                      "source_lines": list(r.source_lines)} for r in far[:5]],
         "size": size, **_figures(prof)},
        config, "median_ms" if config is not None else None)]


def _outside_pieces(prof: RuntimeProfile, compiled: set[int], split: set[int]) -> tuple[float, float, float]:
    """(call ms, ms outside the compiled pieces, ms in split-op pieces), medians per call: from the
    profile's piece ranges, or, without them, its rows (device time only) and wall time."""
    calls: dict[int, list[float]] = {}
    for s in prof.slices:
        acc = calls.setdefault(s.call, [0.0, 0.0, 0.0])
        if s.track == "call":
            acc[0] += s.dur_ms
        elif s.track == "piece" and s.piece in compiled:
            acc[1] += s.dur_ms
        elif s.track == "piece" and s.piece in split:
            acc[2] += s.dur_ms
    whole = [c for c in calls.values() if c[0] > 0]
    if whole:
        return (statistics.median(c[0] for c in whole), statistics.median(max(0.0, c[0] - c[1]) for c in whole),
                statistics.median(c[2] for c in whole))
    n = prof.calls or 1
    inside = sum(r.total_ms for r in prof.rows if r.piece in compiled) / n
    in_split = sum(r.total_ms for r in prof.rows if r.piece in split) / n
    return prof.wall_ms, max(0.0, prof.wall_ms - inside), in_split


def _split_fix(cfg: CompileConfig, cuda: bool, size: int | None) -> tuple[CompileConfig | None, str]:
    if not cuda:
        if cfg.strategy == "full":
            return None, ""
        return cfg.replace(strategy="full"), ("the CPU has no CUDA graphs to capture them, so compile one graph: "
                                              "CompileConfig(strategy='full') (no cuts, no hand-offs, fusion across them)")
    mode = "full_and_piecewise" if cfg.cudagraph == "auto" else cfg.cudagraph
    full_max = max(cfg.cudagraph_full_max, size or 0)
    if mode == "full" or (mode == "full_and_piecewise" and (size is None or size <= cfg.cudagraph_full_max)):
        return None, ""     # the split ops are in the graphs at this size already (or the size is unknown)
    config = cfg.replace(cudagraph="full_and_piecewise", cudagraph_full_max=full_max)
    return config, (f"capture the split ops too at this size: CompileConfig(cudagraph='full_and_piecewise', "
                    f"cudagraph_full_max={full_max}) replays the whole call in one graph up to {full_max} tokens")


def split_op_overhead(ctx: Context) -> list[Advice]:
    """Over BETWEEN_SHARE of a call outside the compiled pieces, where split ops cut the graph."""
    found = latest_profile(ctx)
    if found is None:
        return []
    rep, prof = found
    split = {p.index for p in rep.pieces if p.kind == "split_op"}
    compiled = {p.index for p in rep.pieces if p.kind == "compiled"}
    if not split or not compiled:
        return []
    call, outside, in_split = _outside_pieces(prof, compiled, split)
    if call <= 0 or outside / call < BETWEEN_SHARE:
        return []
    cuda = _cuda(rep, prof)
    config, fix = _split_fix(ctx.cm.config, cuda, _profiled_size(prof))
    if config is None:
        return []
    ops = sorted({op for p in rep.pieces if p.kind == "split_op" for op in p.split_ops})
    return [Advice(
        "split-op-overhead", "warning",
        f"{outside / call:.0%} of each call ({outside:.3f} of {call:.3f} ms, profiled) passes outside the "
        f"{len(compiled)} compiled pieces: {in_split:.3f} ms in the {len(split)} eager split ops "
        f"({', '.join(ops[:3])}) and {max(0.0, outside - in_split):.3f} ms handing tensors from piece to piece. "
        f"{fix[0].upper()}{fix[1:]}.",
        {"call_ms": round(call, 4), "outside_ms": round(outside, 4), "split_op_ms": round(in_split, 4),
         "outside_share": round(outside / call, 4), "split_pieces": len(split), "compiled_pieces": len(compiled),
         "split_ops": ops, **_figures(prof)},
        config, "median_ms")]


DETECTORS = (host_bound, uncaptured_size, split_op_overhead, far_from_limit)
