"""How ``vx.tune`` proposes configs: ``Grid`` (every distinct config of a small space, in order) and ``TPE``
(Optuna's TPE sampler, seeded, in ask-and-tell form; Optuna is imported only here, and only then).

Both answer ``ask()`` with ``(token, config)`` or None when done, and are told each trial's result by
``tell(token, trial)``.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..config import CompileConfig
from ..errors import ConfigError, VexploreError
from .tuneresult import Trial
from .tunespace import config_diff, config_key


class Grid:
    """Every distinct config, in the space's order."""

    def __init__(self, configs: Sequence[CompileConfig]) -> None:
        self.todo = list(configs)

    def ask(self) -> tuple[None, CompileConfig] | None:
        return (None, self.todo.pop(0)) if self.todo else None

    def tell(self, token: Any, trial: Trial) -> None:
        pass


class TPE:
    """Optuna's TPE sampler (seeded) over the space's dimensions (each a categorical of value indices), in
    ask-and-tell form. A proposal whose config was measured before (moot values, the start) is told that
    trial's result at once and not measured again."""

    def __init__(self, run: Any, distinct: int) -> None:
        try:
            import optuna
        except ImportError:
            raise VexploreError("vx.tune: a space of more than grid_max configs is searched with Optuna; "
                                "pip install optuna (or narrow the space to a grid).") from None
        self.optuna, self.run, self.distinct = optuna, run, distinct
        self.dims = {n: optuna.distributions.CategoricalDistribution(list(range(len(v))))
                     for n, v in run.space.dims.items()}
        sampler = optuna.samplers.TPESampler(seed=run.opts.seed, n_startup_trials=max(4, min(10, distinct // 4)))
        with quiet_optuna(optuna):
            self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self.done: dict[str, Trial] = {}
        self.waiting: dict[int, tuple[str, list[Any]]] = {0: (config_key({}), [])}   # token 0: the start
        self.next = 1
        self.why_done = ""

    def ask(self) -> tuple[int, CompileConfig] | None:
        for _ in range(max(50, 4 * self.distinct)):
            if len(self.done) + len(self.waiting) - 1 >= self.distinct:
                return None
            with quiet_optuna(self.optuna):
                t = self.study.ask(self.dims)
            point = {n: self.run.space.dims[n][i] for n, i in t.params.items()}
            try:
                cfg = self.run.space.config(self.run.start, point)
            except ConfigError:
                self._tell(t, None)
                continue
            key = config_key(config_diff(self.run.start, cfg))
            if key in self.done:
                self._tell(t, self.done[key])
                continue
            twin = next((h for h, (k, _) in self.waiting.items() if k == key), None)
            if twin is not None:
                self.waiting[twin][1].append(t)
                continue
            handle, self.next = self.next, self.next + 1
            self.waiting[handle] = (key, [t])
            return handle, cfg
        self.why_done = (f"TPE proposed only configs measured before ({max(50, 4 * self.distinct)} proposals in a row): "
                         "it has converged on what it knows")
        return None

    def tell(self, handle: int, trial: Trial) -> None:
        key, ts = self.waiting.pop(handle)
        self.done[key] = trial
        for t in ts:
            self._tell(t, trial)

    def _tell(self, t: Any, trial: Trial | None) -> None:
        state = self.optuna.trial.TrialState
        with quiet_optuna(self.optuna):
            if trial is None or trial.status in ("failed-accuracy", "crashed", "timeout"):
                self.study.tell(t, state=state.FAIL)
            elif trial.status == "pruned":
                t.report(trial.timings[0].median_ms, 0)
                self.study.tell(t, state=state.PRUNED)
            else:
                self.study.tell(t, trial.objective)


class quiet_optuna:
    """Optuna logs every trial at INFO through a handler of its own: quiet while vexplore drives it."""

    def __init__(self, optuna: Any) -> None:
        self.optuna = optuna

    def __enter__(self) -> None:
        self.level = self.optuna.logging.get_verbosity()
        self.optuna.logging.set_verbosity(self.optuna.logging.WARNING)

    def __exit__(self, *exc: Any) -> None:
        self.optuna.logging.set_verbosity(self.level)
