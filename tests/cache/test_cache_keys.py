"""CacheKey parts, explain() for every part, nearest-key choice (no compiles)."""
from __future__ import annotations

import dataclasses

import pytest

import vexplore as vx
from vexplore.cache.keys import CACHE_SCHEMA, CacheKey, digest_of, explain, nearest, versions

GRAPH_A = "0:placeholder:()\n1:call_function:aten::add.Tensor(%0,%0){}\n2:output:((%1,))"
GRAPH_B = "0:placeholder:()\n1:call_function:aten::mul.Tensor(%0,%0){}\n2:output:((%1,))"


def key(**kw) -> CacheKey:
    base = dict(graph="g" * 64, inputs="T[z0,64|64,1|torch.float32|cpu];S[z0]",
                config={"compiler": "inductor", "mode": "default", "inductor_options": {}},
                versions=versions("cpu"), size=None, graph_text=GRAPH_A)
    base.update(kw)
    return CacheKey(**base)


def test_versions_name_every_part():
    v = versions("cpu")
    assert set(v) == {"torch", "triton", "python", "device", "schema"}
    assert v["schema"] == str(CACHE_SCHEMA) and v["device"].startswith("cpu:")


def test_equal_keys_explain_nothing_and_share_a_digest():
    assert explain(key(), key()) == []
    assert key().digest == key(graph_text="other text, not hashed").digest == digest_of(key().parts())
    assert vx.cache.explain is explain


def test_explain_config_parts():
    a = key()
    b = key(config={"compiler": "inductor", "mode": "max-autotune", "inductor_options": {}})
    assert explain(a, b) == ["config.mode: default -> max-autotune"]
    c = key(config={"compiler": "eager", "mode": "default", "inductor_options": {"x": "1"}})
    assert explain(a, c) == ["config.compiler: inductor -> eager", "config.inductor_options: {} -> {'x': '1'}"]
    d = key(config={"compiler": "inductor", "mode": "default"})
    assert explain(a, d) == ["config.inductor_options: {} -> <unset>"]


def test_explain_every_version_part():
    a = key()
    for part, new in [("torch", "2.11.0"), ("triton", "3.6.0"), ("python", "3.12"),
                      ("device", "cuda:NVIDIA H100:sm90"), ("schema", "1")]:
        b = key(versions={**a.versions, part: new})
        assert explain(a, b) == [f"versions.{part}: {a.versions[part]} -> {new}"]


def test_explain_inputs_shape_dtype_stride_dynamic_and_count():
    a = key(inputs="T[z0,64|64,1|torch.float32|cpu];S[z0]")
    assert explain(a, key(inputs="T[z0,128|128,1|torch.float32|cpu];S[z0]")) == [
        "inputs[0]: T[z0,64|64,1|torch.float32|cpu] -> T[z0,128|128,1|torch.float32|cpu]"]
    assert explain(a, key(inputs="T[z0,64|64,1|torch.bfloat16|cpu];S[z0]")) == [
        "inputs[0]: T[z0,64|64,1|torch.float32|cpu] -> T[z0,64|64,1|torch.bfloat16|cpu]"]
    assert explain(a, key(inputs="T[z0,64|1,z0|torch.float32|cpu];S[z0]")) == [
        "inputs[0]: T[z0,64|64,1|torch.float32|cpu] -> T[z0,64|1,z0|torch.float32|cpu]"]
    # a static input (no dynamic dim) where the dynamic one was
    assert explain(a, key(inputs="T[16,64|64,1|torch.float32|cpu];C[16]")) == [
        "inputs[0]: T[z0,64|64,1|torch.float32|cpu] -> T[16,64|64,1|torch.float32|cpu]",
        "inputs[1]: S[z0] -> C[16]"]
    lines = explain(a, key(inputs="T[z0,64|64,1|torch.float32|cpu]"))
    assert len(lines) == 1 and lines[0].startswith("inputs: 2 -> 1 inputs")


def test_explain_graph_names_the_first_differing_node():
    a, b = key(), key(graph="h" * 64, graph_text=GRAPH_B)
    assert explain(a, b) == ["graph: node 1 differs: 1:call_function:aten::add.Tensor(%0,%0){} -> "
                             "1:call_function:aten::mul.Tensor(%0,%0){}"]
    c = key(graph="h" * 64, graph_text=GRAPH_A + "\n3:output:()")
    assert explain(a, c) == [f"graph: 3 -> 4 nodes ({'g' * 12} -> {'h' * 12})"]
    # keys read from an index carry no graph text: the hashes are shown
    assert explain(a.parts(), b.parts()) == [f"graph: structure differs ({'g' * 12} -> {'h' * 12})"]


def test_explain_size():
    assert explain(key(), key(size=16)) == ["size: general -> 16"]
    assert explain(key(size=1), key(size=16)) == ["size: 1 -> 16"]


def test_to_dict_round_trip_keeps_graph_text():
    k = key(size=16)
    back = CacheKey.from_dict(k.to_dict())
    assert back == k and back.graph_text == GRAPH_A and back.digest == k.digest


def test_nearest_prefers_fewest_differing_parts():
    want = key()
    mode = key(config={**want.config, "mode": "max-autotune"})
    graph_and_size = key(graph="h" * 64, size=16)
    found = nearest(want, [("disk", graph_and_size.digest, graph_and_size.parts()), ("memory", want.digest, want),
                           ("remote", mode.digest, mode.parts())])
    assert found == ("remote", mode.digest, ["config.mode: max-autotune -> default"], ["config.mode"])
    assert nearest(want, [("memory", want.digest, want)]) is None   # the key itself is not its own neighbour


def test_key_is_frozen_and_caches_its_digest():
    k = key()
    with pytest.raises(dataclasses.FrozenInstanceError):
        k.size = 3  # type: ignore[misc]
    assert k.digest is k.digest == digest_of(k.parts()) and k == key()
