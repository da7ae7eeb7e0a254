"""The end of ``vx.tune``: the start and the best timed interleaved on this device, and the best's profile.

Both configs are compiled side by side (model mode: two fresh CompiledModels in the model's Session,
each traced once, their pieces memory or disk hits; graphs mode: the captured graphs recompiled
under each config and kept), then ``vx.benchmark`` times them round-robin per size, so drift on a
shared machine hits both alike. ``improvement`` is start median / best median per size, its
interval from both medians' ~95 % intervals. A cancelled tune skips both (its improvement is the trials' own). Each size gets what the budget has left (the bench's
per-row budget at most); where the time left cannot hold a size, the trials' own timings stand in
(measured apart, so no interval), and the result says so; so does a profile left out for time.
"""
from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Any

import torch

from ..config import CompileConfig
from ..engine.model import compile as vx_compile
from ..errors import VexploreWarning
from .tunespace import config_diff
from .tunetrial import Timing, ratio_interval, trace_order

log = logging.getLogger(__name__)

MIN_ROW_S = 0.05    # seconds of timing per variant and size below which a re-measurement says nothing


def remeasure(run: Any, best: CompileConfig) -> tuple[dict[Any, float], dict[Any, tuple[float, float]], Any, list[str]]:
    """(improvement, improvement_ci, profile, notes) for ``best`` against ``run.start``. Each size is timed for
    what the budget has left once the pair is compiled (the bench's per-row budget at most); sizes it cannot
    hold, and the profile, are left out, saying so."""
    sizes = run.target.sizes
    if not config_diff(run.start, best):   # the model is back at the start config: its profile is the best's
        notes = ["no config beat the start: best is the start config (improvement 1 by definition)"]
        profile = None if run.cancelled else _profile(run, run.cm if run.target.inputs is not None else None, notes)
        return {s: 1.0 for s in sizes}, {s: (1.0, 1.0) for s in sizes}, profile, notes
    if not run.opts.remeasure or run.cancelled or run.time_left() < run.final_estimate() / 3:
        why = ("the tune was cancelled" if run.cancelled else "remeasure=False" if not run.opts.remeasure
               else "no time was left in the budget")
        return (*_from_trials(run, best, sizes), None,
                [f"{why}: improvement is from the trials' own timings (measured apart, not interleaved), with no interval"])
    variants, candidate = _pair(run, best)
    improvement, ci, notes = {}, {}, []
    try:
        for i, size in enumerate(sizes):
            per_row = min(run.spec.bench.budget_s, (run.time_left() - _profile_s(run)) / (2 * (len(sizes) - i)))
            if per_row < MIN_ROW_S:
                improvement.update(_from_trials(run, best, sizes[i:])[0])
                notes.append(f"no time was left to re-measure size(s) {list(sizes[i:])}: their improvement is from the "
                             "trials' own timings (measured apart, not interleaved), with no interval")
                break
            opts = dataclasses.replace(run.spec.bench, budget_s=per_row)
            start_row, best_row = run.target.bench(size, opts, variants)
            r, lo, hi = ratio_interval(Timing.of(start_row), Timing.of(best_row))
            improvement[size], ci[size] = r, (lo, hi)
            bad = [f"{row.variant} {row.status}" for row in (start_row, best_row) if row.status != "ok"]
            if bad:
                notes.append(f"re-measurement at size {size}: {', '.join(bad)} (see vx.benchmark's statuses)")
    finally:
        if run.target.inputs is None:
            run.cm.recompile(run.start)   # graphs mode compiled the best into the model: back to the start
    if candidate is not None and run.time_left() < _profile_s(run):
        notes.append("no time was left in the budget to profile the best config")
        return improvement, ci, None, notes
    return improvement, ci, _profile(run, candidate, notes), notes


def _profile_s(run: Any) -> float:
    """Seconds a profile likely takes (``cm.profile``'s 25 calls at the start's first-size median, and its start-up)."""
    if run.target.inputs is None or not hasattr(run.cm, "profile"):
        return 0.0
    start = run.trials[0].timings if run.trials and run.trials[0].number == 0 else ()
    return 0.5 + 25 * (start[0].median_ms / 1e3 if start else 0.0)


def _pair(run: Any, best: CompileConfig) -> tuple[list[tuple[str, Any]], Any]:
    """The (name, callable) pair of start and best to time, and what to profile the best on."""
    cm = run.cm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VexploreWarning)
        if run.target.inputs is not None:
            a = vx_compile(cm.model, run.start, session=cm.session)
            b = vx_compile(cm.model, best, session=cm.session)
            with torch.no_grad():   # traced as the bench calls them, largest size first
                for inputs in trace_order(run.target.inputs)[:1]:
                    a(*inputs)
                    b(*inputs)
            return [("start", a), ("tuned", b)], b
        cm.recompile(run.start)
        fa = run.target.graph_fns()
        cm.recompile(best)
        fb = run.target.graph_fns()
    return [("start", fa), ("tuned", fb)], None


def _from_trials(run: Any, best: CompileConfig, sizes: Any) -> tuple[dict[Any, float], dict[Any, tuple[float, float]]]:
    start = run.trials[0].medians
    trial = next((t for t in run.trials if t.config == best), None)
    got = trial.medians if trial is not None else {}
    return {s: start[s] / got[s] for s in sizes if s in start and got.get(s)}, {}


def _profile(run: Any, candidate: Any, notes: list[str]) -> Any:
    """The best's runtime profile, when the model can be profiled (``cm.profile``) on inputs of the first size."""
    if candidate is None or not hasattr(run.cm, "profile"):
        return None
    inputs = next(iter(run.target.inputs.values()))
    try:
        with torch.no_grad():   # as the trials ran: a call with grad would trace an autograd graph
            return candidate.profile(*inputs)
    except Exception as e:   # a profile is an explanation, not the result: its failure must not cost the tune
        log.warning("vx.tune: profiling the best config failed", exc_info=True)
        notes.append(f"profiling the best config failed: {type(e).__name__}: {e}")
        return None
