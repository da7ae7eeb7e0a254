"""Compile workers: unique pieces compile in parallel in real, crash-isolated processes.

A pool of spawned processes is started ahead (each imports torch once, while Dynamo traces in
the parent). The parent sends a piece's pickled GraphModule and plain input specs; the worker
imports the modules that define the piece's custom ops, rebuilds symbolic fake inputs,
compiles with standalone_compile and returns the artifact bytes, which the parent loads. A job
past its timeout is killed; a worker that dies (segfault, OOM kill) is replaced; either way the
piece says so and the notebook kernel lives on.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Sequence

import torch
import torch.fx as fx

from . import _torch_compat as tc

log = logging.getLogger(__name__)

# Namespaces every worker has without importing anything of the user's.
_BUILTIN_NS = {"aten", "prims", "quantized", "_c10d_functional", "c10d", "_quantized", "rngprims", "higher_order",
               "inductor", "_dtensor", "profiler"}


@dataclass(frozen=True)
class Job:
    id: str
    gm: bytes
    specs: tuple[Any, ...]
    symbols: dict[str, int]
    modules: tuple[str, ...]
    options: dict[str, Any]
    dynamic: bool


@dataclass(frozen=True)
class Result:
    id: str
    status: str                    # ok | error | timeout | crashed
    data: bytes | None = None
    code: str | None = None
    seconds: float = 0.0
    pid: int | None = None
    error: str | None = None


def rebuild_modules(gm: fx.GraphModule) -> tuple[tuple[str, ...], str | None]:
    """(modules a worker must import to rebuild ``gm``, reason it cannot, or None)."""
    mods: set[str] = set()
    for n in gm.graph.nodes:
        if n.op != "call_function":
            continue
        t = n.target
        if isinstance(t, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
            qual = t._schema.name if isinstance(t, torch._ops.OpOverload) else t._qualified_op_name
            if qual.split("::")[0] in _BUILTIN_NS:
                continue
            mod = tc.custom_op_module(qual)
            if mod is None:
                return (), f"op {qual} was not made with torch.library.custom_op, so a worker cannot find where it is defined"
        else:
            mod = getattr(t, "__module__", None)
            if mod in (None, "builtins", "_operator", "operator", "math") or (mod or "").startswith("torch"):
                continue
        if mod == "__main__":
            return (), f"{n.target} is defined in __main__ (the notebook or script), which a worker cannot import"
        mods.add(mod)
    return tuple(sorted(mods)), None


def specs_of(inputs: Sequence[Any]) -> tuple[tuple[Any, ...], dict[str, int], dict[Any, int]]:
    """Plain specs of a piece's inputs plus the symbols they use and their hints."""
    hints = {}
    specs: list[Any] = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            dims = [tc.sym_expr(s) for s in list(x.shape) + list(x.stride())]
            for d in dims:
                for s in getattr(d, "free_symbols", ()):
                    hints[s] = None
            specs.append(("tensor", [str(tc.sym_expr(s)) for s in x.shape], [str(tc.sym_expr(s)) for s in x.stride()],
                          str(x.dtype).replace("torch.", ""), str(x.device)))
        elif isinstance(x, torch.SymInt):
            for s in getattr(tc.sym_expr(x), "free_symbols", ()):
                hints[s] = None
            specs.append(("sym", str(tc.sym_expr(x))))
        else:
            specs.append(("const", x))
    return tuple(specs), {str(s): 0 for s in hints}, hints


def _worker_main(conn: Any) -> None:
    os.environ["VEXPLORE_WORKER"] = "1"
    import vexplore  # noqa: F401  (torch and the engine, once)

    conn.send(("ready", os.getpid()))
    while True:
        try:
            job: Job = conn.recv()
        except EOFError:
            return
        conn.send(_compile_job(job))


def _compile_job(job: Job) -> Result:
    t0 = time.perf_counter()
    try:
        import importlib

        for m in job.modules:
            importlib.import_module(m)
        gm = pickle.loads(job.gm)
        if job.dynamic:
            inputs, mode = tc.symbolic_inputs(job.specs, job.symbols)
        else:
            inputs, mode = [], None
            for s in job.specs:
                if s[0] == "tensor":
                    inputs.append(torch.empty_strided([int(v) for v in s[1]], [int(v) for v in s[2]],
                                                      dtype=getattr(torch, s[3]), device=s[4]).zero_())
                else:
                    inputs.append(int(s[1]) if s[0] == "sym" else s[1])
        code: list[str] = []
        with tc.capture_output_code(code):
            art = tc.standalone_compile(gm, inputs, job.options, mode)
        data = tc.artifact_bytes(art)
        if data is None:
            raise RuntimeError("the compiled artifact cannot be saved, so it cannot leave the worker")
        return Result(job.id, "ok", data, code[-1] if code else None, time.perf_counter() - t0, os.getpid())
    except Exception as e:
        from .compilers import describe
        return Result(job.id, "error", seconds=time.perf_counter() - t0, pid=os.getpid(), error=describe(e))


@dataclass
class _Worker:
    proc: Any
    conn: Any
    pid: int | None = None
    job: Job | None = None
    started: float = 0.0


@dataclass
class WorkerPool:
    """``size`` spawned worker processes, started at construction."""

    size: int
    workers: list[_Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self.workers = [self._spawn() for _ in range(self.size)]

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child,), daemon=True, name="vexplore-compile-worker")
        proc.start()
        child.close()
        return _Worker(proc, parent)

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]

    def run(self, jobs: Sequence[Job], timeout_s: float) -> dict[str, Result]:
        """Run ``jobs`` on the pool; every job gets a Result (ok, error, timeout or crashed)."""
        todo, results = list(jobs), {}
        while todo or any(w.job for w in self.workers):
            for w in self.workers:
                if w.job is None and todo:
                    w.job, w.started = todo.pop(0), time.perf_counter()
                    w.conn.send(w.job)
            busy = [w for w in self.workers if w.job]
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=0.1)
            for i, w in enumerate(self.workers):
                if w.job is None:
                    continue
                r = self._poll(w, ready, timeout_s)
                if r is not None:
                    results[r.id] = r
                    w.job = None
                    if r.status in ("timeout", "crashed"):
                        self.workers[i] = self._spawn()
        return results

    def _poll(self, w: _Worker, ready: list[Any], timeout_s: float) -> Result | None:
        assert w.job is not None
        elapsed = time.perf_counter() - w.started
        if w.conn in ready:
            try:
                msg = w.conn.recv()
            except (EOFError, OSError):
                msg = None
            if isinstance(msg, tuple) and msg[0] == "ready":
                w.pid = msg[1]
                return None
            if isinstance(msg, Result):
                return msg
        if not w.proc.is_alive():
            code = w.proc.exitcode
            why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            return Result(w.job.id, "crashed", seconds=elapsed, pid=w.proc.pid,
                          error=f"worker pid {w.proc.pid} died ({why}) while compiling")
        if elapsed > timeout_s:
            w.proc.kill()
            w.proc.join(5)
            return Result(w.job.id, "timeout", seconds=elapsed, pid=w.proc.pid,
                          error=f"timeout: compile ran past compile_timeout_s={timeout_s:g}; worker pid {w.proc.pid} killed")
        return None

    def close(self) -> None:
        for w in self.workers:
            w.conn.close()
            w.proc.kill()
            w.proc.join(5)
        self.workers = []
