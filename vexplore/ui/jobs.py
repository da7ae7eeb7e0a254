"""Run one long task (a recompile, a benchmark) at a time in a background thread.

Why a thread: ``recompile`` runs synchronously; were it to run in the kernel's own thread, the
kernel could not receive the Cancel click until the compile had finished. In a thread the
kernel stays free to handle widget messages, and ipywidgets sends updates from any thread.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)

Done = Callable[[Any, "BaseException | None"], None]


class Worker:
    """At most one task at a time; ``done(result, error)`` runs in the same thread afterwards."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.name: str | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, name: str, fn: Callable[[], Any], done: Done) -> bool:
        """Start ``fn`` unless a task is running (then return False and do nothing)."""
        with self._lock:
            if self.busy:
                return False
            self.name = name
            self._thread = threading.Thread(target=self._run, args=(fn, done), name=f"vexplore-{name}", daemon=True)
            self._thread.start()
            return True

    @staticmethod
    def _run(fn: Callable[[], Any], done: Done) -> None:
        result, error = None, None
        try:
            result = fn()
        except BaseException as e:  # reported to done(), which shows it in the dashboard
            error = e
        try:
            done(result, error)
        except Exception:
            log.exception("vexplore explorer: updating the views failed")

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running task (if any) and its ``done`` have finished."""
        t = self._thread
        if t is not None:
            t.join(timeout)
            if t.is_alive():
                raise TimeoutError(f"vexplore explorer: task {self.name!r} still running after {timeout} s")
