"""Applying advice: recompile with the advised config, measure what it targets, keep it only if better.

A metric is measured under a trial config, the same for before and after: ``compile_s`` compiles
with every cache off (vexplore's tiers and Inductor's own), ``persistent_pieces`` stores into the
persistent tiers alone. The captured graphs are recompiled, never re-traced, so a trial costs
compiles, not calls of the model; ``median_ms`` times calls.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..bench.timing import Budget, Sampler, autorange, calls_per_sample, is_cuda, stats
from ..config import CacheConfig, CompileConfig
from ..errors import VexploreError
from ..monitor.report import CompileReport

_PERSISTENT = ("disk", "remote")
TIMING_GAIN = 0.03     # a timed metric is kept only when it improves by more than this (relative)


@dataclass(frozen=True)
class ApplyResult:
    """What ``Advice.apply`` measured: ``metric`` before and after, whether the advised config was
    ``kept`` (the model runs with it) or reverted, and the ``report`` of the advised compile."""

    metric: str
    before: float
    after: float
    kept: bool
    report: CompileReport
    note: str = ""

    def __str__(self) -> str:
        verdict = "kept" if self.kept else "reverted"
        return f"{self.metric}: {self.before:.4g} -> {self.after:.4g}, {verdict}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Metric:
    """How one metric is measured: ``value(cm, report, inputs)``; ``trial`` the config it is measured under."""

    name: str
    lower_is_better: bool
    value: Callable[[Any, CompileReport, Sequence[Any] | None], float]
    trial: Callable[[CompileConfig], CompileConfig] | None = None
    what: str = ""
    trial_before: bool = True        # measure "before" under the trial too (False: from the current report)


def _cold(cfg: CompileConfig) -> CompileConfig:
    """``cfg`` compiling from scratch: no vexplore tier, and Inductor's FX-graph cache off."""
    options = dict(cfg.inductor_options)
    if cfg.compiler == "inductor":
        options["fx_graph_cache"] = False
    return cfg.replace(cache=CacheConfig(tiers=()), inductor_options=options)


def _persistent_only(cfg: CompileConfig) -> CompileConfig:
    return cfg.replace(cache=dataclasses.replace(cfg.cache, tiers=tuple(t for t in cfg.cache.tiers if t in _PERSISTENT)))


def compiled_nodes(cm: Any, report: CompileReport, inputs: Any = None) -> float:
    """Graph nodes the compiler compiles: unique compiled pieces only (a repeated block counts once)."""
    return float(sum(p.nodes for p in report.unique_pieces))


def persistent_pieces(cm: Any, report: CompileReport, inputs: Any = None) -> float:
    """Unique compiled pieces a new process would load: served by a persistent tier, or written to one."""
    tiers = report.config.get("cache", {}).get("tiers", ())
    if not any(t in _PERSISTENT for t in tiers):
        return 0.0
    pieces = report.unique_pieces
    stored = report.counters.get("cache_bytes_written", 0) > 0
    return float(sum(p.cache in _PERSISTENT or (p.cache == "miss" and stored) for p in pieces))


def median_ms(cm: Any, report: CompileReport, inputs: Sequence[Any] | None = None) -> float:
    """Median ms per call: of ``cm(*inputs)``, or of the captured graphs run on their own example inputs."""
    if inputs is not None:
        fn, args = cm, tuple(inputs)
    else:
        if any(g.writes for g in cm.graphs):
            raise VexploreError("advice.apply: a captured graph writes its inputs in place, so it cannot be timed on its "
                                "own example inputs; pass the model's inputs: advice.apply(cm, inputs=(x,)).")
        graphs = [(g.runner, list(g.real_inputs)) for g in cm.graphs]

        def fn() -> None:
            for run, xs in graphs:
                run(*xs)
        args = ()
    cuda = is_cuda(args) or any(is_cuda(g.real_inputs) for g in cm.graphs)
    sampler = Sampler(fn, args, "idle", cuda, number=1 if cuda else calls_per_sample(fn, args))
    samples, _ = autorange({"run": sampler}, Budget(seconds=1.0))["run"]
    return stats(samples).median_ms


def fallbacks(cm: Any, report: CompileReport, inputs: Any = None) -> float:
    return float(report.counters.get("fallbacks", 0))


def split_pieces(cm: Any, report: CompileReport, inputs: Any = None) -> float:
    return float(sum(p.kind == "split_op" for p in report.pieces))


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("compiled_nodes", True, compiled_nodes, what="graph nodes compiled (unique pieces)"),
    Metric("compile_s", True, lambda cm, rep, _: rep.wall_s, _cold, "seconds to compile every graph, nothing cached"),
    Metric("persistent_pieces", False, persistent_pieces, _persistent_only, "pieces a new process loads instead of compiling",
           trial_before=False),
    Metric("median_ms", True, median_ms, what="median milliseconds per call"),
    Metric("fallbacks", True, fallbacks, what="pieces that fell back from the configured compiler"),
    Metric("split_pieces", False, split_pieces, what="split-op pieces (cuts the config asked for)"),
)}


def apply_config(cm: Any, config: CompileConfig, metric: str, inputs: Sequence[Any] | None = None) -> ApplyResult:
    """Recompile ``cm`` under ``config``; keep it when ``metric`` got better, else recompile back."""
    m = METRICS[metric]
    old = cm.config
    if cm.report is None:
        raise VexploreError("advice.apply: the model has not been called yet; call it once (cm(*inputs)), then apply.")
    try:
        before_report = cm.recompile(m.trial(old)) if m.trial is not None and m.trial_before else cm.report
        before = m.value(cm, before_report, inputs)
        trial = cm.recompile(m.trial(config) if m.trial is not None else config)
        after = m.value(cm, trial, inputs)
    except BaseException:
        if cm.config != old:   # a failed trial must not leave the model on it (e.g. every cache off)
            cm.recompile(old)
        raise
    kept = _better(m, before, after)
    if m.trial is not None or not kept:
        cm.recompile(config if kept else old)   # the trial config (or the advised one, reverted) leaves
    note = f"{m.what}; measured under {'a trial config' if m.trial else 'the advised config'}"
    return ApplyResult(metric, before, after, kept, trial, note)


def _better(m: Metric, before: float, after: float) -> bool:
    gain = TIMING_GAIN if m.name.endswith("_ms") or m.name.endswith("_s") else 0.0
    if m.lower_is_better:
        return after < before * (1 - gain)
    return after > before * (1 + gain)
