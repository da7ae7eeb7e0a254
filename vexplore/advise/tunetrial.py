"""One trial of ``vx.tune``: recompile the captured graphs under a config and measure it, size by size.

``measure`` is the same wherever a trial runs: in the notebook's process (the local executor) or in
a Ray task (``raytune.run_trial``, which traces the shipped model once, then measures as here). A trial
recompiles from the captured graph (no re-trace; the session's tiers serve pieces compiled before),
times each size with the project's timer and accuracy gate (``vx.benchmark``: eager is the oracle),
and ends as one ``Outcome``:

- ``crashed``: the compile raised (a CompileError under ``fallback=False``, anything else), a compile
  worker died, pieces fell back from the configured compiler where the start's did not (what would
  run is not the config tried), or a compiled piece raised when called;
- ``timeout``: a piece's compile ran past ``compile_timeout_s``, or past the trial's share of the budget
  (``Measure.trial_s``: what is left before the final re-measurement) (a worker is killed there, and
  compiles not started by then are not started; a compile in this process cannot be stopped, so it is
  named after the fact);
- ``failed-accuracy``: a size's output is over the gate against eager;
- ``pruned``: its first size is already slower than the best trial's beyond the spread of both
  (its p20 above the best's p80), so the other sizes are not measured;
- ``measured``: every size timed (the tuner calls it "ok" or "worse").
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..bench.compare import BenchOptions, BenchRow, benchmark
from ..config import CacheConfig, CompileConfig
from ..engine.build.workers import deadline
from ..errors import CancelledError, VexploreBenchWarning, VexploreWarning
from ..monitor.tuning import Timing   # the record of one size (it lives on the report, in monitor/)

OBJECTIVES = ("latency", "latency+compile")


@dataclass(frozen=True)
class Measure:
    """How every trial of one tune is measured (it travels with Ray trials)."""

    objective: str = "latency"                       # "latency" | "latency+compile"
    weights: tuple[tuple[Any, float], ...] = ()      # (size, weight); a size left out weighs 1
    compile_weight: float = 1e-3                     # latency+compile: ms of objective per ms of first call
    bench: BenchOptions = BenchOptions()
    start_fallbacks: int = 0                         # pieces that fall back under the start config
    workers: int = 0                                 # compile worker processes for the trials' compiles
    trial_s: float | None = None                     # a trial's compiles in worker processes end within this (its share of budget_s)

    def weight(self, size: Any) -> float:
        return dict(self.weights).get(size, 1.0)

    def compile_config(self, cfg: CompileConfig) -> CompileConfig:
        """What a trial compiles under: ``cfg`` with the executor's workers, and for latency+compile every
        cache off (vexplore's tiers and Inductor's own), so its first-call time is a real compile's."""
        cfg = cfg.replace(workers=self.workers) if cfg.compiler == "inductor" else cfg
        if self.objective != "latency+compile":
            return cfg
        options = dict(cfg.inductor_options)
        if cfg.compiler == "inductor":
            options["fx_graph_cache"] = False
        return cfg.replace(cache=CacheConfig(tiers=()), inductor_options=options)

    def value(self, timings: Sequence[Timing], first_call_s: float | None, at: str = "median_ms") -> float:
        """The objective in ms: the weighted mean over sizes of ``at`` (median, or p20/p80 for its band),
        plus, for latency+compile, ``compile_weight`` times the first call in ms."""
        total = sum(self.weight(t.size) for t in timings)
        v = sum(self.weight(t.size) * getattr(t, at) for t in timings) / total if total else 0.0
        if self.objective == "latency+compile":
            v += self.compile_weight * (first_call_s or 0.0) * 1e3
        return v


@dataclass(frozen=True)
class Outcome:
    """What one trial came to (the tuner turns it into a Trial)."""

    status: str                        # measured | pruned | failed-accuracy | crashed | timeout
    timings: tuple[Timing, ...] = ()
    first_call_s: float | None = None  # the compile (recompile) plus the first call at the first size
    compile_s: float | None = None
    error: str | None = None           # why it crashed, timed out, failed or was pruned
    where: str = "local"
    seconds: float = 0.0               # wall time of the whole trial


