"""GPU paths (run on the device machine; skipped where there is no CUDA)."""
from __future__ import annotations

import pytest
import torch

import vexplore as vx
from vexplore.models import ToyLlama

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ATTN = ["vexplore::attention"]


def _toy():
    torch.manual_seed(0)
    return ToyLlama(layers=4, dim=128).cuda().half().eval()


def _cm(model, cache_cfg, **kw):
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=ATTN, cache=cache_cfg, **kw)
    return vx.compile(model, cfg, session=vx.Session())


def test_piecewise_cudagraphs_replay_fresh_results(cache_cfg):
    m = _toy()
    cm = _cm(m, cache_cfg, cudagraph="piecewise", cudagraph_sizes=[8, 16])
    x16 = m.example_inputs(16, "cuda", seed=1)
    with torch.no_grad():
        out = cm(*x16)
        torch.testing.assert_close(out, m(*x16), atol=2e-2, rtol=2e-2)
        assert cm.report.counters["cudagraph_captures"] == 5 * 2   # compiled pieces x sizes
        a = m.example_inputs(8, "cuda", seed=2)
        b = m.example_inputs(8, "cuda", seed=3)
        oa = cm(*a)
        ob = cm(*b)
        # results are never stale: the first output still holds its own answer
        assert not torch.equal(oa, ob)
        torch.testing.assert_close(oa, m(*a), atol=2e-2, rtol=2e-2)
        torch.testing.assert_close(ob, m(*b), atol=2e-2, rtol=2e-2)
        stats = cm.graphs[0].graph_stats
        before = stats.uncaptured_calls
        x12 = m.example_inputs(12, "cuda", seed=4)
        torch.testing.assert_close(cm(*x12), m(*x12), atol=2e-2, rtol=2e-2)
        assert stats.uncaptured_calls == before + 1      # the whole call ran without graphs
        assert stats.replays == 3 and stats.recaptures == 0
        # the toy's attention has an out variant: split ops write into the next graph's buffer
        assert {s: i.mode for s, i in stats.sizes.items()} == {16: "piecewise", 8: "piecewise"}
        assert all(i.copied == () for i in stats.sizes.values())


def test_padding_is_opt_in_and_exact_for_causal_attention(cache_cfg):
    m = _toy()
    cm = _cm(m, cache_cfg, cudagraph="piecewise", cudagraph_sizes=[16], cudagraph_pad=True)
    with torch.no_grad():
        cm(*m.example_inputs(16, "cuda"))
        x12 = m.example_inputs(12, "cuda", seed=5)
        out = cm(*x12)
        assert out.shape[0] == 12
        torch.testing.assert_close(out, m(*x12), atol=2e-2, rtol=2e-2)  # causal: padding rows come last
        assert cm.graphs[0].graph_stats.padded_calls == 1


def test_full_cudagraph(cache_cfg):
    m = _toy()
    cfg = vx.CompileConfig(strategy="full", cudagraph="full", cudagraph_sizes=[8, 16], cache=cache_cfg)
    cm = vx.compile(m, cfg, session=vx.Session())
    with torch.no_grad():
        x = m.example_inputs(16, "cuda", seed=6)
        torch.testing.assert_close(cm(*x), m(*x), atol=2e-2, rtol=2e-2)
        assert cm.report.counters["cudagraph_captures"] == 2
        y = m.example_inputs(8, "cuda", seed=7)
        oy = cm(*y)
        oz = cm(*m.example_inputs(8, "cuda", seed=8))
        torch.testing.assert_close(oy, m(*y), atol=2e-2, rtol=2e-2)
        assert not torch.equal(oy, oz)


def test_workers_compile_for_cuda(cache_cfg):
    m = _toy()
    s = vx.Session()
    try:
        cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=ATTN, workers=2, cache=cache_cfg), session=s)
        x = m.example_inputs(16, "cuda")
        with torch.no_grad():
            torch.testing.assert_close(cm(*x), m(*x), atol=2e-2, rtol=2e-2)
        assert cm.report.counters["worker_compiles"] == 3
        assert all("triton" in (p.code or "") or "@triton" in (p.code or "") for p in cm.report.unique_pieces)
    finally:
        s.close()


