"""A Hugging Face Llama with a StaticCache shorter than the capture ladder, under CUDA graphs (GPU only).

The cache (64 tokens) is written in place at the cache's own length counter; a capture of 512
tokens at compile time would write past its end. The size plan (cudagraph.size_plan) captures
sizes above the call in hand at their first call instead, and never a size longer than the
cache (128 and up: they run without graphs, saying why). Eager on a cache of its own is the
oracle: logits and every layer's keys and values.
"""
from __future__ import annotations

import inspect

import pytest
import torch

import vexplore as vx

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _model():
    cfg = transformers.LlamaConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=256, attn_implementation="sdpa")
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).cuda().half().eval()


def _cache(model):
    c = model.config
    cache = transformers.StaticCache(config=c, max_cache_len=64)
    cache.early_initialization(1, c.num_key_value_heads, c.hidden_size // c.num_attention_heads, torch.float16,
                               torch.device("cuda"))
    return cache


def _kv(cache):
    return [t for layer in cache.layers for t in (layer.keys, layer.values)]


@pytest.mark.parametrize("cudagraph", ["full_and_piecewise", "piecewise"])
def test_static_cache_shorter_than_the_capture_ladder(cudagraph, cache_cfg):
    m = _model()
    kw = "cache" if "cache" in inspect.signature(type(m.model).forward).parameters else "past_key_values"
    mine, ref = _cache(m), _cache(m)
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", cudagraph=cudagraph, cache=cache_cfg), session=vx.Session())
    at = 0
    with torch.no_grad():
        for n in (16, 1, 1, 32, 1):
            ids = torch.randint(0, 256, (1, n), device="cuda")
            pos = torch.arange(at, at + n, device="cuda")[None]
            got = cm(input_ids=ids, position_ids=pos, use_cache=True, **{kw: mine}).logits
            want = m(input_ids=ids, position_ids=pos, use_cache=True, **{kw: ref}).logits
            torch.testing.assert_close(got, want, atol=2e-2, rtol=2e-2)
            at += n
            torch.cuda.synchronize()
    for a, b in zip(_kv(mine), _kv(ref)):
        torch.testing.assert_close(a, b, atol=2e-2, rtol=2e-2)
        assert not a[:, :, at:].any()                 # no capture wrote past the calls' rows
    warnings = [w for r in cm.reports for w in r.warnings]
    for g in cm.graphs:
        sizes = {s for s, i in g.graph_stats.sizes.items() if i.mode != "none"}   # captured
        if g.token is None:     # static: one capture, of its own length
            assert sizes == {None}
            continue
        assert {s for s in sizes if s and s > 16} <= {32}   # larger: only when called
        assert all(g.graph_stats.sizes[s].reason == "longer_than_cache" for s in (128, 256, 512))
        assert any("captured at their first call" in w for w in warnings)
    if sum(g.token is None for g in cm.graphs) > 1:   # besides the 1-token graph, a prefill graph is static:
        assert any(w.kind == "token_specialized" for w in warnings)   # torch 2.11 specializes the length: said where
