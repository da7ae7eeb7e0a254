"""Runtime profiles on CUDA under CUDA graphs (GPU only): the toy Llama compiled piecewise with
full_and_piecewise, profiled at 1 token (one full graph) and at 64 tokens (a graph per piece, the
attention op eager between): every kernel of a replay mapped to its piece and a source line, the
device's limits known, the Chrome trace naming the kernels, the runtime counters in the profile.
"""
from __future__ import annotations

import json

import pytest
import torch

import vexplore as vx
from vexplore.models import ToyLlama, ToyLlamaConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    torch.manual_seed(0)
    m = ToyLlama(ToyLlamaConfig(vocab=512, dim=256, layers=2, heads=2, ffn=512)).cuda().half().eval()
    cfg = vx.CompileConfig(strategy="piecewise", cudagraph="full_and_piecewise",
                           cache=vx.CacheConfig(dir=str(tmp_path_factory.mktemp("vxcache"))))
    cm = vx.compile(m, cfg, session=vx.Session())
    with torch.no_grad():
        cm(*m.example_inputs(128, "cuda"))
    return m, cm


@pytest.mark.parametrize("tokens", [1, 64])
def test_replayed_kernels_map_to_pieces_and_lines(llama, tokens, tmp_path):
    m, cm = llama
    x = m.example_inputs(tokens, "cuda")
    with torch.no_grad():
        prof = cm.profile(*x, calls=5, warmup=2)
        torch.testing.assert_close(cm(*x), m(*x), rtol=2e-2, atol=2e-2)
    assert cm.report.device == "cuda" and prof.device == torch.cuda.get_device_name() and prof.rows
    assert prof.attributed_share >= 0.95, [(r.name, r.piece, r.source_lines) for r in prof.rows if r.piece is None]
    assert prof.runtime.replays > 0 and prof.runtime.uncaptured_calls == 0
    assert 0 < prof.device_ms <= prof.span_ms <= prof.profiled_wall_ms * 1.05
    assert any(r.limit_share is not None and 0 < r.limit_share <= 1.5 for r in prof.rows)
    pieces = {p.index for p in cm.report.pieces}
    assert {r.piece for r in prof.rows} <= pieces
    trace = json.loads(cm.report.to_chrome_trace(tmp_path / "t.json").read_text())
    kernels = {e["name"] for e in trace["traceEvents"] if e.get("cat") == "profile_kernel"}
    assert {r.name for r in prof.rows} <= kernels
