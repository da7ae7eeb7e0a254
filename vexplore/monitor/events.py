"""CompileEvent (one timed step) and the Monitor: it collects events and reports, tells listeners,
keeps alerts and samples the process periodically. It never steers a compile: ``Monitor.cancel()``
passes the request on to its Session, whose cancel tokens the engine checks (vexplore/cancel.py)."""
from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from threading import TIMEOUT_MAX
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import ConfigError
from .alerts import GROWTH_MB, GROWTH_SAMPLES, Alert, AlertBook, memory_growth, report_alerts
from .resources import ResourceProbe
from .sampler import Probe, Sample, SamplerThread, Totals

log = logging.getLogger(__name__)

# Steps an event can stand for, in the order a compile meets them. "graph" spans all vexplore did for
# one graph (the steps above run inside it); "inductor_startup" is Inductor's one-time start-up in this
# process, inside the compile or load that paid it; "dynamo_guards" is Dynamo's work after the backend
# returned (guards, bytecode), its length from torch's compile-time metrics; "run" the compiled graph's
# first run in the call that compiled it; "workers" the time a compile waited on its compile workers.
STEPS = ("dynamo_trace", "strategy", "split", "fakeprop", "compile", "load", "store", "isolate", "stitch",
         "validate", "cudagraph_capture", "inductor_startup", "graph", "dynamo_guards", "run", "workers")
# Steps whose torch-side work is measured (``CompileEvent.torch_s``); their cache counts are counted
# on compiles only (a load's are Inductor reading the artifact vexplore handed it).
TORCH_STEPS = ("compile", "load")


@dataclass(frozen=True)
class CompileEvent:
    """One timed step of a compile. Times are seconds; ``start_s`` counts from the report's start."""

    step: str
    start_s: float
    duration_s: float
    graph: int | None = None
    piece: int | None = None
    size: int | None = None          # static compile size; None = the general (dynamic) compile
    tier: str | None = None          # where a load came from: memory | disk | remote
    compiler: str | None = None
    rss_peak_mb: float | None = None
    device_peak_mb: float | None = None
    error_class: str | None = None   # the exception class when the step failed
    detail: str | None = None
    worker: int | None = None        # pid of the compile worker that did it (its compile, or its artifact's load)
    counts: dict[str, int] = field(default_factory=dict)   # what this step adds to the report's counters
    # seconds of torch's own timed work inside this step, by what (torch's compile-time metrics: see
    # monitor/phases.py): how report.phases splits an Inductor compile or load
    torch_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class SilentMonitor:
    """A monitor that hears nothing: for a build that is no compile of the model's (a runtime profile's
    profiling build, a graph compiled whole off the call path), which the explorer's progress and the
    Session's counters must not see."""

    def emit(self, ev: CompileEvent) -> None:
        pass


class EventRecorder:
    """Times steps for one report: ``with rec.step("compile", piece=2) as ev: ...``."""

    def __init__(self, monitor: "Monitor", metrics: Callable[[], Mapping[str, float]] | None = None) -> None:
        self.monitor = monitor
        self.metrics = metrics     # torch's compile-time metrics, process totals (the engine passes them in)
        self.t0 = time.perf_counter()
        self.events: list[CompileEvent] = []

    def add(self, step: str, start: float, duration: float, **kw: Any) -> CompileEvent:
        ev = CompileEvent(step=step, start_s=start - self.t0, duration_s=duration, **kw)
        self.events.append(ev)
        self.monitor.emit(ev)
        return ev

    def step(self, step: str, **kw: Any) -> "_Step":
        return _Step(self, step, kw)


class _Step:
    def __init__(self, rec: EventRecorder, step: str, kw: dict[str, Any]) -> None:
        self.rec, self.name, self.kw = rec, step, kw

    def __enter__(self) -> "_Step":
        self.probe = ResourceProbe.start()
        measured = self.rec.metrics is not None and self.name in TORCH_STEPS
        self.before = self.rec.metrics() if measured else None   # type: ignore[misc]
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        duration = time.perf_counter() - self.start
        rss, dev = self.probe.finish()
        if exc_type is not None and "error_class" not in self.kw:
            self.kw["error_class"] = exc_type.__name__
        if self.before is not None:
            self._torch_side()
        self.event = self.rec.add(self.name, self.start, duration, rss_peak_mb=rss,
                                  device_peak_mb=dev, **self.kw)

    def _torch_side(self) -> None:
        """What torch timed and counted inside this step; Inductor's start-up, when this step paid
        it, becomes an event of its own (inside this one, where it began)."""
        after = self.rec.metrics()   # type: ignore[misc]
        seconds, counts = metrics_delta(self.before, after)
        self.kw["torch_s"] = seconds
        if counts and self.name == "compile":
            self.kw["counts"] = {**self.kw.get("counts", {}), **counts}
        if seconds.get("startup_s", 0.0) > 0 and after.get("startup_at", -1.0) >= 0:
            parts = ", ".join(f"{what} {seconds[k]:.2f} s" for k, what in _STARTUP_PARTS if seconds.get(k))
            where = {k: self.kw[k] for k in ("graph", "piece", "size") if k in self.kw}
            self.rec.add("inductor_startup", after["startup_at"], seconds["startup_s"], detail=parts or None, **where)


_STARTUP_PARTS = (("startup_imports_s", "imports"), ("startup_isa_probe_s", "CPU ISA probe"),
                  ("startup_torch_key_s", "torch key"))


def metrics_delta(before: Mapping[str, float], after: Mapping[str, float]) -> tuple[dict[str, float], dict[str, int]]:
    """(seconds, counts) that happened between two readings of torch's compile-time metrics:
    ``*_s`` keys are seconds, ``*_at`` keys instants (skipped), the rest counts; only what grew."""
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    for k, v in after.items():
        d = v - before.get(k, 0.0)
        if d <= 0 or k.endswith("_at"):
            continue
        if k.endswith("_s"):
            seconds[k] = d
        else:
            counts[k] = int(round(d))
    return seconds, counts


