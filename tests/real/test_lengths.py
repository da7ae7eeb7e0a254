"""Hugging Face models called as their users call them (keywords, [batch, seq] ids) at several
prompt lengths: one Dynamo trace for every length, one more for a 1-token call, said why.
Tiny configs built in code, random weights: nothing is downloaded."""
from __future__ import annotations

import logging

import pytest
import torch

import vexplore as vx
from vexplore.errors import ConfigError

transformers = pytest.importorskip("transformers")


def _llama():
    cfg = transformers.LlamaConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=256, max_position_embeddings=256)
    return transformers.LlamaForCausalLM(cfg).eval()


def _gpt2():
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=256, n_positions=256)
    return transformers.GPT2LMHeadModel(cfg).eval()


def _compile(model, tmp_path, **cfg):
    torch._dynamo.reset()
    return vx.compile(model, vx.CompileConfig(strategy="piecewise", cache=vx.CacheConfig(dir=str(tmp_path)), **cfg),
                      session=vx.Session())


@pytest.mark.parametrize("make", [_llama, _gpt2], ids=["llama", "gpt2"])
def test_prompt_lengths_trace_once_and_decode_once_more(make, tmp_path):
    torch.manual_seed(0)
    model = make()
    cm = _compile(model, tmp_path)
    with torch.no_grad():
        for n in (7, 12, 20, 33):
            ids = torch.randint(0, 256, (1, n))
            torch.testing.assert_close(cm(input_ids=ids, use_cache=False).logits, model(input_ids=ids, use_cache=False).logits)
        assert len(cm.graphs) == 1 and len(cm.reports) == 1
        assert cm.token_dims == {"input_ids": (1,)}
        ids = torch.randint(0, 256, (1, 1))
        torch.testing.assert_close(cm(input_ids=ids, use_cache=False).logits, model(input_ids=ids, use_cache=False).logits)
    assert len(cm.graphs) == 2
    assert [w.kind for w in cm.report.warnings if w.kind == "decode_trace"] == ["decode_trace"]
    assert "1-token call" in str(next(w for w in cm.report.warnings if w.kind == "decode_trace"))


def test_keyword_hint_and_masks(tmp_path):
    torch.manual_seed(0)
    model = _llama()
    cm = _compile(model, tmp_path, dynamic_dims={"input_ids": 1, "attention_mask": 1})
    with torch.no_grad():
        for n in (5, 9, 17):
            ids, mask = torch.randint(0, 256, (2, n)), torch.ones(2, n, dtype=torch.long)
            mask[1, : n // 2] = 0   # left padding on the second row
            out = cm(input_ids=ids, attention_mask=mask, use_cache=False).logits
            torch.testing.assert_close(out, model(input_ids=ids, attention_mask=mask, use_cache=False).logits)
    assert len(cm.graphs) == 1 and cm.token_dims == {"input_ids": (1,), "attention_mask": (1,)}


def test_positional_ids_are_found_too(tmp_path):
    torch.manual_seed(0)
    model = _llama()
    cm = _compile(model, tmp_path)
    with torch.no_grad():
        for n in (6, 11, 23):
            ids = torch.randint(0, 256, (1, n))
            torch.testing.assert_close(cm(ids, use_cache=False).logits, model(ids, use_cache=False).logits)
    assert len(cm.graphs) == 1 and cm.token_dims == {"args[0]": (1,)}


def test_a_first_call_of_one_token_says_what_it_costs(tmp_path, caplog):
    model = _llama()
    cm = _compile(model, tmp_path)
    with torch.no_grad(), caplog.at_level(logging.WARNING, logger="vexplore"):
        cm(input_ids=torch.randint(0, 256, (1, 1)), use_cache=False)
    assert [w.kind for w in cm.report.warnings if w.kind == "size_one"] == ["size_one"]
    assert "Call the model with more tokens first" in caplog.text


def test_dynamic_dims_naming_nothing_passed_is_refused(tmp_path):
    cm = _compile(_llama(), tmp_path, dynamic_dims={"input_id": 1})
    with pytest.raises(ConfigError, match=r"dynamic_dims\['input_id'\]: this call passes no tensor there .*'input_ids'"):
        cm(input_ids=torch.randint(0, 256, (1, 4)), use_cache=False)
    cm = _compile(_llama(), tmp_path, dynamic_dims={"input_ids": 2})
    with pytest.raises(ConfigError, match=r"input_ids has 2 dims \(shape \(1, 4\)\), no dim 2"):
        cm(input_ids=torch.randint(0, 256, (1, 4)), use_cache=False)
    with pytest.raises(ConfigError, match="keys are input positions"):
        vx.CompileConfig(dynamic_dims={"not a name": 1})


class _Specializes(torch.nn.Module):
    """Loops over the prompt in Python: Dynamo unrolls the loop, so it specializes the token dim there."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(256, 16)

    def forward(self, input_ids):
        h = self.emb(input_ids)
        for i in range(1, input_ids.shape[1]):   # the guard
            h[:, i] += h[:, i - 1]
        return h


def test_a_specialized_token_dim_is_reported_where_it_happened(tmp_path):
    model = _Specializes().eval()
    cm = _compile(model, tmp_path, compiler="eager")
    with torch.no_grad():
        for n in (5, 9):
            ids = torch.randint(0, 256, (1, n))
            torch.testing.assert_close(cm(input_ids=ids), model(input_ids=ids))
    assert len(cm.graphs) == 2 and all(g.token is None for g in cm.graphs)   # static graphs: no CUDA-graph ladder
    (w,) = [w for w in cm.reports[0].warnings if w.kind == "token_specialized"]
    assert "Dynamo specialized dim 1 of input_ids (the token count) to a constant at" in w
    assert "test_lengths.py:" in w and "every new length traces again" in w
