"""RayExecutor: ``vx.tune``'s trials as Ray tasks, on every node of a Ray cluster.

Ray is imported here and only when a tune starts on it (``pip install vexplore[ray]``). The model,
the inputs by size and the start config go to Ray's object store once (pickled by Ray's cloudpickle);
each trial is a task (``tunetrial.run_shipped``) that traces the model under the start config with
the eager compiler, then recompiles and measures exactly as a local trial does. A CUDA model's trial
asks for one GPU, a CPU model's for ``num_cpus`` CPUs. A task whose worker process dies (killed,
out of memory, segfault) is retried by Ray up to ``max_retries`` times; a trial that still fails is
recorded as crashed. The final interleaved re-measurement of start and best runs in the notebook.
Artifacts travel between trials through the config's cache tiers: the disk tier on one machine, the
remote (Redis) tier across machines.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import torch

from ..errors import VexploreError
from .tuneexec import TuneJob, in_process_reason
from .tunetrial import Measure, Outcome, Shipped, Timing, run_shipped

log = logging.getLogger(__name__)


class RayExecutor:
    """``vx.RayExecutor(address=None)``: trials as Ray tasks. ``address``: a running cluster's address
    (``"ray://host:10001"``, ``"host:6379"``, ``"auto"``); None: the cluster ``ray.init()`` finds (``RAY_ADDRESS``,
    or one started with ``ray start`` on this machine), else a new local one; ``"local"``: always a new local
    one. ``num_cpus``: CPUs per CPU trial (Ray sets the task's thread count to it); ``max_retries``: retries of
    a trial whose worker process died; ``max_in_flight``: trials at once (None: as many as the cluster's GPUs or
    CPUs hold); ``init``: more keywords for ``ray.init`` (e.g. ``{"num_cpus": 2}``, ``runtime_env``)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: float = 1, max_retries: int = 2,
                 max_in_flight: int | None = None, init: Mapping[str, Any] | None = None) -> None:
        if num_cpus <= 0 or max_retries < 0 or (max_in_flight is not None and max_in_flight < 1):
            raise VexploreError(f"RayExecutor: num_cpus={num_cpus} must be > 0, max_retries={max_retries} >= 0 and "
                                f"max_in_flight={max_in_flight} >= 1 (or None).")
        self.address, self.num_cpus, self.max_retries = address, num_cpus, max_retries
        self.max_in_flight, self.init = max_in_flight, dict(init or {})
        self.capacity, self.workers = 1, 0
        self.started_cluster = False
        self.pending: dict[Any, int] = {}
        self._ray: Any = None

    def start(self, job: TuneJob) -> list[str]:
        if job.inputs is None:
            raise VexploreError("vx.tune(executor='ray') needs inputs_by_size: a Ray task traces the model again on "
                                "the inputs, it cannot run the notebook's captured graphs.")
        why = in_process_reason(job.cm)
        if why:
            raise VexploreError(f"vx.tune(executor='ray'): {why}; a Ray worker cannot run it either. Define it in a "
                                "module the cluster can import (e.g. a .py file beside the notebook), or tune locally.")
        ray = self._connect()
        shipped = Shipped(job.cm.model, job.inputs, _trace_config(job))
        try:
            ray.cloudpickle.dumps(shipped)
        except Exception as e:
            raise VexploreError(f"vx.tune(executor='ray'): the model or its inputs cannot be pickled for Ray tasks "
                                f"({type(e).__name__}: {e}). A model whose class is defined in a notebook is pickled by "
                                "value, which fails for what it holds that does not pickle (locks, open files, "
                                "lambdas in some cases); define the model in a module the cluster can import.") from e
        self.ref = ray.put(shipped)
        cuda = any(isinstance(x, torch.Tensor) and x.is_cuda for xs in job.inputs.values() for x in xs)
        need = {"num_gpus": 1, "num_cpus": 1} if cuda else {"num_cpus": self.num_cpus}
        self.remote = ray.remote(run_shipped).options(max_retries=self.max_retries, retry_exceptions=False, **need)
        resources = ray.cluster_resources()
        fits = int(resources.get("GPU", 0)) if cuda else int(resources.get("CPU", 1) // self.num_cpus)
        if fits < 1:
            raise VexploreError(f"vx.tune(executor='ray'): the Ray cluster has {resources.get('GPU' if cuda else 'CPU', 0)} "
                                f"{'GPUs' if cuda else 'CPUs'}, and a trial needs {need}.")
        self.capacity = min(fits, self.max_in_flight or fits)
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        notes = [f"trials ran as Ray tasks on {nodes} node(s), {self.capacity} at a time, "
                 f"{'one GPU' if cuda else f'{self.num_cpus:g} CPU(s)'} each; each task traced the model again. "
                 "Trials that share a machine share its cores and memory bandwidth, so their timings are comparable "
                 "among themselves; the improvement is from the re-measurement in this process"]
        if type(job.cm.model).__module__ == "__main__":
            notes.append("the model's class is defined in __main__: Ray shipped it by value (cloudpickle)")
        return notes

    def _connect(self) -> Any:
        try:
            import ray
        except ImportError:
            raise VexploreError("vx.tune(executor='ray') needs Ray: pip install 'vexplore[ray]' (or pip install ray).") from None
        self._ray = ray
        if not ray.is_initialized():
            log.info("vx.tune: ray.init(address=%r)", self.address)
            ray.init(address=self.address, log_to_driver=False, **self.init)
            self.started_cluster = self.address in (None, "local")
        return ray

    def submit(self, handle: int, cfg: Any, spec: Measure, against: Timing | None) -> None:
        self.pending[self.remote.remote(self.ref, cfg, spec, against)] = handle

    def wait(self, timeout: float | None = None) -> list[tuple[int, Outcome]]:
        """The trials that ended, at least one; none when ``timeout`` seconds passed first."""
        ray = self._ray
        ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            handle = self.pending.pop(ref)
            try:
                out.append((handle, ray.get(ref)))
            except Exception as e:   # the task failed past its retries (or raised outside the trial's own catch)
                text = (str(e).strip().splitlines() or [""])[0][:300]
                out.append((handle, Outcome("crashed", error=f"the Ray task failed after up to {self.max_retries} "
                                            f"retries: {type(e).__name__}: {text}", where="ray")))
        return out

    def close(self) -> None:
        """Cancel the trials still running (a tune that stopped early or raised)."""
        for ref in list(self.pending):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:
                log.debug("vx.tune: cancelling a Ray task failed", exc_info=True)
        self.pending.clear()

    def shutdown(self) -> None:
        """Stop the local Ray cluster this executor started (one it connected to keeps running)."""
        if self._ray is not None and self.started_cluster:
            self._ray.shutdown()
            self.started_cluster = False


def _trace_config(job: TuneJob) -> Any:
    """The start config with the eager compiler and no tiers: the Ray task's trace compiles nothing."""
    from ..config import CacheConfig

    return job.start.replace(compiler="eager", cache=CacheConfig(tiers=()), workers=0)
