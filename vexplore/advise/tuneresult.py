"""What ``vx.tune`` returns: ``TuneResult`` (the best config, every ``Trial``, the improvement with its
interval), its saved form (``to_dict`` / ``from_dict``, JSON-ready) and its record on the report
(``record`` / ``from_record``: a ``monitor.tuning.TuneRecord``, which ``Trial`` and ``Timing`` live beside);
``TuneProgress``, what ``TuneOptions.on_trial`` is told after each trial."""
from __future__ import annotations

import ast
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from ..config import CacheConfig, CompileConfig
from ..errors import VexploreError
from ..monitor.profile import RuntimeProfile
from ..monitor.tuning import STATUSES, Timing, Trial, TuneRecord
from .apply import ApplyResult, apply_config, rebase
from .tunespace import apply_diff, config_diff

__all__ = ["STATUSES", "Timing", "Trial", "TuneResult", "TuneProgress", "config_from_dict"]

FORMAT = "vexplore.tune/1"


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
        return self.record.by_status()

    def apply(self, cm: Any, inputs: Sequence[Any] | None = None) -> ApplyResult:
        """Recompile ``cm`` with what the best changes from the start (carried onto ``cm.config`` as it is now,
        as an advice's apply does), time ``cm(*inputs)`` (or the captured graphs on their own inputs) before
        and after under ``torch.no_grad()`` (as the trials were), and keep it only when faster by more than 3 %;
        else recompile back."""
        with torch.no_grad():
            return apply_config(cm, rebase(self.best, self.start, cm.config), "median_ms", inputs)

    def table(self) -> str:
        """The trials as plain text, best first among the ok ones, then the rest in order."""
        return self.record.table()

    @property
    def record(self) -> TuneRecord:
        """This result as the report keeps it (``report.tunes``): plain data, the profile with it."""
        sizes = list(self.improvement)
        return TuneRecord(json.loads(json.dumps(self.start.to_dict(), default=str)), self.best_diff, self.best_trial, tuple(self.trials),
                          tuple((s, float(v)) for s, v in self.improvement.items()),
                          tuple((s, float(self.improvement_ci[s][0]), float(self.improvement_ci[s][1]))
                                for s in sizes if s in self.improvement_ci),
                          self.objective, self.executor, self.seconds, self.budget_s, self.stopped, tuple(self.notes),
                          self.device, dict(self.space),
                          self.profile if isinstance(self.profile, RuntimeProfile) else None)

    @classmethod
    def from_record(cls, rec: TuneRecord) -> "TuneResult":
        """The result a report's record keeps (``TuneResult.from_record(report.tunes[-1]).apply(cm)``); the trials'
        configs are not rebuilt (their ``diff`` says what each changed). Configs with post-grad passes cannot be
        rebuilt: raises VexploreError naming them."""
        start = config_from_dict(rec.start)
        return cls(best=apply_diff(start, rec.best_diff), start=start, trials=tuple(rec.trials),
                   improvement={s: v for s, v in rec.improvement},
                   improvement_ci={s: (lo, hi) for s, lo, hi in rec.improvement_ci}, profile=rec.profile,
                   objective=rec.objective, executor=rec.executor, seconds=rec.seconds, budget_s=rec.budget_s,
                   stopped=rec.stopped, notes=tuple(rec.notes), device=rec.device, best_trial=rec.best_trial,
                   space=dict(rec.space))

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


@dataclass(frozen=True)
class TuneProgress:
    """What ``TuneOptions.on_trial`` is told after each trial ends: that ``trial``, every trial so far (in the
    order they ended; "worse" is decided only at the end, so measured trials are "ok" here), the best so far
    (its number; None before a measured one), the seconds spent of ``budget_s``, and ``planned``: the distinct
    configs the search may try, the start included (None when the space is too large to list)."""

    trial: Trial
    trials: tuple[Trial, ...]
    best_trial: int | None
    elapsed_s: float
    budget_s: float
    planned: int | None = None

    @property
    def fraction(self) -> float:
        """How far the tune is, 0 to 1: the larger of the trials done of those planned and the budget spent."""
        done = len(self.trials) / self.planned if self.planned else 0.0
        return min(1.0, max(done, self.elapsed_s / self.budget_s if self.budget_s else 0.0))
