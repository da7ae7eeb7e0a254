"""vx.advise: every detector over a compiled model's history, most severe first."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from ..bench.compare import BenchReport
from ..errors import VexploreError
from . import compiling, failures, profiling, running, trace
from .advice import CODES, SEVERITIES, Advice, Context

CODES.update(profiling.CODES)   # the runtime profile's codes (advise/profiling.py), stable as the others

# In the order their advice is listed within a severity: what broke first, then what is slow.
DETECTORS: tuple[Callable[[Context], list[Advice]], ...] = (
    failures.runtime_fallback, failures.compile_system_failure, running.accuracy, trace.recompile, trace.graph_break,
    running.split_op_missing, running.training_mode, compiling.memory_growth, failures.cache_failure,
    compiling.low_cache_hit_rate, compiling.slow_compile, compiling.repeated_blocks, running.cudagraph_skipped,
    running.host_bound, compiling.no_persistent_cache, running.noisy_timing, running.fast_path_op,
    *profiling.DETECTORS,   # from the latest runtime profile (cm.profile): host-bound, uncaptured-size, ...
)


def advise(cm: Any, bench: BenchReport | None = None) -> list[Advice]:
    """What to change in ``cm`` (a CompiledModel), and why: graph breaks and recompiles with the lines
    that cause them, compile time, the cache, memory, failures; with ``bench`` (a BenchReport of this
    model) also host-bound calls, noisy figures and accuracy. Most severe first."""
    if not hasattr(cm, "graph_breaks") or not hasattr(cm, "reports"):
        raise VexploreError(f"vx.advise takes the CompiledModel vx.compile returned, got {type(cm).__name__}; "
                            "call it once (cm(*inputs)) so there is something to advise on.")
    if bench is not None and not isinstance(bench, BenchReport):
        raise VexploreError(f"vx.advise(bench=...) takes the BenchReport vx.benchmark returned, got {type(bench).__name__}.")
    ctx = Context(cm, tuple(cm.reports), tuple(cm.session.monitor.reports), bench)
    # each config is applied later as a change to this one (Advice.base, apply.rebase)
    found = [a if a.config is None else dataclasses.replace(a, base=cm.config) for detect in DETECTORS for a in detect(ctx)]
    return sorted(found, key=lambda a: SEVERITIES.index(a.severity))
