"""Admission: whether a capture size gets CUDA graphs, and the captures of those that do.

Each size's memory is estimated first (capturemem.py: the graph's peak of intermediates at that
token count, what a piecewise capture's split ops pin, and the buffers its copied inputs get). A
size over the budget, or whose capture fails, runs without graphs from then on, saying why
(``SizeInfo.reason`` "over_budget" | "capture_failed"); a size the size plan never captures is
refused with the plan's reason. The replay side asks ``plans`` for a size's RuntimePlan.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Sequence

import torch

from . import capturemem
from .graphcapture import Capturer, RuntimePlan
from .inputplan import SizeDecision
from .sizes import SizePolicy
from .stats import SizeInfo

log = logging.getLogger(__name__)


class Admission:
    """The captures of one graph's sizes (``limit_mb``: the config's cudagraph_memory_mb)."""

    def __init__(self, capturer: Capturer, policy: SizePolicy, limit_mb: float | None) -> None:
        self.capturer, self.policy, self.limit_mb = capturer, policy, limit_mb
        self.parts, self.plan, self.stats = capturer.parts, capturer.plan, capturer.stats
        self.plans: dict[int | None, RuntimePlan] = {}   # the sizes captured
        self.current: dict[int, int] = {}                # fixed input -> the address it was last seen at

    def estimate(self, size: int | None, real: Sequence[Any]) -> int:
        """Bytes a capture of ``size`` is expected to hold: the graph's peak of intermediates
        and the buffers its copied inputs get (capturemem.py)."""
        ev = capturemem.evaluator(self.plan.hints, self.plan.tied, size)
        peak = capturemem.peak_bytes(self.parts.source, ev) if self.parts.source is not None else 0
        if self.policy.mode_for(size)[0] == "piecewise":   # what split ops read and return stays for good
            peak += capturemem.pinned_bytes(self.parts.parent, self.parts.split_ops, ev)
        inputs = 0
        for i in self.plan.copied:
            a = real[i]
            if isinstance(a, torch.Tensor):
                shape = self.plan.at_size(i, size) if i in self.plan.dims and size is not None else list(a.shape)
                inputs += math.prod(shape) * a.element_size()
        return peak + inputs

    def admit(self, size: int | None, args: Sequence[Any], warm: bool = True) -> SizeInfo:
        """Capture ``size`` when its estimated memory fits the budget, else serve it without graphs
        (``warm``: Capturer.capture's)."""
        est = self.estimate(size, args)
        budget, whence = capturemem.budget_bytes(self.limit_mb)
        if est > budget:
            return self.skip(size, f"not captured: estimated {est / 2**20:.1f} MiB > {budget / 2**20:.1f} MiB "
                                   f"({whence}); runs without CUDA graphs", est, "over_budget")
        return self.try_capture(size, args, est, warm)

    def try_capture(self, size: int | None, args: Sequence[Any], estimate: int = 0, warm: bool = True) -> SizeInfo:
        """Capture ``size``, and when that fails (out of memory, an op that cannot be captured) the
        size runs without graphs instead of taking the call down."""
        try:
            runtime, info = self.capturer.capture(size, args, *self.policy.mode_for(size), warm=warm)
        except Exception as e:   # noqa: BLE001 — whatever failed, this size must still run
            self.capturer.new_pool()   # a failed capture leaves its pool unusable
            torch.cuda.empty_cache()
            return self.skip(size, f"capture failed ({type(e).__name__}: {str(e).strip()[:160]}); runs without "
                                   "CUDA graphs", estimate, "capture_failed")
        self.plans[size] = runtime
        for i in self.plan.fixed:
            self.current.setdefault(i, runtime.static[i].data_ptr())
        info = dataclasses.replace(info, estimate_mb=estimate / 2**20)
        self.stats.sizes[size] = info
        return info

    def skip(self, size: int | None, why: str, estimate: int = 0, reason: str = "") -> SizeInfo:
        """Serve ``size`` without CUDA graphs from now on, saying why (``reason``: its code)."""
        self.plans.pop(size, None)
        self.policy.drop(size)
        info = SizeInfo("none", why, estimate_mb=estimate / 2**20, reason=reason)
        self.stats.sizes[size] = info
        self.stats.notes.append(f"size {size}: {why}")
        log.warning("vexplore: cudagraph: size %s: %s", size, why)
        return info

    def refuse(self, d: SizeDecision) -> SizeInfo:
        """A size the size plan never captures (no call of it fits a cache the graph writes): it
        runs without graphs; the compile's note says so once for all such sizes."""
        self.policy.drop(d.size)
        info = self.stats.sizes[d.size] = SizeInfo("none", d.why, reason=d.reason)
        return info
