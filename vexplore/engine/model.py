"""CompiledModel: what ``vx.compile`` returns. Compiles on first call, keeps the captured graphs."""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..cache.keys import versions as cache_versions
from ..cancel import CancelToken
from ..config import CompileConfig
from ..errors import (CancelledError, ConfigError, VexploreError, VexploreFallbackWarning, VexplorePerformanceWarning,
                      VexploreValidationWarning)
from ..monitor.events import CompileEvent, EventRecorder, metrics_delta
from ..monitor.phases import derive_phases
from ..monitor.profile import RuntimeCounters, RuntimeProfile
from ..monitor.report import CompileReport, CompileWarning, derive
from ..session import Session, default_session
from . import _torch_compat as tc
from .backend import VexBackend
from .capture.captured import CapturedGraph, specialized_token, token_count
from .runtime.emergency import RuntimeFallback
from .capture.explain import ENTRY_PREFIX, GraphBreak, Recompile, TraceLog, trace_alerts
from .capture.fastpath import fast_path_modules, fast_path_off, fast_path_warning
from .build.pipeline import GraphContext, GraphResult, compile_graph
from .runtime.stitch import GraphRunner
from .capture.tokendims import token_dims

log = logging.getLogger(__name__)


@dataclass
class _Compile:
    """One compile in progress (a model call's graphs, or a recompile): what makes its report."""

    rec: EventRecorder
    kind: str                        # "compile" | "recompile"
    config: CompileConfig
    results: list[GraphResult] = field(default_factory=list)
    last_mark: float = 0.0           # end of the latest backend call: Dynamo traces from here
    warnings: list[CompileWarning] = field(default_factory=list)   # of the model call, not of a graph
    metrics0: dict[str, float] | None = None   # torch's compile-time metrics when it began (a model call's)
    cancel: CancelToken = field(default_factory=CancelToken)   # the Session's token of this compile
    scope: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)   # holds the token while it runs

    @classmethod
    def start(cls, session: Session, rec: EventRecorder, kind: str, config: CompileConfig, **kw: Any) -> "_Compile":
        """A compile beginning in ``session``: it takes a cancel token (``session.cancel()`` reaches it
        until ``end()``), and the tiers take their bounds from its config, once."""
        session.set_bounds(config.cache)
        work = cls(rec, kind, config, **kw)
        work.cancel = work.scope.enter_context(session.compiling())
        return work

    def end(self) -> None:
        """The compile is over: a later cancel no longer reaches it."""
        self.scope.close()

    def context(self, session: Session, on_fallback: Callable[[RuntimeFallback], None]) -> GraphContext:
        """The context of the next graph: its first piece index and the unique pieces built so far."""
        cfg = self.config
        pool = session.worker_pool(cfg.workers) if cfg.workers and cfg.compiler == "inductor" else None
        pool = _TimedPool(pool, self.rec) if pool is not None else None
        known = {k: u for r in self.results for k, u in r.unique.items()}
        return GraphContext(session.cache(cfg.cache), self.rec, pool, sum(len(r.pieces) for r in self.results), known,
                            on_fallback, in_trace=self.kind == "compile", cancel=self.cancel)


