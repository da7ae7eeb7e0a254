"""vx.tune on a real local Ray cluster (2 CPUs, started once for the module and stopped after it): CPU trials as
Ray tasks, a worker process killed in the middle of a trial (Ray retries the task: nothing is lost), the same
configs tried with the same outcomes as the local executor, and trials sharing compiled pieces through a real
redis-server (the remote tier). Skipped without Ray (pip install 'vexplore[ray]')."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import torch

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

import vexplore as vx  # noqa: E402
from models import Stack  # noqa: E402
from vexplore.advise.tuneexec import LocalExecutor  # noqa: E402

SIZES = (8, 32)
SPACE = {"inductor_options.cpp.inject_relu_bug_TESTING_ONLY": (None, "compile_error", "accuracy"),
         "strategy": ("piecewise", "full")}
TASK = "ray::run_trial"   # the process title Ray gives a worker while it runs a trial


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of our own, started once through a RayExecutor (its "local" address) and stopped by
    it: the raylet and its workers inherit PYTHONPATH (so they import the tests' models), the run's cache dirs
    and a signing secret for the remote tier. Each test hands vx.tune an executor of its own (address None: it
    finds this cluster)."""
    here = os.path.dirname(os.path.abspath(__file__))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        mp.setenv("VEXPLORE_CACHE_KEY", secrets.token_hex(32))
        mp.delenv("VEXPLORE_REDIS_PASSWORD", raising=False)
        owner = vx.RayExecutor(address="local", init={"num_cpus": 2, "include_dashboard": False})
        owner._connect()
        yield owner
        owner.shutdown()
        assert not ray.is_initialized()


@pytest.fixture(scope="module")
def redis_url():
    """A redis-server on a free loopback port for the module (the remote tier's Redis), stopped after it."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    redis = pytest.importorskip("redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--loglevel", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


class Killer(threading.Thread):
    """Kills (SIGKILL) the first Ray worker process seen running a trial, once; only our own descendants."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.killed: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.is_set() and self.killed is None:
            for p in me.children(recursive=True):
                try:
                    running = " ".join(p.cmdline()).startswith(TASK)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                if running:
                    time.sleep(0.5)   # into the trial: importing, tracing or compiling
                    os.kill(p.pid, signal.SIGKILL)
                    self.killed = p.pid
                    return
            time.sleep(0.05)


def _outcomes(r: vx.TuneResult) -> dict[str, str]:
    """diff -> status, the measured ones (ok / worse / pruned: a matter of timing) as "measured"."""
    return {json.dumps(t.diff, sort_keys=True): "measured" if t.status in ("ok", "worse", "pruned") else t.status
            for t in r.trials}


@pytest.mark.slow
def test_ray_trials_survive_a_killed_worker_and_match_local(cluster, session):
    torch.manual_seed(0)
    m = Stack(layers=1).eval()
    xs = {n: (torch.randn(n, 16),) for n in SIZES}
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], fallback=False),
                    session=session)
    with torch.no_grad():
        cm(*xs[8])
    bench = vx.BenchOptions(budget_s=0.2, warmup=1)
    local = vx.tune(cm, xs, space=vx.TuneSpace(SPACE), budget_s=300, bench=bench, executor=LocalExecutor(workers=0))
    killer = Killer()
    killer.start()
    t0 = time.perf_counter()
    remote = vx.tune(cm, xs, space=vx.TuneSpace(SPACE), budget_s=300, bench=bench, executor=vx.RayExecutor())
    took = time.perf_counter() - t0
    killer.stop.set()
    print(f"\nRay tune: {len(remote.trials)} trials in {took:.1f} s, worker pid {killer.killed} killed mid-trial")
    print(remote.table())
    assert killer.killed is not None, "no trial was seen running"
    assert not psutil.pid_exists(killer.killed) or psutil.Process(killer.killed).status() == psutil.STATUS_ZOMBIE
    # nothing lost: every config tried on both, with the same outcome (the killed trial was retried by Ray)
    assert len(remote.trials) == len(local.trials) == 6 and "exhausted" in remote.stopped
    assert _outcomes(remote) == _outcomes(local)
    assert sorted(_outcomes(remote).values()) == ["crashed", "crashed", "failed-accuracy", "failed-accuracy",
                                                  "measured", "measured"]
    assert all(t.where.startswith("ray ") for t in remote.trials)
    assert all("C++ compile error" in t.error or "CppCompileError" in t.error
               for t in remote.trials if t.status == "crashed")
    assert remote.executor == "ray" and remote.best.inductor_options == {} and cm.config == local.start
    assert set(remote.improvement) == set(SIZES)   # re-measured here, in the notebook's process


@pytest.mark.slow
def test_ray_trials_share_pieces_through_redis(cluster, redis_url, session):
    """Two trials, one after the other (on whichever worker Ray picks; each trial has a Session of its own, so
    nothing is shared in memory): the start compiles the 2 unique pieces and writes them to Redis; the next
    (compile_sizes (8,)) reads those 2 general pieces from Redis and compiles only its 2 size-8 pieces."""
    torch.manual_seed(0)
    m = Stack(layers=1).eval()   # 3 pieces cut at vxtest::mix: 2 compiled, 2 unique
    xs = {n: (torch.randn(n, 16),) for n in SIZES}
    start = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], cache=vx.CacheConfig(tiers=("memory",)))
    cm = vx.compile(m, start, session=session)
    with torch.no_grad():
        cm(*xs[8])
    ex = vx.RayExecutor(remote_url=redis_url, max_in_flight=1)
    r = vx.tune(cm, xs, space=vx.TuneSpace({"compile_sizes": ((), (8,))}), budget_s=300,
                bench=vx.BenchOptions(budget_s=0.2, warmup=1), executor=ex)
    print("\n" + r.table())
    assert [t.diff for t in r.trials] == [{}, {"compile_sizes": [8]}] and all(t.where.startswith("ray ") for t in r.trials)
    keys = ("cache_misses", "cache_hits_remote", "cache_hits_memory", "cache_hits_disk", "inductor_compiles")
    assert {k: ex.counters[0][k] for k in keys} == {"cache_misses": 2, "cache_hits_remote": 0, "cache_hits_memory": 0,
                                                    "cache_hits_disk": 0, "inductor_compiles": 2}
    assert {k: ex.counters[1][k] for k in keys} == {"cache_misses": 2, "cache_hits_remote": 2, "cache_hits_memory": 0,
                                                    "cache_hits_disk": 0, "inductor_compiles": 2}
    assert any(n.startswith(f"the trials read and write compiled pieces in the remote tier (Redis at {redis_url})")
               and "fails" not in n for n in r.notes), r.notes
    # the tier was the trials' own: the model's config and the configs the tune reports keep the start's tiers
    assert cm.config == start and r.best.cache == start.cache
    import redis
    assert len(redis.Redis.from_url(redis_url).keys("vexplore:art:*")) == 4   # 2 pieces general, 2 at size 8
