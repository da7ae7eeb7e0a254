"""vx.tune: a measured search for the fastest correct configuration of a compiled model.

    result = vx.tune(cm, {1: x1, 16: x16}, budget_s=600)
    result.best; result.trials; result.improvement; result.apply(cm)

The start config (the model's own) is trial 0; every other trial is a point of the ``TuneSpace``
recompiled from the captured graphs and measured by ``tunetrial.measure``. A small space is
searched as a grid; a larger one by Optuna's TPE sampler (seeded), told what each trial came to
(its objective; pruned; failed). Before each trial the time left is checked against what a trial
and the final re-measurement take: the search stops early rather than pass ``budget_s``, saying so.
At the end the start and the best are compiled side by side and timed interleaved on this device,
giving ``improvement`` and its interval; the model is left at its start config. The result's record
(``TuneResult.record``) is kept on the model's latest report (``cm.report.tunes``), so a saved report
carries it. ``on_trial`` is told after each trial (a live view); ``cancel`` stops the search between trials.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from ..bench.compare import BenchOptions
from ..config import CompileConfig
from ..engine.model import CompiledModel
from ..errors import VexploreError
from .raytune import RayExecutor
from .tuneexec import LocalExecutor, TuneJob
from .tunefinal import remeasure
from .tunesearch import TPE, Grid
from .tuneresult import Trial, TuneProgress, TuneResult
from .tunespace import TuneSpace, config_diff, plain
from .tunetrial import OBJECTIVES, Measure, Outcome, Target, Timing

log = logging.getLogger(__name__)

__all__ = ["LocalExecutor", "RayExecutor", "TuneOptions", "tune"]

MAX_LISTED = 4096   # points of a space whose distinct configs are listed up front


@dataclass(frozen=True)
class TuneOptions:
    """How ``vx.tune`` searches and measures (each a keyword of ``vx.tune`` too)."""

    weights: Mapping[Any, float] | None = None   # size -> weight in the objective; None: all 1
    compile_weight: float = 1e-3     # latency+compile: ms of objective per ms of first call (1e-3: a compile over 1000 calls)
    seed: int = 0                    # the TPE sampler's seed
    max_trials: int | None = None    # trials besides the start; None: until the space or the budget ends
    grid_max: int = 16               # a space of at most this many distinct configs is searched as a grid
    bench: BenchOptions | None = None   # how each size is timed; None: the idle timer, budget_s / 200 per size (0.2-2 s)
    remeasure: bool = True           # re-measure the start and the best interleaved at the end
    prune: bool = True               # stop a trial whose first size is slower than the best's beyond both spreads
    on_trial: Callable[[TuneProgress], None] | None = None   # told after each trial ends (errors it raises are logged)
    cancel: Any = None               # a vx CancelToken (anything with ``cancelled``): the search stops between trials

    def __post_init__(self) -> None:
        if self.compile_weight < 0 or self.grid_max < 0 or (self.max_trials is not None and self.max_trials < 0):
            raise VexploreError(f"vx.tune: compile_weight={self.compile_weight}, grid_max={self.grid_max} and "
                                f"max_trials={self.max_trials} must be >= 0.")
        if self.bench is not None and not isinstance(self.bench, BenchOptions):
            raise VexploreError("vx.tune: bench= takes a vx.BenchOptions(...).")
        if (self.on_trial is not None and not callable(self.on_trial)) or \
                (self.cancel is not None and not hasattr(self.cancel, "cancelled")):
            raise VexploreError("vx.tune: on_trial= takes a function of one TuneProgress, cancel= a vexplore "
                                "CancelToken (from vexplore.cancel import CancelToken).")


def tune(cm: Any, inputs_by_size: Mapping[Any, Any] | None = None, space: TuneSpace | Mapping[str, Any] | None = None,
         budget_s: float = 600, objective: str = "latency", executor: Any = None,
         **options: Any) -> TuneResult:
    """Search ``space`` for the config of ``cm`` with the best ``objective``; see docs/api.md (vx.tune).

    ``inputs_by_size``: ``{size: inputs}`` as ``vx.benchmark`` takes them; None: the captured graphs on their
    own example inputs. ``space``: a TuneSpace; a dict of dimensions changes the default space (a value
    None removes that dimension); None: ``TuneSpace.default(cm, sizes)``. ``executor``: None or "local"
    (trials in this process), "ray" or a ``vx.RayExecutor``. ``options``: ``options=TuneOptions(...)``, and/or
    TuneOptions' fields as keywords (they change it).
    """
    t0 = time.perf_counter()
    opts = _options(options.pop("options", None), options)
    _check(cm, budget_s, objective)
    inputs = _inputs(cm, inputs_by_size)
    target = Target(cm, inputs)
    if opts.weights and not set(opts.weights) <= set(target.sizes):
        raise VexploreError(f"vx.tune: weights for sizes {sorted(set(opts.weights) - set(target.sizes), key=str)} that "
                            f"inputs_by_size does not have ({list(target.sizes)}); weigh the sizes given.")
    space = _space(cm, space, target.sizes)
    start = cm.config
    bench = opts.bench or BenchOptions(budget_s=min(2.0, max(0.2, budget_s / 200)))
    run = _Run(cm, target, start, space, opts, t0, t0 + budget_s)
    run.notes += _trace_sizes(cm, inputs)
    exe = resolve_executor(executor)
    spec = Measure(objective, tuple((opts.weights or {}).items()), opts.compile_weight, bench,
                   cm.report.counters.get("fallbacks", 0))
    try:
        run.notes += exe.start(TuneJob(cm, inputs, start, spec))
        run.spec = dataclasses.replace(spec, workers=getattr(exe, "workers", 0))
        _search(run, exe)
    finally:
        exe.close()
        if cm.config != start or isinstance(exe, LocalExecutor):
            cm.recompile(start)   # trials leave the model on their config; the start's pieces are memory hits
    result = _finish(run, exe)
    keep(cm, result)
    return result


def _trace_sizes(cm: Any, inputs: Mapping[Any, tuple[Any, ...]] | None) -> tuple[str, ...]:
    """Call ``cm`` once at each size before the trials, so every size's Dynamo graph exists and each
    trial's recompile covers them all: else the first trial pays the trace and compile of a size not
    called yet (a 1-token call is a graph of its own) and its first call looks slow for it."""
    if inputs is None:
        return ()
    before, t = len(cm.graphs), time.perf_counter()
    with torch.no_grad():   # as the trials' benchmark calls it
        for args in inputs.values():
            cm(*args)
    new = len(cm.graphs) - before
    return (f"{new} Dynamo graph(s) traced and compiled for sizes not called before, ahead of the first trial "
            f"({time.perf_counter() - t:.1f} s of the budget)",) if new else ()


def keep(cm: Any, result: TuneResult) -> None:
    """Keep ``result``'s record on the model's latest report (``cm.report.tunes``, newest last), and on the
    Session's copy of that report, as ``cm.profile`` keeps a profile."""
    old = cm.reports[-1]
    new = dataclasses.replace(old, tunes=old.tunes + (result.record,))
    cm.reports[-1] = new
    kept = cm.session.monitor.reports
    for i, r in enumerate(kept):
        if r is old:
            kept[i] = new


