"""Tune records: what ``vx.tune`` measured, as frozen, JSON-ready data a report keeps.

``Timing`` is one size of one trial as the bench timed it; ``Trial`` one config tried; ``TuneRecord``
one whole tune (the start config, the best's diff from it, every trial, the improvement per size with
its interval, the best's runtime profile). The tuner (advise/tune.py) builds them and keeps the record
on the model's report (``report.tunes``, newest last), so a saved report carries its tunes and
``vx.diff`` and ``vx.export_html`` show them without the model. ``vx.TuneResult`` (advise/) holds the
same trials with the configs as objects, and applies the best; ``TuneResult.from_record`` rebuilds it
from a record.

Configs are kept as plain data here (``CompileConfig.to_dict()`` and diffs from it): monitor/ imports
nothing of the engine or the advisor.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..config import CompileConfig
from .profile import RuntimeProfile

STATUSES = ("ok", "worse", "pruned", "failed-accuracy", "crashed", "timeout")


@dataclass(frozen=True)
class Timing:
    """One size of one trial, as the bench measured it (ms per call)."""

    size: int | None
    median_ms: float
    p20_ms: float
    p80_ms: float
    ci: float                        # the median's ~95 % half-width, relative
    max_rel_err: float
    first_call_s: float | None = None
    noisy: bool = False              # the bench could not pin the median down (BenchRow status "noisy")

    @property
    def spread(self) -> float:
        """(p80 - p20) / median."""
        return (self.p80_ms - self.p20_ms) / self.median_ms if self.median_ms else 0.0

    @classmethod
    def of(cls, row: Any) -> "Timing":
        """From one of ``vx.benchmark``'s rows (a BenchRow)."""
        return cls(row.tokens, row.median_ms, row.p20_ms, row.p80_ms, row.median_ci, row.max_rel_err,
                   row.first_call_s, row.status == "noisy")


@dataclass(frozen=True)
class Trial:
    """One config tried. ``number`` 0 is the start config (``diff`` {}); ``diff`` is what the config changes
    from the start (JSON-ready, as ``config_diff`` gives it); ``timings`` per size measured (median, p20,
    p80 in ms, the median's interval, the error against eager); ``first_call_s`` the compile plus the first
    call; ``objective`` in ms (None unless every size was measured); ``status`` one of ``STATUSES``;
    ``error`` why it crashed, timed out, failed the gate or was pruned; ``where`` it ran."""

    number: int
    diff: Mapping[str, Any]
    status: str
    timings: tuple[Timing, ...] = ()
    first_call_s: float | None = None
    objective: float | None = None
    seconds: float = 0.0
    error: str | None = None
    where: str = "local"
    config: CompileConfig | None = field(default=None, compare=False, repr=False)   # None once loaded from a dict

    @property
    def medians(self) -> dict[Any, float]:
        """Size -> median ms."""
        return {t.size: t.median_ms for t in self.timings}

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("config", "timings")}
        d["diff"] = dict(self.diff)
        d["timings"] = [dataclasses.asdict(t) for t in self.timings]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Trial":
        kw = {k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)} and k != "timings"}
        return cls(**kw, timings=tuple(Timing(**t) for t in d.get("timings", ())))