class CompiledModel:
    """A callable over ``model``: the first call traces with Dynamo and compiles; later calls run.

    ``report`` is the CompileReport of the latest compile; ``recompile(cfg)`` re-splits and
    re-compiles the captured graphs without Dynamo; ``graphs`` are the graphs Dynamo captured.
    """

    def __init__(self, model: Callable[..., Any], config: CompileConfig | None = None,
                 session: Session | None = None) -> None:
        self.model = model
        self.config = config if config is not None else CompileConfig()
        if not isinstance(self.config, CompileConfig):
            raise ConfigError(f"vx.compile(config=...) takes a vx.CompileConfig, got {type(self.config).__name__}.")
        self.session = session or default_session()
        self.id = next(_model_ids)   # names this model's alerts in the session's monitor (Alert.model)
        self.graphs: list[CapturedGraph] = []
        self.reports: list[CompileReport] = []
        self.runtime_fallbacks: list[RuntimeFallback] = []   # pieces that raised at call time, eager since
        self.token_dims: dict[str, tuple[int, ...]] = {}   # input name (args[0], input_ids) -> dims marked dynamic
        self._compile: _Compile | None = None
        self._warned_grad = False
        self._fast_path = fast_path_modules(model)   # stock modules whose fast path is turned off (fastpath.py)
        self._breaks = tc.graph_break_reasons()
        self._trace = TraceLog(model)   # Dynamo's graph breaks and recompiles while this model is called
        self._trace_failed = False
        self._call_t0 = time.perf_counter()   # when the model call in progress began
        self._compiled = torch.compile(entry_point(model), backend=VexBackend(self._on_graph))
        if self.config.compiler == "inductor" and _compiles_for_cpu(model):
            tc.start_inductor_warmup()
        if self.config.workers:  # start the pool now: workers import torch while Dynamo traces
            self.session.worker_pool(self.config.workers)

    @property
    def report(self) -> CompileReport | None:
        """The CompileReport of the latest compile (a model call that traced, or ``recompile``); None before the first call."""
        return self.reports[-1] if self.reports else None

    @property
    def graph_breaks(self) -> list[GraphBreak]:
        """Every graph break Dynamo made in this model's calls, oldest first: reason, user frame, graph."""
        return list(self._trace.breaks)

    @property
    def recompiles(self) -> list[Recompile]:
        """Every re-trace of this model, oldest first: what changed (in the model's names), where, which graph."""
        return list(self._trace.recompiles)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._call_t0 = time.perf_counter()   # a compile's wall time is the whole call, from here
        seen = self._trace_begin()
        if not self.graphs:
            self.token_dims = token_dims(args, kwargs, self.config.dynamic_dims)
            for name, t in _tensor_inputs(args, kwargs):
                for d in self.token_dims.get(name, ()):
                    tc.maybe_mark_dynamic(t, d)
        try:
            if self._fast_path:
                with fast_path_off():
                    return self._compiled(*args, **kwargs)
            return self._compiled(*args, **kwargs)
        except Exception as e:
            inner = getattr(e, "inner_exception", None)  # Dynamo wraps backend errors
            if isinstance(inner, VexploreError):
                raise inner from e
            raise
        finally:
            if self._compile is not None:
                done, self._compile = self._compile, None
                done.end()
                self._finish(done)
            self._trace_end(seen)
            if not self._warned_grad and torch.is_grad_enabled():
                self._warn_eval_with_grad()

    # Reading Dynamo's records (private torch state) must never cost the user their call or report:
    # a failure is logged once and the explanations stop for this model.
    def _trace_begin(self) -> tuple[int, int] | None:
        if self._trace_failed:
            return None
        try:
            self._trace.begin(len(self.graphs))
            return len(self._trace.breaks), len(self._trace.recompiles)
        except Exception:
            self._trace_broke()
            return None

    def _trace_end(self, seen: tuple[int, int] | None) -> None:
        if seen is None or self._trace_failed:
            return
        try:
            self._trace.end(len(self.graphs))
            alerts = list(trace_alerts(self._trace.breaks, self._trace.recompiles, seen))
        except Exception:
            self._trace_broke()
            return
        for alert in alerts:
            self.session.monitor.raise_alert(*alert, model=self.id)

    def _trace_broke(self) -> None:
        self._trace_failed = True
        log.warning("vexplore: reading Dynamo's graph breaks and recompiles failed (a torch version vexplore does "
                    "not know?); cm.graph_breaks and cm.recompiles stop here, the model runs on", exc_info=True)

    @property
    def runtime(self) -> RuntimeCounters:
        """Live CUDA-graph counts over this model's graphs (replays per size, uncaptured calls and their
        sizes, recaptures, padded calls); all zero where nothing ran under CUDA graphs."""
        return RuntimeCounters.of(g.graph_stats for g in self.graphs)

    def settle(self, timeout: float | None = None) -> bool:
        """Wait for the work a compile left running off the call path (``cudagraph_whole="background"``: the
        graphs compiled whole) and let each graph take it; True when nothing is left running (``timeout``:
        seconds at most, over all graphs; None: as long as it takes). ``vx.bench`` and ``profile`` call it."""
        end = None if timeout is None else time.perf_counter() + timeout
        for g in self.graphs:
            fn = g.runner.fn.fn if isinstance(g.runner.fn, _FirstRun) else g.runner.fn
            settle = getattr(fn, "settle", None)
            if settle is not None and not settle(None if end is None else max(end - time.perf_counter(), 0.0)):
                return False
        return True

    def profile(self, *inputs: Any, calls: int = 20, warmup: int = 5, **kwargs: Any) -> RuntimeProfile:
        """Where the run time goes: ``warmup`` calls, then ``calls`` calls under torch.profiler, mapped to
        pieces, nodes, kernels and source lines (bench/profile.py says how). Each call is
        ``cm(*inputs, **kwargs)`` (a Hugging Face model: ``cm.profile(input_ids=ids, ...)``). The profile is
        kept on the latest report (``cm.report.profiles``, newest last; ``cm.report.runtime`` takes a
        snapshot of ``cm.runtime``); calls outside ``profile`` run exactly as before."""
        from ..bench.profile import measure   # bench/ sits above the engine: loaded only when asked

        prof = measure(self, inputs, calls, warmup, kwargs)
        old = self.reports[-1]
        new = dataclasses.replace(old, profiles=old.profiles + (prof,), runtime=prof.runtime)
        self.reports[-1] = new
        kept = self.session.monitor.reports   # the Session's copy of the report takes the profile too
        for i, r in enumerate(kept):
            if r is old:
                kept[i] = new
        return prof

    def recompile(self, config: CompileConfig | None = None, **changes: Any) -> CompileReport:
        """Re-split and re-compile every captured graph under ``config`` (or this one with ``changes``).

        No Dynamo re-trace, so toggling never meets Dynamo's recompile limit. The new callables
        replace the old ones only when every graph compiled (a cancel leaves the old ones).
        """
        cfg = config if config is not None else self.config.replace(**changes)
        if not self.graphs:
            raise VexploreError("recompile: nothing captured yet. Call the compiled model once "
                                "(cm(*inputs)) so Dynamo captures the graph, then recompile.")
        if cfg.dynamic_dims != self.config.dynamic_dims:
            raise ConfigError("recompile: dynamic_dims decide what Dynamo traces and cannot change "
                              "without a new trace; use vx.compile(model, cfg) for that.")
        work = _Compile.start(self.session, EventRecorder(self.session.monitor, tc.compile_metrics), "recompile", cfg)
        try:
            for graph in self.graphs:
                t0 = time.perf_counter()
                work.results.append(compile_graph(graph, cfg, work.context(self.session, self._runtime_fallback)))
                work.rec.add("graph", t0, time.perf_counter() - t0, graph=graph.index)
        finally:  # a cancel reaches this compile only while it runs
            work.end()
        for graph, result in zip(self.graphs, work.results):
            assert graph.runner is not None
            graph.runner.fn = result.fn
            graph.graph_stats = result.stats
        self.config = cfg
        return self._finish(work)

    # -- internals -------------------------------------------------------------------------
    def _on_graph(self, gm: Any, example_inputs: Any) -> Callable[..., Any]:
        """The backend's callback: a graph Dynamo captured, compiled under this model's config."""
        if self._compile is None:   # Dynamo adds its timings when a frame ends, so these still precede this frame's
            rec = EventRecorder(self.session.monitor, tc.compile_metrics)
            rec.t0 = self._call_t0
            self._compile = _Compile.start(self.session, rec, "compile", self.config, last_mark=rec.t0,
                                           metrics0=tc.compile_metrics())
        work = self._compile
        warned = len(work.warnings)
        self._trace.on_graph(len(self.graphs))
        now = time.perf_counter()
        work.rec.add("dynamo_trace", work.last_mark, now - work.last_mark, graph=len(self.graphs))
        marked = {k: v[0] for k, v in self.token_dims.items()}
        graph = CapturedGraph.from_dynamo(gm, example_inputs, len(self.graphs), self.model, marked)
        if token_count(graph.real_inputs, graph.names, marked) == 1:
            before = sum(token_count(g.real_inputs, g.names, marked) == 1 for g in self.graphs)
            work.warnings.append(_size_one(len(self.graphs), before))
        elif graph.token is None and marked:
            work.warnings.extend(_specialized(graph, marked))
        if self._fast_path and not self.graphs:
            work.warnings.append(fast_path_warning(self._fast_path, 0))
        self.graphs.append(graph)
        try:
            result = compile_graph(graph, self.config, work.context(self.session, self._runtime_fallback))
        except Exception as e:
            if tc.dynamo_signal(e) is not None:   # Dynamo traces this frame again: this graph never existed
                self._aborted(work, graph, warned, "aborted trace")
            elif isinstance(e, CancelledError):   # nothing runs it: the next call traces it again
                self._aborted(work, graph, warned, "cancelled")
            raise
        work.results.append(result)
        graph.runner, graph.graph_stats = GraphRunner(result.fn), result.stats
        graph.runner.fn = _FirstRun(graph.runner, result.fn, work.rec, graph.index)
        work.last_mark = time.perf_counter()
        work.rec.add("graph", now, work.last_mark - now, graph=graph.index)   # what no step inside covers is vexplore's
        return graph.runner

    def _aborted(self, work: _Compile, graph: CapturedGraph, warnings_before: int, why: str) -> None:
        """Forget a graph whose trace Dynamo restarts (its compile raised Dynamo's restart signal) or whose
        compile was cancelled: it is in neither ``graphs`` nor the report. Its events stay (their time was
        spent), graph-less and named by ``why``."""
        self.graphs.remove(graph)
        del work.warnings[warnings_before:]
        for i, ev in enumerate(work.rec.events):
            if ev.graph == graph.index:
                work.rec.events[i] = dataclasses.replace(ev, graph=None, detail=f"{why}: {ev.detail or ev.step}")
        work.last_mark = time.perf_counter()

    def _finish(self, work: _Compile) -> CompileReport:
        end = time.perf_counter()
        _dynamo_after_backend(work, end)
        now = tc.graph_break_reasons()
        breaks = tuple(sorted(k for k in now if now[k] > self._breaks.get(k, 0)))
        self._breaks = now
        results, cfg = work.results, work.config
        pieces = tuple(p for r in results for p in r.pieces)
        events: tuple[CompileEvent, ...] = tuple(work.rec.events)
        validation = tuple(line for r in results for line in r.validation)
        device = next((x.device.type for g in self.graphs for x in g.real_inputs if isinstance(x, torch.Tensor)), "cpu")
        report = CompileReport(
            pieces=pieces, events=events, counters=derive(pieces, events, len(results), cfg.compiler, validation),
            strategy=",".join(dict.fromkeys(r.strategy for r in results)),
            strategy_reason="; ".join(dict.fromkeys(r.strategy_reason for r in results)),
            config=cfg.to_dict(), wall_s=end - work.rec.t0, graph_breaks=breaks, phases=derive_phases(events, end - work.rec.t0),
            warnings=tuple(work.warnings) + tuple(w for r in results for w in r.warnings), device=device, versions=cache_versions(device),
            kind=work.kind, id=len(self.session.monitor.reports), validation=validation)
        self.reports.append(report)
        self.session.monitor.add_report(report, model=self.id)
        self._warn(report)
        return report

    def _runtime_fallback(self, fb: RuntimeFallback) -> None:
        """A compiled piece raised at call time and runs eagerly since (engine/runtime/emergency.py): keep it, and alert."""
        self.runtime_fallbacks.append(fb)
        self.session.monitor.raise_alert("runtime-fallback", "warning", f"{fb} — the compiled piece raised when called "
                                         "and runs eagerly from now on (correct, slower). See cm.runtime_fallbacks.",
                                         model=self.id)

    def _warn_eval_with_grad(self) -> None:
        """Once per model: an eval() model called with grad enabled runs a graph compiled for autograd."""
        m = self.model
        if not isinstance(m, torch.nn.Module) or m.training or not any(g.grad for g in self.graphs):
            return
        self._warned_grad = True
        warnings.warn("vexplore: the model is in eval() but was called with grad enabled, so it was compiled for "
                      "autograd (a forward that saves for backward, and no CUDA graphs). For inference, call it "
                      "under torch.no_grad() or torch.inference_mode(): faster compiles and calls.",
                      VexplorePerformanceWarning, stacklevel=3)

    @staticmethod
    def _warn(report: CompileReport) -> None:
        fell = [p for p in report.pieces if p.fallback_reason and p.same_as is None and p.kind == "compiled"]
        if fell:
            lines = "; ".join(f"piece {p.index}: {p.fallback_reason}" for p in fell)
            warnings.warn(f"vexplore: {len(fell)} piece(s) fell back: {lines}", VexploreFallbackWarning, stacklevel=3)
        bad = [str(w) for w in report.warnings if w.kind == "validation"]
        if bad:
            warnings.warn("vexplore validation: " + "; ".join(bad), VexploreValidationWarning, stacklevel=3)
        for w in report.warnings:   # a decode graph and the fast path are expected: in the report, not the log
            if w.kind not in ("validation", "decode_trace", "fast_path"):
                log.warning("vexplore: %s", w)


