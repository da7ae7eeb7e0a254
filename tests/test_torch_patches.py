"""The torch globals vexplore patches (engine/_torch_compat: compile_scope, captures_without_gc) are
replaced only while one compile, load or capture runs, under one process-wide lock, and put back after:
real compiles and loads from two threads at once, and the explorer's background recompile."""
from __future__ import annotations

import gc
import threading
import time

import pytest
import torch
import torch.fx as fx

import vexplore as vx
from models import Stack
from vexplore.engine import _torch_compat as tc
from vexplore.engine.build.compilers import InductorCompiler


def _patchable() -> dict[str, object]:
    """Every global vexplore patches, as it is now (the class's own entry for the hook)."""
    from torch._inductor import codecache
    from torch._inductor.fx_passes import joint_graph, post_grad
    from torch._inductor.graph import GraphLowering

    return {"GraphLowering.save_output_code": vars(GraphLowering)["save_output_code"],
            "codecache._precompile_header": codecache._precompile_header,
            "joint_graph.lazy_init": joint_graph.lazy_init, "post_grad.lazy_init": post_grad.lazy_init,
            "gc.collect": gc.collect, "torch.cuda.empty_cache": torch.cuda.empty_cache}


def _assert_restored(original: dict[str, object]) -> None:
    now = _patchable()
    assert all(now[k] is v for k, v in original.items()), {k: now[k] for k, v in original.items() if now[k] is not v}


