"""CUDA-graph dispatch logic that needs no GPU: size choice, capture order, token inputs."""
from __future__ import annotations

import torch

import vexplore as vx
from vexplore.engine import _torch_compat as tc
from vexplore.engine import cudagraph as cgm
from vexplore.engine.inputplan import GraphInputs, InputPlan
from models import KVArgument, KVBuffer, Stack


def test_pick_size():
    sizes = [2, 4, 8, 16]
    assert cgm.pick_size(8, sizes, pad=False) == 8
    assert cgm.pick_size(5, sizes, pad=False) is None      # not captured: runs without graphs
    assert cgm.pick_size(5, sizes, pad=True) == 8          # padding only when allowed
    assert cgm.pick_size(17, sizes, pad=True) is None      # above the largest capture
    assert cgm.pick_size(1, sizes, pad=True) == 2


def test_capture_sizes_largest_first():
    assert cgm.capture_sizes([4, 1, 16, 4], dynamic=True) == [16, 4]   # 1 lives in its own Dynamo graph
    assert cgm.capture_sizes(None, dynamic=True) == sorted((s for s in cgm.DEFAULT_SIZES if s >= 2), reverse=True)
    assert cgm.capture_sizes([4, 8], dynamic=False) == [None]


def _graph_inputs(cm):
    g = cm.graphs[0]
    return GraphInputs(g.real_inputs, g.fake_inputs, g.token, g.roles, g.names, g.written_inputs(),
                       tc.symbol_hints(g.fake_mode))


def test_input_plan_uses_buffers_and_written_caches_in_place(cache_cfg, session):
    """Parameters, module buffers and a written cache argument are captured at their own address
    (writes land in the caller's tensor); token-dependent inputs are copied into graph buffers."""
    m = KVBuffer().eval()
    cm = vx.compile(m, vx.CompileConfig(compiler="eager", cache=cache_cfg), session=session)
    x, pos = torch.randn(4, 16), torch.arange(40, 44)
    with torch.no_grad():
        cm(x, pos)
    g = cm.graphs[0]
    plan = InputPlan.make(_graph_inputs(cm))
    by_name = dict(zip(g.names, range(len(g.names))))
    assert {g.names[i] for i in plan.fixed} == {n for n, _ in m.named_parameters()} | {"kv", "calls"}
    assert {g.names[i] for i in plan.copied} == {"args[0]", "args[1]"}      # x and pos: token-dependent
    assert {g.names[i] for i in plan.written} == {"kv", "calls"}
    assert plan.dims[by_name["args[0]"]] == 0 and plan.dims[by_name["args[1]"]] == 0
    assert plan.skip_reason(g.real_inputs) is None

    cache = torch.randn(64, 16)
    a = KVArgument().eval()
    cm = vx.compile(a, vx.CompileConfig(compiler="eager", cache=cache_cfg), session=session)
    with torch.no_grad():
        cm(x, pos, cache)
    g = cm.graphs[0]
    plan = InputPlan.make(_graph_inputs(cm))
    assert "args[2]" in {g.names[i] for i in plan.fixed} and {g.names[i] for i in plan.written} == {"args[2]"}
    assert g.roles[g.names.index("args[2]")] == "argument"


def test_input_plan_refuses_a_written_input_that_shares_memory(cache_cfg, session):
    """A written token-dependent input that shares memory with another input cannot be copied
    into graph buffers without losing the write: that graph runs without CUDA graphs, saying why."""
    def f(x, y):
        x.mul_(2)
        return x + y
    cm = vx.compile(f, vx.CompileConfig(compiler="eager", cache=cache_cfg), session=session)
    base = torch.randn(8, 16)
    with torch.no_grad():
        cm(base, base.view(8, 16))
    plan = InputPlan.make(_graph_inputs(cm))
    reason = plan.skip_reason(cm.graphs[0].real_inputs)
    assert reason is not None and "share memory" in reason and "args[0]" in reason


def test_moving_a_fixed_input_twice_copies_it_from_then_on():
    plan = InputPlan(fixed=[0, 1], copied=[2], scalars=[], dims={2: 0}, written={1}, names=["w", "kv", "x"])
    current = {0: 100, 1: 200}
    assert not plan.moved(1, 200, current)           # where it was: nothing to do
    assert not plan.moved(1, 300, current)           # moved once: captured again at the new address
    assert plan.fixed == [0, 1] and plan.moves[1] == 1
    assert not plan.moved(1, 300, current)           # the same move seen from another size
    assert plan.moved(1, 400, current)               # moved again: copied (and copied back) from now on
    assert plan.fixed == [0] and plan.copied == [2, 1]


def test_cudagraph_without_cuda_says_so(cache_cfg, session):
    m = Stack(layers=1).eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, vx.CompileConfig(compiler="eager", cudagraph="piecewise", cache=cache_cfg), session=session)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    assert cm.report.counters["cudagraph_captures"] == 0
    assert any("needs a CUDA device" in w for w in cm.report.warnings)