class _TimedPool:
    """The Session's worker pool, its ``run`` timed as a ``workers`` event: the time a compile waits on
    its workers (their start-up too: a pool starts with the CompiledModel, its workers importing torch)."""

    def __init__(self, pool: Any, rec: EventRecorder) -> None:
        self.pool, self.rec = pool, rec

    def run(self, jobs: Any, timeout_s: float, on_result: Any = None) -> Any:
        with self.rec.step("workers", detail=f"{len(jobs)} job(s) on {self.pool.size} worker process(es)"):
            return self.pool.run(jobs, timeout_s, on_result=on_result)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


class _FirstRun:
    """A graph's first run, in the call that compiled it, timed as a ``run`` event; then it steps
    aside (the runner calls the compiled callable directly from the second call on)."""

    def __init__(self, runner: GraphRunner, fn: Callable[..., Any], rec: EventRecorder, graph: int) -> None:
        self.runner, self.fn, self.rec, self.graph = runner, fn, rec, graph

    def __call__(self, *args: Any) -> Any:
        if self.runner.fn is self:
            self.runner.fn = self.fn
        t0 = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.rec.add("run", t0, time.perf_counter() - t0, graph=self.graph,
                         detail="the compiled graph's first run, on this call's inputs")


def _dynamo_after_backend(work: _Compile, end: float) -> None:
    """Dynamo's work after the backend returned (guards, bytecode), as a ``dynamo_guards`` event:
    torch's timing of its frames less the backend calls in them and the traces vexplore saw, placed
    where the last backend call ended and cut to the time left before ``end``."""
    if work.metrics0 is None:
        return
    seconds, _ = metrics_delta(work.metrics0, tc.compile_metrics())
    traced = sum(e.duration_s for e in work.rec.events if e.step == "dynamo_trace")
    after = min(seconds.get("frame_s", 0.0) - seconds.get("backend_s", 0.0) - traced, end - work.last_mark)
    if after > 0:
        work.rec.add("dynamo_guards", work.last_mark, after,
                     detail="Dynamo after the backend returned: guards and bytecode (torch's timing)")


