"""Alert: one thing the user should know now; AlertBook keeps a Session's alerts and tells listeners.

An alert is raised by the compile or call that causes it, whether or not periodic sampling runs
(``Monitor.start``): a compile whose every piece fell back (``compile-system-failure``), a cache
tier that failed or came back (``cache-failure``, ``cache-recovered``), a compiled piece that
raised when called (``runtime-fallback``), CUDA graphs the config asked for and did not get
(``cudagraph-skipped``), a graph break at a new place (``graph-break``), a name that keeps
re-tracing (``recompile-storm``); the sampler raises ``memory-growth``. Codes are stable; those that
are also advice codes (``vx.advise``) mean the same thing there (``cache-recovered`` is an alert only).

This module reads reports by their fields only (it sits below monitor/report.py).
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import VexploreError

log = logging.getLogger(__name__)

SEVERITIES = ("info", "warning", "critical")
_LOG_LEVEL = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}

# memory-growth: RSS rose at each of the latest GROWTH_SAMPLES samples, by at least GROWTH_MB and
# GROWTH_RATIO of where the window began (a compile's brief peak is one sample, not a climb).
GROWTH_SAMPLES = 5
GROWTH_MB = 256.0
GROWTH_RATIO = 0.2


@dataclass(frozen=True)
class Alert:
    """One alert: ``code`` (stable, for code), ``severity`` (info | warning | critical), ``message``
    (what happened, where, and how to fix it) and ``t`` (seconds since the epoch, as ``time.time()``).
    ``model`` is the id of the CompiledModel it is about (``cm.id``; None: the session's own, e.g. a
    cache tier or the process's memory), ``report`` the id of the report that raised it, if one did."""

    code: str
    severity: str
    message: str
    t: float
    model: int | None = None
    report: int | None = None

    def __str__(self) -> str:
        return f"[{self.severity}] {self.code}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class AlertBook:
    """A Session's latest ``history`` alerts, and the callbacks told of each new one."""

    def __init__(self, history: int = 1000) -> None:
        self._alerts: deque[Alert] = deque(maxlen=history)
        self._callbacks: list[Callable[[Alert], Any]] = []
        self._lock = threading.Lock()

    @property
    def alerts(self) -> list[Alert]:
        with self._lock:
            return list(self._alerts)

    def on_alert(self, fn: Callable[[Alert], Any]) -> Callable[[], None]:
        """Call ``fn(alert)`` for every new alert, in the thread that raised it; returns a function
        that unsubscribes. A callback that raises is logged, never raised into the compile."""
        with self._lock:
            self._callbacks.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._callbacks:
                    self._callbacks.remove(fn)
        return unsubscribe

    def raise_alert(self, code: str, severity: str, message: str, model: int | None = None,
                    report: int | None = None) -> Alert:
        """Record an alert (about model ``model``, raised by report ``report``), log it, and tell every callback."""
        if severity not in SEVERITIES:
            raise VexploreError(f"raise_alert({code!r}, severity={severity!r}): severity must be one of "
                                f"{', '.join(SEVERITIES)}.")
        alert = Alert(code, severity, message, time.time(), model, report)
        log.log(_LOG_LEVEL[severity], "vexplore alert %s (%s): %s", code, severity, message)
        with self._lock:
            self._alerts.append(alert)
            callbacks = list(self._callbacks)
        for fn in callbacks:
            try:
                fn(alert)
            except Exception:  # a broken callback must not break the compile or call that raised
                log.exception("vexplore alert callback %r failed on %s", fn, code)
        return alert


def report_alerts(report: Any) -> list[tuple[str, str, str]]:
    """(code, severity, message) of the alerts a CompileReport calls for."""
    out = []
    failed = compile_system_failure(report)
    if failed:
        out.append(("compile-system-failure", "critical", failed))
    skipped = [str(w) for w in getattr(report, "warnings", ()) if w.kind == "cudagraph_skip" or
               (w.kind == "cudagraph" and "without CUDA graphs" in str(w))]
    if skipped:
        out.append(("cudagraph-skipped", "warning", f"report {report.id}: " + "; ".join(skipped) +
                    ". The config asked for CUDA graphs (cudagraph="
                    f"{report.config.get('cudagraph')!r}); those graphs or sizes run without them, slower per call."))
    return out


def compile_system_failure(report: Any) -> str | None:
    """Why every compiled piece of ``report`` fell back to eager under the inductor compiler, with
    how to fix it; None when any piece compiled (or the eager compiler was asked for)."""
    if report.config.get("compiler") != "inductor":
        return None
    own = [p for p in report.pieces if p.kind == "compiled" and p.same_as is None]
    failed = [p for p in own if p.compiler == "eager" and p.fallback_reason]
    if not failed or any(p.compiler == "inductor" for p in own):
        return None
    first = failed[0]
    return (f"report {report.id}: all {len(failed)} compiled piece(s) fell back to eager, so the model runs eagerly "
            f"(correct, not faster). First failure, piece {first.index}: {first.fallback_reason}. "
            f"{_fix(first.fallback.cause if first.fallback is not None else None)}")


def _fix(cause: str | None) -> str:
    """What to do about a fallback's cause (``Fallback.cause``; None for reports saved before format 2)."""
    if cause == "c++ compiler":
        return ("No working C++ compiler: install one (e.g. `apt-get install g++`) or set the CXX environment "
                "variable to a working one (Inductor reads it when torch starts), then compile again.")
    if cause == "triton":
        return "Triton failed: check that triton matches this torch build and the GPU driver, then compile again."
    return ("Fix the error above and compile again (each piece's reason is in report.pieces[i].fallback_reason), "
            "or set compiler='eager' to run eagerly on purpose.")


def memory_growth(rss_mb: Sequence[float]) -> str | None:
    """Why the latest RSS readings (oldest first) look like a leak, or None: a rise at each of the
    latest GROWTH_SAMPLES readings, by at least GROWTH_MB and GROWTH_RATIO."""
    last = list(rss_mb)[-GROWTH_SAMPLES:]
    if len(last) < GROWTH_SAMPLES or any(b <= a for a, b in zip(last, last[1:])):
        return None
    grew = last[-1] - last[0]
    if grew < GROWTH_MB or grew < GROWTH_RATIO * last[0]:
        return None
    return (f"process RSS grew at each of the last {GROWTH_SAMPLES} samples, {last[0]:.0f} -> {last[-1]:.0f} MiB "
            f"(+{grew:.0f} MiB): something keeps memory alive (captured graphs, compiled variants per shape, "
            "cached outputs). Check cm.recompiles and the memory tier's size (CacheConfig.memory_entries).")
