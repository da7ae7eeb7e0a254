"""Greedy decoding to the last row of a Hugging Face StaticCache, under every CUDA-graph mode (GPU only).

Issue 23: a capture runs the graph at its size on the inputs in hand, and one with more tokens
than the cache has room for wrote past its end (an Inductor device assert, ``0 <= tmp7 < 72``,
that ends the CUDA context). The size plan (cudagraph.size_plan) captures ahead only sizes
whose capture writes within what the call in hand writes; larger ones wait for a call of their
own size, and a size longer than the cache never captures. Caches of 24 and 72 rows are decoded
to their last row, one of 1024 partly; a recompile plans on the cache the first decode filled.
Eager on a cache of its own is the oracle: the greedy tokens and every layer's keys and values.
"""
from __future__ import annotations

import inspect

import pytest
import torch

import vexplore as vx

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

MODES = ["none", "piecewise", "full", "full_and_piecewise", "auto"]
CACHES = ((24, 8), (72, 40), (1024, 40))   # (max_cache_len, prompt tokens)
STEPS = 32                                 # decode steps at most: the 24 and 72 caches fill to their last row


def _model():
    cfg = transformers.LlamaConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=256, attn_implementation="sdpa")
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).cuda().eval()   # fp32: greedy ties never split on rounding


def _cache(model, length):
    c = model.config
    cache = transformers.StaticCache(config=c, max_cache_len=length)
    cache.early_initialization(1, c.num_key_value_heads, c.hidden_size // c.num_attention_heads, torch.float32,
                               torch.device("cuda"))
    return cache


def _kv(cache):
    return [t for layer in cache.layers for t in (layer.keys, layer.values)]


def _greedy(fn, model, cache, prompt, steps):
    """The prompt, then ``steps`` 1-token calls on the token each call chose, as generate calls
    the model with a static cache. Returns the chosen tokens."""
    params = inspect.signature(type(model.model).forward).parameters
    kw = {"cache" if "cache" in params else "past_key_values": cache}
    ids, at, out = prompt, 0, []
    with torch.no_grad():
        for _ in range(steps + 1):
            n = ids.shape[1]
            pos = torch.arange(at, at + n, device="cuda")
            if "cache_position" in params:   # transformers 4.x still takes it
                kw["cache_position"] = pos
            logits = fn(input_ids=ids, position_ids=pos[None], use_cache=True, **kw).logits
            ids = logits[:, -1:].argmax(-1)
            out.append(int(ids))
            at += n
    torch.cuda.synchronize()
    return out


def _prompt(n):
    return torch.randint(0, 256, (1, n), generator=torch.Generator().manual_seed(n)).cuda()


def _decode_both(cm, m, length, prompt):
    """Greedy tokens of ``cm`` and of eager ``m``, each on a fresh cache of ``length``; checks the caches agree."""
    steps = min(STEPS, length - prompt)
    mine, ref = _cache(m, length), _cache(m, length)
    got = _greedy(cm, m, mine, _prompt(prompt), steps)
    want = _greedy(m, m, ref, _prompt(prompt), steps)
    for a, b in zip(_kv(mine), _kv(ref)):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
        assert not a[:, :, prompt + steps:].any()      # no capture wrote past the calls' rows
    return got, want


def _rows(g):
    """The cache length graph ``g`` writes (the keys' dim 2), None where Dynamo made it dynamic."""
    f = next((f for f, name in zip(g.fake_inputs, g.names) if name.endswith("keys")), None)
    return f.shape[2] if f is not None and isinstance(f.shape[2], int) else None


def _check_plans(cm):
    """No graph captured a size longer than its cache; each such size says why it runs without
    graphs, in its stats and in the report. Returns how many graphs had such sizes."""
    warnings = [w for r in cm.reports for w in r.warnings]
    refused = 0
    for g in cm.graphs:
        st, rows = g.graph_stats, _rows(g)
        assert st is not None, [str(w) for w in warnings]
        captured = [s for s, i in st.sizes.items() if i.mode != "none"]
        assert all(s is None or rows is None or s <= rows for s in captured), (g.index, rows, captured)
        if rows is None or g.token is None:   # a static graph has its one size; a dynamic cache, no known rows
            continue
        never = {s for s, d in st.plan.items() if d.when == "never"}
        assert never == {s for s in st.plan if s > rows}
        assert all(st.plan[s].reason == "longer_than_cache" == st.sizes[s].reason for s in never)
        if never:
            refused += 1
            assert any(w.graph == g.index and "run without CUDA graphs" in w and f"which has {rows} along dim 2" in w
                       for w in warnings)
    return refused


@pytest.mark.parametrize("cudagraph", MODES)
def test_greedy_decode_to_the_end_of_a_static_cache(cudagraph, cache_cfg):
    m = _model()
    cfg = vx.CompileConfig(strategy="piecewise", cudagraph=cudagraph, cache=cache_cfg)
    cm = vx.compile(m, cfg, session=vx.Session())
    for length, prompt in CACHES:
        got, want = _decode_both(cm, m, length, prompt)
        assert got == want, (length, cudagraph)
    if cudagraph == "none":
        assert all(g.graph_stats is None for g in cm.graphs)
        return
    _check_plans(cm)
    assert sum(g.graph_stats.replays for g in cm.graphs) > 0


def test_a_recompile_captures_on_calls_not_on_the_filled_cache(cache_cfg):
    """recompile plans on the inputs Dynamo traced with: the 72-row cache the first decode filled,
    its length counter at 72. The decode graph captured there would write row 72; instead every
    size of a cache-writing graph is captured at its first call, on that call's cache."""
    m = _model()
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", cudagraph="none", cache=cache_cfg), session=vx.Session())
    got, want = _decode_both(cm, m, 72, 40)
    assert got == want
    for mode in ("full_and_piecewise", "piecewise", "full"):
        rep = cm.recompile(cudagraph=mode)
        assert rep.counters["cudagraph_captures"] == 0          # nothing ran on the filled cache
        for g in cm.graphs:
            assert {d.reason for d in g.graph_stats.plan.values()} <= {"state_moved", "longer_than_cache"}
        assert _decode_both(cm, m, 72, 40)[0] == want, mode
        assert sum(g.graph_stats.captures for g in cm.graphs) > 0 and sum(g.graph_stats.replays for g in cm.graphs) > 0
        _check_plans(cm)