class _Spans:
    """Records when each call of a torch function ran (and what the patched globals were inside it),
    sleeping in it so that two threads not kept apart would overlap."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float, str]] = []
        self.inside: list[dict[str, object]] = []
        self._lock = threading.Lock()

    def wrap(self, fn):
        def recorded(*args, **kwargs):
            t0 = time.perf_counter()
            time.sleep(0.3)
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.spans.append((t0, time.perf_counter(), threading.current_thread().name))
                    self.inside.append(_patchable())
        return recorded

    def assert_one_at_a_time(self, n: int) -> None:
        spans = sorted(self.spans)
        assert len(spans) == n, spans
        for (_, end, who), (start, _, nxt) in zip(spans, spans[1:]):
            assert end <= start, f"{who} ran until {end:.3f}, {nxt} began at {start:.3f}"


def _in_threads(*fns):
    """Run each fn in its own thread, all released at once; their results, in order (a failure re-raised)."""
    go = threading.Barrier(len(fns))
    out: list = [None] * len(fns)

    def run(i, fn):
        go.wait()
        try:
            out[i] = fn()
        except BaseException as e:   # re-raised below, in the test's thread
            out[i] = e
    threads = [threading.Thread(target=run, args=(i, fn), name=f"compiler-{i}") for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
        assert not t.is_alive(), "a compile thread hung"
    for r in out:
        if isinstance(r, BaseException):
            raise r
    return out


# torch.sin, not x.sin(): AOTAutograd's cache (what makes an artifact saveable) bypasses call_method nodes
GRAPHS = {"sin": lambda x: (torch.sin(x) * 2,), "cos": lambda x: (torch.cos(x) + 3,)}


def test_compiles_and_loads_from_two_threads_run_one_at_a_time(monkeypatch):
    original = _patchable()
    x = torch.randn(8, 4)
    spans = _Spans()
    monkeypatch.setattr(torch._inductor, "standalone_compile", spans.wrap(torch._inductor.standalone_compile))
    names = list(GRAPHS)
    traced = {n: fx.symbolic_trace(GRAPHS[n]) for n in names}   # here: fx.symbolic_trace keeps a global patcher
    outs = _in_threads(*(lambda n=n: InductorCompiler().compile(traced[n], [x], None) for n in names))
    spans.assert_one_at_a_time(2)
    _assert_restored(original)
    for inside in spans.inside:   # inside a compile, the hooks were in place
        assert inside["GraphLowering.save_output_code"] is not None
        assert all(getattr(inside[k], "_vexplore_timed", False) for k in ("codecache._precompile_header",
                                                                           "joint_graph.lazy_init", "post_grad.lazy_init"))
    for name, out in zip(names, outs):
        torch.testing.assert_close(out.fn(x)[0], GRAPHS[name](x)[0])
        other = next(n for n in names if n != name)
        assert out.code and name in out.code and other not in out.code   # each compile's code went to its own sink
        assert out.data is not None

    from torch._inductor import CompiledArtifact
    loads = _Spans()
    monkeypatch.setattr(CompiledArtifact, "load", staticmethod(loads.wrap(CompiledArtifact.load)))
    loaded = _in_threads(*(lambda o=o: InductorCompiler().load(o.data) for o in outs))
    loads.assert_one_at_a_time(2)
    monkeypatch.undo()
    _assert_restored(original)
    for name, (fn, code) in zip(names, loaded):
        torch.testing.assert_close(fn(x)[0], GRAPHS[name](x)[0])
        assert code is None or name in code


def test_background_recompiles_of_two_models_run_one_at_a_time(tmp_path, monkeypatch):
    """What the explorer does: recompile a compiled model in a background thread, here two at once.
    Each model caches in a dir of its own: the two graphs are alike, so with one dir the recompile that
    looks up after the other stored would load its artifact instead of compiling."""
    original = _patchable()
    x = torch.randn(8, 16)
    models, cms = [], []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = Stack(layers=1).eval()
        cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"],
                                            cache=vx.CacheConfig(dir=str(tmp_path / f"vx{seed}"))),
                        session=vx.Session())
        with torch.no_grad():
            torch.testing.assert_close(cm(x), m(x))
        models.append(m)
        cms.append(cm)
    _assert_restored(original)

    spans = _Spans()
    monkeypatch.setattr(torch._inductor, "standalone_compile", spans.wrap(torch._inductor.standalone_compile))
    reports = _in_threads(*(lambda cm=cm: cm.recompile(strategy="full") for cm in cms))
    spans.assert_one_at_a_time(2)
    monkeypatch.undo()
    _assert_restored(original)
    for m, cm, rep in zip(models, cms, reports):
        assert rep.counters["inductor_compiles"] == 1
        with torch.no_grad():
            torch.testing.assert_close(cm(x), m(x))


def test_captures_without_gc_patches_only_under_the_compile_lock():
    original = _patchable()
    held, seen = threading.Event(), {}

    def capture():
        with tc.captures_without_gc():
            seen["collect"], seen["empty"] = gc.collect, torch.cuda.empty_cache
            held.set()
            time.sleep(0.3)
            seen["released"] = time.perf_counter()

    t = threading.Thread(target=capture)
    t.start()
    assert held.wait(30)
    with tc.compile_scope():   # waits for the capture to end
        entered = time.perf_counter()
        # the capture's patches were put back before the lock was released
        assert gc.collect is original["gc.collect"] and torch.cuda.empty_cache is original["torch.cuda.empty_cache"]
    t.join(30)
    assert entered >= seen["released"]
    assert seen["collect"] is not original["gc.collect"] and seen["empty"] is not original["torch.cuda.empty_cache"]
    _assert_restored(original)


def test_nested_scopes_restore_and_time_inductors_lazy_startup():
    """Scopes nest (the ladder's compiles, a load inside a compile); the lazy start-up timing applies inside
    them (report.phases' inductor_startup) and nothing of it stays after."""
    from torch._dynamo.utils import compilation_time_metrics

    original = _patchable()
    x = torch.randn(8, 4)
    outer: list[str] = []
    timed_before = len(compilation_time_metrics.get(tc.STARTUP_KEY + ".pattern_init", []))   # earlier tests' calls
    with tc.compile_scope(outer):
        timed = _patchable()
        assert timed["post_grad.lazy_init"] is not original["post_grad.lazy_init"]
        with tc.compile_scope():
            assert _patchable() == timed   # not wrapped twice
        out = InductorCompiler(options={"fx_graph_cache": False}).compile(fx.symbolic_trace(GRAPHS["sin"]), [x], None)
        assert _patchable() == timed
    _assert_restored(original)
    assert out.code and outer == []   # the inner compile's code went to its own sink only
    # the post-grad passes ran inside the scope, timed (a call each, cached or not)
    assert len(compilation_time_metrics.get(tc.STARTUP_KEY + ".pattern_init", [])) > timed_before
    torch.testing.assert_close(out.fn(x)[0], GRAPHS["sin"](x)[0])


@pytest.mark.parametrize("fails_in", ["compile", "load"])
def test_a_failing_compile_or_load_restores_everything(fails_in):
    original = _patchable()
    with pytest.raises(Exception):
        if fails_in == "compile":
            InductorCompiler(options={"no_such_inductor_option": 1}).compile(
                fx.symbolic_trace(GRAPHS["cos"]), [torch.randn(4)], None)
        else:
            InductorCompiler().load(b"not an artifact")
    _assert_restored(original)
    done = threading.Event()

    def take() -> None:
        with tc.compile_lock():
            done.set()
    threading.Thread(target=take).start()
    assert done.wait(30)   # the lock was released: another thread takes it at once