class Monitor:
    """Collects the reports of a Session, tells listeners of every event, keeps alerts and samples.

    Listeners (``subscribe(fn)``) get each CompileEvent as it happens: the CLI prints a progress
    line per piece from them and the explorer moves its progress bar. Alerts (``alerts``,
    ``on_alert(fn)``) are raised by the compile or call that causes them, sampling or not;
    ``start(interval_s)`` samples the process in a background thread (``samples``) until ``stop()``
    or ``Session.close()``. ``disk_bytes`` (the Session passes it) says what the disk tiers hold;
    ``cancel`` (the Session's ``cancel``) is what ``Monitor.cancel()`` calls.
    """

    SAMPLE_HISTORY = 10_000     # samples kept (a week at the default minute)

    def __init__(self, history: int = 100, disk_bytes: Callable[[], int] | None = None,
                 cancel: Callable[[], None] | None = None) -> None:
        self.reports: list[Any] = []
        self._history = history
        self._listeners: list[Callable[[CompileEvent], None]] = []
        self._cancel = cancel
        self._book = AlertBook()
        self._disk_bytes = disk_bytes
        self._lock = threading.Lock()          # the totals and samples: read by the sampling thread
        self._totals = Totals()
        self._samples: deque[Sample] = deque(maxlen=self.SAMPLE_HISTORY)
        self._sampler: SamplerThread | None = None
        self._probe: Probe | None = None
        self._growth_mb: float | None = None   # RSS when memory-growth was raised last

    def subscribe(self, fn: Callable[[CompileEvent], None]) -> Callable[[], None]:
        """Call ``fn(event)`` for every event; returns a function that unsubscribes."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def emit(self, ev: CompileEvent) -> None:
        for fn in list(self._listeners):
            try:
                fn(ev)
            except Exception:  # a broken listener must not break a compile
                log.exception("vexplore monitor listener %r failed", fn)

    def add_report(self, report: Any, model: int | None = None) -> None:
        """Keep ``report`` (the latest ``history``), count it, and raise the alerts it calls for
        (about ``model``, the id of the CompiledModel that compiled it)."""
        self.reports.append(report)
        del self.reports[: -self._history]
        with self._lock:
            self._totals.add(report.counters)
        for code, severity, message in report_alerts(report):
            self.raise_alert(code, severity, message, model=model, report=report.id)

    # -- alerts ----------------------------------------------------------------------------
    @property
    def alerts(self) -> list[Alert]:
        """The session's alerts, oldest first (the latest 1000)."""
        return self._book.alerts

    def on_alert(self, fn: Callable[[Alert], Any]) -> Callable[[], None]:
        """Call ``fn(alert)`` for every new alert, in the thread that raised it; returns a function
        that unsubscribes. A callback that raises is logged, never raised."""
        return self._book.on_alert(fn)

    def raise_alert(self, code: str, severity: str, message: str, model: int | None = None,
                    report: int | None = None) -> Alert:
        """Record an alert (severity "info" | "warning" | "critical"; about the CompiledModel whose
        id is ``model``, None for the session's own; raised by report ``report``), log it and tell the callbacks."""
        return self._book.raise_alert(code, severity, message, model, report)

    # -- periodic sampling -----------------------------------------------------------------
    def start(self, interval_s: float = 60.0) -> None:
        """Sample every ``interval_s`` seconds in a background (daemon) thread; the first sample is
        taken now. Called again while running, it restarts with the new interval."""
        if isinstance(interval_s, bool) or not isinstance(interval_s, (int, float)) or not 0 < interval_s <= TIMEOUT_MAX:
            raise ConfigError(f"monitor.start(interval_s={interval_s!r}): the interval must be a number of seconds > 0 "
                              f"(at most {TIMEOUT_MAX:.3g}), e.g. monitor.start(interval_s=60.0).")
        self.stop()
        self._probe = Probe(self._disk_bytes)
        self.sample()
        self._sampler = SamplerThread(self.sample, float(interval_s))
        self._sampler.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread to end (the samples stay); nothing when not started."""
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler.stop()

    @property
    def sampling(self) -> bool:
        """Whether the sampling thread runs."""
        return self._sampler is not None and self._sampler.alive

    @property
    def samples(self) -> list[Sample]:
        """The samples taken so far, oldest first."""
        with self._lock:
            return list(self._samples)

    def sample(self) -> Sample:
        """Take one sample now (the thread calls this; it works without ``start()`` too)."""
        if self._probe is None:
            self._probe = Probe(self._disk_bytes)
        with self._lock:
            totals = dataclasses.replace(self._totals)
        s = self._probe.read(totals)
        with self._lock:
            self._samples.append(s)
            rss = [x.rss_mb for x in itertools.islice(reversed(self._samples), GROWTH_SAMPLES)][::-1]
        self._check_growth(rss)
        return s

    def _check_growth(self, rss: list[float]) -> None:
        """memory-growth, once per climb: again only after RSS grew another GROWTH_MB since."""
        why = memory_growth(rss)
        with self._lock:   # the thread and a user's sample() may both see the climb: one alert
            due = bool(why) and (self._growth_mb is None or rss[-1] >= self._growth_mb + GROWTH_MB)
            if due:
                self._growth_mb = rss[-1]
        if due:
            self.raise_alert("memory-growth", "warning", why)

    # -- cancel ----------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the compiles in progress to stop at their next step (each raises CancelledError): the
        same as ``Session.cancel()``, which this calls; nothing when none runs."""
        if self._cancel is not None:
            self._cancel()
