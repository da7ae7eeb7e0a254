"""Executors: where a job's Inductor compile runs. One interface, two places.

``InProcess`` compiles jobs one after another in this process; ``Workers`` hands them to the
Session's pool of compile processes all at once (a job whose ops a worker cannot import
compiles in process, saying why). Either way each attempt records one ``compile`` event when
it ends, with the time it really started and took, and what it adds to the counters. The
compile's cancel token is checked before each job here, and before and after a pool's run (a
pool's jobs in flight are never abandoned: the pool must be free for the next compile).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Protocol, Sequence

import torch

from ...cancel import CancelToken
from ...errors import CancelledError
from ...monitor.events import EventRecorder
from .. import _torch_compat as tc
from .compilers import InductorCompiler, describe, failure
from .jobs import Attempt, PieceJob

log = logging.getLogger(__name__)


class Executor(Protocol):
    def run(self, jobs: Sequence[PieceJob], conservative: bool = False) -> list[Attempt]:
        """One Attempt per job, in order."""


class InProcess:
    """Compiles in this process, one job after another (a cancel stops between jobs)."""

    def __init__(self, inductor: InductorCompiler, rec: EventRecorder, cancel: CancelToken | None = None) -> None:
        self.inductor, self.rec = inductor, rec
        self.cancel = cancel if cancel is not None else CancelToken()

    def run(self, jobs: Sequence[PieceJob], conservative: bool = False) -> list[Attempt]:
        return [self.one(job, conservative) for job in jobs]

    def one(self, job: PieceJob, conservative: bool, where: str | None = None, retry: bool = False) -> Attempt:
        """Compile ``job`` here; ``retry``: the ladder's conservative rung (counted as a retry)."""
        self.cancel.check()
        counts = {"conservative_retries": 1} if retry else {}
        # the lock first: the step reads torch's process-wide compile metrics at both ends, and its length
        # should not include waiting for another thread's compile
        with tc.compile_lock(), self.rec.step("compile", graph=job.graph, piece=job.piece, size=job.size,
                                              compiler="inductor", detail=where) as step:
            try:
                out = self.inductor.compile(job.gm, job.inputs, job.fake_mode, conservative=conservative, grad=job.grad)
            except Exception as e:
                step.kw.update(error_class=type(e).__name__, counts=counts)
                signal = tc.dynamo_signal(e)   # Dynamo steering its trace, not a failure: the ladder passes it on
                return Attempt("error" if signal is None else "restart", error=describe(e), where=where,
                               exc=e if signal is None else signal, seconds=time.perf_counter() - step.start,
                               failure=failure(e), error_class=type(e if signal is None else signal).__name__)
            step.kw["counts"] = {**counts, "inductor_compiles": 1}
        return dataclasses.replace(out, where=where, seconds=step.event.duration_s)