_entries = itertools.count()
_model_ids = itertools.count(1)


def entry_point(model: Callable[..., Any]) -> Callable[..., Any]:
    """A function that calls ``model``, with a code object of its own.

    Dynamo keeps its compiled entries (and counts its recompile limit, 8) per code object. Were
    we to compile ``model`` itself, every CompiledModel of the same class would share
    ``forward.__code__`` and a different backend object fails Dynamo's backend-match guard, so
    the 9th vx.compile of a class would silently run eagerly. A fresh code object per
    CompiledModel gives each its own entries; Dynamo inlines ``model`` into it. (The benchmark's
    torch.compile baselines, one per size, use it for the same reason.)
    """
    def entry(*args: Any, **kwargs: Any) -> Any:
        return model(*args, **kwargs)

    entry.__code__ = entry.__code__.replace(co_name=f"{ENTRY_PREFIX}{next(_entries)}")
    return entry


def compile(model: Callable[..., Any], config: CompileConfig | None = None,
            session: Session | None = None) -> CompiledModel:
    """Wrap ``model`` with vexplore's backend. Calling the result compiles on first use, then runs."""
    return CompiledModel(model, config, session)


def _compiles_for_cpu(model: Callable[..., Any]) -> bool:
    """Whether Inductor will likely emit CPU code: the module holds a CPU tensor, or there is no GPU.

    Decides whether to start the CPU ISA probe early. On a GPU machine that probe is not free:
    torch 2.11's starts a Python that imports torch per ISA (~3.5 s each on the H100 host)
    under Inductor's lock, which made a warm start there 36 s instead of 4 s. (Warming
    torch_key/triton_key the same way was tried and measured no faster on this CPU: that
    hashing holds the GIL.)
    """
    if isinstance(model, torch.nn.Module):
        devices = {t.device.type for t in itertools.chain(model.parameters(), model.buffers())}
        if devices:
            return "cpu" in devices
    return not torch.cuda.is_available()


