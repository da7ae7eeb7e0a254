"""vx.tune on a real local Ray cluster (2 CPUs, started by the test and stopped after it): CPU trials as Ray
tasks, a worker process killed in the middle of a trial (Ray retries the task: nothing is lost), and the same
configs tried with the same outcomes as the local executor. Skipped without Ray (pip install 'vexplore[ray]')."""
from __future__ import annotations

import json
import os
import signal
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
TASK = "ray::run_shipped"   # the process title Ray gives a worker while it runs a trial


@pytest.fixture
def cluster(monkeypatch):
    """A local Ray cluster of our own: the raylet and its workers inherit PYTHONPATH (so they import the tests'
    models) and the run's cache dirs."""
    here = os.path.dirname(os.path.abspath(__file__))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    ex = vx.RayExecutor(address="local", init={"num_cpus": 2, "include_dashboard": False})
    yield ex
    ex.shutdown()
    assert not ray.is_initialized()


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
    remote = vx.tune(cm, xs, space=vx.TuneSpace(SPACE), budget_s=300, bench=bench, executor=cluster)
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
