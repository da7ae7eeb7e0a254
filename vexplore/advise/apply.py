"""Applying advice: recompile with the advised config, measure what it targets, keep it only if better.

A metric is measured under a trial config, the same for before and after: ``compile_s`` compiles
with every cache off (vexplore's tiers and Inductor's own), ``persistent_pieces`` stores into the
persistent tiers alone. The captured graphs are recompiled, never re-traced, so a trial costs
compiles, not calls of the model; ``median_ms`` times calls.

An advice is kept only when its own metric got better and nothing else it promises (a metric's
``guards``: fewer nodes to compile should mean less compile time) got worse beyond noise; both
figures are in the result. The advised config is applied to the model's config as it is now
(``rebase``): an advice made before another was applied changes only what it changes.
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
# a guard metric got worse when it moved the wrong way by more than both of these (relative, absolute):
# one cold compile against another on a shared machine varies by some 10-15 %
NOISE = {"compile_s": (0.2, 0.25), "median_ms": (TIMING_GAIN, 0.0)}


@dataclass(frozen=True)
class Check:
    """A second figure an Apply watched (``metric`` before and after) and whether it got ``worse`` beyond noise."""

    metric: str
    before: float
    after: float
    worse: bool

    def __str__(self) -> str:
        return f"{self.metric} {self.before:.4g} -> {self.after:.4g}" + (" (worse)" if self.worse else "")


@dataclass(frozen=True)
class ApplyResult:
    """What ``Advice.apply`` measured: ``metric`` before and after, whether the advised config was
    ``kept`` (the model runs with it) or reverted, and the ``report`` of the advised compile."""

    metric: str
    before: float
    after: float
    kept: bool
    report: CompileReport
    note: str = ""                     # what the metric measures and under which config
    checks: tuple[Check, ...] = ()     # the other figures it watched (compile_s for compiled_nodes)

    @property
    def message(self) -> str:
        """``compiled_nodes: 21 -> 6, reverted (compile_s 1.65 -> 2.32 (worse); what it measures ...)``:
        the other figures watched, then the note."""
        verdict = "kept" if self.kept else "reverted"
        said = "; ".join([*map(str, self.checks), *([self.note] if self.note else [])])
        return f"{self.metric}: {self.before:.4g} -> {self.after:.4g}, {verdict}" + (f" ({said})" if said else "")

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Metric:
    """How one metric is measured: ``value(cm, report, inputs)``; ``trial`` the config it is measured under."""

    name: str
    lower_is_better: bool
    value: Callable[[Any, CompileReport, Sequence[Any] | None], float]
    trial: Callable[[CompileConfig], CompileConfig] | None = None
    what: str = ""
    trial_before: bool = True        # measure "before" under the trial too (False: from the current report)
    guards: tuple[str, ...] = ()     # metrics that must not get worse beyond NOISE (measured under the same trial)


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
    getattr(cm, "settle", lambda: True)()   # a graph compiled whole off the call path: taken before timing
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
    Metric("compiled_nodes", True, compiled_nodes, _cold, "graph nodes compiled (unique pieces)", guards=("compile_s",)),
    Metric("compile_s", True, lambda cm, rep, _: rep.wall_s, _cold, "seconds to compile every graph, nothing cached"),
    Metric("persistent_pieces", False, persistent_pieces, _persistent_only, "pieces a new process loads instead of compiling",
           trial_before=False),
    Metric("median_ms", True, median_ms, what="median milliseconds per call"),
    Metric("fallbacks", True, fallbacks, what="pieces that fell back from the configured compiler"),
    Metric("split_pieces", False, split_pieces, what="split-op pieces (cuts the config asked for)"),
)}


def apply_config(cm: Any, config: CompileConfig, metric: str, inputs: Sequence[Any] | None = None) -> ApplyResult:
    """Recompile ``cm`` under ``config``; keep it when ``metric`` got better and none of its guards got
    worse beyond noise, else recompile back."""
    m = METRICS[metric]
    old = cm.config
    # compile time is Inductor's: the eager compiler's few milliseconds of graph handling move only with
    # the machine's load, so watching them could revert an advice for a stall
    guards = [g for g in m.guards if not (g == "compile_s" and config.compiler == old.compiler == "eager")]
    watched = (m, *(METRICS[g] for g in guards))
    assert all(g.trial in (None, m.trial) for g in watched[1:]), "a guard is measured under its metric's trial"
    if cm.report is None:
        raise VexploreError("advice.apply: the model has not been called yet; call it once (cm(*inputs)), then apply.")
    try:
        # one cancel token for the trial's compiles: a Cancel (Session.cancel) stops the one running and
        # those still to come; going back (below) is outside it, so that cancel does not stop it
        with cm.session.compiling():
            before_report = cm.recompile(m.trial(old)) if m.trial is not None and m.trial_before else cm.report
            before = [w.value(cm, before_report, inputs) for w in watched]
            trial = cm.recompile(m.trial(config) if m.trial is not None else config)
            after = [w.value(cm, trial, inputs) for w in watched]
    except BaseException:
        if cm.config != old:   # a failed trial must not leave the model on it (e.g. every cache off)
            cm.recompile(old)
        raise
    checks = tuple(Check(w.name, b, a, _worse(w, b, a)) for w, b, a in zip(watched[1:], before[1:], after[1:]))
    kept = _better(m, before[0], after[0]) and not any(c.worse for c in checks)
    if m.trial is not None or not kept:
        cm.recompile(config if kept else old)   # the trial config (or the advised one, reverted) leaves
    note = f"{m.what}; measured under {'a trial config' if m.trial else 'the advised config'}"
    return ApplyResult(metric, before[0], after[0], kept, cm.report if kept else trial, note, checks)


def rebase(advised: CompileConfig, base: CompileConfig | None, now: CompileConfig) -> CompileConfig:
    """``now`` with what ``advised`` changes from ``base`` (the config it was advised against); a
    nested config (the cache) field by field. Without a base, ``advised`` as it is."""
    if base is None:
        return advised
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(advised):
        want, was = getattr(advised, f.name), getattr(base, f.name)
        if want == was:
            continue
        current = getattr(now, f.name)
        if dataclasses.is_dataclass(want) and type(current) is type(want):
            want = dataclasses.replace(current, **{g.name: getattr(want, g.name) for g in dataclasses.fields(want)
                                                   if getattr(want, g.name) != getattr(was, g.name)})
        changes[f.name] = want
    return now.replace(**changes)


def _better(m: Metric, before: float, after: float) -> bool:
    gain = TIMING_GAIN if m.name.endswith("_ms") or m.name.endswith("_s") else 0.0
    if m.lower_is_better:
        return after < before * (1 - gain)
    return after > before * (1 + gain)


def _worse(m: Metric, before: float, after: float) -> bool:
    rel, floor = NOISE.get(m.name, (0.0, 0.0))
    if m.lower_is_better:
        return after > before * (1 + rel) and after - before > floor
    return after < before * (1 - rel) and before - after > floor