def test_disk_cache_roundtrip_on_gpu(cache_cfg):
    m = _toy()
    x = m.example_inputs(16, "cuda")
    with torch.no_grad():
        cm = _cm(m, cache_cfg)
        cm(*x)
        warm = _cm(m, cache_cfg)
        torch.testing.assert_close(warm(*x), m(*x), atol=2e-2, rtol=2e-2)
    assert warm.report.counters["cache_hits_disk"] == 3 and warm.report.counters["inductor_compiles"] == 0


def _called_at_64_and_8(cache_cfg, sizes=(8, 64), **kw):
    """The toy compiled piecewise (full graphs up to 32 tokens) with capture ``sizes``, called twice at 64
    and at 8 tokens against eager."""
    m = _toy()
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=ATTN, cudagraph_sizes=list(sizes), cudagraph_full_max=32,
                           cache=cache_cfg, **kw)
    cm = vx.compile(m, cfg, session=vx.Session())
    with torch.no_grad():
        for n, seed in ((64, 1), (8, 2), (64, 3), (8, 4)):
            x = m.example_inputs(n, "cuda", seed=seed)
            torch.testing.assert_close(cm(*x), m(*x), atol=2e-2, rtol=2e-2)
    return cm


def _full_at_8_piecewise_at_64(cache_cfg, **kw):
    """``_called_at_64_and_8`` at sizes 8 (full) and 64 (piecewise); its graph's stats checked (each size's
    mode, 4 replays, 5 piece graphs at 64 and one at 8)."""
    cm = _called_at_64_and_8(cache_cfg, **kw)
    stats = cm.graphs[0].graph_stats
    assert {s: i.mode for s, i in stats.sizes.items()} == {64: "piecewise", 8: "full"} and stats.replays == 4
    assert cm.report.counters["cudagraph_captures"] == 5 + 1      # 5 compiled pieces at 64, one graph at 8
    return cm, stats


@pytest.mark.parametrize("mode", ["full_and_piecewise", "auto"])
def test_full_and_piecewise_serves_small_sizes_full(mode, cache_cfg):
    cm, stats = _full_at_8_piecewise_at_64(cache_cfg, cudagraph=mode)
    assert "8 <= cudagraph_full_max=32" in stats.sizes[8].why and not stats.whole
    events = {e.size: e.detail for e in cm.report.events if e.step == "cudagraph_capture"}
    assert events[8].startswith("full") and events[64].startswith("piecewise")


def test_cudagraph_whole_replays_the_graph_compiled_whole_at_full_sizes(cache_cfg):
    """cudagraph_whole: the full size replays the graph compiled whole (one more Inductor compile, its events
    naming no piece), the piecewise size the pieces; both equal eager; the notes say which."""
    cm, stats = _full_at_8_piecewise_at_64(cache_cfg, cudagraph="full_and_piecewise", cudagraph_whole=True)
    assert stats.sizes[8].why.endswith("the graph compiled whole") and "compiled whole" not in stats.sizes[64].why
    assert any(note.startswith("full CUDA graphs replay the graph compiled whole") for note in stats.notes), stats.notes
    assert stats.whole and any(e.step == "compile" and e.piece is None and e.graph == 0   # the whole graph's compile
                               for e in cm.report.events)


def test_cudagraph_whole_in_the_background_is_taken_at_the_next_call_of_each_full_size(cache_cfg):
    """cudagraph_whole="background": the first calls replay the stitched pieces' full capture (nothing built
    whole in the compiling call); once the graph compiled whole is built off the call path (cm.settle waits),
    the full size's next call captures it again with the whole graph, the piecewise size keeps its pieces;
    every call equals eager."""
    cm, stats = _full_at_8_piecewise_at_64(cache_cfg, cudagraph="full_and_piecewise", cudagraph_whole="background")
    assert not any(e.step == "compile" and e.piece is None for e in cm.report.events)   # not in the compiling call
    assert cm.settle(timeout=300) and stats.whole
    assert any("off the call path; each full size is captured again" in note for note in stats.notes), stats.notes
    # the build may have ended during the helper's calls, whose last (8 tokens) then captured it already
    captures, m, taken = stats.captures, cm.model, stats.sizes[8].why.endswith("the graph compiled whole")
    with torch.no_grad():
        for n, seed in ((8, 5), (64, 6), (8, 7)):
            x = m.example_inputs(n, "cuda", seed=seed)
            torch.testing.assert_close(cm(*x), m(*x), atol=2e-2, rtol=2e-2)
    assert stats.sizes[8].why.endswith("the graph compiled whole") and "compiled whole" not in stats.sizes[64].why
    assert stats.captures == captures + (not taken) and stats.recaptures == 0 and stats.replays == 7


