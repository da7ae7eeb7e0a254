"""vx.compile(model) with no options on a GPU: CUDA graphs by default (cudagraph="auto"), and a
Hugging Face greedy decode loop that makes a new StaticCache per generation, as generate() does.

Eager PyTorch on its own cache is the oracle: the same greedy tokens at every step of every
generation. The loop must not break the graph, must trace the 1-token step at most once more, and
must keep the cache in place across generations (each new cache captured again, never copied).
"""
from __future__ import annotations

import inspect
import os
import sys

import pytest
import torch

import vexplore as vx

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from models import Stack  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
STEPS, PROMPT, GENERATIONS = 24, 16, 3


def test_default_config_captures_cuda_graphs(cache_cfg):
    assert vx.CompileConfig().cudagraph == "auto"
    torch.manual_seed(0)
    m = Stack(layers=2).cuda().eval()
    cm = vx.compile(m, vx.CompileConfig(splitting_ops=["vxtest::mix"], cache=cache_cfg), session=vx.Session())
    with torch.no_grad():
        for n in (8, 8, 3, 600, 8):
            x = torch.randn(n, 16, device="cuda")
            torch.testing.assert_close(cm(x), m(x), rtol=1e-4, atol=1e-4)
    rep = cm.report
    assert rep.counters["cudagraph_captures"] > 0
    stats = cm.graphs[0].graph_stats
    assert stats is not None and stats.replays_by_size.get(8, 0) >= 2
    assert cm.runtime.uncaptured_sizes and dict(cm.runtime.uncaptured_sizes).get(600) == 1   # past the ladder
    why = dict(cm.runtime.uncaptured_why)
    assert why[600].startswith("600 tokens is above the largest capture size (512)") and why[3].startswith("3 tokens is no capture size")
    # every size without a graph says why
    for size, info in stats.sizes.items():
        assert info.mode != "none" or info.why, (size, info)


def _hf():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=256, attn_implementation="sdpa")
    torch.manual_seed(0)
    return transformers, transformers.LlamaForCausalLM(cfg).cuda().eval()


def _cache(transformers, model, length):
    c = model.config
    cache = transformers.StaticCache(config=c, max_cache_len=length)
    if hasattr(cache, "early_initialization"):
        cache.early_initialization(1, c.num_key_value_heads, c.hidden_size // c.num_attention_heads, torch.float32,
                                   torch.device("cuda"))
    return cache


def _generate(fn, model, cache, prompt):
    """Greedy decoding as generate() calls the model with a static cache: prefill, then 1-token steps."""
    kw = "cache" if "cache" in inspect.signature(type(model.model).forward).parameters else "past_key_values"
    n = prompt.shape[1]
    pos = torch.arange(n, device="cuda")[None]
    logits = fn(input_ids=prompt, position_ids=pos, use_cache=True, logits_to_keep=1, **{kw: cache}).logits
    tokens = []
    for step in range(STEPS):
        tok = logits[:, -1].argmax(-1, keepdim=True)
        tokens.append(tok)
        pos = torch.tensor([[n + step]], device="cuda")
        logits = fn(input_ids=tok, position_ids=pos, use_cache=True, logits_to_keep=1, **{kw: cache}).logits
    return torch.cat(tokens, 1)


def test_hugging_face_decode_loop_at_defaults(cache_cfg):
    transformers, m = _hf()
    cm = vx.compile(m, vx.CompileConfig(cache=cache_cfg), session=vx.Session())
    length = PROMPT + STEPS + 8
    with torch.no_grad():
        for g in range(GENERATIONS):
            prompt = torch.randint(0, 256, (1, PROMPT), device="cuda", generator=torch.Generator("cuda").manual_seed(g))
            got = _generate(cm, m, _cache(transformers, m, length), prompt)
            want = _generate(m, m, _cache(transformers, m, length), prompt)
            assert torch.equal(got, want), f"generation {g}: tokens differ from eager's: {got} vs {want}"
    assert not cm.graph_breaks, cm.graph_breaks
    assert len(cm.graphs) <= 2, [g.token for g in cm.graphs]     # the general graph and at most the 1-token step
    stats = [g.graph_stats for g in cm.graphs]
    assert all(s is not None for s in stats)
    assert sum(s.replays for s in stats) >= GENERATIONS * (STEPS - 2)
    assert not [n for s in stats for n in s.notes], "the cache fell back to being copied"
    assert sum(s.recaptures for s in stats) >= GENERATIONS - 1        # each new cache captured again, in place
