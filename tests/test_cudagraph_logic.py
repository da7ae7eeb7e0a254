"""CUDA-graph dispatch logic that needs no GPU: size choice, capture order, token inputs."""
from __future__ import annotations

import torch

import vexplore as vx
from vexplore.engine import cudagraph as cgm
from models import Stack


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


def test_token_dims_and_sized_inputs(cache_cfg, session):
    m = Stack(layers=1).eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, vx.CompileConfig(compiler="eager", cache=cache_cfg), session=session)
    with torch.no_grad():
        cm(x)
    g = cm.graphs[0]
    dims = cgm.token_dims(g.fake_inputs, g.token)
    user = [i for i, r in enumerate(g.real_inputs) if r is x]
    assert user and (user[0], 0) in dims
    sized = cgm.sized_inputs(g.real_inputs, g.fake_inputs, g.token, 32)
    for i, (s, r) in enumerate(zip(sized, g.real_inputs)):
        if any(i == j for j, _ in dims):
            assert (s if isinstance(s, int) else s.shape[0]) == 32
        else:
            assert s is r   # weights are captured by address, never copied


def test_cudagraph_without_cuda_says_so(cache_cfg, session):
    m = Stack(layers=1).eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, vx.CompileConfig(compiler="eager", cudagraph="piecewise", cache=cache_cfg), session=session)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    assert cm.report.counters["cudagraph_captures"] == 0
    assert any("needs a CUDA device" in w for w in cm.report.warnings)
