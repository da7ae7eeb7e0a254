"""Timers, and repetitions that stop when the figure is stable.

Two GPU timers, named in every report and results file:

- ``idle``: the latency of one call from an idle GPU. Synchronise (after the L2 flush, when on),
  record a CUDA event, call, record, synchronise. The host's launch work is inside the window,
  as it is for a decode step that waits on the previous one: host-bound variants pay for it.
- ``steady``: triton.testing.do_bench's method. Per call: flush the L2 (queued), record, call,
  record; one synchronise after the block. The host runs ahead, so launch work up to the
  flush's length hides behind the GPU: the throughput of back-to-back calls.

On the CPU both are ``perf_counter`` around ``number`` back-to-back calls (CPU work is
synchronous), reported per call.

``autorange`` measures blocks of samples, round-robin over the variants so drift hits them
alike, until each variant's median is known tightly (the half-width of its ~95 % interval,
1.57 IQR / sqrt(n), McGill's notch, relative to the median) or its time budget is spent — the
adaptive_autorange idea of torch.utils.benchmark, judged on the median's interval rather than on
the samples' spread, which no number of samples narrows on a noisy machine.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch

TIMERS = ("idle", "steady")
L2_FLUSH_BYTES = 256 * 2**20   # larger than any current GPU's L2 (H100: 50 MB, H200: 60 MB)


@dataclass(frozen=True)
class Stats:
    median_ms: float
    p20_ms: float
    p80_ms: float
    n: int
    ci: float = 0.0     # half-width of the median's ~95 % interval, relative to the median

    @property
    def spread(self) -> float:
        """(p80 - p20) / median: how widely the samples spread."""
        return (self.p80_ms - self.p20_ms) / self.median_ms if self.median_ms else 0.0


def stats(samples_ms: Sequence[float]) -> Stats:
    """Median, 20th/80th percentiles (linear interpolation, as numpy's default) and the
    median's relative interval."""
    xs = sorted(samples_ms)
    if not xs:
        raise ValueError("stats() needs at least one sample")

    def pct(q: float) -> float:
        pos = q * (len(xs) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
    med = statistics.median(xs)
    ci = 1.57 * (pct(0.75) - pct(0.25)) / math.sqrt(len(xs)) / med if med else 0.0
    return Stats(med, pct(0.2), pct(0.8), len(xs), ci)


def is_cuda(args: Sequence[Any]) -> bool:
    return any(isinstance(a, torch.Tensor) and a.is_cuda for a in args)


class Sampler:
    """Takes samples (ms per call) of ``fn(*args)`` with one timer: ``sampler.block(k)``."""

    def __init__(self, fn: Callable[..., Any], args: Sequence[Any], timer: str = "idle", cuda: bool = False,
                 flush: torch.Tensor | None = None, number: int = 1) -> None:
        if timer not in TIMERS:
            raise ValueError(f"timer={timer!r}: choose 'idle' or 'steady'")
        self.fn, self.args, self.timer, self.cuda, self.flush, self.number = fn, tuple(args), timer, cuda, flush, number

    def block(self, k: int) -> list[float]:
        if not self.cuda:
            out = []
            for _ in range(k):
                t0 = time.perf_counter()
                for _ in range(self.number):
                    self.fn(*self.args)
                out.append((time.perf_counter() - t0) * 1e3 / self.number)
            return out
        return self._idle(k) if self.timer == "idle" else self._steady(k)

    def _idle(self, k: int) -> list[float]:
        out = []
        for _ in range(k):
            if self.flush is not None:
                self.flush.zero_()
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            self.fn(*self.args)
            end.record()
            torch.cuda.synchronize()
            out.append(start.elapsed_time(end))
        return out

    def _steady(self, k: int) -> list[float]:
        # one untimed call first: the block starts from a drained queue (the synchronise that
        # ends the block before), and do_bench's calls never see one
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(k)]
        if self.flush is not None:
            self.flush.zero_()
        self.fn(*self.args)
        for start, end in events:
            if self.flush is not None:
                self.flush.zero_()
            start.record()
            self.fn(*self.args)
            end.record()
        torch.cuda.synchronize()
        return [start.elapsed_time(end) for start, end in events]


def l2_flush_buffer(cuda: bool, flush_l2: bool) -> torch.Tensor | None:
    """The 256 MB buffer whose zeroing evicts the L2 before each GPU call (as do_bench does)."""
    return torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.int32, device="cuda") if cuda and flush_l2 else None


def calls_per_sample(fn: Callable[..., Any], args: Sequence[Any], min_ms: float = 10.0) -> int:
    """CPU: how many back-to-back calls make a sample of at least ``min_ms`` (timeit's autorange
    idea: perf_counter's jitter stays small against the sample)."""
    t0 = time.perf_counter()
    fn(*args)
    once = max((time.perf_counter() - t0) * 1e3, 1e-4)
    return max(1, min(1000, math.ceil(min_ms / once)))


@dataclass(frozen=True)
class Budget:
    """When ``autorange`` stops measuring a variant."""

    target_ci: float = 0.02      # stop once the median is known within +-2 %...
    min_samples: int = 10        # ...with at least this many samples
    max_samples: int = 2000
    seconds: float = 2.0         # or when this much measuring time per variant is spent
    block: int = 5               # samples per turn


def autorange(samplers: Mapping[str, Sampler], budget: Budget = Budget(),
              fixed: int | None = None) -> dict[str, tuple[list[float], bool]]:
    """Samples per variant, and whether its median's interval met the target. Round-robin in
    blocks; a variant stops when stable or out of budget. ``fixed``: take exactly that many samples."""
    samples: dict[str, list[float]] = {n: [] for n in samplers}
    spent = dict.fromkeys(samplers, 0.0)
    active = list(samplers)
    while active:
        for name in list(active):
            want = budget.block if fixed is None else min(budget.block, fixed - len(samples[name]))
            t0 = time.perf_counter()
            samples[name].extend(samplers[name].block(want))
            spent[name] += time.perf_counter() - t0
            if _done(samples[name], spent[name], budget, fixed):
                active.remove(name)
    return {n: (s, stats(s).ci <= budget.target_ci) for n, s in samples.items()}


def _done(samples: list[float], spent: float, budget: Budget, fixed: int | None) -> bool:
    if fixed is not None:
        return len(samples) >= fixed
    if len(samples) >= budget.max_samples or spent >= budget.seconds:
        return True
    return len(samples) >= budget.min_samples and stats(samples).ci <= budget.target_ci


def first_call(fn: Callable[..., Any], args: Sequence[Any], cuda: bool) -> tuple[float, Any]:
    """Seconds of the first call (compile included), synchronised on GPU."""
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(*args)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out
