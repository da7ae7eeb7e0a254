"""Artifacts persist: a fresh process with the same cache dir compiles nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, sys, torch
import vexplore as vx
from vexplore.models import ToyLlama
torch.manual_seed(0)
m = ToyLlama(layers=4).eval()
x, = m.example_inputs(16)
cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=["vexplore::attention"],
                                    cache=vx.CacheConfig(dir=sys.argv[1])))
with torch.no_grad():
    out = cm(x)
    err = (out - m(x)).abs().max().item()
r = cm.report
keys = [p.unique_key for p in r.pieces]
print(json.dumps({"counters": r.counters, "keys": keys, "tiers": [p.cache for p in r.pieces],
                  "err": err, "pid": __import__("os").getpid()}))
"""


def _run(cache_dir: str) -> dict:
    env = dict(os.environ)
    res = subprocess.run([sys.executable, "-c", SCRIPT, cache_dir], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_fresh_process_loads_every_unique_piece_from_disk(tmp_path):
    d = str(tmp_path / "vxcache")
    cold = _run(d)
    warm = _run(d)
    assert cold["pid"] != warm["pid"]
    assert cold["counters"]["inductor_compiles"] == 3 and cold["counters"]["cache_misses"] == 3
    assert warm["counters"]["inductor_compiles"] == 0
    assert warm["counters"]["cache_hits_disk"] == 3 and warm["counters"]["cache_misses"] == 0
    assert warm["keys"] == cold["keys"]  # keys are equal across processes
    assert [t for t in warm["tiers"] if t] == ["disk"] * 5
    assert warm["err"] < 1e-4 and cold["err"] < 1e-4
    files = [f for _, _, fs in os.walk(d) for f in fs if f.endswith(".vxa")]
    assert len(files) == 3
    mode = os.stat(d).st_mode & 0o777
    assert mode == 0o700
