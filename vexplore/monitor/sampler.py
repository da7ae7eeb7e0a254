"""Periodic sampling: Sample (one reading of the process and the Session) and the thread that takes them.

A sample reads what is cheap to read (well under 10 ms): this process's RSS and CPU use (psutil),
the device memory torch holds when CUDA is initialised, the disk tiers' size from their indexes
(never a directory walk), and the compile and cache counters of the reports the Monitor has seen.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import psutil
import torch

log = logging.getLogger(__name__)

MiB = 2**20


@dataclass(frozen=True)
class Sample:
    """One reading, taken at ``t`` (seconds since the epoch).

    ``cpu_percent`` is this process's CPU use since the previous sample (100 = one core busy; 0 for
    the first); ``gpu_mem_mb`` the device memory torch's allocator holds on every GPU, None when
    CUDA is not initialised; ``disk_cache_mb`` what the Session's disk tiers hold by their indexes;
    ``compiles`` and ``cache_hit_rate`` count the reports so far (Inductor compiles; hits over
    hits and misses of vexplore's tiers, None before any lookup).
    """

    t: float
    rss_mb: float
    cpu_percent: float
    gpu_mem_mb: float | None
    disk_cache_mb: float
    compiles: int
    cache_hit_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Totals:
    """The counters of every report a Monitor has seen (kept as reports arrive, not re-summed)."""

    compiles: int = 0
    hits: int = 0
    misses: int = 0

    def add(self, counters: dict[str, int]) -> None:
        self.compiles += counters.get("inductor_compiles", 0)
        self.hits += sum(counters.get(f"cache_hits_{t}", 0) for t in ("memory", "disk", "remote"))
        self.misses += counters.get("cache_misses", 0)

    @property
    def hit_rate(self) -> float | None:
        seen = self.hits + self.misses
        return self.hits / seen if seen else None


class Probe:
    """Reads one Sample. Made when sampling starts, so that CPU use counts from then."""

    def __init__(self, disk_bytes: Callable[[], int] | None) -> None:
        self.proc = psutil.Process()
        self.proc.cpu_percent(None)        # the first reading starts psutil's interval
        self.disk_bytes = disk_bytes

    def read(self, totals: Totals) -> Sample:
        rss = self.proc.memory_info().rss / MiB
        cpu = self.proc.cpu_percent(None)
        return Sample(time.time(), rss, cpu, gpu_mem_mb(), (self.disk_bytes() if self.disk_bytes else 0) / MiB,
                      totals.compiles, totals.hit_rate)


def gpu_mem_mb() -> float | None:
    """Device memory torch's allocator holds, on every GPU; None when CUDA is not initialised
    (reading it must not initialise CUDA: that costs seconds and memory on every GPU)."""
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return None
    return sum(torch.cuda.memory_allocated(d) for d in range(torch.cuda.device_count())) / MiB


class SamplerThread:
    """Calls ``take()`` every ``interval_s`` seconds in a daemon thread until ``stop()``.

    A failing ``take`` is logged (once per kind of error) and sampling goes on.
    """

    def __init__(self, take: Callable[[], Any], interval_s: float) -> None:
        self.take, self.interval_s = take, interval_s
        self._stop = threading.Event()
        self._failed: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="vexplore-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.take()
            except Exception as e:  # a sample that fails must not end monitoring
                kind = type(e).__name__
                if kind not in self._failed:
                    self._failed.add(kind)
                    log.exception("vexplore monitor: taking a sample failed (%s); sampling goes on", kind)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the thread to end and wait for it (a sample in progress finishes first)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("vexplore monitor: the sampling thread did not end within %.0f s", timeout_s)
