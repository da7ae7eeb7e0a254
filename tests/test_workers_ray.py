"""CompileConfig(workers="ray"): unique pieces compile as Ray tasks on a real local Ray cluster, which vexplore
starts itself (ray.init() finds no cluster here) and the module's Session stops at its end. The artifacts come
back and load here (eager is the oracle); a task that crashes or hangs costs its piece, never this process.
The config checks and the import checks run without Ray."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import vexplore as vx
from models import Calls, Stack

SPLIT = ["vxtest::mix"]


@pytest.fixture(scope="module")
def rsession():
    """One Session for the module: its RayPool starts a local Ray cluster once (on the machine's CPUs), and
    closing the Session stops it."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized() or os.environ.get("RAY_ADDRESS"):
        pytest.skip("these tests start their own local Ray cluster")
    s = vx.Session()
    yield s
    s.close()
    assert not ray.is_initialized()


def _cfg(cache: vx.CacheConfig, **kw) -> vx.CompileConfig:
    return vx.CompileConfig(strategy="piecewise", splitting_ops=SPLIT, workers="ray", cache=cache, **kw)


@pytest.mark.slow
def test_ray_tasks_compile_the_unique_pieces(rsession, cache_cfg):
    torch.manual_seed(0)
    m = Stack(layers=3).eval()   # 7 pieces: 4 compiled, 3 unique (the middle layers' pieces are the same)
    x = torch.randn(8, 16)
    cm = vx.compile(m, _cfg(cache_cfg), session=rsession)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    c = cm.report.counters
    assert (c["compiled_pieces"], c["unique_pieces"], c["worker_compiles"], c["inductor_compiles"]) == (4, 3, 3, 3)
    assert (c["fallbacks"], c["cache_misses"], c["worker_crashed"], c["worker_timeout"]) == (0, 3, 0, 0)
    pool = rsession.worker_pool("ray")
    where = [p.compiled_in for p in cm.report.pieces if p.kind == "compiled" and p.same_as is None]
    assert len(where) == 3 and all(w.startswith("ray node ") for w in where), where
    pids = {int(w.split()[-1]) for w in where}
    assert os.getpid() not in pids and pids <= set(pool.pids)
    assert [e.worker for e in cm.report.events if e.step == "compile"] and \
        {e.worker for e in cm.report.events if e.step == "compile"} == pids
    # the tasks' artifacts came back and went to disk like any other: a fresh session loads them
    again = vx.compile(m, cm.config.replace(workers=0), session=vx.Session())
    with torch.no_grad():
        torch.testing.assert_close(again(x), m(x))
    assert again.report.counters["cache_hits_disk"] == 3 and again.report.counters["inductor_compiles"] == 0


@pytest.mark.slow
def test_a_crashed_ray_task_costs_its_piece(rsession):
    m = Calls("crash").eval()   # its fake impl kills the process that traces it in a compile worker (SIGSEGV)
    x = torch.randn(8, 16)
    cm = vx.compile(m, _cfg(vx.CacheConfig(tiers=())), session=rsession)
    with pytest.warns(vx.VexploreFallbackWarning, match="crashed"), torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    p, other = cm.report.pieces[0], cm.report.pieces[2]
    assert p.compiler == "eager" and p.fallback_reason.startswith("crashed: the Ray worker died while compiling")
    assert p.compiled_in.startswith("ray ") and other.compiler == "inductor" and other.compiled_in.startswith("ray node ")
    c = cm.report.counters
    assert (c["worker_crashed"], c["worker_compiles"], c["fallbacks"]) == (1, 1, 1)


@pytest.mark.slow
def test_a_ray_task_past_the_timeout_is_cancelled(rsession):
    m = Calls("slow").eval()    # its fake impl sleeps 600 s in a compile worker
    x = torch.randn(8, 16)
    cm = vx.compile(m, _cfg(vx.CacheConfig(tiers=()), compile_timeout_s=8), session=rsession)
    with pytest.warns(vx.VexploreFallbackWarning, match="timeout"), torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    p = cm.report.pieces[0]
    assert p.compiler == "eager" and p.fallback_reason.startswith("timeout: compile ran past compile_timeout_s=8; "
                                                                  "its Ray task was cancelled")
    assert 8 <= p.compile_s < 60
    c = cm.report.counters
    assert (c["worker_timeout"], c["worker_compiles"], c["fallbacks"]) == (1, 1, 1)


@pytest.mark.parametrize("bad", ["Ray", "processes", -1, 1.5, True, None])
def test_workers_takes_a_count_or_ray(bad):
    with pytest.raises(vx.ConfigError, match=r"CompileConfig\.workers=.*or \"ray\""):
        vx.CompileConfig(workers=bad)
    assert vx.CompileConfig(workers="ray").replace(workers=2).workers == 2


BLOCK_RAY = r"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "ray":
            raise ImportError("no ray here")
sys.meta_path.insert(0, Block())
import torch, vexplore as vx
cfg = vx.CompileConfig(workers="ray", compiler="inductor")
assert "ray" not in sys.modules
try:
    vx.compile(torch.nn.Linear(4, 4), cfg)
except vx.ConfigError as e:
    print("REFUSED:", e)
"""


def test_workers_ray_without_ray_says_how_to_get_it():
    """A config naming "ray" imports nothing; a compile under it without Ray installed says what to install."""
    res = subprocess.run([sys.executable, "-c", BLOCK_RAY], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "REFUSED: CompileConfig(workers='ray') needs Ray: pip install 'vexplore[ray]'" in res.stdout
