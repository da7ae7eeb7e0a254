"""Calls with grad enabled: pieces compile for autograd, gradients equal eager's, keyed apart."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch

import vexplore as vx
from models import Stack

MIX = ["vxtest::mix"]


def _grads(model, x):
    model.zero_grad()
    out = model(x)
    out.square().sum().backward()
    return out, [p.grad.clone() for p in model.parameters()]


def _check_grads(cm, model, ref, x):
    """``cm`` (over ``model``) and eager ``ref``: same outputs and parameter gradients."""
    model.zero_grad()
    out = cm(x)
    assert out.grad_fn is not None
    out.square().sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    want_out, want = _grads(ref, x)
    torch.testing.assert_close(out, want_out)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("strategy", ["piecewise", "full"])
def test_gradients_equal_eager(strategy, cache_cfg, session):
    """train() with grad on: compiled pieces carry a backward, split ops run eagerly with theirs."""
    torch.manual_seed(0)
    m = Stack(layers=2).train()
    ref = copy.deepcopy(m)
    cm = vx.compile(m, vx.CompileConfig(strategy=strategy, splitting_ops=MIX, cache=cache_cfg), session=session)
    for n in (8, 8, 11):        # a second call replays, a new size runs the same dynamic compile
        _check_grads(cm, m, ref, torch.randn(n, 16))
    c = cm.report.counters
    pieces = 5 if strategy == "piecewise" else 1
    assert (c["graphs_seen"], c["pieces"], c["inductor_compiles"], c["fallbacks"]) == (1, pieces, 3 if pieces == 5 else 1, 0)
    assert cm.graphs[0].grad and len(cm.reports) == 1
    assert any("compiled for autograd" in w for w in cm.report.warnings)


def test_autograd_and_inference_compiles_are_keyed_apart(cache_cfg, session):
    torch.manual_seed(0)
    m = Stack(layers=2).train()
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=MIX, cache=cache_cfg)
    cm = vx.compile(m, cfg, session=session)
    x = torch.randn(8, 16)
    cm(x).sum().backward()
    with torch.no_grad():              # Dynamo guards on grad mode: a graph of its own
        torch.testing.assert_close(cm(x), m(x))
    grad_rep, infer_rep = cm.reports
    assert [g.grad for g in cm.graphs] == [True, False]
    assert infer_rep.counters["inductor_compiles"] == 3 and infer_rep.counters["cache_misses"] == 3
    assert {p.unique_key for p in grad_rep.unique_pieces}.isdisjoint(p.unique_key for p in infer_rep.unique_pieces)
    # a second model: both kinds are memory hits now
    cm2 = vx.compile(m, cfg, session=session)
    cm2(x).sum().backward()
    with torch.no_grad():
        cm2(x)
    assert [r.counters["cache_hits_memory"] for r in cm2.reports] == [3, 3]
    assert [r.counters["inductor_compiles"] for r in cm2.reports] == [0, 0]


def test_eval_with_grad_is_right_and_warns_once(cache_cfg, session):
    torch.manual_seed(0)
    m = Stack(layers=1).eval()
    ref = copy.deepcopy(m)
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=MIX, cache=cache_cfg), session=session)
    x = torch.randn(8, 16)
    with pytest.warns(vx.VexplorePerformanceWarning, match="torch.no_grad"):
        _check_grads(cm, m, ref, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_grads(cm, m, ref, x)     # once is enough


def test_grad_call_says_why_it_runs_without_cuda_graphs(cache_cfg, session):
    """On this CPU machine the device is the reason; tests/gpu checks the grad reason."""
    m = Stack(layers=1).train()
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=MIX, compiler="eager",
                                        cudagraph="piecewise", cache=cache_cfg), session=session)
    cm(torch.randn(8, 16)).sum().backward()
    assert all("needs a CUDA device" in p.cudagraph_skip_reason for p in cm.report.pieces)


def test_workers_compile_for_autograd(cache_cfg):
    torch.manual_seed(0)
    m = Stack(layers=2).train()
    ref = copy.deepcopy(m)
    s = vx.Session()
    try:
        cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=MIX, workers=1, cache=cache_cfg), session=s)
        _check_grads(cm, m, ref, torch.randn(8, 16))
        assert cm.report.counters["worker_compiles"] == 3
    finally:
        s.close()


def test_validation_checks_gradients(cache_cfg, session):
    m = Stack(layers=2).train()
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=MIX, validate=True, cache=cache_cfg),
                    session=session)
    cm(torch.randn(8, 16))
    assert cm.report.validation[0].startswith("graph 0: ok") and "gradients" in cm.report.validation[0]
