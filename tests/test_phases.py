"""report.phases (the wall time split by phase, from events and torch's compile-time metrics) and
report.to_chrome_trace: real compiles of tiny models, plus the splitting rules on made-up events."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import vexplore as vx
from models import Stack
from vexplore.monitor.events import CompileEvent
from vexplore.monitor.phases import PHASES, derive_phases, event_phases, inductor_cache_hit, owned
from vexplore.monitor.report import CompileReport

HERE = os.path.dirname(os.path.abspath(__file__))


def _cfg(cache_cfg, **kw) -> vx.CompileConfig:
    return vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], cache=cache_cfg, **kw)


def _adds_up(rep: CompileReport) -> None:
    """Every phase named, none negative, the sum within 5 % of the wall and ``other`` at most 15 % of it."""
    ph = rep.phases
    assert list(ph) == list(PHASES) and all(v >= 0 for v in ph.values()), ph
    assert sum(ph.values()) == pytest.approx(rep.wall_s, rel=0.05), (ph, rep.wall_s)
    assert ph["other"] <= 0.15 * rep.wall_s, (ph, rep.wall_s)


def _compiles_agree_with_inductor_cache(rep: CompileReport) -> None:
    """A compile Inductor's cache served is a cache load; one it missed lowered and built kernels."""
    compiles = [e for e in rep.events if e.step == "compile"]
    c = rep.counters
    assert c["fxgraph_cache_hits"] + c["fxgraph_cache_misses"] == c["inductor_compiles"] == len(compiles) > 0
    for e in compiles:
        parts = event_phases(e)
        if inductor_cache_hit(e):
            assert "aot_lowering" not in parts and parts.get("cache_load", 0) > 0, (e, parts)
        else:
            assert parts.get("aot_lowering", 0) > 0 and "kernel_compile" in parts, (e, parts)


def test_cold_warm_and_recompile_add_up_to_the_wall(cache_cfg, session):
    torch.manual_seed(0)
    m, x = Stack(layers=2).eval(), torch.randn(8, 16)
    cm = vx.compile(m, _cfg(cache_cfg), session=session)
    with torch.no_grad():
        cm(x)
    cold = cm.report
    _adds_up(cold)
    assert cold.phases["dynamo"] > 0 and cold.phases["first_run"] > 0 and cold.phases["vexplore"] > 0
    _compiles_agree_with_inductor_cache(cold)
    assert [e.step for e in cold.events].count("dynamo_trace") == 1 and cold.events[0].step == "dynamo_trace"

    warm_cm = vx.compile(m, _cfg(cache_cfg), session=vx.Session())   # a fresh Session: the disk tier serves it
    with torch.no_grad():
        torch.testing.assert_close(warm_cm(x), m(x))
    warm = warm_cm.report
    _adds_up(warm)
    assert warm.counters["cache_hits_disk"] == warm.counters["unique_pieces"] > 0
    assert warm.counters["inductor_compiles"] == 0 and warm.phases["cache_load"] > 0
    assert warm.phases["aot_lowering"] == warm.phases["inductor_startup"] == 0   # start-up was paid by `cold`

    again = warm_cm.recompile(strategy="full")
    _adds_up(again)
    assert again.phases["dynamo"] == again.phases["first_run"] == 0   # no trace, nothing run yet
    assert again.counters["inductor_compiles"] == 1
    _compiles_agree_with_inductor_cache(again)
    assert sum(again.phases[p] for p in ("aot_lowering", "kernel_compile", "cache_load")) > 0


_FRESH_PROCESS = textwrap.dedent("""
    import json, sys, tempfile
    sys.path.insert(0, sys.argv[1])
    import torch, vexplore as vx
    from models import Stack
    out = []
    for seed in (0, 1):   # two models, two fresh vexplore caches: both compile with Inductor
        torch.manual_seed(seed)
        m = Stack(layers=2).eval()
        cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"],
                               cache=vx.CacheConfig(dir=tempfile.mkdtemp()))
        cm = vx.compile(m, cfg, session=vx.Session())
        with torch.no_grad():
            cm(torch.randn(8, 16))
        rep = cm.report
        starts = [e.to_dict() for e in rep.events if e.step == "inductor_startup"]
        out.append({"phases": rep.phases, "wall_s": rep.wall_s, "starts": starts,
                    "compiles": rep.counters["inductor_compiles"]})
    print("PHASES=" + json.dumps(out))
""")


def test_inductor_startup_is_charged_once_per_process():
    """In a fresh process the first compile pays Inductor's start-up (as an event of its own, inside
    the compile that paid it), and the second pays none."""
    res = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, HERE], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    first, second = json.loads(res.stdout.split("PHASES=", 1)[1])
    assert first["compiles"] > 0 and second["compiles"] > 0
    assert first["phases"]["inductor_startup"] > 0 and len(first["starts"]) == 1
    assert "imports" in first["starts"][0]["detail"] and first["starts"][0]["piece"] is not None
    assert second["phases"]["inductor_startup"] == 0 and second["starts"] == []
    for rep in (first, second):
        assert sum(rep["phases"].values()) == pytest.approx(rep["wall_s"], rel=0.05)
        assert rep["phases"]["other"] <= 0.15 * rep["wall_s"]


