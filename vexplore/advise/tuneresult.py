"""What ``vx.tune`` returns: ``TuneResult`` (the best config, every ``Trial``, the improvement with its
interval) and its saved form (``to_dict`` / ``from_dict``, JSON-ready)."""
from __future__ import annotations

import ast
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from ..config import CacheConfig, CompileConfig
from ..errors import VexploreError
from .apply import ApplyResult, apply_config, rebase
from .tunespace import apply_diff, config_diff
from .tunetrial import Timing

STATUSES = ("ok", "worse", "pruned", "failed-accuracy", "crashed", "timeout")
FORMAT = "vexplore.tune/1"


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
class TuneResult:
    """What ``vx.tune`` found: ``best`` (a CompileConfig; the start's when nothing beat it), ``trials``
    (every config tried, the start first), ``improvement`` (size -> start median / best median, from the
    interleaved re-measurement of both at the end), ``improvement_ci`` (size -> its ~95 % interval),
    ``profile`` (the best's RuntimeProfile when the model can profile, else None), ``stopped`` (why the
    search ended), ``notes`` (what else the user should know). ``apply(cm)`` applies the best."""

    best: CompileConfig
    start: CompileConfig
    trials: tuple[Trial, ...]
    improvement: Mapping[Any, float]
    improvement_ci: Mapping[Any, tuple[float, float]]
    profile: Any = None
    objective: str = "latency"
    executor: str = "local"
    seconds: float = 0.0
    budget_s: float = 0.0
    stopped: str = ""
    notes: tuple[str, ...] = ()
    device: str = ""
    best_trial: int = 0
    space: Mapping[str, Any] = field(default_factory=dict)   # the dimensions searched, JSON-ready

    @property
    def best_diff(self) -> dict[str, Any]:
        """What the best config changes from the start."""
        return config_diff(self.start, self.best)

    def by_status(self) -> dict[str, int]:
        """Status -> how many trials ended so."""
        return {s: n for s in STATUSES if (n := sum(t.status == s for t in self.trials))}

    def apply(self, cm: Any, inputs: Sequence[Any] | None = None) -> ApplyResult:
        """Recompile ``cm`` with what the best changes from the start (carried onto ``cm.config`` as it is now,
        as an advice's apply does), time ``cm(*inputs)`` (or the captured graphs on their own inputs) before
        and after under ``torch.no_grad()`` (as the trials were), and keep it only when faster by more than 3 %;
        else recompile back."""
        with torch.no_grad():
            return apply_config(cm, rebase(self.best, self.start, cm.config), "median_ms", inputs)

    def table(self) -> str:
        """The trials as plain text, best first among the ok ones, then the rest in order."""
        sizes = list(dict.fromkeys(t.size for tr in self.trials for t in tr.timings))
        head = f"{'#':>3} {'status':<16}{'objective':>11}" + "".join(f"{_size(s) + ' ms':>11}" for s in sizes) + \
            f"{'first s':>9}  diff"
        lines = [f"objective: {self.objective}; {len(self.trials)} trials in {self.seconds:.1f} s "
                 f"(budget {self.budget_s:g} s); {self.stopped}", head]
        for tr in sorted(self.trials, key=lambda t: (t.number != self.best_trial, t.number)):
            med = tr.medians
            cells = "".join(f"{med[s]:>11.4g}" if s in med else f"{'-':>11}" for s in sizes)
            obj = f"{tr.objective:>11.4g}" if tr.objective is not None else f"{'-':>11}"
            first = f"{tr.first_call_s:>9.2f}" if tr.first_call_s is not None else f"{'-':>9}"
            mark = "*" if tr.number == self.best_trial else " "
            lines.append(f"{tr.number:>3}{mark}{tr.status:<16}{obj}{cells}{first}  {_diff_text(tr.diff)}")
        for s, v in self.improvement.items():
            lo, hi = self.improvement_ci.get(s, (math.nan, math.nan))
            lines.append(f"improvement at {_size(s)}: {v:.3f}x (start / best), ~95 % interval {lo:.3f}-{hi:.3f}")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the profile is left out (it has its own records)."""
        return {"format": FORMAT, "start": self.start.to_dict(), "best": self.best.to_dict(),
                "best_diff": self.best_diff, "best_trial": self.best_trial,
                "trials": [t.to_dict() for t in self.trials],
                "improvement": [[s, v] for s, v in self.improvement.items()],
                "improvement_ci": [[s, list(v)] for s, v in self.improvement_ci.items()],
                "objective": self.objective, "executor": self.executor, "seconds": self.seconds,
                "budget_s": self.budget_s, "stopped": self.stopped, "notes": list(self.notes), "device": self.device,
                "space": dict(self.space)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TuneResult":
        """A result saved by ``to_dict``. Configs with post-grad passes cannot be rebuilt (they are saved by
        name and uuid): raises VexploreError naming them."""
        if d.get("format") != FORMAT:
            raise VexploreError(f"TuneResult.from_dict: format {d.get('format')!r} is not {FORMAT!r}; save it again "
                                "with this vexplore (TuneResult.to_dict).")
        start = config_from_dict(d["start"])
        return cls(best=apply_diff(start, d["best_diff"]), start=start,
                   trials=tuple(Trial.from_dict(t) for t in d["trials"]),
                   improvement={s: v for s, v in d["improvement"]},
                   improvement_ci={s: tuple(v) for s, v in d["improvement_ci"]},
                   objective=d["objective"], executor=d["executor"], seconds=d["seconds"], budget_s=d["budget_s"],
                   stopped=d["stopped"], notes=tuple(d["notes"]), device=d["device"], best_trial=d["best_trial"],
                   space=d.get("space", {}))


def config_from_dict(d: Mapping[str, Any]) -> CompileConfig:
    """A CompileConfig from ``CompileConfig.to_dict()`` (Inductor option values back from their text)."""
    if d.get("post_grad_passes"):
        names = ", ".join(p[0] for p in d["post_grad_passes"])
        raise VexploreError(f"the saved config names post-grad passes ({names}) by name and uuid only; rebuild it "
                            "with the pass objects: cfg.replace(post_grad_passes=(MyPass(),)).")
    known = {f.name for f in dataclasses.fields(CompileConfig)}
    kw: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()
                          if k in known and k not in ("cache", "inductor_options", "dynamic_dims", "post_grad_passes")}
    kw["cache"] = CacheConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.get("cache", {}).items()})
    kw["inductor_options"] = {k: _literal(v) for k, v in d.get("inductor_options", {}).items()}
    kw["dynamic_dims"] = {(int(k) if k.isdigit() else k): tuple(v) for k, v in d.get("dynamic_dims", {}).items()}
    return CompileConfig(**kw)


def _literal(text: Any) -> Any:
    """An Inductor option value from the text ``to_dict`` saved (its repr)."""
    try:
        return ast.literal_eval(text) if isinstance(text, str) else text
    except (ValueError, SyntaxError):
        return text


def _size(s: Any) -> str:
    return "graphs" if s is None else str(s)


def _diff_text(diff: Mapping[str, Any]) -> str:
    if not diff:
        return "(start)"
    return ", ".join(f"{k.replace('inductor_options.', '')}={v}" for k, v in diff.items())
