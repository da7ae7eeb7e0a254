"""Resource sampling for events: peak RSS of this process and, on GPU, peak device memory."""
from __future__ import annotations

import resource
import sys
from dataclasses import dataclass

import psutil
import torch

_PROC = psutil.Process()
# ru_maxrss is KiB on Linux, bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def rss_bytes() -> int:
    return _PROC.memory_info().rss


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT


@dataclass
class ResourceProbe:
    """Started before a step, read after it: the step's peak RSS and peak device memory.

    The process-lifetime RSS peak (ru_maxrss) tells when a step set a new peak; otherwise the
    larger of the samples at the step's start and end stands for its peak.
    """

    rss0: int = 0
    maxrss0: int = 0
    cuda: bool = False

    @classmethod
    def start(cls) -> "ResourceProbe":
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        return cls(rss_bytes(), _maxrss_bytes(), cuda)

    def finish(self) -> tuple[float, float | None]:
        """(peak RSS MiB, peak device MiB or None without CUDA)."""
        rss1, maxrss1 = rss_bytes(), _maxrss_bytes()
        peak = maxrss1 if maxrss1 > self.maxrss0 else max(self.rss0, rss1)
        dev = torch.cuda.max_memory_allocated() / 2**20 if self.cuda else None
        return peak / 2**20, dev
