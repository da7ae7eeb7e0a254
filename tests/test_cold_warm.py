"""A compile's outcome does not depend on what the machine compiled before.

Three fresh processes compile the same model with Inductor's implicit fallbacks off (so its
custom op cannot be lowered and the ladder isolates it): one on a cold machine (empty Inductor and
vexplore caches), one on a warm machine whose Inductor and vexplore caches hold a compile of the
same graph made with implicit fallbacks on (which lowered the op). Both must fail the same way and
report the same counters: every option that changes the outcome is in both caches' keys.

Inside one process it is otherwise: Inductor keeps its lowering registry per process, so after a
compile with implicit fallbacks on, a compile with them off succeeds (torch.compile too). That is
torch's behaviour, shown by the last test, and the reason the tests that need a lowering failure
each use an op of their own (models.UNLOWERED).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(__file__)

_SCRIPT = r"""
import json, sys, warnings
import torch
sys.path.insert(0, {here!r})
import vexplore as vx
from models import Failing

torch.manual_seed(0)
m = Failing(op={op!r}).eval()
opts = {{"implicit_fallbacks": {implicit}}}
cfg = vx.CompileConfig(strategy="full", inductor_options=opts, cache=vx.CacheConfig(dir={vxdir!r}))
warnings.simplefilter("ignore")
cm = vx.compile(m, cfg, session=vx.Session())
x = torch.randn(8, 16)
with torch.no_grad():
    torch.testing.assert_close(cm(x), m(x))
p = cm.report.pieces[0]
print(json.dumps({{"counters": cm.report.counters, "isolated": list(p.isolated), "reason": p.fallback_reason}}))
"""


def _run(tmp, name: str, inductor: str, implicit: bool, op: str = "scale") -> dict:
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp / inductor))
    code = _SCRIPT.format(here=HERE, op=op, implicit=implicit, vxdir=str(tmp / f"vx-{inductor}"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{name}: {out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_warm_machine_compiles_as_a_cold_one(tmp_path):
    cold = _run(tmp_path, "cold", "cold", implicit=False)
    warmed = _run(tmp_path, "warming", "warm", implicit=True)      # lowers the op: a fallback kernel
    warm = _run(tmp_path, "warm", "warm", implicit=False)
    assert warmed["isolated"] == [] and warmed["reason"] is None
    assert warm == cold
    assert cold["isolated"] and "vxtest::scale" in cold["reason"]
    c = cold["counters"]
    assert (c["cache_misses"], c["cache_hits_disk"], c["fallbacks"], c["isolated_nodes"]) == (1, 0, 1, 1)


_IN_PROCESS = r"""
import sys, torch
sys.path.insert(0, {here!r})
from models import Failing
from torch._inductor import lowering

def compiled(implicit):
    torch._dynamo.reset()
    try:
        with torch.no_grad():
            torch.compile(Failing(op="unlowered_registry").eval(), options={{"implicit_fallbacks": implicit,
                          "fx_graph_cache": False}})(torch.randn(4, 16))
        return "ok"
    except Exception:   # Inductor's lowering error, wrapped by Dynamo (BackendCompilerFailed)
        return "failed"

op = torch.ops.vxtest.unlowered_registry.default
print(compiled(False), op in lowering.lowerings, compiled(True), op in lowering.lowerings, compiled(False))
"""


@pytest.mark.slow
def test_inductor_keeps_its_lowering_registry_per_process(tmp_path):
    """torch.compile alone: after an implicit-fallback compile registered a lowering for the op, a
    compile with implicit fallbacks off succeeds in the same process. vexplore inherits this."""
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"))
    prelude = f"import sys\nsys.path.insert(0, {HERE!r})\nimport models\nmodels._unlowered('unlowered_registry')\n"
    code = prelude + _IN_PROCESS.format(here=HERE)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["failed", "False", "ok", "True", "ok"]
