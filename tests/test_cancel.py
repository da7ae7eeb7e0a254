"""Cancel tokens: a compile's token (in its GraphContext) stops it between steps and pieces; the Session
hands tokens out and cancels the compiles in progress only. And Session.cache() is a getter: the tiers'
bounds change only when asked (a compile asks once, as it starts)."""
from __future__ import annotations

import threading

import pytest
import torch

import vexplore as vx
from vexplore.cache.memory import MemoryEntry
from vexplore.cancel import CancelToken
from vexplore.engine.build.pipeline import GraphContext, compile_graph
from vexplore.errors import CancelledError
from vexplore.models import ToyLlama
from vexplore.monitor.events import EventRecorder

ATTN = ["vexplore::attention"]
NO_CACHE = vx.CacheConfig(tiers=())


def run(cm, *inputs):
    with torch.no_grad():
        return cm(*inputs)


def traced(session, layers=1, **kw):
    """A toy Llama of ``layers`` layers, called once with the eager compiler (its graph captured, cheaply)."""
    torch.manual_seed(0)
    m = ToyLlama(layers=layers).eval()
    inputs = m.example_inputs(8)
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=ATTN, compiler="eager", cache=NO_CACHE, **kw)
    cm = vx.compile(m, cfg, session=session)
    run(cm, *inputs)
    return m, cm, inputs


class Steps:
    """The events the session's monitor tells, and a cancel on the first event of step ``at``."""

    def __init__(self, session, at, cancel):
        self.events, self.at, self.cancel = [], at, cancel
        self.unsubscribe = session.monitor.subscribe(self.seen)

    def seen(self, ev):
        self.events.append(ev)
        if ev.step == self.at:
            self.cancel()

    def steps(self):
        return [e.step for e in self.events if e.step != "inductor_startup"]

    def count(self, name):
        return sum(e.counts.get(name, 0) for e in self.events)


@pytest.mark.slow
def test_a_cancel_token_stops_a_real_compile_between_pieces(session):
    model, cm, inputs = traced(session)
    graph, cfg = cm.graphs[0], cm.config.replace(compiler="inductor")
    assert [p.kind for p in cm.report.pieces] == ["compiled", "split_op", "compiled"]   # two unique pieces

    # the engine alone: the token in the context, cancelled when the first piece has compiled
    token = CancelToken()
    seen = Steps(session, "compile", token.cancel)
    rec = EventRecorder(session.monitor)
    with pytest.raises(CancelledError):
        compile_graph(graph, cfg, GraphContext(session.cache(NO_CACHE), rec, cancel=token))
    seen.unsubscribe()
    assert seen.steps() == ["strategy", "split", "fakeprop", "compile"]
    assert [e.piece for e in rec.events if e.step == "compile"] == [0] and seen.count("inductor_compiles") == 1

    # through the session, as the explorer's Cancel does it: the recompile stops after piece 0, the model
    # keeps its config, callables and report
    fn, reports = graph.runner.fn, list(cm.reports)
    seen = Steps(session, "compile", session.monitor.cancel)
    with pytest.raises(CancelledError):
        cm.recompile(compiler="inductor")
    seen.unsubscribe()
    assert seen.steps() == ["strategy", "split", "fakeprop", "compile"] and seen.count("inductor_compiles") == 1
    assert graph.runner.fn is fn and cm.config.compiler == "eager" and cm.reports == reports
    torch.testing.assert_close(run(cm, *inputs), model(*inputs))

    # the cancel belonged to that compile: the next compiles both pieces
    c = cm.recompile(compiler="inductor").counters
    assert (c["pieces"], c["unique_pieces"], c["inductor_compiles"], c["cache_misses"]) == (3, 2, 2, 0)
    torch.testing.assert_close(run(cm, *inputs), model(*inputs))


def test_a_cancel_reaches_the_compile_in_progress_only(session):
    model, cm, inputs = traced(session)
    session.cancel()                      # nothing in progress: nothing to stop, now or later
    session.monitor.cancel()
    assert cm.recompile(strategy="full").counters["pieces"] == 1

    before, reports = cm.graphs[0].runner.fn, list(cm.reports)
    seen = Steps(session, "split", session.monitor.cancel)     # stops before the step after split
    with pytest.raises(CancelledError, match="cancelled"):
        cm.recompile(strategy="piecewise")
    seen.unsubscribe()
    assert seen.steps() == ["strategy", "split"]
    assert cm.graphs[0].runner.fn is before and cm.config.strategy == "full" and cm.reports == reports
    assert cm.recompile(strategy="piecewise").counters["pieces"] == 3   # not cancelled
    torch.testing.assert_close(run(cm, *inputs), model(*inputs))