def resolve_executor(executor: Any) -> Any:
    """None or "local": a LocalExecutor; "ray": a RayExecutor on the cluster ``ray.init()`` finds or starts;
    an executor object as it is."""
    if executor is None or executor == "local":
        return LocalExecutor()
    if executor == "ray":
        return RayExecutor()
    if all(callable(getattr(executor, m, None)) for m in ("start", "submit", "wait", "close")):
        return executor
    raise VexploreError(f"vx.tune: executor={executor!r}; use None or 'local' (trials in this process), 'ray', "
                        "or vx.RayExecutor(address=...).")


def _options(options: TuneOptions | None, changes: Mapping[str, Any]) -> TuneOptions:
    try:
        return dataclasses.replace(options or TuneOptions(), **changes)
    except TypeError as e:
        raise VexploreError(f"vx.tune: {e}; the options are {', '.join(f.name for f in dataclasses.fields(TuneOptions))}.") from None


def _check(cm: Any, budget_s: float, objective: str) -> None:
    if not isinstance(cm, CompiledModel):
        raise VexploreError(f"vx.tune(cm, ...) takes what vx.compile returns, got {type(cm).__name__}; "
                            "cm = vx.compile(model); cm(*inputs); vx.tune(cm, ...).")
    if cm.report is None or not cm.graphs:
        raise VexploreError("vx.tune: the model has not been called yet; call it once (cm(*inputs)) so its graph is "
                            "captured, then tune.")
    if objective not in OBJECTIVES:
        raise VexploreError(f"vx.tune: objective={objective!r}; choose 'latency' (weighted mean of the median per size) "
                            "or 'latency+compile' (plus compile_weight times the first call).")
    if not budget_s or budget_s <= 0:
        raise VexploreError(f"vx.tune: budget_s={budget_s!r} must be > 0 seconds (it bounds the whole call).")


