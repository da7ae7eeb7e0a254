"""Every use of a private torch API, in one place, with why and which versions need it.

Supported: torch 2.11 (the GPU machine) through 2.15; CI runs 2.13.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
import tempfile
from collections import Counter
from typing import Any, Callable, Iterator, Sequence

import torch

from ..errors import exception_chain

TORCH_VERSION = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])


def fake_mode_of(gm: torch.fx.GraphModule) -> Any:
    """The FakeTensorMode Dynamo traced ``gm`` under, from placeholder meta (2.1+)."""
    # FakeTensor.fake_mode (2.0+). Not torch._guards.detect_fake_mode: inside a backend call it prefers the
    # ambient TracingContext's mode, which need not be the one these values were made in.
    for n in gm.graph.nodes:
        v = n.meta.get("example_value") if n.op == "placeholder" else None
        if v is not None and hasattr(v, "fake_mode"):
            return v.fake_mode
    return None


def sym_hint(s: Any) -> int:
    """The concrete value behind a SymInt that Dynamo handed the backend (SymNode.hint, 2.1+)."""
    if isinstance(s, torch.SymInt):
        return int(s.node.hint)
    return int(s)


def sym_expr(s: Any) -> Any:
    """The sympy expression of a SymInt (SymNode.expr, 2.1+), with the ShapeEnv's replacements
    applied (ShapeEnv.replace): a symbol a guard specialized reads as its value. torch 2.11's
    SymNode.expr does not apply them, so a token dim specialized to 16 still read as a symbol
    there and a static graph passed for a dynamic one. Ints come back unchanged."""
    if not isinstance(s, torch.SymInt):
        return s
    e = s.node.expr
    env = getattr(s.node, "shape_env", None)
    return env.replace(e) if env is not None and hasattr(env, "replace") else e


def specialized_at(s: Any) -> str | None:
    """Where a guard specialized SymInt ``s``'s symbol to a constant (the ShapeEnv's
    replacements_slocs: the user's line and torch's, 2.4+), or None when it is still symbolic."""
    if not isinstance(s, torch.SymInt) or not getattr(sym_expr(s), "is_number", False):
        return None
    raw = getattr(s.node, "_expr", None)
    sloc = getattr(s.node.shape_env, "replacements_slocs", {}).get(raw) if raw is not None else None
    return str(sloc) if sloc is not None else "where Dynamo does not say"


@contextlib.contextmanager
def guards_suppressed(fake_mode: Any) -> Iterator[None]:
    """A fake run for vexplore's own analysis that adds no guard to Dynamo's ShapeEnv
    (ShapeEnv.suppress_guards, 2.0+). Without it, re-running a graph on Dynamo's fakes let a
    fake kernel specialize the token count (on CUDA, SDPA's: measured on an H200 with a Hugging
    Face Llama), and since Dynamo builds its guards after the backend returns, every new prompt
    length traced again."""
    env = getattr(fake_mode, "shape_env", None)
    if env is None:
        yield
        return
    with env.suppress_guards():
        yield


def eager_forward(gm: Any) -> Any:
    """``gm.forward`` as generated code, for a runner called on every call. A GraphModule made by
    split_module is a lazy one: its ``forward`` is a stub that compiles the code on its first call
    and then goes through ``nn.Module.__call__`` on every call (2-4 us each); compiling it now
    gives the generated ``forward`` itself."""
    recompile = getattr(gm, "real_recompile", None)
    if callable(recompile):
        recompile()
    return gm.forward


def data_ptrs_equal(tensors: Sequence[Any], ptrs: Sequence[int | None], indices: Sequence[int]) -> bool:
    """Whether ``tensors[i].data_ptr() == ptrs[i]`` for every ``i`` in ``indices``, in one call.

    torch._C._tensors_data_ptrs_at_indices_equal is the C++ check CUDA graph trees run before
    each replay (CUDA builds, 2.1+); CPU builds lack it and never replay CUDA graphs, so a
    Python loop stands in there.
    """
    check = getattr(torch._C, "_tensors_data_ptrs_at_indices_equal", None)
    if check is not None:
        return check(tensors if isinstance(tensors, list) else list(tensors), ptrs, indices)
    return all(tensors[i].data_ptr() == ptrs[i] for i in indices)


def copy_all(dst: Sequence[torch.Tensor], src: Sequence[torch.Tensor]) -> None:
    """``dst[i].copy_(src[i])`` for every i in one call: torch._foreach_copy_ (2.2+), which CUDA
    graph trees use to refill static inputs before a replay."""
    torch._foreach_copy_(list(dst), list(src))


@contextlib.contextmanager
def captures_without_gc() -> Iterator[None]:
    """torch.cuda.graph's __enter__ runs gc.collect() and torch.cuda.empty_cache() before every
    capture (2.0+): tens of ms each, for every piece at every size. vexplore captures many small
    graphs in a row, having freed what it holds already, so both are skipped while its captures
    run (as vLLM does for its piecewise captures). Both are replaced only while the process's
    compile lock is held (``compile_scope``'s), so no compile in another thread runs meanwhile,
    and are put back before it is released. (On 2.11 and 2.13 the capture runs gc.collect only
    when torch.compiler.config.force_cudagraph_gc is set; empty_cache runs every time.)"""
    import gc

    with compile_lock(), _patched(gc, "collect", lambda *a, **k: 0), _patched(torch.cuda, "empty_cache", lambda: None):
        yield


def graph_break_reasons() -> Counter:
    # torch._dynamo.utils.counters["graph_break"] maps each break reason to its count (2.0+);
    # Dynamo offers no public per-call list, and torch._dynamo.explain would trace again.
    from torch._dynamo.utils import counters

    return Counter(counters["graph_break"])


def maybe_mark_dynamic(t: torch.Tensor, dim: int) -> None:
    # Public in torch._dynamo (2.2+); unlike mark_dynamic it does not raise when Dynamo
    # specializes a size-0/1 dim.
    torch._dynamo.maybe_mark_dynamic(t, dim)


def inductor_options(mode: str, options: dict[str, Any]) -> dict[str, Any]:
    """Inductor config patches for a mode plus the user's options (the user's win)."""
    merged = dict(torch._inductor.list_mode_options(mode))
    merged.update(options)
    return {"config_patches": merged}


def standalone_compile(gm: torch.fx.GraphModule, inputs: Sequence[Any], options: dict[str, Any],
                       fake_mode: Any | None, grad: bool = False) -> Any:
    """Compile with torch._inductor.standalone_compile (2.8+).

    With ``fake_mode`` the inputs are fake tensors/SymInts of Dynamo's graph and the compile is
    dynamic ("from_tracing_context": a TracingContext we open ourselves, so this also works
    outside the backend call, e.g. for recompile). Without it the inputs are concrete and the
    compile is static ("from_example_inputs"). ``grad``: compile for autograd (AOTAutograd
    traces a joint graph when grad is enabled and an input requires grad, and the artifact's
    outputs carry a backward); otherwise an inference graph.
    """
    with torch.set_grad_enabled(grad):
        if fake_mode is None:
            return torch._inductor.standalone_compile(
                gm, list(inputs), dynamic_shapes="from_example_inputs", options=options)
        with torch._guards.tracing(torch._guards.TracingContext(fake_mode)):
            return torch._inductor.standalone_compile(
                gm, list(inputs), dynamic_shapes="from_tracing_context", options=options)


def artifact_bytes(artifact: Any) -> bytes | None:
    """The binary form of a standalone_compile artifact, or None when it cannot be saved."""
    if hasattr(artifact, "is_saveable") and not artifact.is_saveable():
        return None
    with tempfile.TemporaryDirectory(prefix="vexplore-save-") as d:
        path = os.path.join(d, "artifact.bin")
        artifact.save(path=path, format="binary")
        with open(path, "rb") as f:
            return f.read()


def load_artifact(data: bytes) -> Callable[..., Any]:
    """Load bytes saved by ``artifact_bytes`` (CompiledArtifact.load takes only a path)."""
    from torch._inductor import CompiledArtifact

    with tempfile.TemporaryDirectory(prefix="vexplore-load-") as d:
        path = os.path.join(d, "artifact.bin")
        with open(path, "wb") as f:
            f.write(data)
        return CompiledArtifact.load(path=path, format="binary")


def symbol_hints(fake_mode: Any) -> dict[Any, Any]:
    """Symbol -> the value Dynamo saw, from the ShapeEnv (backed_var_to_val on 2.13, var_to_val before)."""
    env = getattr(fake_mode, "shape_env", None)
    if env is None:
        return {}
    vals = env.backed_var_to_val if hasattr(env, "backed_var_to_val") else env.var_to_val
    return dict(vals)


def symbolic_inputs(specs: Sequence[Any], symbols: dict[str, int]) -> tuple[list[Any], Any]:
    """Fake inputs with symbolic shapes, rebuilt in a compile worker from plain specs (2.4+).

    ShapeEnv.create_symbol/create_symintnode and FakeTensorMode are how Dynamo itself makes
    symbolic inputs; a worker has no Dynamo trace, so it makes one symbol per name here.
    ``specs``: ("tensor", shape exprs, stride exprs, dtype, device, requires_grad) | ("sym", expr) | ("const", v).
    """
    import sympy
    from torch._dynamo.source import ConstantSource
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv

    env = ShapeEnv()
    mode = FakeTensorMode(shape_env=env)
    syms = {name: env.create_symbol(hint, ConstantSource(name), dynamic_dim=DimDynamic.DYNAMIC)
            for name, hint in symbols.items()}
    hints = {syms[n]: h for n, h in symbols.items()}

    def sym(text: str) -> Any:
        e = sympy.sympify(text, locals=dict(syms))
        if e.is_Integer:
            return int(e)
        return env.create_symintnode(e, hint=int(e.xreplace(hints)))

    out: list[Any] = []
    with mode:
        for spec in specs:
            if spec[0] == "tensor":
                _, shape, stride, dtype, device, requires_grad = spec
                out.append(torch.empty_strided([sym(s) for s in shape], [sym(s) for s in stride],
                                               dtype=getattr(torch, dtype), device=device).requires_grad_(requires_grad))
            elif spec[0] == "sym":
                out.append(sym(spec[1]))
            else:
                out.append(spec[1])
    return out, mode


def custom_op_module(qualname: str) -> str | None:
    """The module that defined a torch.library.custom_op (torch._library.custom_ops.OPDEFS, 2.4+)."""
    from torch._library.custom_ops import OPDEFS

    opdef = OPDEFS.get(qualname)
    fn = getattr(opdef, "_init_fn", None)
    return getattr(fn, "__module__", None)


def preload_inductor() -> None:
    """Import Inductor's compile path (torch._inductor.compile_fx), which standalone_compile
    otherwise imports on first use (seconds in a fresh process), and keep Inductor from starting
    its own pool of compile subprocesses inside a vexplore worker (config.compile_threads, 2.0+):
    the workers are the parallelism, and nested pools oversubscribe the machine."""
    import torch._inductor.compile_fx  # noqa: F401
    import torch._inductor.config as inductor_config

    inductor_config.compile_threads = 1


@functools.lru_cache(maxsize=1)
def start_inductor_warmup() -> threading.Thread:
    """Import Inductor now and probe the CPU's vector ISA in a background thread, once per process.

    The probe (torch._inductor.cpu_vec_isa.valid_vec_isa_list, 2.0+) builds and dlopens a test
    library per ISA in subprocesses (~1.5 s here) the first time Inductor compiles or loads CPU
    code in a process; started by vx.compile for a model that compiles for CPU, it overlaps
    Dynamo's trace. The import stays in the calling thread (torch.compile pays it at creation
    too), so no two threads import the same modules.
    """
    from torch._inductor import cpu_vec_isa

    def probe() -> None:
        try:
            cpu_vec_isa.valid_vec_isa_list()
        except Exception:  # the compile that needs it will raise it where it can be seen
            pass
    t = threading.Thread(target=probe, name="vexplore-isa-probe", daemon=True)
    t.start()
    return t


# -- Compile-time metrics (report.phases) ---------------------------------------------------
# torch._dynamo.utils.compilation_time_metrics maps a dynamo_timed key to the seconds of each call
# (2.0+; every key optional here: a missing one reads 0 and its time stays in the step's rest).
# The keys below are in 2.11 and 2.13; a name a version lacks falls back to the next one listed.
STARTUP_KEY = "vexplore.inductor_startup"
_TIMED = {
    "frame_s": ("_compile.compile_inner", "entire_frame_compile"),   # Dynamo's whole frame (backend inside)
    "backend_s": ("OutputGraph.call_user_compiler", "backend_compile"),   # the backend call in it
    "module_load_s": ("PyCodeCache.load_by_key_path",),   # Inductor's generated module loads: kernels build here
    "kernel_wait_s": ("async_compile.wait",),             # waiting on kernel compiles (compile_threads > 1)
    "inductor_load_s": ("AOTAutogradCache.inductor_load",),   # an AOTAutograd cache hit loading Inductor's output
    "artifact_save_s": ("CompiledArtifact.save",),        # standalone_compile's artifact serialized (2.8+)
    "startup_s": (STARTUP_KEY,),                          # vexplore's timing of Inductor's start-up (below)
    "startup_imports_s": (STARTUP_KEY + ".imports",),
    "startup_isa_probe_s": (STARTUP_KEY + ".isa_probe",),
    "startup_torch_key_s": (STARTUP_KEY + ".torch_key",),
    "startup_pch_s": (STARTUP_KEY + ".precompiled_header",),
    "startup_patterns_s": (STARTUP_KEY + ".pattern_init",),
}
# torch._dynamo.utils.counters (2.0+): Inductor's FX graph cache (2.2+) and AOTAutograd's cache (2.5+).
_COUNTED = {"fxgraph_cache_hits": ("inductor", "fxgraph_cache_hit"),
            "fxgraph_cache_misses": ("inductor", "fxgraph_cache_miss"),
            "aot_autograd_cache_hits": ("aot_autograd", "autograd_cache_hit"),
            "aot_autograd_cache_misses": ("aot_autograd", "autograd_cache_miss")}


def compile_metrics() -> dict[str, float]:
    """torch's compile-time metrics, process totals so far: ``*_s`` seconds (by the names of
    ``_TIMED``), cache counts (``_COUNTED``), and ``startup_at`` (perf_counter when Inductor's
    start-up began, -1 before). Two readings subtracted give what happened between them;
    torch._dynamo.reset() clears the timings, so a difference below 0 means "cleared": read 0."""
    from torch._dynamo import utils

    times = getattr(utils, "compilation_time_metrics", {})
    counters = getattr(utils, "counters", {})
    out: dict[str, float] = {}
    for name, keys in _TIMED.items():
        key = next((k for k in keys if k in times), None)
        out[name] = float(sum(times[key])) if key is not None else 0.0
    for name, (group, key) in _COUNTED.items():
        out[name] = float(counters[group].get(key, 0)) if group in counters else 0.0
    out["startup_at"] = inductor_startup() if inductor_startup.cache_info().currsize else -1.0
    return out


@functools.lru_cache(maxsize=1)
def inductor_startup() -> float:
    """Inductor's one-time start-up in this process, paid here before its first compile or load,
    timed into torch's own compile-time metrics (under ``STARTUP_KEY``); returns when it began.

    Its parts: importing Inductor's compile path (torch._inductor.graph pulls in every lowering:
    seconds in a fresh process), the CPU ISA probe started by ``start_inductor_warmup`` (what of it
    Dynamo's trace did not hide), and torch_key (a hash of torch's sources, 2.3+). Parts Inductor
    runs lazily inside the first compile are timed where they run (``_time_lazy_startup``, applied
    by ``compile_scope`` for each compile).
    """
    import time

    from torch._dynamo.utils import dynamo_timed

    began = time.perf_counter()
    with dynamo_timed(STARTUP_KEY):
        with dynamo_timed(STARTUP_KEY + ".imports"):
            import torch._inductor.compile_fx  # noqa: F401
            import torch._inductor.graph  # noqa: F401
        with dynamo_timed(STARTUP_KEY + ".isa_probe"):
            if start_inductor_warmup.cache_info().currsize:
                start_inductor_warmup().join()
        with dynamo_timed(STARTUP_KEY + ".torch_key"):
            from torch._inductor import codecache

            if hasattr(codecache, "torch_key"):
                codecache.torch_key()
    return began


def _time_lazy_startup(patches: contextlib.ExitStack) -> None:
    """Time the one-time work Inductor does lazily inside its first compile, under STARTUP_KEY parts,
    until ``patches`` closes: the precompiled C++ header (codecache._precompile_header,
    functools.cache'd per command line; 2.7+) and the pattern matcher's pattern tracing (fx_passes'
    lazy_init, cached per device; 2.1+). Both are looked up as module globals when called, so a
    timing wrapper there sees every call made inside the scope (a cached call costs microseconds).
    A version without them keeps that time in the compile."""
    from torch._inductor import codecache
    from torch._inductor.fx_passes import joint_graph, post_grad

    for module, name, part in ((codecache, "_precompile_header", ".precompiled_header"),
                               (joint_graph, "lazy_init", ".pattern_init"), (post_grad, "lazy_init", ".pattern_init")):
        fn = getattr(module, name, None)
        if fn is not None and not getattr(fn, "_vexplore_timed", False):   # timed already: an outer scope's
            patches.enter_context(_patched(module, name, _timed(fn, STARTUP_KEY + part)))


def _timed(fn: Callable[..., Any], key: str) -> Callable[..., Any]:
    """``fn`` with each call timed into torch's compile-time metrics under ``key`` (dynamo_timed, 2.0+)."""
    from torch._dynamo.utils import dynamo_timed

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        with dynamo_timed(key):
            return fn(*args, **kwargs)
    timed._vexplore_timed = True  # type: ignore[attr-defined]
    for attr in ("cache_clear", "cache_info"):   # torch clears these caches in its own tests and fresh_cache
        if hasattr(fn, attr):
            setattr(timed, attr, getattr(fn, attr))
    return timed


# -- torch's globals, patched for the span of one compile (never for the process's life) ---------------
# The explorer compiles in a background thread (ui/jobs.py) while the notebook's thread may compile or
# capture too, and what a compile changes is process-wide: Inductor's config patches (standalone_compile's
# options) and the hooks below. So compiles, artifact loads and CUDA-graph captures take one lock, each
# for its whole span; re-entrant, since one may run inside another in the same thread (a piece compiles
# inside Dynamo's backend call).
_OWN_LOCK = threading.RLock()   # only where torch lacks the lock below
_ABSENT = object()


def compile_lock() -> contextlib.AbstractContextManager:
    """The process's compile lock (``compile_scope`` takes it; alone, for a step that reads torch's
    process-wide compile metrics before and after a compile, so no other thread's compile lands between)."""
    # torch._dynamo.convert_frame.compile_lock (an RLock, 2.0+; 2.11 and 2.13): Dynamo holds it for a frame's
    # whole compile, backend call included, and Inductor takes it to compile a backward (compile_fx_backward).
    # vexplore's must be that same lock: with two, a Dynamo trace (theirs, then ours) and a recompile in
    # another thread compiling a backward (ours, then theirs) would take them in opposite orders and deadlock.
    from torch._dynamo import convert_frame

    return getattr(convert_frame, "compile_lock", _OWN_LOCK)


@contextlib.contextmanager
def compile_scope(output_code: list[str] | None = None) -> Iterator[None]:
    """One Inductor compile or artifact load (or several: scopes nest), under the process's compile
    lock: Inductor's start-up paid first (``inductor_startup``, once per process), its lazy start-up
    timed (``_time_lazy_startup``) and, with ``output_code``, the generated source of every graph
    Inductor compiles or loads appended to it. Every global replaced is put back on exit, before
    the lock is released."""
    with compile_lock(), contextlib.ExitStack() as patches:
        inductor_startup()
        _time_lazy_startup(patches)
        if output_code is not None:
            # GraphLowering.save_output_code is the hook Inductor's own tests use (a class attribute they
            # mock.patch); it fires on a fresh compile and on an FX-graph-cache hit (2.4+).
            from torch._inductor.graph import GraphLowering

            patches.enter_context(_patched(GraphLowering, "save_output_code", staticmethod(output_code.append)))
        yield


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name = value`` for the block, then exactly what ``owner`` itself held back (its own
    ``__dict__`` entry, so a staticmethod stays one; deleted again if it had none)."""
    old = vars(owner).get(name, _ABSENT)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if old is _ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, old)


def custom_graph_pass_base() -> type:
    """torch._inductor.custom_graph_pass.CustomGraphPass (2.6+): the base class of the passes
    Inductor's ``post_grad_custom_post_pass`` takes. Its FX-graph cache keys a pass by ``uuid()``
    and only when the pass is an instance of this class (any other callable bypasses the cache).
    Imported on use: importing torch._inductor costs about a second."""
    from torch._inductor.custom_graph_pass import CustomGraphPass

    return CustomGraphPass


# -- What Dynamo said about a model's frames: graph breaks and recompiles (engine/capture/explain.py) ---------
def dynamo_marks() -> tuple[int, Any]:
    """Where Dynamo's records stand now, read on every model call (a length and a reference, no copy):
    the number of graph breaks recorded, and the newest frame-compile record (None before any)."""
    # torch._dynamo.utils.graph_break_reasons (2.0+): one GraphCompileReason per graph break, in order;
    # cleared by torch._dynamo.reset(). The only place Dynamo keeps a break's user frames (counters: the text).
    # torch._dynamo.utils._compilation_metrics (2.2+): a deque of CompilationMetrics, one per frame Dynamo
    # compiled (recompile_reason 2.5+), the last 64; get_compilation_metrics() copies it.
    from torch._dynamo import utils

    q = getattr(utils, "_compilation_metrics", None)
    if q is None:
        q = utils.get_compilation_metrics() if hasattr(utils, "get_compilation_metrics") else ()
    return len(getattr(utils, "graph_break_reasons", ())), (q[-1] if q else None)


def graph_break_records(start: int) -> list[tuple[str, list[Any]]]:
    """(reason, user frames as traceback.FrameSummary, outermost first) of the breaks from ``start`` on."""
    from torch._dynamo import utils

    return [(str(r.reason), list(getattr(r, "user_stack", None) or ())) for r in getattr(utils, "graph_break_reasons", ())[start:]]


def frame_compiles_since(mark: Any) -> list[dict[str, Any]]:
    """The frame compiles Dynamo recorded after ``mark`` (all it keeps when ``mark`` was dropped), as plain
    dicts: id, co_name, recompile_reason, graph_ops, fail_type, fail_reason. Backward and runtime entries skipped."""
    from torch._dynamo import utils

    got = list(utils.get_compilation_metrics()) if hasattr(utils, "get_compilation_metrics") else []
    at = next((i for i in range(len(got) - 1, -1, -1) if got[i] is mark), -1) if mark is not None else -1
    keys = ("co_name", "recompile_reason", "fail_type", "fail_reason")
    return [{"id": str(getattr(m, "compile_id", "")), "graph_ops": getattr(m, "graph_op_count", None) or 0,
             **{k: getattr(m, k, None) for k in keys}} for m in got[at + 1:]
            if getattr(m, "is_forward", True) is not False and not getattr(m, "is_runtime", False)]


def dynamo_config(name: str) -> Any:
    # torch._dynamo.config values the advisor names (specialize_float, allow_unspec_int_on_nn_module,
    # recompile_limit, capture_scalar_outputs: 2.11 and 2.13); None where a version lacks one.
    return getattr(torch._dynamo.config, name, None)


def dynamo_config_name(name: str) -> str | None:
    """The dotted name a user sets for a Dynamo option (advice text), or None where this torch lacks it."""
    return f"torch._dynamo.config.{name}" if hasattr(torch._dynamo.config, name) else None


# -- Dynamo's control-flow exceptions ------------------------------------------------------------
def _dynamo_signals() -> tuple[type, ...]:
    # torch._dynamo.exc.RestartAnalysis (its subclasses: TensorifyScalarRestartAnalysis, Speculation-,
    # Unspecialize-, ...) and SkipFrame (2.0+) are how Dynamo steers its own trace: the tensorify pass
    # inside Inductor's compile raises TensorifyScalarRestartAnalysis to make Dynamo trace the frame again
    # with a Python float specialized. A backend must let them through untouched.
    from torch._dynamo import exc

    return tuple(k for k in (getattr(exc, "RestartAnalysis", None), getattr(exc, "SkipFrame", None)) if k is not None)


def dynamo_signal(error: BaseException) -> BaseException | None:
    """The Dynamo control-flow exception in ``error``'s chain (itself, its cause or context, or an
    Inductor error's ``inner_exception``), or None when ``error`` is a real failure."""
    kinds = _dynamo_signals()
    return next((e for e in exception_chain(error) if isinstance(e, kinds)), None)


def placeholder_source(ph: Any) -> str:
    """The Dynamo source a graph input was read from (``L['kwargs']['past_key_values'].layers[0].keys``):
    ``node.meta['grapharg'].source.name`` (GraphArg, 2.0+; ``name`` a method before 2.10, a cached
    property since), or "" where Dynamo recorded none (a graph made without Dynamo)."""
    source = getattr(ph.meta.get("grapharg"), "source", None)
    name = getattr(source, "name", None)
    if callable(name):
        name = name()
    return name if isinstance(name, str) else ""


# -- Runtime profiles (bench/profile.py, bench/peaks.py) -----------------------------------------
def kernel_profile_options() -> dict[str, Any]:
    """Inductor options of a CPU profiling build: ``cpp.enable_kernel_profile`` (2.0+; in 2.11 and 2.13)
    puts a profiler range named after each generated C++ kernel (``graph_<n>_cpp_fused_relu_0``) around
    its call; without it the profiler sees none of them. Never in a production build: a range per call."""
    from torch._inductor import config

    return {"cpp.enable_kernel_profile": True} if hasattr(config.cpp, "enable_kernel_profile") else {}


def datasheet_dense_tflops(device_name: str, dtype: torch.dtype) -> float | None:
    """A GPU's dense TFLOP/s for ``dtype`` from torch's device table (torch._inductor.analysis.device_info,
    2.8+), matched by the longest table name that ``device_name`` begins with ("NVIDIA H100" for "NVIDIA
    H100 80GB HBM3"). Since Hopper the datasheets give tensor-core TFLOP/s with 2:4 sparsity; a table that
    says so (``tops_sparsity_factor``, newer torch) is divided by it, and one that cannot say (2.11's) is
    not trusted: None, and the caller measures a matmul instead."""
    try:
        from torch._inductor.analysis import device_info
    except ImportError:
        return None
    table = getattr(device_info, "_device_mapping", {})
    name = device_name.upper()
    keys = sorted((k for k in table if name.startswith(k.upper())), key=len, reverse=True)
    if not keys:
        return None
    info = table[keys[0]]
    factor = getattr(info, "tops_sparsity_factor", None)
    tops = info.tops.get(dtype)
    return None if factor is None or tops is None else float(tops) / factor