@dataclass(frozen=True)
class TuneRecord:
    """One ``vx.tune``, as the report keeps it: ``start`` (the start config, ``CompileConfig.to_dict()``),
    ``best_diff`` (what the best changes from it; {} when nothing beat the start), ``best_trial`` (its
    number), every ``Trial``, ``improvement`` ((size, start median / best median), from the interleaved
    re-measurement at the end) and ``improvement_ci`` ((size, low, high): its ~95 % interval; sizes without
    one are left out), how it searched and why it stopped, and the best's runtime ``profile`` (or None)."""

    start: dict[str, Any]
    best_diff: dict[str, Any]
    best_trial: int
    trials: tuple[Trial, ...]
    improvement: tuple[tuple[Any, float], ...] = ()
    improvement_ci: tuple[tuple[Any, float, float], ...] = ()
    objective: str = "latency"
    executor: str = "local"
    seconds: float = 0.0
    budget_s: float = 0.0
    stopped: str = ""
    notes: tuple[str, ...] = ()
    device: str = ""
    space: dict[str, Any] = field(default_factory=dict)   # the dimensions searched, JSON-ready
    profile: RuntimeProfile | None = None

    @property
    def best(self) -> Trial | None:
        return next((t for t in self.trials if t.number == self.best_trial), None)

    def by_status(self) -> dict[str, int]:
        """Status -> how many trials ended so."""
        return {s: n for s in STATUSES if (n := sum(t.status == s for t in self.trials))}

    def improvement_text(self, size: Any) -> str | None:
        """``1.23x (~95 % 1.10-1.38)`` at ``size`` (no interval where there is none); None if not measured."""
        value = dict(self.improvement).get(size)
        if value is None:
            return None
        ci = {s: (lo, hi) for s, lo, hi in self.improvement_ci}.get(size)
        return f"{value:.3f}x" + (f" (~95 % {ci[0]:.3f}-{ci[1]:.3f})" if ci is not None else " (no interval)")

    def summary(self) -> str:
        """One line: trials by status, the objective, the budget, the best's diff."""
        counts = ", ".join(f"{n} {s}" for s, n in self.by_status().items())
        return (f"{len(self.trials)} trials ({counts}) in {self.seconds:.1f} s of {self.budget_s:g} s, {self.objective}; "
                f"best: {diff_text(self.best_diff)}")

    def table(self) -> str:
        """The trials as plain text, best first among the ok ones, then the rest in order."""
        sizes = list(dict.fromkeys(t.size for tr in self.trials for t in tr.timings))
        head = f"{'#':>3} {'status':<16}{'objective':>11}" + "".join(f"{size_name(s) + ' ms':>11}" for s in sizes) + \
            f"{'first s':>9}  diff"
        lines = [f"objective: {self.objective}; {len(self.trials)} trials in {self.seconds:.1f} s "
                 f"(budget {self.budget_s:g} s); {self.stopped}", head]
        for tr in sorted(self.trials, key=lambda t: (t.number != self.best_trial, t.number)):
            med = tr.medians
            cells = "".join(f"{med[s]:>11.4g}" if s in med else f"{'-':>11}" for s in sizes)
            obj = f"{tr.objective:>11.4g}" if tr.objective is not None else f"{'-':>11}"
            first = f"{tr.first_call_s:>9.2f}" if tr.first_call_s is not None else f"{'-':>9}"
            mark = "*" if tr.number == self.best_trial else " "
            lines.append(f"{tr.number:>3}{mark}{tr.status:<16}{obj}{cells}{first}  {diff_text(tr.diff)}")
        cis = {s: (lo, hi) for s, lo, hi in self.improvement_ci}
        for s, v in self.improvement:
            lo, hi = cis.get(s, (math.nan, math.nan))
            lines.append(f"improvement at {size_name(s)}: {v:.3f}x (start / best), ~95 % interval {lo:.3f}-{hi:.3f}")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what a saved report holds; ``from_jsonable`` rebuilds the record from it)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("trials", "profile")}
        d["trials"] = [t.to_dict() for t in self.trials]
        d["profile"] = self.profile.to_dict() if self.profile is not None else None
        return d


def size_name(s: Any) -> str:
    """A size as the tables name it ("graphs": the captured graphs on their own inputs)."""
    return "graphs" if s is None else str(s)


def diff_text(diff: Mapping[str, Any]) -> str:
    """``strategy=full, cpp_wrapper=True``; ``(start)`` for no change."""
    if not diff:
        return "(start)"
    return ", ".join(f"{k.replace('inductor_options.', '')}={v}" for k, v in diff.items())