class Target:
    """What a trial times at each size: ``cm`` on the inputs of that size, eager ``cm.model`` the oracle;
    or (``inputs`` None) the captured graphs on their own example inputs, each graph run eagerly the oracle."""

    def __init__(self, cm: Any, inputs: Mapping[Any, tuple[Any, ...]] | None) -> None:
        self.cm, self.inputs = cm, inputs

    @property
    def sizes(self) -> tuple[Any, ...]:
        return tuple(self.inputs) if self.inputs is not None else (None,)

    def bench(self, size: Any, opts: BenchOptions, variants: Sequence[tuple[str, Any]] | None = None) -> list[BenchRow]:
        """The bench's rows at ``size`` for ``variants`` ((name, callable); default: the model as it is now)."""
        if self.inputs is None:
            graphs = list(self.cm.graphs)
            oracle: Any = lambda: [g.gm(*g.real_inputs) for g in graphs]   # noqa: E731
            variants = variants or [("trial", lambda: [g.runner(*g.real_inputs) for g in graphs])]
            inputs: Mapping[Any, Any] = {None: ()}
        else:
            oracle, inputs = self.cm.model, {size: self.inputs[size]}
            variants = variants or [("trial", self.cm)]
        with warnings.catch_warnings(), _quiet(logging.getLogger(benchmark.__module__)):
            warnings.simplefilter("ignore", VexploreBenchWarning)   # a failed row is the trial's status
            return list(benchmark(oracle, inputs, list(variants), opts).rows)

    def graph_fns(self) -> Callable[[], Any]:
        """The captured graphs as compiled now, kept: a callable that runs them even after a recompile."""
        pairs = [(g.runner.fn, g.real_inputs) for g in self.cm.graphs]
        return lambda: [fn(*xs) for fn, xs in pairs]


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """The bench logs each noisy row as a warning; a trial keeps it in its Timing (``noisy``) instead of
    repeating it for every trial."""
    drop = logging.Filter("-")   # passes only records of a logger named "-": none
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def measure(cm: Any, cfg: CompileConfig, target: Target, spec: Measure, against: Timing | None) -> Outcome:
    """Recompile ``cm`` under ``cfg`` and time it at every size of ``target``; ``against``: the best
    trial's first size, for pruning (None: no pruning)."""
    t0 = time.perf_counter()
    fallbacks_before = len(getattr(cm, "runtime_fallbacks", ()))
    try:
        with warnings.catch_warnings(), deadline(t0 + spec.trial_s if spec.trial_s is not None else None):
            warnings.simplefilter("ignore", VexploreWarning)   # fallbacks and validation: read from the report
            report = cm.recompile(spec.compile_config(cfg))
    except CancelledError:
        raise
    except Exception as e:
        return Outcome("crashed", error=f"the compile raised {type(e).__name__}: {_first_line(e)}",
                       seconds=time.perf_counter() - t0)
    compile_s = time.perf_counter() - t0
    failed = compile_failure(report, cfg, spec.start_fallbacks)
    if failed is not None:
        return Outcome(failed[0], error=failed[1], compile_s=compile_s, seconds=time.perf_counter() - t0)
    timings: list[Timing] = []
    for i, size in enumerate(target.sizes):
        status, why = _time_size(target, size, spec, timings)
        if status is None and len(getattr(cm, "runtime_fallbacks", ())) > fallbacks_before:
            status, why = "crashed", f"a compiled piece raised when called: {cm.runtime_fallbacks[-1]}"
        if status is None and i == 0 and against is not None and len(target.sizes) > 1 and prunable(timings[0], against):
            status, why = "pruned", (f"at size {size}: p20 {timings[0].p20_ms:.4g} ms is above the best's p80 "
                                     f"{against.p80_ms:.4g} ms")
        if status is not None:
            return Outcome(status, tuple(timings), None, compile_s, why, seconds=time.perf_counter() - t0)
    first = compile_s + (timings[0].first_call_s or 0.0)
    return Outcome("measured", tuple(timings), first, compile_s, seconds=time.perf_counter() - t0)


def _time_size(target: Target, size: Any, spec: Measure, timings: list[Timing]) -> tuple[str | None, str | None]:
    """Time one size into ``timings``; (status, why) when that ends the trial, else (None, None)."""
    try:
        [row] = target.bench(size, spec.bench)
    except CancelledError:
        raise
    except Exception as e:
        return "crashed", f"a call at size {size} raised {type(e).__name__}: {_first_line(e)}"
    timings.append(Timing.of(row))
    if row.status == "failed":
        return "failed-accuracy", f"at size {size}: max rel err {row.max_rel_err:.3g} against eager is over the gate"
    return None, None


def prunable(t: Timing, best: Timing) -> bool:
    """Slower than the best beyond both spreads: its p20 above the best's p80."""
    return t.p20_ms > best.p80_ms


def compile_failure(report: Any, cfg: CompileConfig, start_fallbacks: int) -> tuple[str, str] | None:
    """("timeout" | "crashed", why) when the compile did not give ``cfg`` as asked; else None."""
    c = report.counters
    late = [p for p in report.pieces if p.kind == "compiled" and p.compile_s > cfg.compile_timeout_s]
    if c.get("worker_timeout", 0) or late:
        fell = next((p for p in report.pieces if (p.fallback_reason or "").startswith("timeout")), None)
        if fell is not None:
            return "timeout", f"piece {fell.index}: {fell.fallback_reason}"
        p = late[0]
        return "timeout", (f"piece {p.index} compiled for {p.compile_s:.1f} s, past compile_timeout_s="
                           f"{cfg.compile_timeout_s:g} (in this process, so it could not be stopped)")
    if c.get("worker_crashed", 0) or c.get("fallbacks", 0) > start_fallbacks:
        fell = [p for p in report.pieces if p.fallback_reason and p.kind == "compiled" and p.same_as is None]
        why = "; ".join(f"piece {p.index}: {p.fallback_reason}" for p in fell[:3]) or "a compile worker died"
        return "crashed", f"{c.get('fallbacks', 0)} piece(s) fell back from {cfg.compiler}: {why}"
    return None


def ratio_interval(start: Timing, best: Timing) -> tuple[float, float, float]:
    """(start / best, low, high): the ratio of medians and its ~95 % interval, from both medians' relative
    intervals combined on the log scale (a ratio's interval is never below 0, however wide)."""
    r = start.median_ms / best.median_ms if best.median_ms else math.nan
    half = math.hypot(start.ci, best.ci)
    return r, r * math.exp(-half), r * math.exp(half)


def trace_order(inputs: Mapping[Any, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The inputs by size, largest first: a fresh model traced on them gets a general graph first (a 1-token
    first call would get a graph of its own for 1 token, Dynamo specializing sizes 0 and 1, and a warning)."""
    return [inputs[s] for s in sorted(inputs, key=lambda s: -s if isinstance(s, (int, float)) else 0)]



def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else "")[:300]


@dataclass(frozen=True)
class Shipped:
    """What a Ray trial receives (pickled once, put in Ray's object store): the model, the inputs by size,
    and the config it is traced under there (the start's, with the eager compiler: a trace, no compile)."""

    model: Any
    inputs: Mapping[Any, tuple[Any, ...]]
    trace_config: CompileConfig
