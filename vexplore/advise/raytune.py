"""RayExecutor: ``vx.tune``'s trials as Ray tasks, on every node of a Ray cluster.

Ray is imported here and only when a tune starts on it (``pip install vexplore[ray]``). The model,
the inputs by size and the start config go to Ray's object store once (pickled by Ray's cloudpickle);
each trial is a task (``run_trial``) that traces the model under the start config with the eager
compiler, then recompiles and measures exactly as a local trial does, and sends back the trial
compile's report counters beside its outcome (``RayExecutor.counters``). A CUDA model's trial asks for
one GPU, a CPU model's for ``num_cpus`` CPUs. A task whose worker process dies (killed, out of memory,
segfault) is retried by Ray up to ``max_retries`` times; a trial that still fails is recorded as
crashed. The final interleaved re-measurement of start and best runs in the notebook. Artifacts travel
between trials through the cache tiers: the disk tier on one machine, the remote (Redis) tier across
machines, the start config's own or the one ``remote_url`` names (added to every trial's tiers inside
its task: a piece one trial compiled is a remote hit in the others, and the configs the tune reports
stay the model's).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import platform
import time
import warnings
from typing import Any, Mapping

import torch

from ..config import CacheConfig, CompileConfig
from ..errors import VexploreError, VexploreWarning
from .tuneexec import TuneJob, in_process_reason
from .tunetrial import Measure, Outcome, Shipped, Target, Timing, measure, trace_order

log = logging.getLogger(__name__)


class RayExecutor:
    """``vx.RayExecutor(address=None)``: trials as Ray tasks. ``address``: a running cluster's address
    (``"ray://host:10001"``, ``"host:6379"``, ``"auto"``); None: the cluster ``ray.init()`` finds (``RAY_ADDRESS``,
    or one started with ``ray start`` on this machine), else a new local one; ``"local"``: always a new local
    one. ``num_cpus``: CPUs per CPU trial (Ray sets the task's thread count to it); ``max_retries``: retries of
    a trial whose worker process died; ``max_in_flight``: trials at once (None: as many as the cluster's GPUs or
    CPUs hold); ``init``: more keywords for ``ray.init`` (e.g. ``{"num_cpus": 2}``, ``runtime_env``);
    ``remote_url``: a Redis URL every trial's pieces are read from and written to (the remote tier added to
    each trial's cache tiers inside its task; None: the start config's tiers as they are). ``counters``:
    trial number -> that trial compile's report counters, from its task."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: float = 1, max_retries: int = 2,
                 max_in_flight: int | None = None, init: Mapping[str, Any] | None = None,
                 remote_url: str | None = None) -> None:
        if num_cpus <= 0 or max_retries < 0 or (max_in_flight is not None and max_in_flight < 1):
            raise VexploreError(f"RayExecutor: num_cpus={num_cpus} must be > 0, max_retries={max_retries} >= 0 and "
                                f"max_in_flight={max_in_flight} >= 1 (or None).")
        if remote_url is not None:
            CacheConfig(tiers=("remote",), remote_url=remote_url)   # a URL redis-py cannot open raises ConfigError here
        self.address, self.num_cpus, self.max_retries = address, num_cpus, max_retries
        self.max_in_flight, self.init, self.remote_url = max_in_flight, dict(init or {}), remote_url
        self.counters: dict[int, dict[str, int]] = {}
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
        self.counters = {}
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
        self.remote = ray.remote(run_trial).options(max_retries=self.max_retries, retry_exceptions=False, **need)
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
        return notes + self._sharing(job, nodes)

    def _sharing(self, job: TuneJob, nodes: int) -> list[str]:
        """What the trials share their compiled pieces through, said when it matters."""
        cache = job.start.cache
        url = self.remote_url or (cache.remote_url if "remote" in cache.tiers else None)
        if job.spec.objective == "latency+compile":
            return ["the trials share no pieces: latency+compile turns every cache off, so each trial's first call "
                    "is a real compile"] if url else []
        if url is None:
            return [f"the trials on {nodes} nodes share pieces only through each machine's disk tier: give "
                    "vx.RayExecutor(remote_url='redis://...') so a piece one trial compiled is a hit on every node"] \
                if nodes > 1 else []
        where = CacheConfig.redact(url)
        note = f"the trials read and write compiled pieces in the remote tier (Redis at {where})"
        problem = _remote_problem(url, cache)
        return [note + (f"; from this process it fails: {problem}" if problem else "")]

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
        self.pending[self.remote.remote(self.ref, cfg, spec, against, self.remote_url)] = handle

    def wait(self, timeout: float | None = None) -> list[tuple[int, Outcome]]:
        """The trials that ended, at least one; none when ``timeout`` seconds passed first."""
        ray = self._ray
        ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            handle = self.pending.pop(ref)
            try:
                outcome, self.counters[handle] = ray.get(ref)
                out.append((handle, outcome))
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


def run_trial(shipped: Shipped, cfg: CompileConfig, spec: Measure, against: Timing | None,
              remote_url: str | None) -> tuple[Outcome, dict[str, int]]:
    """A trial as a Ray task: trace the model once under no_grad, at every size (so every graph the sizes need
    is captured, as the notebook's model had them), then ``measure`` it under ``cfg`` with ``remote_url`` among
    its tiers. (Its Outcome, the trial compile's report counters: {} when it raised before a report.)"""
    from ..engine.model import compile as vx_compile
    from ..session import Session

    t0 = time.perf_counter()
    session = Session()
    try:
        cm = vx_compile(shipped.model, shipped.trace_config, session=session)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", VexploreWarning)
            for inputs in trace_order(shipped.inputs):
                cm(*inputs)
        traced = cm.report
        out = measure(cm, with_remote(cfg, remote_url), Target(cm, shipped.inputs), dataclasses.replace(spec, workers=0),
                      against)
        counters = dict(cm.report.counters) if cm.report is not traced else {}
    finally:
        session.close()
    return dataclasses.replace(out, where=f"ray {platform.node()} pid {os.getpid()}",
                               seconds=time.perf_counter() - t0), counters


def with_remote(cfg: CompileConfig, url: str | None) -> CompileConfig:
    """``cfg`` with the remote tier at ``url`` among its cache tiers (the executor's URL wins over the config's);
    ``cfg`` as it is for None."""
    if url is None:
        return cfg
    tiers = cfg.cache.tiers if "remote" in cfg.cache.tiers else cfg.cache.tiers + ("remote",)
    return cfg.replace(cache=dataclasses.replace(cfg.cache, tiers=tiers, remote_url=url))


def _remote_problem(url: str, cache: CacheConfig) -> str | None:
    """Why the remote tier at ``url`` does not answer from this process (no signing secret, Redis down), or None."""
    from ..cache.remote import RemoteTier   # redis-py: only with a remote tier

    try:
        RemoteTier(url, prefix=cache.remote_prefix, timeout_s=max(cache.remote_timeout_s, 2.0)).heal()
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None


def _trace_config(job: TuneJob) -> Any:
    """The start config with the eager compiler and no tiers: the Ray task's trace compiles nothing."""
    from ..config import CacheConfig

    return job.start.replace(compiler="eager", cache=CacheConfig(tiers=()), workers=0)
