"""The remote tier through vx.compile on a real redis-server, and 4 processes sharing one dir."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import vexplore as vx
from vexplore.cache.disk import DiskTier
from vexplore.cache.remote import sign

from cachehelp import artifact_paths
from conftest import compile_toy

pytestmark = pytest.mark.slow
ALL = ("memory", "disk", "remote")


def rcfg(d, url, **kw) -> vx.CacheConfig:
    return vx.CacheConfig(tiers=ALL, dir=str(d), remote_url=url, remote_prefix="e2e:", **kw)


def test_a_second_machine_loads_what_the_first_compiled(redis_server, cache_secret, tmp_path):
    a = compile_toy(rcfg(tmp_path / "a", redis_server.url))
    ca = a.counters
    assert (ca["cache_misses"], ca["cache_misses_remote"], ca["inductor_compiles"]) == (3, 3, 3)
    assert ca["cache_bytes_written_remote"] > ca["cache_bytes_written_disk"] > 0   # signed: 36 bytes more each
    assert ca["cache_bytes_written_remote"] - ca["cache_bytes_written_disk"] == 3 * 36
    s = vx.Session()                                     # machine B: empty memory, empty disk
    b = compile_toy(rcfg(tmp_path / "b", redis_server.url), s)
    cb = b.counters
    assert (cb["cache_hits_remote"], cb["cache_misses"], cb["inductor_compiles"], cb["cache_rejected"]) == (3, 0, 0, 0)
    assert (cb["cache_misses_memory"], cb["cache_misses_disk"], cb["cache_misses_remote"]) == (3, 3, 0)
    assert cb["cache_bytes_read_remote"] == cb["cache_bytes_read"] > 0
    assert cb["cache_bytes_written_disk"] == ca["cache_bytes_written_disk"]        # the hit filled B's disk
    assert len(artifact_paths(tmp_path / "b")) == 3
    assert compile_toy(rcfg(tmp_path / "b", redis_server.url), s).counters["cache_hits_memory"] == 3
    assert compile_toy(rcfg(tmp_path / "b", redis_server.url)).counters["cache_hits_disk"] == 3


def test_unsigned_wrongly_signed_and_damaged_values_are_recompiled(redis_server, cache_secret, tmp_path, caplog):
    compile_toy(rcfg(tmp_path / "a", redis_server.url))
    c = redis_server.client()
    names = sorted(n.decode() for n in c.keys("e2e:art:*"))
    v0, v1, v2 = (c.get(n) for n in names)
    c.set(names[0], v0[36:])                                                   # signature stripped
    c.set(names[1], sign(b"someone-elses-secret-0123456789ab", names[1], v1[36:]))  # another secret
    c.set(names[2], v2[:-1] + bytes([v2[-1] ^ 0x10]))                           # one bit flipped
    b = compile_toy(rcfg(tmp_path / "b", redis_server.url))
    cb = b.counters
    assert (cb["cache_hits_remote"], cb["cache_misses"], cb["inductor_compiles"]) == (0, 3, 3)
    assert (cb["cache_rejected"], cb["cache_rejected_remote"]) == (3, 3)
    reasons = " ".join(p.miss_reasons[0] for p in b.unique_pieces)
    assert reasons.count("refused (unsigned value)") == 1 and reasons.count("refused (wrong signature") == 2
    # the recompile overwrote them: a third machine gets remote hits
    assert compile_toy(rcfg(tmp_path / "c", redis_server.url)).counters["cache_hits_remote"] == 3


def test_redis_dying_mid_run_degrades_with_one_warning(redis_server, cache_secret, tmp_path):
    s = vx.Session()
    killed = []

    def kill_on_first_load(ev):
        if ev.step == "load" and not killed:
            redis_server.kill()
            killed.append(ev)
    s.monitor.subscribe(kill_on_first_load)
    with pytest.warns(vx.cache.VexploreCacheWarning, match="remote cache .* unavailable") as w:
        rep = compile_toy(rcfg(tmp_path / "a", redis_server.url, remote_timeout_s=0.3), s)
    assert len(w) == 1 and killed
    c = rep.counters
    assert (c["cache_misses"], c["cache_misses_remote"], c["inductor_compiles"]) == (3, 3, 3)
    assert c["cache_bytes_written_remote"] == 0 and c["cache_bytes_written_disk"] > 0
    assert s.remote_tier(rcfg(tmp_path / "a", redis_server.url)).outages == 1
    assert compile_toy(rcfg(tmp_path / "a", redis_server.url), vx.Session()).counters["cache_hits_disk"] == 3


CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import vexplore as vx
from conftest import compile_toy
rep = compile_toy(vx.CacheConfig(dir={root!r}))
print(json.dumps(rep.counters))
"""


def test_four_processes_compiling_the_same_model_into_one_dir(tmp_path):
    root = tmp_path / "vx"
    code = CHILD.format(here=str(Path(__file__).parent), root=str(root))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e[-2000:] for _, e in outs]
    for out, _ in outs:
        c = json.loads(out.strip().splitlines()[-1])
        assert c["cache_misses"] + c["cache_hits_disk"] == 3 and c["inductor_compiles"] == c["cache_misses"]
        assert c["cache_rejected"] == 0
    v = DiskTier(root).verify()
    assert (v.checked, v.files, v.remaining_entries) == (3, (), 3)
    rep = compile_toy(vx.CacheConfig(dir=str(root)))
    assert (rep.counters["cache_hits_disk"], rep.counters["cache_rejected"]) == (3, 0)
