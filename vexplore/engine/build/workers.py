"""Compile workers: unique pieces compile in parallel in real, crash-isolated processes.

A pool of spawned processes is started ahead (each imports torch once, while Dynamo traces in
the parent). The parent sends a piece's pickled GraphModule, plain input specs and the pickled
Inductor options (the config's post-grad passes among them); the worker
imports the modules that define the piece's custom ops, rebuilds symbolic fake inputs,
compiles with standalone_compile and returns the artifact bytes, which the parent loads. A job
past its timeout is killed; a worker that dies (segfault, OOM kill) is replaced; either way the
piece says so and the notebook kernel lives on.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.fx as fx

from ...config import pass_name
from .. import _torch_compat as tc
from .jobs import Attempt

log = logging.getLogger(__name__)
# The deadline (time.perf_counter() seconds) of the compiles a pool runs in this context: a compile under
# way at the deadline is stopped as a timeout, one not started by then is a timeout at once. vx.tune sets
# it around a trial's recompile, so the trial ends within its share of budget_s. None: compile_timeout_s only.
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("vexplore_compile_deadline", default=None)


@contextlib.contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Compiles in worker processes end by ``at`` (perf_counter seconds; None: no deadline) in this block."""
    token = DEADLINE.set(at)
    try:
        yield
    finally:
        DEADLINE.reset(token)

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
    options: bytes                 # pickled Inductor options (dump_options): unpickled inside the job's try
    dynamic: bool
    grad: bool = False           # compile for autograd (specs say which inputs require grad)


@dataclass(frozen=True)
class _Ref:
    name: str


def dump_graph(gm: fx.GraphModule) -> bytes:
    """Pickle ``gm`` node by node (targets by reference).

    GraphModule's own pickling re-traces its generated code, which turns e.g. F.embedding into
    a call_method that AOTAutograd's cache refuses, so the artifact could not be saved.
    """
    nodes, attrs = [], {}
    for n in gm.graph.nodes:
        args = fx.map_arg((n.args, n.kwargs), lambda a: _Ref(a.name))
        nodes.append((n.op, n.name, _target_ref(n.target) if n.op == "call_function" else n.target, args[0], args[1]))
        if n.op == "get_attr":
            attrs[str(n.target)] = getattr(gm, str(n.target))
    return pickle.dumps((nodes, attrs))


def _target_ref(t: Any) -> tuple[str, ...]:
    """A name a worker can resolve (pybind11 builtins such as torch._C._nn.linear do not pickle)."""
    if isinstance(t, torch._ops.OpOverload):
        return ("op", t._schema.name, t._overloadname)
    if isinstance(t, torch._ops.OpOverloadPacket):
        return ("packet", t._qualified_op_name)
    return ("py", getattr(t, "__module__", None) or type(t).__module__, t.__qualname__, t.__name__)


def _resolve(ref: tuple[str, ...]) -> Any:
    import importlib

    if ref[0] in ("op", "packet"):
        ns, name = ref[1].split("::")
        packet = getattr(getattr(torch.ops, ns), name)
        return getattr(packet, ref[2]) if ref[0] == "op" else packet
    parts = ref[1].split(".")
    mod = importlib.import_module(parts[0])
    for p in parts[1:]:
        mod = getattr(mod, p)
    obj = mod
    try:
        for p in ref[2].split("."):
            obj = getattr(obj, p)
        return obj
    except AttributeError:  # e.g. torch.embedding's qualname is _VariableFunctionsClass.embedding
        return getattr(mod, ref[3])


def load_graph(data: bytes) -> fx.GraphModule:
    nodes, attrs = pickle.loads(data)
    g, env = fx.Graph(), {}

    def ref(a: Any) -> Any:
        if isinstance(a, _Ref):
            return env[a.name]
        if isinstance(a, (tuple, list)):
            return type(a)(ref(x) for x in a)
        if isinstance(a, dict):
            return {k: ref(v) for k, v in a.items()}
        if isinstance(a, slice):
            return slice(ref(a.start), ref(a.stop), ref(a.step))
        return a
    for op, name, target, args, kwargs in nodes:
        target = _resolve(target) if op == "call_function" else target
        if op == "output":
            g.output(ref(args[0]))
        else:
            env[name] = g.create_node(op, target, ref(args), ref(kwargs), name=name)
    root = torch.nn.Module()
    for k, v in attrs.items():
        root.register_buffer(k, v) if isinstance(v, torch.Tensor) else setattr(root, k, v)
    return fx.GraphModule(root, g)


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


