"""The documented decode trace is no advice: prefill, then 1-token decode, on a Hugging Face Llama and the toy.

Dynamo specializes sizes 0 and 1, and a KV cache filled by the prefill changes what the model reads,
so the first 1-token call after a longer one traces one more graph, once (the report warns
``decode_trace``). That trace is not a recompile to fix, and the first compile of its pieces misses
every cache by design: vx.advise says nothing about either. Eager, on a cache of its own, is the oracle.
"""
from __future__ import annotations

import pytest
import torch

import vexplore as vx
from vexplore.engine.capture.explain import DYNAMO_NAME

transformers = pytest.importorskip("transformers")

# transformers 5.24 prefers `cache=`; users (and the issue) pass past_key_values, which it still takes
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:`past_key_values` is deprecated:FutureWarning")]

PREFILL = 8


def _llama():
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).eval()


def _cache(model, kind: str):
    if kind == "static":
        return transformers.StaticCache(config=model.config, max_cache_len=32)
    return transformers.DynamicCache(config=model.config)


def _step(model, ids, cache, at: int, kind: str):
    """One call as Hugging Face users write it: the cache passed back in; a StaticCache with cache_position."""
    kw = {"cache_position": torch.arange(at, at + ids.shape[1])} if kind == "static" else {}
    return model(input_ids=ids, past_key_values=cache, use_cache=True, **kw)


def _decode(cm, model, kind: str, steps: int):
    """Prefill PREFILL tokens, then ``steps`` greedy 1-token calls; compiled and eager must agree."""
    mine, ref = _cache(model, kind), _cache(model, kind)
    ids = torch.randint(0, 128, (1, PREFILL), generator=torch.Generator().manual_seed(1))
    at = 0
    with torch.no_grad():
        for _ in range(steps + 1):
            got, want = _step(cm, ids, mine, at, kind).logits, _step(model, ids, ref, at, kind).logits
            torch.testing.assert_close(got, want)
            at += ids.shape[1]
            ids = want[:, -1:].argmax(-1)


def _no_advice_for_the_decode_trace(cm, session):
    assert [w.kind for r in cm.reports for w in r.warnings] == ["decode_trace"]
    assert [(r.graph, r.limit_hit) for r in cm.recompiles] == [(1, False)]
    assert cm.reports[1].counters["cache_misses"] == cm.reports[1].counters["unique_pieces"] > 0   # its first compile
    assert vx.advise(cm) == []
    assert session.monitor.alerts == []


@pytest.mark.parametrize("kind", ["dynamic", "static"])
def test_hf_llama_prefill_then_decode_is_no_advice(kind, cache_cfg, session):
    model = _llama()
    cm = vx.compile(model, vx.CompileConfig(cache=cache_cfg), session=session)
    _decode(cm, model, kind, steps=1)
    assert len(cm.graphs) == 2
    _no_advice_for_the_decode_trace(cm, session)
    [r] = cm.recompiles    # what the explorer lists: in the model's names (the cache was empty at the prefill)
    assert r.name == "past_key_values.layers[0].is_initialized"
    assert r.guard == "past_key_values.layers[0].is_initialized == False"
    assert not DYNAMO_NAME.search(r.reason + r.name + r.guard)


def test_hf_dynamic_cache_growth_is_named_and_its_fix_fits(cache_cfg, session):
    # a DynamicCache grows by torch.cat: the second decode call sees other sizes or strides, and Dynamo
    # traces once more with that dim dynamic. Advice for it names the cache tensor and a fix that
    # applies to it (a StaticCache, or mark_dynamic), not dynamic_dims, which cannot name it
    model = _llama()
    cm = vx.compile(model, vx.CompileConfig(cache=cache_cfg), session=session)
    _decode(cm, model, "dynamic", steps=4)
    assert len(cm.graphs) == 3 and [r.graph for r in cm.recompiles] == [1, 2]
    [a] = vx.advise(cm)
    assert (a.code, a.severity, a.config) == ("recompile", "warning", None)
    assert a.evidence["name"] == "past_key_values.layers[0].keys" and a.evidence["graphs"] == [2]
    assert a.message.startswith("past_key_values.layers[0].keys at ")
    assert "StaticCache with cache_position" in a.message and "torch._dynamo.mark_dynamic(" in a.message
    assert "dynamic_dims" not in a.message and not DYNAMO_NAME.search(a.message)


def test_toy_llama_16_then_1_token_is_no_advice(toy, cache_cfg, session):
    model, (tokens,) = toy
    cm = vx.compile(model, vx.CompileConfig(cache=cache_cfg), session=session)
    one = tokens[:1]
    with torch.no_grad():
        for x in (tokens, one):
            torch.testing.assert_close(cm(x), model(x))
    _no_advice_for_the_decode_trace(cm, session)
    [r] = cm.recompiles     # Dynamo's 0/1 rule, named as the model names its input, at the call that passed 1 token
    assert (r.name, r.guard, r.graph) == ("tokens", "2 <= tokens.size()[0]", 1)
    assert r.frame == f"{__file__}:{_line_of('torch.testing.assert_close(cm(x), model(x))')}"
    assert r.reason.startswith("dim 0 of tokens is 0 or 1 on this call (compiled for 2 <= tokens.size()[0])")


def _line_of(text: str) -> int:
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if text in line and "_line_of" not in line)