class Workers:
    """Compiles in the Session's worker processes, all jobs at once (``compile_timeout_s`` each).

    A timed-out or crashed job is not retried in this process (it could hang or crash it); a
    job Inductor refused comes back as an error, for the ladder's next rung.
    """

    def __init__(self, pool: Any, in_process: InProcess, timeout_s: float) -> None:
        self.pool, self.local, self.timeout_s = pool, in_process, timeout_s

    def run(self, jobs: Sequence[PieceJob], conservative: bool = False) -> list[Attempt]:
        if conservative:   # anything but the first rung runs here
            return self.local.run(jobs, True)
        from .workers import dump_options, rebuild_modules

        options, unsent = dump_options(self.local.inductor.options(False))
        out: dict[int, Attempt] = {}
        remote: list[tuple[int, PieceJob, tuple[str, ...]]] = []
        for i, job in enumerate(jobs):
            mods, why = rebuild_modules(job.gm)
            why = why or unsent or _float_input(job)   # unsent: the options (post-grad passes) cannot reach a worker
            if why:
                out[i] = self.local.one(job, False, f"in-process: {why}")
            else:
                remote.append((i, job, mods))
        if remote:
            assert options is not None   # else every job compiled here
            self.local.cancel.check()
            out.update(self._remote(remote, options))
            self.local.cancel.check()
        return [out[i] for i in range(len(jobs))]

    def _remote(self, remote: list[tuple[int, PieceJob, tuple[str, ...]]], options: bytes) -> dict[int, Attempt]:
        from .workers import Job, dump_graph, specs_of

        by_id, wjobs = {}, []
        for i, job, mods in remote:
            specs, symbols = specs_of(job.inputs, tc.symbol_hints(job.fake_mode))
            wjobs.append(Job(job.id, dump_graph(job.gm), specs, symbols, mods, options, job.fake_mode is not None,
                             job.grad))
            by_id[job.id] = (i, job)
        got: dict[int, Attempt] = {}
        cancelled: list[CancelledError] = []

        def arrived(r: Any) -> None:
            # a cancel must not leave the pool mid-run (its workers would keep jobs it forgot): it is
            # kept, the results still arriving are recorded and not loaded, and it is raised after the run
            try:
                got.update([self._arrived(r, *by_id[r.job])])
            except CancelledError as e:
                cancelled.append(e)
        try:
            with tc.compile_lock():   # the Session's pool serves one compile at a time (a background recompile too)
                self.pool.run(wjobs, self.timeout_s, on_result=arrived)
        except RuntimeError as e:   # the pool cannot start: compile here, saying why
            log.warning("vexplore: %s", e)
            for i, job, _ in remote:
                got[i] = self.local.one(job, False, f"in-process: {e}")
        if cancelled:
            raise cancelled[0]
        return got

    def _arrived(self, r: Attempt, i: int, job: PieceJob) -> tuple[int, Attempt]:
        """A worker's result: its compile event (true start and length), and its artifact loaded here."""
        where = r.where or f"worker pid {r.pid}"   # a Ray pool's attempts say where they ran
        ok = r.status == "ok"
        counts = {"inductor_compiles": 1, "worker_compiles": 1} if ok else (
            {f"worker_{r.status}": 1} if r.status in ("timeout", "crashed") else {})
        self.rec_compile(job, r, where, counts)
        self.local.cancel.check()   # what follows is work in this process: a cancel skips it
        if r.status == "restart":
            # the worker met Dynamo's signal to trace again (Inductor's tensorify pass). What Dynamo must
            # specialize is recorded in the process that raised it, so the compile runs again here, where
            # this process's Dynamo can act on it (the ladder raises it inside Dynamo's call).
            return i, self.local.one(job, False, f"in-process: the worker met Dynamo's restart signal ({r.error_class})")
        if r.status in ("unsaveable", "unreached"):   # it compiled there but cannot travel, or never ran there
            return i, self.local.one(job, False, f"in-process: {r.error}")
        if not ok:
            return i, dataclasses.replace(r, where=where)
        with tc.compile_lock(), self.local.rec.step("load", graph=job.graph, piece=job.piece, size=job.size,
                                                    detail=f"artifact from {where}", worker=r.pid) as step:
            fn, code = self.local.inductor.load(r.data)
        return i, dataclasses.replace(r, fn=fn, code=code or r.code, where=where, seconds=r.seconds + step.event.duration_s)

    def rec_compile(self, job: PieceJob, r: Attempt, where: str, counts: dict[str, int]) -> None:
        self.local.rec.add("compile", r.started, r.seconds, graph=job.graph, piece=job.piece, size=job.size,
                           compiler="inductor", rss_peak_mb=r.rss_peak_mb, counts=counts,
                           error_class=None if r.status == "ok" else r.status, detail=f"{where}: {r.status}",
                           worker=r.pid)


def _float_input(job: PieceJob) -> str | None:
    """Why a job that takes a Python float compiles in this process: as a float (a SymFloat) or as the
    0-d tensor Dynamo made of it (read back with ``.item()`` in the graph). A worker rebuilds only int
    symbols, and Inductor's tensorify pass must run where Dynamo can act on its restart signal; else a
    float read after a graph break is baked into the compiled code and goes stale."""
    scalar_reads = any((n.op == "call_method" and n.target == "item") or n.target is torch.ops.aten._local_scalar_dense.default
                       for n in job.gm.graph.nodes)
    if scalar_reads or any(isinstance(v, (float, torch.SymFloat)) for v in job.inputs):
        return "the piece takes a Python float (a value Dynamo may have to specialize), which only this process can trace again"
    return None
