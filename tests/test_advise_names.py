"""Advice, alerts and recompiles say what changed in the model's own names, and the fix that fits it.

Each model here re-traces for a different reason Dynamo words in its own terms (a guard helper, a
stack slot, a source, a module's _modules); the advisor's message, its evidence, the session's
alerts and the recompile records the explorer lists must carry none of those terms.
"""
from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch import nn

import vexplore as vx
from models import ReadsGlobal, Remembers, Scaled, Swappable, TakesExtras, ValueAfterBreak, eager_cfg, line_of
from vexplore.engine.capture.explain import DYNAMO_NAME


def _called(model, session, calls, before_each=None):
    """``model`` compiled and called with each of ``calls``; eager on a twin is the oracle."""
    cm = vx.compile(model, eager_cfg(), session=session)
    ref = copy.deepcopy(model)
    for i, args in enumerate(calls):
        if before_each is not None:
            before_each(i, model, ref)
        with torch.no_grad():
            torch.testing.assert_close(cm(*args), ref(*copy.deepcopy(args)))
    return cm


def _said(cm, session) -> list[str]:
    """Everything the user reads about this model's re-traces: advice, evidence names, alerts, recompiles."""
    advice = vx.advise(cm)
    texts = [a.message for a in advice] + [str(a.evidence.get("name", "")) for a in advice]
    texts += [str(g) for a in advice for g in a.evidence.get("guards", ())]
    texts += [a.message for a in session.monitor.alerts]
    return texts + [t for r in cm.recompiles for t in (r.reason, r.name, r.guard, str(r))]


def _clean(cm, session) -> None:
    found = [t for t in _said(cm, session) if DYNAMO_NAME.search(t)]
    assert found == []


def test_list_the_model_appends_to_is_explained_as_a_growing_list(session):
    x = torch.randn(4, 8)
    cm = _called(Remembers().eval(), session, [(x,)] * 4)
    [a] = vx.advise(cm)
    where = line_of(Remembers.forward, "self.seen.append(")
    assert (a.code, a.severity, a.config) == ("recompile-storm", "warning", None)
    assert (a.evidence["name"], a.evidence["recompiles"], a.evidence["frame"]) == ("self.seen", 3, where)
    assert a.evidence["guards"] == ["not self.seen", "len(self.seen) == 1", "len(self.seen) == 2"]
    assert a.message == (
        f"self.seen at {where} changed on 3 calls, and each re-traced the model. Each new value traces and compiles a "
        "graph again. self.seen is a list the model appends to: it grows on every call (compiled for lengths 0, 1, 2), "
        "and Dynamo guards its length, so each new length traces the model again. Keep it out of the compiled forward "
        "(collect after the call returns, in the caller), or keep a tensor of fixed size written in place.")
    assert "arguments" not in a.message
    [storm] = [al for al in session.monitor.alerts if al.code == "recompile-storm"]
    assert storm.message.startswith("self.seen keeps changing (the length of self.seen changed (compiled for "
                                    "len(self.seen) == 2)): re-traced 3 times")
    _clean(cm, session)


def test_global_float_names_the_global(session, monkeypatch):
    def set_scale(i, *_):
        monkeypatch.setattr("models.SCALE", (0.5, 0.7)[i])
    cm = _called(ReadsGlobal().eval(), session, [(torch.randn(4, 8),)] * 2, set_scale)
    [a] = vx.advise(cm)
    assert (a.code, a.evidence["name"], a.evidence["guards"]) == ("recompile", "SCALE", ["SCALE == 0.5"])
    assert a.message.startswith(f"SCALE at {line_of(ReadsGlobal.forward, '* SCALE')} changed and the model was "
                                "traced again (SCALE changed (compiled for SCALE == 0.5)). SCALE is a Python float")
    _clean(cm, session)


def test_swapped_module_names_the_attribute(session):
    def swap(i, model, ref):
        if i == 1:
            model.act, ref.act = nn.GELU(), nn.GELU()
    cm = _called(Swappable().eval(), session, [(torch.randn(4, 8),)] * 2, swap)
    [a] = vx.advise(cm)
    assert (a.code, a.evidence["name"], a.evidence["guards"]) == ("recompile", "self.act", ["type(self.act) is ReLU"])
    assert a.message.endswith("self.act now holds another object: Dynamo compiled in the one it found. Set it before "
                              "the first call, or keep each variant in a model of its own (one compile each).")
    _clean(cm, session)


def test_dict_key_names_the_argument_and_its_key(session):
    x = torch.randn(4, 8)
    cm = _called(TakesExtras().eval(), session, [(x, {}), (x, {"bias": torch.ones(8)})])
    [a] = vx.advise(cm)
    assert (a.code, a.evidence["name"], a.evidence["guards"]) == ("recompile", "extras", ["'bias' not in extras"])
    assert "Dynamo guards which keys extras holds, and a key came or went." in a.message
    _clean(cm, session)


def test_value_read_before_a_break_says_keep_it_a_tensor(session, capsys):
    cm = _called(ValueAfterBreak().eval(), session, [(torch.randn(4, 8),) for _ in range(3)])
    at = line_of(ValueAfterBreak.forward, "round(m, 3)")
    found = {a.evidence["name"]: a for a in vx.advise(cm) if a.code == "recompile"}
    assert sorted(found) == [f"a Python value at {at}", "m"]
    assert found["m"].evidence["frame"] == line_of(ValueAfterBreak.forward, "return h * m")
    for a in found.values():
        assert "computed before a graph break" in a.message and "Keep it a tensor (no .item())" in a.message
        assert "torch.tensor(" not in a.message      # not an argument: there is nothing to pass as a tensor
    _clean(cm, session)


def test_positional_and_keyword_scale_keep_the_parameters_name(session):
    x = torch.randn(4, 8)
    cm = _called(Scaled().eval(), session, [(x, 2.0), (x, 3.0)])
    with torch.no_grad():
        here = f"{__file__}:{inspect.currentframe().f_lineno + 1}"
        cm(x, scale=3.0)
    names = [(r.name, r.frame) for r in cm.recompiles]
    assert names == [("scale", line_of(Scaled.forward, "* scale")), ("len(args)", here)]
    _clean(cm, session)


@pytest.mark.filterwarnings("ignore:`past_key_values` is deprecated:FutureWarning")
def test_hf_cache_tensors_are_named_by_the_argument_path(session):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    cm = vx.compile(model, eager_cfg(), session=session)
    mine, ref = transformers.DynamicCache(config=cfg), transformers.DynamicCache(config=cfg)
    ids = torch.randint(0, 128, (1, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for _ in range(3):    # prefill, then two decode calls
            want = model(input_ids=ids, past_key_values=ref, use_cache=True).logits
            torch.testing.assert_close(cm(input_ids=ids, past_key_values=mine, use_cache=True).logits, want)
            ids = want[:, -1:].argmax(-1)
    assert [(r.name, r.guard) for r in cm.recompiles] == [
        ("past_key_values.layers[0].is_initialized", "past_key_values.layers[0].is_initialized == False"),
        ("past_key_values.layers[0].keys",
         "tensor 'past_key_values.layers[0].keys' size mismatch at index 2. expected 8, actual 9")]
    [a] = vx.advise(cm)    # the decode trace is no advice; the cache growing is, with a fix that fits a cache
    assert (a.code, a.evidence["name"]) == ("recompile", "past_key_values.layers[0].keys")
    assert "whose size at dim 2 went 8 -> 9: it grows between calls" in a.message
    assert "torch._dynamo.mark_dynamic(<that tensor>, 2)" in a.message and "dynamic_dims" not in a.message
    _clean(cm, session)
