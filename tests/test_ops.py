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
