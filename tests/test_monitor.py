"""The monitor: periodic samples in a background thread, alerts and their callbacks."""
from __future__ import annotations

import dataclasses
import logging
import threading
import time

import pytest
import torch

import vexplore as vx
from vexplore.monitor.alerts import GROWTH_MB, memory_growth
from vexplore.monitor.sampler import Sample
from models import Stack

MiB = 2**20


def _threads() -> int:
    return sum(t.name == "vexplore-monitor" and t.is_alive() for t in threading.enumerate())


def _wait_for(cond, timeout_s: float = 30.0) -> None:
    """Poll ``cond`` (no timing is asserted: a slow machine only waits longer)."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_start_takes_the_first_sample_at_once_and_stop_ends_the_thread(session):
    m = session.monitor
    assert m.samples == [] and not m.sampling
    before = _threads()
    m.start(interval_s=3600.0)
    assert len(m.samples) == 1 and m.sampling and _threads() == before + 1
    s = m.samples[0]
    assert isinstance(s, Sample) and [f.name for f in dataclasses.fields(s)] == [
        "t", "rss_mb", "cpu_percent", "gpu_mem_mb", "disk_cache_mb", "compiles", "cache_hit_rate"]
    assert s.rss_mb > 0 and s.cpu_percent >= 0 and abs(s.t - time.time()) < 60
    assert (s.disk_cache_mb, s.compiles, s.cache_hit_rate) == (0.0, 0, None)
    # device memory once CUDA is in use in the process (earlier tests on a GPU machine), else None
    assert s.gpu_mem_mb is None if not torch.cuda.is_initialized() else s.gpu_mem_mb >= 0
    m.stop()
    assert not m.sampling and _threads() == before and len(m.samples) == 1
    m.stop()                                    # stopping twice is fine


def test_the_thread_samples_every_interval_until_the_session_closes(session):
    m = session.monitor
    before = _threads()
    m.start(interval_s=0.01)
    _wait_for(lambda: len(m.samples) >= 4)
    ts = [s.t for s in m.samples]
    assert ts == sorted(ts)
    session.close()
    assert not m.sampling and _threads() == before
    n = len(m.samples)
    time.sleep(0.05)
    assert len(m.samples) == n                  # nothing sampled after close


def test_start_again_restarts_with_the_new_interval(session):
    m = session.monitor
    before = _threads()
    m.start(interval_s=3600.0)
    m.start(interval_s=3600.0)
    assert len(m.samples) == 2 and _threads() == before + 1    # one thread, a first sample per start
    session.close()
    assert _threads() == before


@pytest.mark.parametrize("bad", [0, -1.0, "60", None, True, float("inf"), 1e10])
def test_start_refuses_a_bad_interval(session, bad):
    with pytest.raises(vx.ConfigError, match=r"monitor.start\(interval_s=.*must be a number of seconds > 0"):
        session.monitor.start(interval_s=bad)
    assert not session.monitor.sampling


@pytest.mark.parametrize("bad", [-1.0, "30", None, True])
def test_session_refuses_a_bad_cache_retry(bad):
    with pytest.raises(vx.ConfigError, match=r"Session\(cache_retry_s=.*a number >= 0"):
        vx.Session(cache_retry_s=bad)


def test_samples_count_compiles_cache_hits_and_the_disk_tier(cache_cfg, session):
    m = Stack(layers=1).eval()
    x = torch.randn(8, 16)
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], cache=cache_cfg)
    with torch.no_grad():
        vx.compile(m, cfg, session=session)(x)
        c1 = session.monitor.reports[-1].counters
        vx.compile(m, cfg, session=session)(x)     # same pieces: memory hits
        c2 = session.monitor.reports[-1].counters
    assert (c1["unique_pieces"], c1["cache_misses"], c2["cache_hits_memory"], c2["cache_misses"]) == (2, 2, 2, 0)
    s = session.monitor.sample()                   # also without start()
    assert s.compiles == c1["inductor_compiles"] + c2["inductor_compiles"]
    assert s.cache_hit_rate == 0.5                 # 2 hits of 4 lookups
    assert s.disk_cache_mb == c1["cache_bytes_written_disk"] / MiB > 0   # from the disk tier's index
    assert session.monitor.samples == [s]


def test_on_alert_calls_back_in_the_raising_thread_and_unsubscribes(session):
    got = []
    unsubscribe = session.monitor.on_alert(lambda a: got.append((a, threading.current_thread())))
    a = session.monitor.raise_alert("slow-compile", "warning", "piece 3 took 40 s")
    assert got == [(a, threading.current_thread())]
    assert (a.code, a.severity, a.message) == ("slow-compile", "warning", "piece 3 took 40 s")
    assert abs(a.t - time.time()) < 60 and str(a) == "[warning] slow-compile: piece 3 took 40 s"
    unsubscribe()
    b = session.monitor.raise_alert("recompile", "info", "x changed")
    assert len(got) == 1 and session.monitor.alerts == [a, b]


def test_a_failing_callback_is_logged_not_raised(session, caplog):
    got = []

    def broken(alert):
        raise RuntimeError("callback bug")
    session.monitor.on_alert(broken)
    session.monitor.on_alert(got.append)
    with caplog.at_level(logging.ERROR, logger="vexplore.monitor.alerts"):
        a = session.monitor.raise_alert("cache-failure", "critical", "disk gone")
    assert got == [a]                              # the next callback still ran
    (rec,) = [r for r in caplog.records if "alert callback" in r.getMessage()]
    assert rec.exc_info[0] is RuntimeError and "cache-failure" in rec.getMessage()


def test_raise_alert_refuses_an_unknown_severity(session):
    with pytest.raises(vx.VexploreError, match="severity must be one of info, warning, critical"):
        session.monitor.raise_alert("x", "fatal", "y")
    assert session.monitor.alerts == []


def test_memory_growth_needs_a_steady_climb():
    base = 1000.0
    climb = [base + i * 80 for i in range(5)]             # +320 MiB over 5 samples, each one higher
    assert "1000 -> 1320 MiB (+320 MiB)" in memory_growth(climb)
    assert memory_growth(climb[:4]) is None                # too few samples
    assert memory_growth(climb[:2] + [climb[1]] + climb[3:]) is None   # a flat step: not a climb
    assert memory_growth([base + i * (GROWTH_MB / 5) for i in range(5)]) is None   # under 256 MiB
    assert memory_growth([5000.0 + i * 80 for i in range(5)]) is None   # under 20 % of 5 GiB


def test_cudagraphs_asked_for_on_cpu_alert_at_compile(cache_cfg, session):
    m = Stack(layers=1).eval()
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], compiler="eager",
                           cudagraph="piecewise", cache=cache_cfg)
    with torch.no_grad():
        vx.compile(m, cfg, session=session)(torch.randn(8, 16))
    (a,) = session.monitor.alerts
    assert (a.code, a.severity) == ("cudagraph-skipped", "warning")
    assert "graph 0: runs without CUDA graphs: cudagraph=piecewise needs a CUDA device; the graph runs on cpu" in a.message


def test_alerts_name_the_model_and_report_that_raised_them(session):
    """A report's alert carries its model's id and the report's id (what an explorer filters by); a
    model's graph break carries the model's id; the session's own alerts carry none."""
    from models import Stack

    class Breaks(torch.nn.Module):
        def forward(self, x):
            x = x + 1
            torch._dynamo.graph_break()
            return x * 2

    cfg = vx.CompileConfig(compiler="eager", cudagraph="piecewise", cache=vx.CacheConfig(tiers=()))
    a, b = vx.compile(Stack().eval(), cfg, session=session), vx.compile(Breaks(), cfg, session=session)
    with torch.no_grad():
        a(torch.randn(4, 16))
        b(torch.randn(4, 16))
    assert a.id != b.id
    skipped = [x for x in session.monitor.alerts if x.code == "cudagraph-skipped"]
    assert {(x.model, x.report) for x in skipped} == {(a.id, a.report.id), (b.id, b.report.id)}
    assert all(x.message.startswith(f"report {x.report}:") for x in skipped)
    breaks = [x for x in session.monitor.alerts if x.code == "graph-break"]
    assert breaks and {(x.model, x.report) for x in breaks} == {(b.id, None)}
    assert session.monitor.raise_alert("cache-failure", "warning", "disk gone").model is None
