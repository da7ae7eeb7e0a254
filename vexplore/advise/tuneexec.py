"""Where ``vx.tune``'s trials run: one interface, two executors.

``start(job)`` readies the executor for one tune (and says what the user should know), ``submit``
hands it a trial, ``wait(timeout)`` returns the trials that ended (at least one; or none when
``timeout`` seconds passed first, for an executor that can stop its trials: ``close`` then cancels
them), ``capacity`` is how many it runs at once, ``close`` ends the tune's use of it. ``LocalExecutor`` runs trials one at a time in
this process, on the model the notebook holds; its compiles go through the Session's crash-isolated
worker processes where the captured graphs allow it. ``RayExecutor`` (raytune.py) runs them as Ray tasks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..config import CompileConfig
from ..errors import VexploreError
from .tunetrial import Measure, Outcome, Target, Timing, measure


@dataclass(frozen=True)
class TuneJob:
    """One tune, as an executor needs it: the compiled model, the inputs by size (None: the captured graphs'
    own), the start config and how trials are measured."""

    cm: Any
    inputs: Mapping[Any, tuple[Any, ...]] | None
    start: CompileConfig
    spec: Measure


class LocalExecutor:
    """Trials one after another in this process. ``workers``: compile worker processes for the trials'
    Inductor compiles (a piece that hangs past ``compile_timeout_s`` or crashes costs the trial, not the
    notebook), or ``"ray"`` (each unique piece a Ray task); None: the start config's ``workers``, else 1; 0:
    compile in this process. Graphs that call something defined in ``__main__`` (a notebook's custom op)
    compile in this process, and the tune says so."""

    name = "local"
    capacity = 1

    def __init__(self, workers: int | str | None = None) -> None:
        if workers not in (None, "ray") and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
            raise VexploreError(f"LocalExecutor(workers={workers!r}): a count of compile worker processes >= 0, \"ray\" "
                                "(Ray tasks), or None.")
        self.requested, self.workers = workers, 0   # workers: what the trials compile with (a count or "ray")
        self.job: TuneJob | None = None
        self.pending: list[tuple[int, CompileConfig, Measure, Timing | None]] = []

    def start(self, job: TuneJob) -> list[str]:
        self.job, self.pending = job, []
        if job.start.compiler != "inductor":
            self.workers = 0
            return []
        want = self.requested if self.requested is not None else (job.start.workers or 1)
        why = in_process_reason(job.cm) if want else None
        self.workers = 0 if why else want
        return [f"trials compile in this process, not in worker processes: {why}"] if why else []

    def submit(self, handle: int, cfg: CompileConfig, spec: Measure, against: Timing | None) -> None:
        self.pending.append((handle, cfg, spec, against))

    def wait(self, timeout: float | None = None) -> list[tuple[int, Outcome]]:
        """Run the next trial here, to its end (a trial in this process cannot be stopped: ``timeout`` is not used)."""
        assert self.job is not None and self.pending, "submit a trial first"
        handle, cfg, spec, against = self.pending.pop(0)
        return [(handle, measure(self.job.cm, cfg, Target(self.job.cm, self.job.inputs), spec, against))]

    def close(self) -> None:
        self.pending = []


def in_process_reason(cm: Any) -> str | None:
    """Why the captured graphs cannot compile in a worker process (something of ``__main__`` in them), or None."""
    from ..engine.build.workers import rebuild_modules

    for g in cm.graphs:
        _, why = rebuild_modules(g.gm)
        if why:
            return why
    return None