def _inputs(cm: Any, inputs_by_size: Mapping[Any, Any] | None) -> dict[Any, tuple[Any, ...]] | None:
    if inputs_by_size is None:
        if any(g.writes for g in cm.graphs):
            raise VexploreError("vx.tune: a captured graph writes its inputs in place, so it cannot be timed on its own "
                                "example inputs; pass inputs_by_size={size: (inputs...)}.")
        return None
    if not isinstance(inputs_by_size, Mapping) or not inputs_by_size:
        raise VexploreError("vx.tune: inputs_by_size is empty or not a dict; give {size: (inputs...)} as vx.benchmark takes.")
    return {s: tuple(x) if isinstance(x, (tuple, list)) else (x,) for s, x in inputs_by_size.items()}


def _space(cm: Any, space: TuneSpace | Mapping[str, Any] | None, sizes: Sequence[Any]) -> TuneSpace:
    if isinstance(space, TuneSpace):
        return space
    default = TuneSpace.default(cm, sizes)
    if space is None:
        return default
    if isinstance(space, Mapping):
        return default.with_dims(space)
    raise VexploreError(f"vx.tune: space={space!r}; give a vx.TuneSpace or a dict of dimensions to change.")


@dataclass
class _Run:
    """One tune's state while it searches."""

    cm: Any
    target: Target
    start: CompileConfig
    space: TuneSpace
    opts: TuneOptions
    t0: float
    deadline: float
    spec: Measure = field(default_factory=Measure)
    trials: list[Trial] = field(default_factory=list)
    stopped: str = ""
    notes: list[str] = field(default_factory=list)
    planned: int | None = None       # the distinct configs the search may try, the start included

    @property
    def cancelled(self) -> bool:
        return self.opts.cancel is not None and bool(self.opts.cancel.cancelled)

    def told(self, trial: Trial) -> None:
        """Tell ``opts.on_trial`` that ``trial`` ended (a live view must not cost the tune: its errors are logged)."""
        if self.opts.on_trial is None:
            return
        best = self.best
        try:
            self.opts.on_trial(TuneProgress(trial, tuple(self.trials), best.number if best is not None else None,
                                            time.perf_counter() - self.t0, self.deadline - self.t0, self.planned))
        except Exception:
            log.exception("vx.tune: on_trial raised (the tune goes on)")

    @property
    def best(self) -> Trial | None:
        """The measured trial with the least objective (while searching, "worse" is not decided yet)."""
        return min((t for t in self.trials if t.status in ("ok", "worse")), key=lambda t: t.objective, default=None)

    def record(self, number: int, cfg: CompileConfig, out: Outcome) -> Trial:
        value = self.spec.value(out.timings, out.first_call_s) if out.status == "measured" else None
        trial = Trial(number, config_diff(self.start, cfg), "ok" if out.status == "measured" else out.status,
                      out.timings, out.first_call_s, value, out.seconds, out.error, out.where, cfg)
        self.trials.append(trial)
        log.info("vx.tune: trial %d %s %s %s", trial.number, out.status, value, trial.diff)
        return trial

    def settle(self) -> None:
        """Trials in order, and each measured one "worse" when slower than the start beyond both spreads (its
        objective from p20s above the start's from p80s), else "ok". Decided at the end: trials running beside
        the start (on Ray) may end before it."""
        self.trials.sort(key=lambda t: t.number)
        start = self.trials[0] if self.trials and self.trials[0].number == 0 else None
        if start is None or start.status != "ok":
            return
        hi = self.spec.value(start.timings, start.first_call_s, "p80_ms")
        for i, t in enumerate(self.trials[1:], 1):
            if t.status == "ok" and self.spec.value(t.timings, t.first_call_s, "p20_ms") > hi:
                self.trials[i] = dataclasses.replace(t, status="worse")

    def against(self) -> Timing | None:
        if not self.opts.prune:
            return None
        best = self.best
        return best.timings[0] if best is not None and best.timings else None

    def trial_spec(self) -> Measure:
        """How the next trial is measured: ``spec``, its compiles in worker processes bounded by its share
        (``trial_share``), so the whole tune keeps to budget_s (a max-autotune trial compiling every piece at
        every size took 116 s of a 100 s budget on an H100 before this bound)."""
        return dataclasses.replace(self.spec, trial_s=self.trial_share())

    @property
    def bounded(self) -> bool:
        """Whether trials compile in worker processes, which stop at a trial's share (Ray compile tasks do not)."""
        w = self.spec.workers
        return isinstance(w, int) and not isinstance(w, bool) and w > 0

    def trial_share(self) -> float:
        """Seconds the next trial's compiles may take: half of what is left before the final re-measurement,
        less the trial's own timing, so a trial stopped there leaves room for the search to go on."""
        return max(1.0, (self.time_left() - self.final_estimate()) / 2 - self.bench_estimate())

    def bench_estimate(self) -> float:
        """Seconds a trial's timing takes: each size's eager reference, first call, warm-up and timed block."""
        return len(self.target.sizes) * (1.5 * self.spec.bench.budget_s + 0.2)

    def time_left(self) -> float:
        return self.deadline - time.perf_counter()

    def trial_estimate(self) -> float:
        """Seconds the next trial likely takes: the mean of those done (the start's with a compile before any),
        but no more than its share and its timing where its compiles run in worker processes (they are
        stopped at the share: ``trial_share``); a trial stopped so is no estimate of the next."""
        done = [t.seconds for t in self.trials if t.number and t.status != "timeout"]
        if done:
            est = sum(done) / len(done)
        else:
            first = next((t.seconds for t in self.trials), 0.0)
            est = first + (self.cm.report.wall_s if self.cm.report is not None else 0.0)
        return min(est, self.trial_share() + self.bench_estimate()) if self.bounded else est

    def final_estimate(self) -> float:
        """Seconds the final re-measurement likely takes: two traces (model mode), two variants timed per size
        (their warm-up and first calls too), the profile; a fifth more for a machine that is not idle."""
        if not self.opts.remeasure:
            return 0.0
        traced = sum(e.duration_s for e in self.cm.reports[0].events if e.step.startswith("dynamo")) \
            if self.target.inputs is not None else 0.0
        start = self.trials[0].timings if self.trials and self.trials[0].number == 0 else ()
        calls_s = sum(2 * (self.spec.bench.warmup + 1) * t.median_ms / 1e3 for t in start)
        per_size = 2 * (self.spec.bench.budget_s + 0.1)
        return 1.2 * (2 * traced + per_size * len(self.target.sizes) + calls_s + 1.0)