@pytest.fixture
def wsession():
    s = vx.Session()
    yield s
    s.close()


def test_chrome_trace_has_a_track_per_phase_and_per_worker(cache_cfg, wsession, tmp_path):
    torch.manual_seed(0)
    m, x = Stack(layers=2).eval(), torch.randn(8, 16)
    cm = vx.compile(m, _cfg(cache_cfg, workers=1), session=wsession)
    with torch.no_grad():
        cm(x)
    rep = cm.report
    _adds_up(rep)
    assert rep.phases["worker_compile"] > 0
    pids = {int(p.compiled_in.split()[-1]) for p in rep.unique_pieces}
    assert len(pids) == 1 and os.getpid() not in pids

    path = rep.to_chrome_trace(tmp_path / "t" / "compile.trace.json")
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    assert all(e["ph"] in ("X", "M") for e in events)
    assert all(e["dur"] >= 0 and e["ts"] >= 0 and {"pid", "tid", "name"} <= set(e) for e in events if e["ph"] == "X")
    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    (pid,) = pids
    assert processes[pid] == f"compile worker pid {pid}" and len(processes) == 2
    jobs = [e for e in events if e["ph"] == "X" and e["pid"] == pid]
    assert len(jobs) == rep.counters["worker_compiles"] == len(rep.unique_pieces)
    for phase, seconds in rep.phases.items():   # each phase's track holds exactly its time
        track = [k for k, name in threads.items() if name == f"phase: {phase}"]
        on_track = sum(e["dur"] for e in events if e["ph"] == "X" and (e["pid"], e["tid"]) in track) / 1e6
        assert on_track == pytest.approx(seconds, abs=1e-4), phase
        assert (seconds > 1e-3) <= bool(track) <= (seconds > 0), phase


# -- the rules, on made-up events ---------------------------------------------------------------

def _ev(step: str, start: float, duration: float, **kw) -> CompileEvent:
    return CompileEvent(step, start, duration, **kw)


def test_a_miss_is_split_by_torch_metrics_and_nested_startup_counts_once():
    torch_s = {"startup_s": 1.0, "startup_pch_s": 0.2, "module_load_s": 1.0, "kernel_wait_s": 0.9}
    miss = _ev("compile", 1.5, 2.5, piece=0, torch_s=torch_s, counts={"fxgraph_cache_misses": 1})
    events = (_ev("dynamo_trace", 0, 1), miss, _ev("inductor_startup", 1.5, 1.0, piece=0), _ev("store", 4, 0.1),
              _ev("graph", 1, 4), _ev("run", 5.2, 0.3))
    assert event_phases(miss) == pytest.approx({"inductor_startup": 0.2, "kernel_compile": 0.8, "aot_lowering": 0.5})
    ph = derive_phases(events, 6.0)
    assert ph == pytest.approx({"dynamo": 1.0, "inductor_startup": 1.2, "aot_lowering": 0.5, "kernel_compile": 0.8,
                                "cache_load": 0.0, "worker_compile": 0.0, "cudagraph_capture": 0.0,
                                "vexplore": 1.5, "first_run": 0.3, "other": 0.7})
    hit = _ev("compile", 0, 1.0, torch_s={"module_load_s": 0.3, "kernel_wait_s": 0.25, "inductor_load_s": 0.3},
              counts={"fxgraph_cache_hits": 1, "aot_autograd_cache_hits": 1})
    assert inductor_cache_hit(hit) and event_phases(hit) == pytest.approx({"kernel_compile": 0.25, "cache_load": 0.75})


def test_overlapping_worker_jobs_are_counted_once():
    events = (_ev("workers", 1, 3), _ev("compile", 1.1, 1.9, worker=41), _ev("compile", 1.2, 2.3, worker=42),
              _ev("load", 3.0, 0.2, worker=41), _ev("graph", 0.5, 3.6))
    mine = [sum(b - a for a, b in segs) for segs in owned(events)]
    assert sum(mine) == pytest.approx(3.6) and mine[3] == pytest.approx(0.2)
    ph = derive_phases(events, 4.5)
    assert ph["worker_compile"] == pytest.approx(3.0) and ph["vexplore"] == pytest.approx(0.6)
    assert ph["other"] == pytest.approx(0.9)


def test_phases_survive_a_save_and_an_older_file_gets_them_derived(tmp_path):
    events = (_ev("dynamo_trace", 0, 1), _ev("load", 1, 0.5, tier="disk", piece=0))
    rep = CompileReport((), events, {}, "full", "", {}, 2.0, phases=derive_phases(events, 2.0))
    loaded = vx.load_report(rep.save(tmp_path / "r.json"))
    assert loaded.phases == rep.phases and loaded.phases["cache_load"] == 0.5
    d = rep.to_dict()
    del d["phases"]
    assert CompileReport.from_dict(d).phases == rep.phases