def test_cudagraph_capture_first_call_captures_each_size_at_its_first_call(cache_cfg):
    """cudagraph_capture="first_call": the compiling call captures nothing ahead (no capture event in the
    compile), each size is captured when a call of it first comes (8 full, 64 piecewise) and replayed after;
    a size never called is never captured; every call equals eager."""
    cm = _called_at_64_and_8(cache_cfg, sizes=(8, 16, 64), cudagraph_capture="first_call")
    stats = cm.graphs[0].graph_stats
    assert cm.report.counters["cudagraph_captures"] == 0 and not any(e.step == "cudagraph_capture" for e in cm.report.events)
    assert {s: i.mode for s, i in stats.sizes.items()} == {64: "piecewise", 8: "full"}
    assert {s: d.reason for s, d in stats.plan.items()} == {64: "asked_first_call", 16: "asked_first_call",
                                                           8: "asked_first_call"}
    assert stats.captures == 5 + 1 and stats.replays == 4 and stats.recaptures == 0


def test_sizes_over_the_memory_budget_run_without_graphs(cache_cfg):
    """Each size's capture memory is estimated first; a size over cudagraph_memory_mb is not
    captured (it runs without graphs, saying why), the others are."""
    m = _toy()
    sizes = [8, 16, 256]
    probe = _cm(m, cache_cfg, cudagraph="piecewise", cudagraph_sizes=sizes)
    with torch.no_grad():
        probe(*m.example_inputs(16, "cuda", seed=1))
    est = {s: i.estimate_mb for s, i in probe.graphs[0].graph_stats.sizes.items()}
    assert est[8] < est[16] < est[256] and all(i.mode == "piecewise" for i in probe.graphs[0].graph_stats.sizes.values())
    for s, i in probe.graphs[0].graph_stats.sizes.items():   # held after capture: + cuBLAS's 32 MiB workspace
        assert i.memory_mb <= i.estimate_mb + 64, (s, i)
    limit = (est[16] + est[256]) / 2
    cm = _cm(m, cache_cfg, cudagraph="piecewise", cudagraph_sizes=sizes, cudagraph_memory_mb=limit)
    with torch.no_grad():
        for n, seed in ((16, 1), (256, 2), (8, 3)):
            x = m.example_inputs(n, "cuda", seed=seed)
            torch.testing.assert_close(cm(*x), m(*x), atol=2e-2, rtol=2e-2)
    stats = cm.graphs[0].graph_stats
    assert {s: i.mode for s, i in stats.sizes.items()} == {256: "none", 16: "piecewise", 8: "piecewise"}
    assert stats.sizes[256].why.startswith("not captured: estimated") and f"cudagraph_memory_mb={limit:g}" in stats.sizes[256].why
    assert (stats.replays, stats.uncaptured_calls) == (2, 1)
    assert "sizes [256] run without CUDA graphs" in " ".join(str(w) for w in cm.report.warnings)


@pytest.mark.parametrize("cudagraph", ["piecewise", "full"])
def test_a_size_whose_capture_fails_runs_without_graphs(cudagraph, cache_cfg):
    """A compiled piece that reads a value back to the CPU cannot be captured: each size says so and
    runs without graphs; the calls are right."""
    from models import Calls

    torch.manual_seed(0)
    m = Calls("syncs").cuda().eval()
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], cudagraph=cudagraph,
                                        cudagraph_sizes=[4, 8], cache=cache_cfg), session=vx.Session())
    with torch.no_grad():
        for n in (8, 4, 8):
            x = torch.randn(n, 16, device="cuda")
            torch.testing.assert_close(cm(x), m(x))
    stats = cm.graphs[0].graph_stats
    assert {s: i.mode for s, i in stats.sizes.items()} == {8: "none", 4: "none"}
    assert all(i.why.startswith("capture failed (") for i in stats.sizes.values())
    assert (stats.replays, stats.uncaptured_calls) == (0, 3)