def _search(run: _Run, exe: Any) -> None:
    """The start (trial 0, beside the first trials when the executor runs several at once), then the grid or
    TPE's proposals until the space, max_trials or the budget ends."""
    # the distinct configs are listed where the space is small enough to list (a grid, or TPE's stopping point)
    configs = run.space.configs(run.start) if run.space.size <= MAX_LISTED else None
    distinct = len([c for c in configs if config_diff(run.start, c)]) if configs is not None else run.space.size
    proposer: Any = Grid([c for c in configs if config_diff(run.start, c)]) \
        if configs is not None and len(configs) <= run.opts.grid_max else TPE(run, distinct)
    run.planned = (min(distinct, run.opts.max_trials) if run.opts.max_trials is not None else distinct) + 1 \
        if configs is not None else None
    pending: dict[int, tuple[CompileConfig, Any]] = {0: (run.start, 0)}
    exe.submit(0, run.start, run.trial_spec(), None)
    while pending:
        _fill(run, exe, proposer, pending, distinct)
        ended = exe.wait(max(0.0, run.time_left() - run.final_estimate()) if 0 not in pending else None)
        if not ended:   # an executor that can stop trials found none ended by the budget's last moment
            run.notes.append(f"{len(pending)} trial(s) still running when the budget ran out were cancelled "
                             "(not recorded)")
            run.stopped = run.stopped or _over_budget(run) or "budget"
            exe.close()
            break
        for number, out in ended:
            cfg, token = pending.pop(number)
            trial = run.record(number, cfg, out)
            proposer.tell(token, trial)
            run.told(trial)
        _fill(run, exe, proposer, pending, distinct)
    run.settle()