def test_a_cancelled_first_call_forgets_its_graph_and_the_next_call_traces_it_again(session):
    torch.manual_seed(0)
    m = ToyLlama(layers=1).eval()
    inputs = m.example_inputs(8)
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=ATTN, compiler="eager", cache=NO_CACHE),
                    session=session)
    seen = Steps(session, "split", session.cancel)
    with pytest.raises(CancelledError):
        run(cm, *inputs)
    seen.unsubscribe()
    assert cm.graphs == [] and all(e.graph is None for e in cm.report.events if e.step in ("strategy", "split"))
    assert cm.report.counters["graphs_seen"] == 0
    torch.testing.assert_close(run(cm, *inputs), m(*inputs))
    assert len(cm.graphs) == 1 and cm.report.counters["pieces"] == 3
    assert cm.recompile(strategy="full").counters["pieces"] == 1


def test_compiles_in_one_block_share_a_token_and_a_cancel_stops_the_next(session):
    """As advice.apply runs its compiles: a Cancel between them stops the one about to start."""
    _m, cm, _inputs = traced(session)
    with session.compiling() as outer:
        with session.compiling() as inner:
            assert inner is outer and not outer.cancelled
        session.cancel()
        with pytest.raises(CancelledError):
            cm.recompile(strategy="full")
    assert outer.cancelled and cm.config.strategy == "piecewise"
    with session.compiling() as fresh:
        assert fresh is not outer and not fresh.cancelled
    assert cm.recompile(strategy="full").counters["pieces"] == 1


def test_a_cancel_from_another_thread_reaches_every_compile_in_progress(session):
    ready, done = threading.Barrier(2), threading.Event()
    got = {}

    def other():
        with session.compiling() as token:
            got["other"] = token
            ready.wait()
            done.wait(10)

    t = threading.Thread(target=other)
    t.start()
    with session.compiling() as mine:
        ready.wait()
        assert got["other"] is not mine     # each thread's compile has its own token
        threading.Thread(target=session.monitor.cancel).start()
        for _ in range(1000):
            if mine.cancelled:
                break
            threading.Event().wait(0.01)
        assert mine.cancelled and got["other"].cancelled
        with pytest.raises(CancelledError):
            mine.check()
    done.set()
    t.join()
    vx.Session().monitor.cancel()           # a session with no compile: nothing happens


def test_a_monitor_of_its_own_cancels_nothing():
    from vexplore.monitor.events import Monitor

    Monitor().cancel()


def test_session_cache_does_not_resize_the_memory_tier_until_asked(tmp_path):
    s = vx.Session()
    for i in range(6):
        s.memory.put(f"d{i}", MemoryEntry(fn=lambda *a: a, nbytes=40))
    big = vx.CacheConfig(tiers=("memory", "disk"), dir=str(tmp_path), memory_entries=8, disk_max_bytes=10**9)
    small = vx.CacheConfig(tiers=("memory", "disk"), dir=str(tmp_path), memory_entries=2, memory_bytes=100,
                           disk_max_bytes=10**6)
    a, b = s.cache(big), s.cache(small)
    assert a.memory is b.memory is s.memory
    assert (s.memory.max_entries, s.memory.max_bytes, len(s.memory.keys()), s.memory.evictions) == (256, None, 6, 0)
    assert s.disk_tier(str(tmp_path)).max_bytes == 10**9    # made by the first getter, with its bound; kept
    s.resize_memory(4)
    assert (s.memory.max_entries, s.memory.max_bytes) == (4, None) and s.memory.keys() == ["d2", "d3", "d4", "d5"]
    s.set_bounds(small)
    assert (s.memory.max_entries, s.memory.max_bytes) == (2, 100) and s.memory.keys() == ["d4", "d5"]
    assert s.disk_tier(str(tmp_path)).max_bytes == 10**6
    s.cache(big)
    assert (s.memory.max_entries, s.memory.max_bytes, s.memory.evictions) == (2, 100, 4)


def test_a_compile_bounds_the_memory_tier_by_its_config_once(session, monkeypatch):
    sizes = []
    resize = session.resize_memory
    monkeypatch.setattr(session, "resize_memory", lambda *a: (sizes.append(a), resize(*a)))
    torch.manual_seed(0)
    m = ToyLlama(layers=2).eval()
    tiny = vx.CacheConfig(tiers=("memory",), memory_entries=3, memory_bytes=10**9)
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=ATTN, compiler="eager", cache=tiny),
                    session=session)
    run(cm, *m.example_inputs(8))
    assert sizes == [(3, 10**9)] and (session.memory.max_entries, session.memory.max_bytes) == (3, 10**9)
    cm.recompile(cache=vx.CacheConfig(tiers=("memory",), memory_entries=5))
    assert sizes == [(3, 10**9), (5, None)] and session.memory.max_entries == 5
