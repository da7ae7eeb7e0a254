"""In-place writes under CUDA graphs: a KV-cache-like buffer and a cache argument (GPU only).

The model writes the tokens' keys into a randomly filled cache at their positions, then
attends over every cache row, so a lost write, a write in the wrong rows or a stale replay
changes the output. Eager PyTorch on a copy of the model is the oracle after every call.
"""
from __future__ import annotations

import copy
import sys
import os

import pytest
import torch

import vexplore as vx

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from models import KVArgument, KVBuffer, Stack  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
SIZES = (1, 2, 4, 1, 8, 1, 2, 3, 1, 4)     # ten calls after the first; 1 is a graph of its own, 3 is not captured
SLOTS = 128                                # positions 40..70 are written


def _cfg(cache_cfg, cudagraph, **kw):
    return vx.CompileConfig(strategy="piecewise", cudagraph=cudagraph, cudagraph_sizes=[2, 4, 8], cache=cache_cfg, **kw)


def _calls(first=40):
    """(tokens, positions) of the first call (positions 40-43) and ten with moving positions."""
    out, at = [(4, first)], first + 4
    for n in SIZES:
        out.append((n, at))
        at += n
    return out


def _run(cm, ref, cache, want_cache, n, at, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(n, 16, device="cuda", generator=g)
    pos = torch.arange(at, at + n, device="cuda")
    extra = () if cache is None else (cache,)
    with torch.no_grad():
        got = cm(x, pos, *extra)
        want = ref(x, pos, *(() if cache is None else (want_cache,)))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cudagraph", ["piecewise", "full", "none"])
def test_buffer_writes_reach_the_caller(cudagraph, cache_cfg):
    torch.manual_seed(0)
    m = KVBuffer(slots=SLOTS).cuda().eval()
    ref = copy.deepcopy(m)
    start = m.kv.clone()
    cm = vx.compile(m, _cfg(cache_cfg, cudagraph), session=vx.Session())
    written: set[int] = set()
    for seed, (n, at) in enumerate(_calls()):
        _run(cm, ref, None, None, n, at, seed)
        written.update(range(at, at + n))
        torch.testing.assert_close(m.kv, ref.kv, rtol=1e-4, atol=1e-4)
        never = [i for i in range(SLOTS) if i not in written]
        assert torch.equal(m.kv[never], start[never]), "capture or replay wrote rows no call wrote"
        assert m.calls.item() == ref.calls.item() == seed + 1
    _check_graphs(cm, cudagraph)


@pytest.mark.parametrize("cudagraph", ["piecewise", "full", "none"])
def test_cache_argument_writes_reach_the_caller(cudagraph, cache_cfg):
    torch.manual_seed(0)
    m = KVArgument().cuda().eval()
    cache = torch.randn(SLOTS, 16, device="cuda")
    want, start = cache.clone(), cache.clone()
    cm = vx.compile(m, _cfg(cache_cfg, cudagraph), session=vx.Session())
    written: set[int] = set()
    for seed, (n, at) in enumerate(_calls()):
        _run(cm, m, cache, want, n, at, seed)
        written.update(range(at, at + n))
        torch.testing.assert_close(cache, want, rtol=1e-4, atol=1e-4)
        never = [i for i in range(SLOTS) if i not in written]
        assert torch.equal(cache[never], start[never])
    _check_graphs(cm, cudagraph)
    if cudagraph != "none":   # the cache was used in place: never copied, never re-captured
        assert all(not g.graph_stats.notes and g.graph_stats.recaptures == 0 for g in cm.graphs)


def _check_graphs(cm, cudagraph):
    captures = sum(r.counters["cudagraph_captures"] for r in cm.reports)
    replays = sum(g.graph_stats.replays for g in cm.graphs if g.graph_stats)
    if cudagraph == "none":
        assert captures == 0
    else:
        assert captures > 0 and replays >= 7      # sizes 1, 2, 4 and 8 replay; 3 runs without graphs
    assert len(cm.graphs) == 2                    # the 1-token graph Dynamo specializes


@pytest.mark.parametrize("cudagraph", ["piecewise", "full"])
def test_swapped_buffer_is_recaptured_then_copied(cudagraph, cache_cfg):
    """A buffer reassigned at the same shape: the next replay re-captures at the new address
    (counted); reassigned again, it is copied in and back from then on. Never a stale replay."""
    torch.manual_seed(0)
    m = KVBuffer().cuda().eval()
    ref = copy.deepcopy(m)
    cm = vx.compile(m, _cfg(cache_cfg, cudagraph), session=vx.Session())
    _run(cm, ref, None, None, 4, 0, 0)
    stats = cm.graphs[0].graph_stats
    for swap in range(2):
        fresh = torch.randn(64, 16, device="cuda")
        m.kv, ref.kv = fresh, fresh.clone()
        for k in range(3):
            _run(cm, ref, None, None, 4, 8 * swap + 4 * k + 4, 10 * swap + k)
            torch.testing.assert_close(m.kv, ref.kv, rtol=1e-4, atol=1e-4)
        assert m.kv is fresh
    assert stats.recaptures == 2 and len(stats.notes) == 1 and "kv" in stats.notes[0]
    assert stats.replays == 7


def test_grad_calls_run_without_graphs_and_say_why(cache_cfg):
    torch.manual_seed(0)
    m = Stack(layers=2).cuda().train()
    ref = copy.deepcopy(m)
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], cudagraph="piecewise",
                                        cache=cache_cfg), session=vx.Session())
    x = torch.randn(8, 16, device="cuda")
    out, want = cm(x), ref(x)
    out.square().sum().backward()
    want.square().sum().backward()
    torch.testing.assert_close(out, want)
    for p, q in zip(m.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5)
    assert all("no-grad calls only" in p.cudagraph_skip_reason for p in cm.report.pieces)
    assert cm.report.counters["cudagraph_captures"] == 0
    with torch.no_grad():   # the same model under no_grad: a graph of its own, captured
        torch.testing.assert_close(cm(x), ref(x))
    assert cm.reports[-1].counters["cudagraph_captures"] > 0
