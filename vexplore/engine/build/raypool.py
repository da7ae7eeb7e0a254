"""Ray compile pool (``workers="ray"``): unique pieces compile as Ray tasks, on any node of a Ray cluster.

The jobs are the worker pool's (workers.py: the piece's graph pickled node by node, plain input specs,
the pickled Inductor options), one Ray task per job, as many at once as the cluster has CPUs. A task
runs ``workers.compile_job`` as a worker process does and returns its Attempt with the artifact's
bytes, which this process loads (executor.Workers, as for the pool). A task past
``compile_timeout_s`` is cancelled with force (Ray kills its worker process); a task whose worker
died (segfault, out of memory, a lost node) is not retried: either way that piece runs eagerly and
says why, and the notebook lives on. The timeout counts from when the task is handed to the cluster:
the pool first waits for the warm-up tasks it sent when it started (importing torch and Inductor), so
a busy cluster, not a cold worker, is what can eat into it.

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
from typing import Any, Callable, Sequence

from ...errors import ConfigError
from .. import _torch_compat as tc
from .jobs import Attempt
from .workers import Job, compile_job

log = logging.getLogger(__name__)

TASK_CPUS = 1        # CPUs a compile task asks for
MAX_WARM = 16        # warm-up tasks sent when the pool starts (at most one per CPU of the cluster)


def compile_piece(job: Job) -> tuple[Attempt, str]:
    """A Ray task: compile one job as a worker process does; (its Attempt, this node's name)."""
    os.environ["VEXPLORE_WORKER"] = "1"
    tc.preload_inductor()   # a no-op where the warm-up ran in this worker
    return compile_job(job), platform.node()


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
        self.nodes: dict[int, str] = {}   # pid -> node of the Ray workers seen (warmed up or compiled)

    @property
    def pids(self) -> list[int]:
        return list(self.nodes)

    def run(self, jobs: Sequence[Job], timeout_s: float,
            on_result: Callable[[Attempt], None] | None = None) -> dict[str, Attempt]:
        """Run ``jobs`` as Ray tasks; every job gets an Attempt (ok, error, timeout, crashed or unreached),
        handed to ``on_result`` as it arrives."""
        self._warmed(timeout_s)
        todo, results = list(jobs), {}
        running: dict[Any, tuple[Job, float]] = {}
        while todo or running:
            while todo and len(running) < self.slots:
                job = todo.pop(0)
                running[self.task.remote(job)] = (job, time.perf_counter())
            ready, _ = self.ray.wait(list(running), num_returns=len(running), timeout=0.1)
            ended = [(ref, self._result(ref, *running[ref])) for ref in ready]
            now = time.perf_counter()
            ended += [(ref, self._timeout(ref, job, t0, timeout_s)) for ref, (job, t0) in running.items()
                      if ref not in ready and now - t0 > timeout_s]
            for ref, r in ended:
                del running[ref]
                results[r.job] = r
                if on_result is not None:
                    on_result(r)
        return results

    def _warmed(self, timeout_s: float) -> None:
        """Wait (up to ``timeout_s``) for the warm-up tasks; RuntimeError when every one that ended failed
        (the cluster's workers cannot import vexplore): the executor then compiles here, saying why."""
        if not self.warming:
            return
        ready, _ = self.ray.wait(self.warming, num_returns=len(self.warming), timeout=timeout_s)
        self.warming, errors = [], []
        for ref in ready:
            try:
                pid, node = self.ray.get(ref)
                self.nodes[pid] = node
            except Exception as e:
                errors.append(e)
        if ready and len(errors) == len(ready):
            raise RuntimeError(f"vexplore's Ray compile tasks cannot start ({_first_line(errors[0])}); install vexplore "
                               "where the cluster's workers run, or use workers=N")

    def _result(self, ref: Any, job: Job, t0: float) -> Attempt:
        elapsed = time.perf_counter() - t0
        try:
            r, node = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as e:   # raised outside compile_job's own catch: never compiled there
            return Attempt("unreached", seconds=elapsed, job=job.id, started=t0, where="ray task",
                           error=f"the Ray task failed before compiling: {_first_line(e)}")
        except Exception as e:   # its worker died: a segfault, out of memory, a lost node
            return Attempt("crashed", seconds=elapsed, job=job.id, started=t0, where="ray task",
                           error=f"the Ray worker died while compiling ({_first_line(e)})")
        self.nodes[r.pid] = node
        return dataclasses.replace(r, started=t0, where=f"ray node {node} worker pid {r.pid}")

    def _timeout(self, ref: Any, job: Job, t0: float, timeout_s: float) -> Attempt:
        try:
            self.ray.cancel(ref, force=True)   # kills the worker process running it
        except Exception:
            log.debug("vexplore: cancelling a Ray compile task failed", exc_info=True)
        return Attempt("timeout", seconds=time.perf_counter() - t0, job=job.id, started=t0, where="ray task",
                       error=f"compile ran past compile_timeout_s={timeout_s:g}; its Ray task was cancelled "
                             "(its worker process killed)")

    def close(self) -> None:
        """Stop the local Ray this pool started (a Ray initialised before it, or a cluster, keeps running)."""
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
        self.started = False


def _first_line(e: BaseException) -> str:
    """The exception's first line; for a task's error, the one the task raised (Ray's own first line names the task)."""
    cause = getattr(e, "cause", None)
    e = cause if isinstance(cause, BaseException) else e
    text = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {text}"[:300]
