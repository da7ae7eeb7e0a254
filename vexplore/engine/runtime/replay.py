"""Replay: what a graph under CUDA graphs does on every call.

A call decides its size once (sizes.SizePolicy; a size not captured runs without graphs,
counted), checks the addresses of the inputs used in place with one C++ call (a moved one
captures the size again, through admission.py), copies the other inputs into the RuntimePlan's
buffers (``inputplan.InputPlan``), runs the plan's flat list of steps, and copies written inputs
back. The outputs of a call are copied out of the pool once (so a later replay never changes a
result the caller holds), except an output that is a fixed input's own memory (a cache the model
returns), returned as eager returns it.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import torch

from .. import _torch_compat as tc
from .admission import Admission
from .graphcapture import RuntimePlan
from .inputplan import REBIND_CALLS, InputPlan
from .sizes import SizePolicy
from .stats import GraphStats

log = logging.getLogger(__name__)
# Calls of every graph under CUDA graphs in this process: how far apart an input's moves are (a model's
# prefill graph runs once per generation, so its own calls cannot tell a cache rebound per generation
# from a new tensor every call).
CALLS = [0]


class GraphCudaGraphs:
    """The callable a graph runs under CUDA graphs: picks the size, keeps inputs where the
    plans expect them, runs the plan, copies written inputs back and outputs out. ``fallback``
    runs a call no graph serves."""

    def __init__(self, plan: InputPlan, policy: SizePolicy, admission: Admission, fallback: Callable[..., Any],
                 stats: GraphStats, later: Any = None) -> None:
        self.plan, self.policy, self.admission, self.fallback, self.stats = plan, policy, admission, fallback, stats
        self.later = later               # the graph compiled whole, built off the call path (build/background.py)
        self.stale: set[int | None] = set()   # full sizes captured from the stitched pieces, once it is taken

    def __call__(self, *args: Any) -> Any:
        CALLS[0] += 1
        if self.later is not None and self.later.done():
            self._take_whole()
        picked = self.policy.size_of(args)
        if picked is None:
            return self._uncaptured(args)
        n, size = picked
        runtime = self.admission.plans.get(size)
        whole = size in self.stale   # captured from the stitched pieces: again, with the graph compiled whole
        if whole or runtime is None or not tc.data_ptrs_equal(args, runtime.ptrs, self.plan.fixed):
            self.stale.discard(size)
            runtime = self._recapture(size, args, whole)
            if runtime is None:   # the capture failed: this size runs without graphs from now on
                return self._uncaptured(args)
        return self._replay(runtime, args, n, size)

    def settle(self, timeout: float | None = None) -> bool:
        """Wait for the graph compiled whole off the call path, if one is being built, and take it (each full
        size is captured again with it at its next call); True unless ``timeout`` seconds passed first."""
        if self.later is None:
            return True
        if not self.later.wait(timeout):
            return False
        self._take_whole()
        return True

    def _take_whole(self) -> None:
        """The whole graph is built (or failed to be): full captures record it from now on."""
        fn, note = self.later.result()
        self.later = None
        self.stats.notes.append(note)
        if fn is None:
            log.warning("vexplore: cudagraph: %s", note)
            return
        self.admission.capturer.whole = fn
        self.stats.whole = True
        self.stale = {s for s, info in self.stats.sizes.items() if info.mode == "full"}

    def _uncaptured(self, args: Sequence[Any]) -> Any:
        """A call no graph serves: counted (by its token count) and run by the fallback."""
        n = self.policy.tokens(args)
        self.stats.uncaptured_sizes[n] = self.stats.uncaptured_sizes.get(n, 0) + 1
        return self.fallback(*args)

    def _recapture(self, size: int | None, args: Sequence[Any], whole: bool = False) -> RuntimePlan | None:
        """Capture ``size`` again at the call's addresses: a fixed input moved, or a change of
        plan dropped every capture; ``whole``: the graph compiled whole is taken (not counted as a
        recapture; warmed up first, as it never ran)."""
        plans = self.admission.plans
        old = plans.get(size)
        if old is not None:
            changed = False
            call = CALLS[0]
            for i in list(self.plan.fixed):
                ptr = args[i].data_ptr()
                if ptr != old.ptrs[i] and self.plan.moved(i, ptr, self.admission.current, call):
                    changed = True
                    note = (f"input {self.plan.names[i]} moved again within {REBIND_CALLS} calls (of any graph "
                            "under CUDA graphs) of its last move (a new tensor every few calls): it is copied "
                            "into the graphs' buffer (and back, if written) from now on")
                    self.stats.notes.append(note)
                    log.warning("vexplore: %s", note)
            if changed:   # the plan changed: no capture of any size may replay any more
                plans.clear()
            else:   # captures holding the old address are dropped now, not kept alive (an old cache with them)
                for s in [s for s, p in plans.items() if s != size and not tc.data_ptrs_equal(args, p.ptrs, self.plan.fixed)]:
                    del plans[s]
        self.stats.recaptures += old is not None and not whole   # else a size captured at its first call
        # captured before as asked: no warm-up runs again (Capturer.capture). Not after a full capture failed:
        # the full graph is tried again first, and only the checked warm-up finds an op that waits for the
        # device before it could break a capture
        before = self.stats.sizes.get(size)
        warm = whole or before is None or before.mode == "none" or before.reason == "full_failed"
        self.admission.admit(size, args, warm=warm)
        return plans.get(size)

    def _replay(self, runtime: RuntimePlan, args: Sequence[Any], n: int | None, size: int | None) -> Any:
        plan, static = self.plan, runtime.static
        rows = n if n != size else None          # a padded call uses the first n rows
        if any(args[i] != static[i] for i in plan.scalars) or \
                any(args[i] != static[i] for i, d in plan.dims.items() if d is None and rows is None):
            return self._uncaptured(args)      # another dynamic value than the token count changed
        moved: list[int] = []
        for i in plan.copied:
            a, s = args[i], _rows(static[i], plan.dims.get(i), rows)
            if a.data_ptr() != s.data_ptr():
                if a.shape != s.shape:           # a dim other than the token count changed
                    return self._uncaptured(args)
                moved.append(i)
        if rows is not None:
            assert not plan.written, "a graph that writes its inputs is never padded (inputplan.plan_sizes)"
            for i, d in plan.dims.items():
                if d is not None and i in plan.copied:
                    static[i].narrow(d, rows, size - rows).zero_()
            self.stats.padded_calls += 1
        if moved:
            tc.copy_all([_rows(static[i], plan.dims.get(i), rows) for i in moved], [args[i] for i in moved])
        out = runtime.run()
        self.stats.replays_by_size[size] = self.stats.replays_by_size.get(size, 0) + 1
        back = [i for i in moved if i in plan.written]
        if back:
            tc.copy_all([args[i] for i in back], [_rows(static[i], plan.dims.get(i), rows) for i in back])
        return _copy_out(out, runtime.aliases, size, rows)


def _rows(t: torch.Tensor, dim: int | None, n: int | None) -> torch.Tensor:
    """The first ``n`` rows of ``t`` along its token dim (all of it when not padded)."""
    return t if n is None or dim is None else t.narrow(dim, 0, n)


def _copy_out(out: Any, aliases: tuple[bool, ...], size: int | None, n: int | None) -> Any:
    """Outputs copied out of the pool (cut to ``n`` rows after a padded replay). An output that
    is a fixed input's memory (the caller's own buffer or cache) is returned as it is, as eager
    returns it: copying it would copy a whole cache per call."""
    def one(t: Any, alias: bool) -> Any:
        if not isinstance(t, torch.Tensor) or alias:
            return t
        if n is not None and t.dim() and t.shape[0] == size:
            t = t.narrow(0, 0, n)
        return t.clone()
    if isinstance(out, (tuple, list)):
        return type(out)(one(t, a) for t, a in zip(out, aliases))
    return one(out, aliases[0])