def dump_options(options: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """(Inductor ``options`` pickled for a worker, None) or (None, why a worker cannot have them): a
    post-grad pass (or other option object) defined in __main__, which a worker cannot import, or
    one that does not pickle. The pieces then compile in this process, saying why."""
    patches = options.get("config_patches", {})
    for name, value in patches.items():
        for obj in getattr(value, "passes", None) or (value,):   # a PassChain: each of its passes
            what = f"post-grad pass {pass_name(obj)}" if hasattr(obj, "uuid") else f"Inductor option {name}"
            if type(obj).__module__ == "__main__" or getattr(obj, "__module__", None) == "__main__":
                return None, f"{what} is defined in __main__ (the notebook or script), which a worker cannot import"
    try:
        data = pickle.dumps(options)
    except Exception as e:
        return None, f"the Inductor options do not pickle for a worker ({type(e).__name__}: {e})"
    if b"__main__" in data:
        return None, "the Inductor options refer to something defined in __main__, which a worker cannot import"
    return data, None


def specs_of(inputs: Sequence[Any], hints: dict[Any, Any]) -> tuple[tuple[Any, ...], dict[str, int]]:
    """Plain specs of a piece's inputs, and each symbol they use with the value Dynamo saw
    (``hints``: the graph's ShapeEnv values)."""
    used: set[Any] = set()
    specs: list[Any] = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            for d in list(x.shape) + list(x.stride()):
                used.update(getattr(tc.sym_expr(d), "free_symbols", ()))
            specs.append(("tensor", [str(tc.sym_expr(s)) for s in x.shape], [str(tc.sym_expr(s)) for s in x.stride()],
                          str(x.dtype).replace("torch.", ""), str(x.device), bool(x.requires_grad)))
        elif isinstance(x, torch.SymInt):
            used.update(getattr(tc.sym_expr(x), "free_symbols", ()))
            specs.append(("sym", str(tc.sym_expr(x))))
        else:
            specs.append(("const", x))
    return tuple(specs), {str(s): int(hints[s]) for s in used}


def _stdio_main(rfd: int, wfd: int) -> None:
    """A worker process's loop (started with ``python -c``, so it never imports the user's __main__)."""
    os.environ["VEXPLORE_WORKER"] = "1"
    recv, send = Connection(rfd, writable=False), Connection(wfd, readable=False)
    import vexplore  # noqa: F401  (torch and the engine, once)
    tc.preload_inductor()  # Inductor's imports too, before the timeout clock runs

    try:
        send.send(("ready", os.getpid()))
        while True:
            try:
                job: Job = recv.recv()
            except EOFError:
                return
            send.send(compile_job(job))
    except (BrokenPipeError, ConnectionResetError):
        return   # the notebook's process ended (or closed the pool) first: nothing to say, nobody to hear it


def compile_job(job: Job) -> Attempt:
    t0 = time.perf_counter()
    try:
        import importlib

        for m in job.modules:
            importlib.import_module(m)
        gm = load_graph(job.gm)
        if job.dynamic:
            inputs, mode = tc.symbolic_inputs(job.specs, job.symbols)
        else:
            inputs, mode = [], None
            for s in job.specs:
                if s[0] == "tensor":
                    inputs.append(torch.empty_strided([int(v) for v in s[1]], [int(v) for v in s[2]],
                                                      dtype=getattr(torch, s[3]), device=s[4]).zero_().requires_grad_(s[5]))
                else:
                    inputs.append(int(s[1]) if s[0] == "sym" else s[1])
        _annotate(gm, inputs, mode, job.grad)
        options = pickle.loads(job.options)   # imports the modules of the user's post-grad passes
        code: list[str] = []
        with tc.compile_scope(code):
            art = tc.standalone_compile(gm, inputs, options, mode, job.grad)
            data = tc.artifact_bytes(art)
        if data is None:   # compiled, but it cannot travel: the parent compiles it itself (not a failure)
            return Attempt("unsaveable", seconds=time.perf_counter() - t0, pid=os.getpid(), job=job.id,
                           error="the compiled artifact cannot be saved, so it cannot leave the worker",
                           rss_peak_mb=_peak_rss_mb())
        chain = options.get("config_patches", {}).get("post_grad_custom_post_pass")   # a PassChain records what its passes saw
        return Attempt("ok", data=data, code=code[-1] if code else None, seconds=time.perf_counter() - t0,
                       pid=os.getpid(), job=job.id, rss_peak_mb=_peak_rss_mb(),
                       pass_graphs=tuple(getattr(chain, "seen", ())))
    except Exception as e:
        from .compilers import describe, failure
        signal = tc.dynamo_signal(e)
        return Attempt("error" if signal is None else "restart", seconds=time.perf_counter() - t0,
                       pid=os.getpid(), job=job.id, error=describe(e), failure=failure(e), rss_peak_mb=_peak_rss_mb(),
                       error_class=type(e if signal is None else signal).__name__)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux


class _Annotator(fx.Interpreter):
    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        n.meta["example_value"] = out
        return out


def _annotate(gm: fx.GraphModule, inputs: Sequence[Any], mode: Any, grad: bool) -> None:
    """Put fake values in node.meta["example_value"], as Dynamo's graphs have them: AOTAutograd's
    cache checks a call_method's receiver type there and refuses to save the graph without it."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    if mode is None:
        mode = FakeTensorMode()
        inputs = [mode.from_tensor(x) if isinstance(x, torch.Tensor) else x for x in inputs]
    with mode, torch.set_grad_enabled(grad):
        _Annotator(gm).run(*inputs)


@dataclass
class _Worker:
    proc: subprocess.Popen
    send: Connection
    recv: Connection
    job: Job | None = None
    started: float = 0.0
    ready: bool = False          # said hello: torch is imported, the timeout clock may start
    timeout_s: float = 0.0       # the job's: compile_timeout_s, or less where a deadline comes first
    cut: bool = False            # the deadline, not compile_timeout_s, set timeout_s

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class WorkerPool:
    """``size`` worker processes, started at construction and replaced when one dies.

    Workers are plain ``python -c`` processes talking over two pipes (multiprocessing's
    Connection framing): unlike multiprocessing's spawn they never re-run the user's __main__.
    """

    size: int
    workers: list[_Worker] = field(default_factory=list)
    start_failures: int = 0

    def __post_init__(self) -> None:
        self.workers = [self._spawn() for _ in range(self.size)]

    @staticmethod
    def _spawn() -> _Worker:
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        code = f"from vexplore.engine.build.workers import _stdio_main; _stdio_main({r1}, {w2})"
        proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(r1, w2), env=env)
        os.close(r1)
        os.close(w2)
        return _Worker(proc, Connection(w1, readable=False), Connection(r2, writable=False))

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def run(self, jobs: Sequence[Job], timeout_s: float,
            on_result: Callable[[Attempt], None] | None = None) -> dict[str, Attempt]:
        """Run ``jobs`` on the pool; every job gets an Attempt (ok, error, timeout or crashed),
        handed to ``on_result`` as it arrives."""
        todo, results = list(jobs), {}
        end = DEADLINE.get()
        while todo or any(w.job for w in self.workers):
            if end is not None and todo and time.perf_counter() >= end:   # past the deadline: none starts
                for job in todo:
                    results[job.id] = r = Attempt("timeout", job=job.id, where="not started", started=time.perf_counter(),
                                                  error="not started: the deadline of the compile had passed "
                                                        "(a vx.tune trial's share of budget_s)")
                    if on_result is not None:
                        on_result(r)
                todo = []
                continue
            for w in self.workers:
                if w.ready and w.job is None and todo:
                    w.job, w.started = todo.pop(0), time.perf_counter()
                    w.cut = end is not None and end - w.started < timeout_s
                    w.timeout_s = max(0.0, end - w.started) if w.cut else timeout_s
                    w.send.send(w.job)
            ready = wait([w.recv for w in self.workers if w.job or not w.ready], timeout=0.1)
            for i, w in enumerate(self.workers):
                if not w.ready and w.recv in ready:
                    self._hello(i, w)
                    continue
                r = self._poll(w, ready, w.timeout_s) if w.job else None
                if r is not None:
                    results[r.job] = r = dataclasses.replace(r, started=w.started)
                    if on_result is not None:
                        on_result(r)
                    w.job = None
                    if r.status in ("timeout", "crashed"):
                        self._stop(w)
                        self.workers[i] = self._spawn()
        return results

    def _hello(self, i: int, w: _Worker) -> None:
        try:
            msg = w.recv.recv()
            w.ready = msg[0] == "ready"
        except (EOFError, OSError):  # died while starting (e.g. cannot import torch)
            self._stop(w)
            self.start_failures += 1
            if self.start_failures > 3:
                raise RuntimeError(f"vexplore compile workers cannot start ({self.start_failures} tried and died "
                                   "before saying ready; their stderr says why); use workers=0")
            self.workers[i] = self._spawn()

    def _poll(self, w: _Worker, ready: list[Any], timeout_s: float) -> Attempt | None:
        assert w.job is not None
        elapsed = time.perf_counter() - w.started
        while w.recv in ready and w.recv.poll():
            try:
                msg = w.recv.recv()
            except (EOFError, OSError):
                break
            if isinstance(msg, Attempt):
                return msg
        code = w.proc.poll()
        if code is not None or (w.recv in ready and not _alive(w)):
            code = w.proc.wait(5)
            why = f"signal {-code}" if code < 0 else f"exit code {code}"
            return Attempt("crashed", seconds=elapsed, pid=w.pid, job=w.job.id,
                          error=f"worker pid {w.pid} died ({why}) while compiling")
        if elapsed > timeout_s:
            return Attempt("timeout", seconds=elapsed, pid=w.pid, job=w.job.id,
                          error=(f"compile ran past the deadline of the compile ({timeout_s:.1f} s after it started: a "
                                 "vx.tune trial's share of budget_s)" if w.cut else
                                 f"compile ran past compile_timeout_s={timeout_s:g}") + f"; worker pid {w.pid} killed")
        return None

    @staticmethod
    def _stop(w: _Worker) -> None:
        w.proc.kill()
        w.proc.wait(10)
        w.send.close()
        w.recv.close()

    def close(self) -> None:
        for w in self.workers:
            self._stop(w)
        self.workers = []


def _alive(w: _Worker) -> bool:
    """False when the worker's pipe hit EOF (it died) — poll() then reports readable forever."""
    try:
        w.proc.wait(0.5)
        return False
    except subprocess.TimeoutExpired:
        return True