def _tensor_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, torch.Tensor]]:
    named = [(f"args[{i}]", a) for i, a in enumerate(args)] + list(kwargs.items())
    return [(n, t) for n, t in named if isinstance(t, torch.Tensor)]


def _specialized(graph: CapturedGraph, marked: dict[str, int]) -> list[CompileWarning]:
    """Why a graph whose token dim vexplore marked dynamic is static all the same."""
    found = specialized_token(graph.fake_inputs, graph.names, marked)
    if found is None:
        return []
    name, dim, where = found
    return [CompileWarning("token_specialized", f"graph {graph.index}: Dynamo specialized dim {dim} of {name} (the token "
                           f"count) to a constant at {where}: a guard there reads its value, so this graph serves one "
                           "length and every new length traces again. Make that code length-independent, or pad "
                           "prompts to a few fixed lengths.", graph.index)]


def _size_one(graph: int, before: int) -> CompileWarning:
    """Why a 1-token call traced a graph of its own (Dynamo's 0/1 specialization); ``before``: how
    many 1-token graphs this model traced earlier (only the first is that rule's one extra trace)."""
    if before:
        return CompileWarning("decode_trace", f"graph {graph} was traced for a 1-token call again: something besides "
                              "the token count changed since the first 1-token graph (a cache that grew, a Python "
                              "value); cm.recompiles says what.", graph)
    if graph == 0:
        msg = ("The first call passed 1 token: Dynamo specializes sizes 0 and 1, so graph 0 serves 1 token "
               "only and the next length traces again. Call the model with more tokens first.")
    else:
        msg = (f"graph {graph} was traced for a 1-token call (decode): Dynamo specializes sizes 0 and 1, so "
               "1 token gets a graph of its own — one extra trace, once.")
    return CompileWarning("size_one" if graph == 0 else "decode_trace", msg, graph)
