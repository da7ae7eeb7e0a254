"""Runtime profiles on CUDA under CUDA graphs (GPU only): the toy Llama compiled piecewise with
full_and_piecewise, profiled at 1 token (the 1-token graph, captured whole) and at 64 tokens (the
general graph's full capture at 64): every kernel of a replay mapped to its piece and a source line
(library kernels, such as cuBLAS's GEMMs, by the op that launched them) but copies and fills: the
runtime's around the replay (the call's inputs into the graph's buffers, the outputs out of its pool)
and Inductor's own, the device's limits known, the Chrome trace naming the kernels, the runtime
counters in the profile. On the issue's model (8 layers, d 2048, fp16) the attributed share is >= 0.95
at 1 and 16 tokens: on the small model those copies are a large part of ~50 µs of device time.
"""
from __future__ import annotations

import json
import re

import pytest
import torch

import vexplore as vx
from vexplore.models import ToyLlama, ToyLlamaConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# copies and fills: the runtime's around a replay (the inputs in, one torch._foreach_copy_; the outputs out,
# a clone) and Inductor's own inside a piece (a graph memcpy node when replayed), which compute nothing
COPIES = re.compile(r"multi_tensor_apply_kernel|^[Mm]emcpy|^[Mm]emset")


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
    unmapped = [(r.name, r.piece, r.source_lines, round(r.total_ms / prof.calls, 4)) for r in prof.rows
                if r.piece is None or not r.source_lines]
    # every kernel that computes has its piece and line (a cuBLAS GEMM by the aten op that launched it)
    assert all(COPIES.search(name) for name, *_ in unmapped), unmapped
    assert len(unmapped) <= 4, unmapped
    assert prof.runtime.replays > 0 and prof.runtime.uncaptured_calls == 0
    # the span by CUDA events of calls without the profiler: at least the busy time, within the call's wall
    assert prof.span_timer == "cuda events" and prof.traced_span_ms > 0
    assert 0 < prof.device_ms <= prof.span_ms * 1.02 and prof.span_ms <= prof.wall_ms * 1.05
    assert any(r.limit_share is not None and 0 < r.limit_share <= 1.5 for r in prof.rows)
    pieces = {p.index for p in cm.report.pieces}
    assert {r.piece for r in prof.rows} - {None} <= pieces   # None: the runtime's copies, outside every piece
    trace = json.loads(cm.report.to_chrome_trace(tmp_path / "t.json").read_text())
    kernels = {e["name"] for e in trace["traceEvents"] if e.get("cat") == "profile_kernel"}
    assert {r.name for r in prof.rows} <= kernels


def test_the_issue_model_is_attributed_at_decode_and_prefill(tmp_path):
    """The toy Llama of the issue's targets (8 layers, d 2048, fp16, vocab 32000), default config but the
    split and the CUDA-graph mode as the targets name them: >= 95 % of device time mapped to a piece and
    a source line at 1 and 16 tokens."""
    torch.manual_seed(0)
    m = ToyLlama(ToyLlamaConfig(vocab=32000, dim=2048, layers=8, heads=16, ffn=5440)).cuda().half().eval()
    cfg = vx.CompileConfig(strategy="piecewise", cudagraph="full_and_piecewise",
                           cache=vx.CacheConfig(dir=str(tmp_path / "vxcache")))
    cm = vx.compile(m, cfg, session=vx.Session())
    shares, spans = {}, {}
    with torch.no_grad():
        cm(*m.example_inputs(64, "cuda"))
        for n in (16, 1):
            x = m.example_inputs(n, "cuda")
            prof = cm.profile(*x, calls=10, warmup=3)
            shares[n] = (prof.attributed_share, [(r.name[:60], round(r.total_ms / prof.calls, 4)) for r in prof.rows
                                                 if r.piece is None or not r.source_lines])
            assert prof.runtime.replays > 0 and prof.runtime.uncaptured_calls == 0
            spans[n] = (prof.span_ms, prof.lead_in_ms, _event_ms(lambda: cm(*x)), _event_ms(lambda: cm(*x), True),
                        prof.traced_span_ms)
    assert all(share >= 0.95 for share, _ in shares.values()), shares
    # the issue's target: the span within 5 % of CUDA-event time of the same calls without the profiler, whose
    # events from the call's start also hold the host's time before its first graph (the profile's lead-in)
    assert all(abs((lead + span) / ev - 1) <= 0.05 for span, lead, ev, *_ in spans.values()), spans
    # and between the calls' event time and the device time of their kernels queued back to back (no host gap)
    assert all(queued * 0.98 <= span <= ev * 1.02 for span, _, ev, queued, _ in spans.values()), spans


def _event_ms(fn, queued: bool = False, calls: int = 20) -> float:
    """Median CUDA-event time of ``calls`` calls, each between two events; from an idle device, or ``queued``
    behind a device sleep (the host has launched the whole call before the first event fires)."""
    out = []
    for _ in range(calls):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        if queued:
            torch.cuda._sleep(10_000_000)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b))
    return sorted(out)[len(out) // 2]
