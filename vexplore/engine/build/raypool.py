"""Ray compile pool (``workers="ray"``): unique pieces compile as Ray tasks, on any node of a Ray cluster.

The jobs are the worker pool's (workers.py: the piece's graph pickled node by node, plain input specs,
the pickled Inductor options), one Ray task per job, as many at once as the cluster has CPUs. A task
imports torch and Inductor, says it started (a streaming task's first item: the timeout clock runs
from there, as the pool's runs from a worker's hello, so a cold worker or a busy cluster never eats
into it), runs ``workers.compile_job`` as a worker process does, and returns its Attempt with the
artifact's bytes, which this process loads (executor.Workers, as for the pool). A task past
``compile_timeout_s`` is cancelled with force (Ray kills its worker process); a task whose worker
died (segfault, out of memory, a lost node) is not retried: either way that piece runs eagerly and
says why, and the notebook lives on. Warm-up tasks sent when the pool starts import torch in Ray's
workers while Dynamo traces.

Ray is imported here, and only when a compile asks for ``workers="ray"`` (``pip install
"vexplore[ray]"``). A Ray already initialised in this process is used as it is; else ``ray.init()``
connects to the cluster ``RAY_ADDRESS`` names, or to one started with ``ray start`` on this machine,
or starts a local one (whose workers get this process's ``sys.path``, as the worker pool's do).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from ...errors import ConfigError
from .. import _torch_compat as tc
from .jobs import Attempt
from .workers import Job, compile_job

log = logging.getLogger(__name__)

TASK_CPUS = 1        # CPUs a compile task asks for
MAX_WARM = 16        # warm-up tasks sent when the pool starts (at most one per CPU of the cluster)
START_LIMIT_S = 600  # a task that has not started after this (plus compile_timeout_s) is given up as a timeout


def compile_piece(job: Job) -> Iterator[Any]:
    """A Ray task (streaming): first (pid, node) once torch and Inductor are imported, then the Attempt of
    compiling ``job`` as a worker process does."""
    os.environ["VEXPLORE_WORKER"] = "1"
    tc.preload_inductor()   # a no-op where a warm-up ran in this worker
    yield os.getpid(), platform.node()
    yield compile_job(job)


def warm_worker() -> tuple[int, str]:
    """A Ray task sent when the pool starts: import torch, the engine and Inductor in a Ray worker."""
    os.environ["VEXPLORE_WORKER"] = "1"
    tc.preload_inductor()
    return os.getpid(), platform.node()


def connect() -> tuple[Any, bool]:
    """(the ray module, whether this call started Ray in this process)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("CompileConfig(workers='ray') needs Ray: pip install 'vexplore[ray]' (or pip install ray); "
                          "or use workers=N for N worker processes on this machine.") from None
    if ray.is_initialized():
        return ray, False
    kw: dict[str, Any] = {}
    if not os.environ.get("RAY_ADDRESS"):   # a cluster on this machine: its workers can use this process's paths
        kw["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
    log.info("vexplore: ray.init() for workers='ray'")
    ray.init(log_to_driver=False, **kw)
    return ray, True


@dataclass
class _Task:
    job: Job
    gen: Any                     # the task's ObjectRefGenerator
    sent: float                  # perf_counter when it went to the cluster
    started: float | None = None  # ... when it said it started (the timeout clock runs from here)
    pid: int | None = None
    node: str | None = None


class RayPool:
    """The worker pool's interface (``size``, ``pids``, ``run``, ``close``) over Ray tasks; ``slots``:
    tasks in flight at once (the cluster's CPUs when the pool started)."""

    size = "ray"

    def __init__(self) -> None:
        self.ray, self.started = connect()
        self.slots = max(1, int(self.ray.cluster_resources().get("CPU", 1) // TASK_CPUS))
        self.task = self.ray.remote(compile_piece).options(num_cpus=TASK_CPUS, max_retries=0, retry_exceptions=False)
        warm = self.ray.remote(warm_worker).options(num_cpus=TASK_CPUS)
        self.warming = [warm.remote() for _ in range(min(self.slots, MAX_WARM))]
        self.nodes: dict[int, str] = {}   # pid -> node of the Ray workers seen (warmed up or compiling)

    @property
    def pids(self) -> list[int]:
        self._warmed()
        return list(self.nodes)

    def run(self, jobs: Sequence[Job], timeout_s: float,
            on_result: Callable[[Attempt], None] | None = None) -> dict[str, Attempt]:
        """Run ``jobs`` as Ray tasks; every job gets an Attempt (ok, error, timeout, crashed or unreached),
        handed to ``on_result`` as it arrives."""
        todo, results = list(jobs), {}
        running: list[_Task] = []
        while todo or running:
            while todo and len(running) < self.slots:
                job = todo.pop(0)
                running.append(_Task(job, self.task.remote(job), time.perf_counter()))
            ready, _ = self.ray.wait([t.gen for t in running], num_returns=len(running), timeout=0.1)
            for t in list(running):
                r = self._step(t) if t.gen in ready else self._late(t, timeout_s)
                if r is not None:
                    running.remove(t)
                    results[r.job] = r
                    if on_result is not None:
                        on_result(r)
        self._warmed()
        return results

    def _step(self, t: _Task) -> Attempt | None:
        """The task's next item: its start (None: it runs on) or its Attempt."""
        try:
            got = self.ray.get(next(t.gen))
        except StopIteration:   # ended without its Attempt (not expected: a died worker raises below)
            return self._ended(t, "crashed", "the Ray task ended without a result")
        except self.ray.exceptions.RayTaskError as e:   # raised outside compile_job's own catch: never compiled there
            return self._ended(t, "unreached", f"the Ray task failed before compiling: {_first_line(e)}")
        except Exception as e:   # its worker died: a segfault, out of memory, a lost node
            return self._ended(t, "crashed", f"the Ray worker died while compiling ({_first_line(e)})")
        if t.started is None:
            t.started, (t.pid, t.node) = time.perf_counter(), got
            self.nodes[t.pid] = t.node
            return None
        return dataclasses.replace(got, started=t.started, where=f"ray node {t.node} worker pid {t.pid}")

    def _late(self, t: _Task, timeout_s: float) -> Attempt | None:
        """A timeout Attempt when the task ran past ``timeout_s`` (or never started): it is cancelled."""
        now = time.perf_counter()
        if t.started is not None and now - t.started <= timeout_s:
            return None
        if t.started is None and now - t.sent <= timeout_s + START_LIMIT_S:
            return None
        try:
            self.ray.cancel(t.gen, force=True)   # kills the worker process running it
        except Exception:
            log.debug("vexplore: cancelling a Ray compile task failed", exc_info=True)
        why = (f"compile ran past compile_timeout_s={timeout_s:g}; its Ray task was cancelled (worker pid {t.pid} "
               "killed)") if t.started is not None else \
            f"the Ray task did not start within {timeout_s + START_LIMIT_S:g} s (the cluster is busy); cancelled"
        return self._ended(t, "timeout", why)

    def _ended(self, t: _Task, status: str, error: str) -> Attempt:
        started = t.started if t.started is not None else t.sent
        where = f"ray node {t.node} worker pid {t.pid}" if t.pid is not None else "ray task"
        return Attempt(status, seconds=time.perf_counter() - started, pid=t.pid, job=t.job.id, started=started,
                       where=where, error=error)

    def _warmed(self) -> None:
        """Collect the warm-up tasks that ended (the workers they warmed; a failed one only logged: the
        compile tasks then fail the same way and their pieces compile in this process, saying why)."""
        if not self.warming:
            return
        ready, self.warming = self.ray.wait(self.warming, num_returns=len(self.warming), timeout=0)
        for ref in ready:
            try:
                pid, node = self.ray.get(ref)
                self.nodes[pid] = node
            except Exception as e:
                log.info("vexplore: a Ray warm-up task failed: %s", _first_line(e))

    def close(self) -> None:
        """Stop the local Ray this pool started (a Ray initialised before it, or a cluster, keeps running)."""
        self.warming = []
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
        self.started = False


def _first_line(e: BaseException) -> str:
    """The exception's first line; for a task's error, the one the task raised (Ray's own first line names the task)."""
    cause = getattr(e, "cause", None)
    e = cause if isinstance(cause, BaseException) else e
    text = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {text}"[:300]
