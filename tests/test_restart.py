"""Dynamo's restart signals pass through vexplore's backend untouched: no stale Python values.

``ReadsAfterBreak`` reads ``h.mean().item()`` (a graph break), prints it and scales by it. Inductor's
tensorify pass raises TensorifyScalarRestartAnalysis so that Dynamo traces the frame again with the
float specialized; were vexplore to take it for a failed compile (and retry), the compiled piece
would bake in one call's value and every later call would print and return that value. Eager
PyTorch is the oracle: the printed values and the outputs of 5 calls with changing values.
"""
from __future__ import annotations

import pytest
import torch

import vexplore as vx
from models import ReadsAfterBreak

SPLIT = ["vxtest::mix"]


def _calls(fn, capsys, n: int = 5, seed: int = 1) -> tuple[list[str], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(6, 16, generator=g) + 0.5 * i for i in range(n)]
    capsys.readouterr()
    with torch.no_grad():
        outs = [fn(x) for x in xs]
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("mean= ")]
    return printed, outs


def _model() -> ReadsAfterBreak:
    torch.manual_seed(0)
    return ReadsAfterBreak().eval()


def _same_as_eager(model, fn, capsys, seed: int = 1) -> None:
    want, ref = _calls(model, capsys, seed=seed)
    got, outs = _calls(fn, capsys, seed=seed)
    assert len(set(want)) == 5 and got == want
    for o, r in zip(outs, ref):
        torch.testing.assert_close(o, r)


def _no_aborted_graph_kept(cm) -> None:
    assert [g.index for g in cm.graphs] == list(range(len(cm.graphs)))
    for rep in cm.reports:
        assert {p.graph for p in rep.pieces} <= set(range(len(cm.graphs)))
        assert not any("TensorifyScalarRestartAnalysis" in (p.fallback_reason or "") for p in rep.pieces)


@pytest.mark.slow
@pytest.mark.parametrize("compiler", ["inductor", "eager"])
@pytest.mark.parametrize("strategy", ["full", "piecewise"])
def test_values_after_a_graph_break_are_fresh(compiler, strategy, cache_cfg, session, capsys):
    model = _model()
    cm = vx.compile(model, vx.CompileConfig(strategy=strategy, splitting_ops=SPLIT, compiler=compiler,
                                            cache=cache_cfg), session=session)
    _same_as_eager(model, cm, capsys)
    _no_aborted_graph_kept(cm)
    aborted = [e for r in cm.reports for e in r.events if (e.detail or "").startswith("aborted trace")]
    # Inductor's tensorify pass makes Dynamo trace again (so a trace was aborted); the eager compiler never asks
    assert bool(aborted) == (compiler == "inductor")
    assert all(e.graph is None for e in aborted)


@pytest.mark.slow
def test_a_restart_met_by_recompile_runs_that_piece_eagerly(cache_cfg, session, capsys):
    """recompile has no Dynamo trace to restart: the piece that needs one runs eagerly and says why."""
    model = _model()
    cm = vx.compile(model, vx.CompileConfig(strategy="piecewise", splitting_ops=SPLIT, compiler="eager",
                                            cache=cache_cfg), session=session)
    _same_as_eager(model, cm, capsys)
    graphs = len(cm.graphs)
    with pytest.warns(vx.VexploreFallbackWarning, match="dynamo restart"):
        rep = cm.recompile(compiler="inductor")
    restarted = [p for p in rep.pieces if p.fallback_reason and p.fallback_reason.startswith("dynamo restart")]
    assert restarted and all(p.compiler == "eager" and "vx.compile(model) again" in p.fallback_reason
                             for p in restarted)
    assert len(cm.graphs) == graphs
    _same_as_eager(model, cm, capsys, seed=2)


@pytest.mark.slow
def test_a_restart_met_in_a_worker_reaches_dynamo(cache_cfg, capsys):
    s = vx.Session()
    try:
        model = _model()
        cm = vx.compile(model, vx.CompileConfig(strategy="piecewise", splitting_ops=SPLIT, workers=2,
                                                cache=cache_cfg), session=s)
        _same_as_eager(model, cm, capsys)
        _no_aborted_graph_kept(cm)
        details = [e.detail or "" for r in cm.reports for e in r.events]
        # the float's pieces compile in this process, where Dynamo can act on the restart signal
        assert any("in-process: the piece takes a Python float" in d for d in details)
        assert any(e.detail and e.detail.startswith("worker pid") for r in cm.reports for e in r.events)
    finally:
        s.close()


@pytest.mark.slow
def test_the_explorers_background_compile_keeps_values_fresh(cache_cfg, session, capsys):
    pytest.importorskip("ipywidgets")
    model = _model()
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=SPLIT, compiler="eager", cache=cache_cfg)
    ex = vx.explore(model, torch.randn(6, 16), config=cfg, session=session)
    _same_as_eager(model, ex.cm, capsys)                  # eager traces: graphs that read the float
    assert ex.compile(cfg.replace(compiler="inductor"), wait=True)
    rep = ex.cm.report
    assert rep.kind == "recompile" and rep.config["compiler"] == "inductor"
    _same_as_eager(model, ex.cm, capsys, seed=2)
