"""vx.op_name and the default split ops in the forms Dynamo leaves them."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

import vexplore as vx
from vexplore.engine.ops import matches
import models  # noqa: F401  (registers vxtest ops)


def test_op_name_forms():
    g = fx.Graph()
    x = g.placeholder("x")
    a = g.call_function(torch.ops.vxtest.mix.default, (x,))
    b = g.call_function(torch.ops.vxtest.mix, (a,))
    c = g.call_function(torch.ops.aten.add.Tensor, (a, b))
    d = g.call_function(operator.add, (c, 1))
    e = g.call_function(F.scaled_dot_product_attention, (d, d, d))
    f = g.call_method("view", (e, -1))
    g.output(f)
    names = [vx.op_name(n) for n in g.nodes]
    assert names == ["placeholder", "vxtest::mix.default", "vxtest::mix", "aten::add.Tensor", "operator.add",
                     "torch._C._nn.scaled_dot_product_attention", "torch.Tensor.view", "output"]
    assert all("0x" not in n for n in names)


def test_call_module_name():
    gm = fx.symbolic_trace(nn.Sequential(nn.Linear(2, 2)))
    assert [vx.op_name(n) for n in gm.graph.nodes if n.op == "call_module"] == ["torch.nn.modules.linear.Linear"]


def test_matching_overloads():
    assert matches("vxtest::mix.default", ["vxtest::mix"])       # no overload: every overload
    assert matches("vxtest::mix", ["vxtest::mix.default"])       # a packet call matches its overloads
    assert not matches("vxtest::mixer.default", ["vxtest::mix"])
    assert not matches("vxtest::mix.other", ["vxtest::mix.default"])
    assert matches("torch._C._nn.linear", ["torch._C._nn.linear"])


class SDPA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv, self.o = nn.Linear(16, 48), nn.Linear(16, 16)

    def forward(self, x):
        q, k, v = self.qkv(x).view(1, x.shape[0], 3, 16).unbind(2)
        return self.o(F.scaled_dot_product_attention(q, k, v, is_causal=True)[0]) + x


class MHA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.m = nn.Linear(16, 16), nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.m(h, h, h, need_weights=False)[0] + x


def test_default_split_ops_cut_plain_attention(session):
    for model, x, op in ((SDPA(), torch.randn(8, 16), "torch._C._nn.scaled_dot_product_attention"),
                         (MHA(), torch.randn(1, 8, 16), "torch.nn.functional.multi_head_attention_forward")):
        model.eval()
        cm = vx.compile(model, vx.CompileConfig(strategy="piecewise", compiler="eager", cache=vx.CacheConfig(tiers=())),
                        session=session)
        with torch.no_grad():
            torch.testing.assert_close(cm(x), model(x))
        split = [p for p in cm.report.pieces if p.kind == "split_op"]
        assert len(split) == 1 and split[0].split_ops == (op,)


class Gelu(nn.Module):
    """linear -> F.gelu -> linear: Dynamo records F.gelu as torch._C._nn.gelu."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x):
        return self.b(F.gelu(self.a(x)))


def _eager_pw(model, session, **cfg):
    return vx.compile(model.eval(), vx.CompileConfig(strategy="piecewise", compiler="eager",
                                                     cache=vx.CacheConfig(tiers=()), **cfg), session=session)


def test_near_miss_split_op_says_did_you_mean(session):
    x = torch.randn(4, 16)
    cm = _eager_pw(Gelu(), session, splitting_ops=["torch.nn.functional.gelu"])
    with torch.no_grad():
        cm(x)
    (w,) = [w for w in cm.report.warnings if w.kind == "no_split"]
    assert "'torch.nn.functional.gelu' matches no node; did you mean 'torch._C._nn.gelu' (1x)?" in w
    assert "The graph calls: torch._C._nn.linear 2x, torch._C._nn.gelu 1x." in w
    cm2 = _eager_pw(Gelu(), session, splitting_ops=["torch._C._nn.gelu", "torch.nn.functional.relu"])
    with torch.no_grad():
        torch.testing.assert_close(cm2(x), cm2.model(x))
    assert cm2.report.counters["pieces"] == 3
    (w,) = [w for w in cm2.report.warnings if w.kind in ("no_split", "split_op_missing")]
    assert w.kind == "split_op_missing" and "'torch.nn.functional.relu' matches no node; did you mean 'torch._C._nn.gelu'" not in w
    assert "'torch.nn.functional.relu' matches no node of this graph" in w


def test_no_split_lists_what_the_graph_calls_not_the_defaults(session):
    cm = _eager_pw(Gelu(), session)
    with torch.no_grad():
        cm(torch.randn(4, 16))
    (w,) = [w for w in cm.report.warnings if w.kind == "no_split"]
    assert "none of the default split ops (the attention ops) is in it. The graph calls" in w
    assert "torch._C._nn.linear 2x" in w and "scaled_dot_product" not in w


def test_closest_names():
    from vexplore.engine.split.opsuggest import closest

    present = ["torch._C._nn.linear", "torch._C._nn.gelu", "aten::gelu.default", "torch.Tensor.softmax"]
    assert closest("torch.nn.functional.gelu", present) == ["torch._C._nn.gelu", "aten::gelu.default"]
    assert closest("torch.softmx", present) == ["torch.Tensor.softmax"]
    assert closest("mylib::attention", present) == []


def test_stock_transformer_encoder_splits_at_attention_with_fast_path_off(session):
    """nn.TransformerEncoder in eval() under no_grad takes PyTorch's fast path (one opaque
    _transformer_encoder_layer_fwd per layer); vexplore traces the decomposed path instead."""
    torch.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2, enable_nested_tensor=False)
    x = torch.randn(2, 5, 16)
    cm = _eager_pw(enc, session)
    assert torch.backends.mha.get_fastpath_enabled()
    with torch.no_grad():
        torch.testing.assert_close(cm(src=x), enc(src=x))
        y = torch.randn(3, 5, 16)                             # dim 0 of a float input is the one marked
        torch.testing.assert_close(cm(src=y), enc(src=y))
    assert torch.backends.mha.get_fastpath_enabled()          # restored after each call
    assert len(cm.graphs) == 1                                # the flag did not cost a re-trace
    split = [p for p in cm.report.pieces if p.kind == "split_op"]
    assert [p.split_ops for p in split] == [("torch.nn.functional.multi_head_attention_forward",)] * 2
    assert cm.report.counters["pieces"] == 5
    (w,) = [w for w in cm.report.warnings if w.kind == "fast_path"]
    assert "nn.MultiheadAttention, nn.TransformerEncoderLayer" in w and "is off while vexplore traces" in w
    names = {vx.op_name(n) for g in cm.graphs for n in g.gm.graph.nodes}
    assert "torch._transformer_encoder_layer_fwd" not in names