def _fill(run: _Run, exe: Any, proposer: Any, pending: dict[int, tuple[CompileConfig, Any]], distinct: int) -> None:
    """Submit trials until the executor is full or the search must stop (``run.stopped`` says why)."""
    while len(pending) < exe.capacity and not run.stopped:
        number = len(run.trials) + len(pending)
        if run.cancelled:
            run.stopped = f"cancelled by the user after {len(run.trials)} trial(s)"
            return
        if run.opts.max_trials is not None and number > run.opts.max_trials:
            run.stopped = f"max_trials={run.opts.max_trials} reached"
            return
        why = _over_budget(run)
        if why:
            run.stopped = why
            return
        nxt = proposer.ask()
        if nxt is None:
            run.stopped = getattr(proposer, "why_done", "") or \
                f"the space is exhausted: all {distinct} distinct configs besides the start tried"
            return
        token, cfg = nxt
        pending[number] = (cfg, token)
        exe.submit(number, cfg, run.trial_spec(), run.against())


def _over_budget(run: _Run) -> str | None:
    left, trial, final = run.time_left(), run.trial_estimate(), run.final_estimate()
    # a share too small to compile in would only time out: bounded trials stop at 5 % of the budget (2 s at least)
    small = run.bounded and run.trial_share() < max(2.0, 0.05 * (run.deadline - run.t0))
    if trial + final <= left and not small:
        return None
    spent = time.perf_counter() - run.t0
    head = f"budget: {spent:.1f} s of budget_s={run.deadline - run.t0:g} s spent; "
    if trial + final <= left:
        return head + (f"what is left gives the next trial {run.trial_share():.1f} s to compile in, too little to be worth "
                       "it, so the search stopped early")
    return head + (f"the next trial (~{trial:.1f} s) and the final re-measurement (~{final:.1f} s) would pass it, "
                   "so the search stopped early")


def _finish(run: _Run, exe: Any) -> TuneResult:
    best = min((t for t in run.trials if t.status == "ok"), key=lambda t: t.objective, default=None)
    best_cfg = best.config if best is not None and best.config is not None else run.start
    if best is None:
        run.notes.append("no trial passed (the start config did not either): best is the start config")
    improvement, ci, profile, notes = remeasure(run, best_cfg)
    run.notes += notes
    device = "cuda" if any(isinstance(x, torch.Tensor) and x.is_cuda for g in run.cm.graphs for x in g.real_inputs) else "cpu"
    return TuneResult(best_cfg, run.start, tuple(run.trials), improvement, ci, profile, run.spec.objective,
                      getattr(exe, "name", "local"), time.perf_counter() - run.t0, run.deadline - run.t0,
                      run.stopped, tuple(run.notes), device, best.number if best is not None else 0,
                      {k: plain(list(v)) for k, v in run.space.dims.items()})

