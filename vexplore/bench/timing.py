"""Timing primitives: CUDA events with synchronisation on GPU, perf_counter on CPU."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch


@dataclass(frozen=True)
class Stats:
    median_ms: float
    p20_ms: float
    p80_ms: float
    n: int

    @property
    def spread(self) -> float:
        """(p80 - p20) / median: how noisy the samples are."""
        return (self.p80_ms - self.p20_ms) / self.median_ms if self.median_ms else 0.0


def stats(samples_ms: Sequence[float]) -> Stats:
    """Median and 20th/80th percentiles (linear interpolation, as numpy's default)."""
    xs = sorted(samples_ms)
    if not xs:
        raise ValueError("stats() needs at least one sample")

    def pct(q: float) -> float:
        pos = q * (len(xs) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
    return Stats(statistics.median(xs), pct(0.2), pct(0.8), len(xs))


def is_cuda(args: Sequence[Any]) -> bool:
    return any(isinstance(a, torch.Tensor) and a.is_cuda for a in args)


L2_FLUSH_BYTES = 256 * 2**20   # larger than any current GPU's L2 (H100: 50 MB)


class Timer:
    """Times single calls: ``ms, out = timer(fn, args)``. Warm-up is the caller's business.

    On GPU each call is bracketed by CUDA events after a synchronise, and by default the L2
    cache is flushed first (a 256 MB write, outside the timed events), as
    triton.testing.do_bench does, so weights are read from HBM as in a real decode step.
    """

    def __init__(self, cuda: bool, flush_l2: bool = True) -> None:
        self.cuda = cuda
        self._flush = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.int32, device="cuda") if cuda and flush_l2 else None

    def __call__(self, fn: Callable[..., Any], args: Sequence[Any]) -> tuple[float, Any]:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            if self._flush is not None:
                # As triton.testing.do_bench: the call is queued behind the flush with no
                # synchronise between, so its host-side launch work overlaps the flush.
                self._flush.zero_()
            else:
                torch.cuda.synchronize()
            start.record()
            out = fn(*args)
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end), out
        t0 = time.perf_counter()
        out = fn(*args)
        return (time.perf_counter() - t0) * 1e3, out


def first_call(fn: Callable[..., Any], args: Sequence[Any], cuda: bool) -> tuple[float, Any]:
    """Seconds of the first call (compile included), synchronised on GPU."""
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(*args)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out
