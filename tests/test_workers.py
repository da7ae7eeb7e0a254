"""Compile workers: real processes, their artifacts load and run; timeouts and crashes are isolated."""
from __future__ import annotations

import os

import pytest
import torch

import vexplore as vx
from models import Calls


@pytest.fixture
def wsession():
    s = vx.Session()
    yield s
    s.close()


def _cfg(cache_cfg, **kw):
    return vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], workers=2, cache=cache_cfg, **kw)


def test_workers_compile_in_other_processes(toy, cache_cfg, wsession):
    model, inputs = toy
    cm = vx.compile(model, vx.CompileConfig(strategy="piecewise", splitting_ops=["vexplore::attention"], workers=2,
                                            compile_sizes=[4], cache=cache_cfg), session=wsession)
    pids = wsession.worker_pool(2).pids
    assert os.getpid() not in pids and len(set(pids)) == 2
    with torch.no_grad():
        torch.testing.assert_close(cm(*inputs), model(*inputs))
        x4 = model.example_inputs(4, seed=3)
        torch.testing.assert_close(cm(*x4), model(*x4))
    c = cm.report.counters
    assert (c["worker_compiles"], c["inductor_compiles"], c["unique_pieces"], c["fallbacks"]) == (6, 6, 3, 0)
    used = {int(p.compiled_in.split()[-1]) for p in cm.report.pieces if p.compiled_in}
    assert used and used <= set(pids)
    # the workers' artifacts went to disk like any other: a recompile elsewhere loads them
    again = vx.compile(model, cm.config.replace(workers=0), session=vx.Session())
    with torch.no_grad():
        again(*inputs)
    assert again.report.counters["cache_hits_disk"] == 6 and again.report.counters["inductor_compiles"] == 0


def test_timeout_kills_the_worker(cache_cfg, wsession):
    m = Calls("slow").eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, _cfg(cache_cfg, compile_timeout_s=15), session=wsession)   # 8 s: the other piece once passed it on a loaded machine
    before = wsession.worker_pool(2).pids
    with pytest.warns(vx.VexploreFallbackWarning, match="timeout"), torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    p = cm.report.pieces[0]
    assert p.compiler == "eager" and p.fallback_reason.startswith("timeout: compile ran past compile_timeout_s=15")
    assert cm.report.counters["worker_timeout"] == 1 and cm.report.counters["fallbacks"] == 1
    assert cm.report.pieces[2].compiler == "inductor"   # the other piece compiled
    killed = int(p.compiled_in.split()[-1])
    assert killed in before and killed not in wsession.worker_pool(2).pids  # replaced


def test_crash_is_isolated(cache_cfg, wsession):
    m = Calls("crash").eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, _cfg(cache_cfg), session=wsession)
    with pytest.warns(vx.VexploreFallbackWarning, match="crashed"), torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    p = cm.report.pieces[0]
    assert p.compiler == "eager" and "died (signal 11)" in p.fallback_reason
    assert cm.report.counters["worker_crashed"] == 1
    assert len(wsession.worker_pool(2).pids) == 2 and all(w.proc.poll() is None for w in wsession.worker_pool(2).workers)


def test_ops_only_in_main_compile_in_process(cache_cfg, wsession):
    def local_op(x: torch.Tensor) -> torch.Tensor:
        return x * 3
    local_op.__module__ = "__main__"   # as if defined in a notebook cell
    op = torch.library.custom_op("vxtest::notebook_only", mutates_args=())(local_op)
    op.register_fake(lambda x: torch.empty_like(x))

    m = Calls("notebook_only").eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, _cfg(cache_cfg), session=wsession)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    p = cm.report.pieces[0]
    assert p.compiler == "inductor" and p.compiled_in.startswith("in-process: ")
    assert "__main__" in p.compiled_in
    assert cm.report.pieces[2].compiled_in.startswith("worker pid")


def test_workers_without_a_cache_compile_once(wsession):
    """With every tier off the worker's result is still used: no second compile in this process."""
    m = Calls("mix").eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, _cfg(vx.CacheConfig(tiers=())), session=wsession)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    c = cm.report.counters
    assert (c["worker_compiles"], c["inductor_compiles"], c["unique_pieces"]) == (2, 2, 2)
    assert not any(e.step == "load" and e.tier for e in cm.report.events)   # no tier to look up
    loads = [e for e in cm.report.events if e.step == "load"]
    assert len(loads) == 2 and all(e.detail.startswith("artifact from worker pid") for e in loads)
    # one compile event per worker job, from when its worker took it, for as long as it took there
    compiles = [e for e in cm.report.events if e.step == "compile"]
    assert len(compiles) == 2 and all(e.detail.startswith("worker pid") and e.duration_s > 0 for e in compiles)
    assert all(load.start_s >= c.start_s + c.duration_s for c, load in zip(compiles, sorted(loads, key=lambda e: e.start_s)))
    assert all(p.compiled_in.startswith("worker pid") for p in cm.report.pieces if p.kind == "compiled")


def test_a_process_that_ends_before_its_workers_start_prints_nothing(tmp_path):
    """A recompile with workers whose pieces all come from the cache starts the pool and needs no worker;
    the process ends while the worker still imports torch: the worker finds the pipe closed and leaves
    without a traceback on the user's terminal."""
    import subprocess
    import sys
    tests = os.path.dirname(__file__)
    code = (f"import sys; sys.path.insert(0, {tests!r})\n"
            "import torch, vexplore as vx\nfrom models import Stack\n"
            "m = Stack(layers=1).eval()\n"
            f"cfg = vx.CompileConfig(strategy='piecewise', splitting_ops=['vxtest::mix'], cache=vx.CacheConfig(dir={str(tmp_path)!r}))\n"
            "cm = vx.compile(m, cfg)\n"
            "with torch.no_grad():\n    cm(torch.randn(8, 16))\n"
            "rep = cm.recompile(cfg.replace(workers=1))\n"
            "assert rep.counters['worker_compiles'] == 0 and rep.counters['inductor_compiles'] == 0, rep.counters\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 0, res.stderr[-3000:]
    # the worker inherited the stderr pipe: run() returns once it has gone too, with what it wrote
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
