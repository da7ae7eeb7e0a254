"""The compile engine end to end on the toy Llama and tiny models, eager PyTorch as the oracle."""
from __future__ import annotations

import pytest
import torch

import vexplore as vx
from models import Breaks, Noisy, Stack, Twin

ATTN = ["vexplore::attention"]


def run(cm, *inputs):
    with torch.no_grad():
        return cm(*inputs)


def _piecewise(model, cache_cfg, session, ops=("vxtest::mix",), **kw):
    """vx.compile cut at ``ops``; the eager compiler unless ``kw`` says otherwise."""
    kw.setdefault("compiler", "eager")
    return vx.compile(model, vx.CompileConfig(strategy="piecewise", splitting_ops=list(ops), cache=cache_cfg, **kw),
                      session=session)


def _check(cm, model, *inputs):
    """Run ``cm`` and compare with eager ``model``; returns the report."""
    out = run(cm, *inputs)
    with torch.no_grad():
        torch.testing.assert_close(out, model(*inputs))
    return cm.report


def test_toy_llama_piecewise_cold(toy, cache_cfg, session):
    model, inputs = toy
    cm = vx.compile(model, vx.CompileConfig(strategy="piecewise", splitting_ops=ATTN, cache=cache_cfg), session=session)
    assert cm.report is None
    out = run(cm, *inputs)
    with torch.no_grad():
        torch.testing.assert_close(out, model(*inputs))
    rep = cm.report
    c = rep.counters
    assert (c["graphs_seen"], c["pieces"], c["compiled_pieces"], c["unique_pieces"]) == (1, 9, 5, 3)
    assert c["inductor_compiles"] == 3
    assert (c["cache_misses"], c["cache_hits_memory"], c["cache_hits_disk"], c["fallbacks"]) == (3, 0, 0, 0)
    kinds = [p.kind for p in rep.pieces]
    assert kinds == ["compiled", "split_op"] * 4 + ["compiled"]
    assert [p.same_as for p in rep.pieces] == [None, None, None, None, 2, None, 2, None, None]
    assert all(p.split_ops == ("vexplore::attention",) for p in rep.pieces if p.kind == "split_op")
    assert rep.pieces[4].unique_key == rep.pieces[2].unique_key != rep.pieces[0].unique_key
    assert rep.pieces[4].compile_s == 0 and rep.pieces[2].compile_s > 0
    assert {p.cache for p in rep.pieces if p.kind == "compiled"} == {"miss"}
    assert rep.strategy == "piecewise" and "requested" in rep.strategy_reason
    assert [e.step for e in rep.events][:1] == ["dynamo_trace"]
    assert sum(e.step == "compile" for e in rep.events) == 3
    assert all(e.rss_peak_mb and e.rss_peak_mb > 0 for e in rep.events if e.step == "compile")
    d = rep.to_dict()
    import json
    assert json.loads(json.dumps(d))["counters"] == c
    # new sizes run through the one general (dynamic) compile: no new report
    x2 = model.example_inputs(23, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(run(cm, *x2), model(*x2))
    assert len(cm.reports) == 1


def test_full_is_one_piece(toy, cache_cfg, session):
    model, inputs = toy
    cm = vx.compile(model, vx.CompileConfig(strategy="full", cache=cache_cfg), session=session)
    out = run(cm, *inputs)
    with torch.no_grad():
        torch.testing.assert_close(out, model(*inputs))
    c = cm.report.counters
    assert (c["pieces"], c["compiled_pieces"], c["unique_pieces"], c["inductor_compiles"]) == (1, 1, 1, 1)


def test_recompile_toggles_without_retrace_and_hits_memory(toy, cache_cfg, session):
    model, inputs = toy
    pw = vx.CompileConfig(strategy="piecewise", splitting_ops=ATTN, cache=cache_cfg)
    full = pw.replace(strategy="full")
    cm = vx.compile(model, pw, session=session)
    run(cm, *inputs)
    gm = cm.graphs[0].gm
    reports = []
    for i in range(12):
        cfg = [full, pw, pw.replace(splitting_ops=["vxtest::nothing"]), pw.replace(compiler="eager")][i % 4]
        reports.append(cm.recompile(cfg))
        out = run(cm, *inputs)
        with torch.no_grad():
            torch.testing.assert_close(out, model(*inputs))
    assert len(cm.graphs) == 1 and cm.graphs[0].gm is gm  # never re-traced
    assert all(r.counters["compiled_pieces"] >= 1 and r.kind == "recompile" for r in reports)
    # the first round compiled; every later round is a memory hit
    assert reports[0].counters["inductor_compiles"] == 1
    assert reports[1].counters["cache_hits_memory"] == 3 and reports[1].counters["inductor_compiles"] == 0
    for r in reports[4:]:
        assert r.counters["inductor_compiles"] == 0
        assert r.counters["cache_misses"] == 0
    assert reports[2].counters["pieces"] == 1
    assert any("no split points found, compiled as one piece" in w for w in reports[2].warnings)
    assert reports[3].counters["eager_compiles"] == 3 and reports[3].pieces[0].cache is None
    assert len(session.monitor.reports) == 13


def test_auto_strategy_records_reason(cache_cfg, session):
    m = Stack(layers=2).eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, vx.CompileConfig(splitting_ops=["vxtest::mix"], compiler="eager", cache=cache_cfg), session=session)
    run(cm, x)
    assert cm.report.strategy == "piecewise" and "vxtest::mix" in cm.report.strategy_reason
    r = cm.recompile(cm.config.replace(auto_min_nodes=1000))
    assert r.strategy == "full" and "auto_min_nodes=1000" in r.strategy_reason
    r = cm.recompile(cm.config.replace(splitting_ops=["vxtest::nothing"]))
    assert r.strategy == "full" and "no split ops" in r.strategy_reason


def test_stack_pieces_and_split_rules(cache_cfg, session):
    m = Stack(layers=3).eval()
    x = torch.randn(8, 16)
    c = _check(_piecewise(m, cache_cfg, session), m, x).counters
    assert (c["pieces"], c["compiled_pieces"], c["unique_pieces"], c["eager_compiles"]) == (7, 4, 3, 3)
    # consecutive split ops share one piece, getitem stays with its producer
    t = Twin().eval()
    pieces = _check(_piecewise(t, cache_cfg, session, ops=("vxtest::mix", "vxtest::pair")), t, x).pieces
    assert [p.kind for p in pieces] == ["compiled", "split_op", "compiled"]
    assert pieces[1].split_ops == ("vxtest::mix", "vxtest::pair")
    assert any(n.target == "operator.getitem" for n in pieces[1].graph_nodes)


def test_changing_one_activation_changes_one_key(cache_cfg, session):
    x = torch.randn(8, 16)
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], compiler="eager", cache=cache_cfg)
    keys = []
    for acts in (["relu"] * 3, ["relu", "tanh", "relu"]):
        torch.manual_seed(0)
        cm = vx.compile(Stack(3, acts=acts).eval(), cfg, session=session)
        run(cm, x)
        keys.append([p.unique_key for p in cm.report.pieces])
    diff = [i for i, (a, b) in enumerate(zip(*keys)) if a != b]
    assert diff == [2]  # the piece holding layer 1's activation (and layer 0's tail)


def test_graph_breaks_compile_every_graph(cache_cfg, session):
    m = Breaks().eval()
    cm = _piecewise(m, cache_cfg, session)
    rep = _check(cm, m, torch.randn(8, 16))
    assert rep.counters["graphs_seen"] == 2
    assert [p.graph for p in rep.pieces] == [0, 1, 1, 1]
    assert rep.graph_breaks and any("graph_break" in r or "graph break" in r.lower() for r in rep.graph_breaks)
    assert cm.recompile(cm.config).counters["graphs_seen"] == 2


def test_compile_sizes_dispatch(cache_cfg, session):
    m = Stack(layers=1).eval()
    x = torch.randn(8, 16)
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], compile_sizes=[4, 16],
                           cache=cache_cfg)
    cm = vx.compile(m, cfg, session=session)
    run(cm, x)
    c = cm.report.counters
    # 2 unique pieces x (general + 2 sizes)
    assert (c["unique_pieces"], c["inductor_compiles"], c["cache_misses"]) == (2, 6, 6)
    first = cm.report.pieces[0]
    assert first.sizes == (None, 4, 16) and [s for s, _ in first.cache_by_size] == [None, 4, 16]
    runner = cm.graphs[0].runner.fn.__self__.__dict__[first.name].fn  # the stitched parent's; .fn: in the emergency guard
    dispatch = runner.__closure__[0].cell_contents if runner.__closure__ else runner
    assert sorted(dispatch.by_size) == [4, 16]
    ran = []   # which compile each call reached: static ones give the same numbers, so count calls

    def tagged(tag, fn):
        return lambda *a: (ran.append(tag), fn(*a))[1]
    dispatch.general = tagged("general", dispatch.general)
    for size in list(dispatch.by_size):
        dispatch.by_size[size] = tagged(size, dispatch.by_size[size])
    for n in (4, 16, 5):
        xn = torch.randn(n, 16)
        with torch.no_grad():
            torch.testing.assert_close(run(cm, xn), m(xn))
    assert ran == [4, 16, "general"]


def test_validate_reports_per_piece(toy, cache_cfg, session):
    model, inputs = toy
    cm = vx.compile(model, vx.CompileConfig(strategy="piecewise", splitting_ops=ATTN, validate=True,
                                            compiler="eager", cache=cache_cfg), session=session)
    run(cm, *inputs)
    vals = [p.validation for p in cm.report.pieces if p.kind == "compiled"]
    assert len(vals) == 5 and all(v.startswith("ok") for v in vals)
    assert cm.report.counters["validation_mismatches"] == 0
    assert cm.report.validation == ("graph 0: ok (max rel err 0; outputs, 0 written inputs)",)


def test_validation_mismatch_is_reported(cache_cfg, session):
    """A piece that disagrees with eager is flagged on the piece, counted and warned: never ignored.

    The disagreement is real: the piece draws random numbers, so the compiled run and the eager
    reference run differ (Inductor's RNG is not eager's)."""
    m = Noisy().eval()
    cm = _piecewise(m, cache_cfg, session, validate=True, compiler="inductor")
    with pytest.warns(vx.VexploreValidationWarning, match="mismatch"):
        run(cm, torch.randn(8, 16))
    bad = [p for p in cm.report.pieces if p.validation and p.validation.startswith("mismatch")]
    assert [p.index for p in bad] == [0] and bad[0].max_rel_err > 1e-3
    assert cm.report.pieces[2].validation.startswith("ok")
    # the piece, and the whole graph end to end
    assert cm.report.counters["validation_mismatches"] == 2
    assert cm.report.validation[0].startswith("graph 0: mismatch: max relative error")


def test_compare_names_what_differs():
    from vexplore.engine.build import validate

    assert validate.compare((torch.ones(3),), (torch.zeros(3) + 2,))[0].startswith("mismatch: max relative error")
    assert validate.compare((torch.ones(3, 2),), (torch.ones(3),))[0].startswith("mismatch: output 0 is (3, 2)")
    assert validate.compare(torch.ones(3), torch.ones(3))[0].startswith("ok")


def test_split_op_missing_warns_in_report(cache_cfg, session):
    m = Stack(layers=1).eval()
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=["mylib::absent"], compiler="eager",
                                        cache=cache_cfg), session=session)
    run(cm, torch.randn(8, 16))
    assert cm.report.counters["pieces"] == 1
    assert any("no split points found, compiled as one piece" in w for w in cm.report.warnings)


def test_recompile_before_call_is_a_clear_error(session):
    cm = vx.compile(Stack(1), vx.CompileConfig(compiler="eager"), session=session)
    with pytest.raises(vx.VexploreError, match="Call the compiled model once"):
        cm.recompile(strategy="full")


def test_cancel_keeps_previous_callables(cache_cfg, session):
    m = Stack(layers=2).eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], compiler="eager",
                                        cache=cache_cfg), session=session)
    run(cm, x)
    before = cm.graphs[0].runner.fn
    unsubscribe = session.monitor.subscribe(lambda ev: session.monitor.cancel())   # at the recompile's first step
    try:
        with pytest.raises(vx.errors.CancelledError):
            cm.recompile(strategy="full")
    finally:
        unsubscribe()
    assert cm.graphs[0].runner.fn is before and cm.config.strategy == "piecewise"
    assert cm.recompile(strategy="full").counters["pieces"] == 1


class _Scaled(torch.nn.Module):
    """A Python bool in the call: a new value fails Dynamo's guard and traces again."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, scale: bool) -> torch.Tensor:
        h = self.a(x)
        return h * 2 if scale else h


def test_only_the_first_1_token_graph_is_called_dynamos_extra_trace(session):
    """Dynamo's 0/1 rule costs one 1-token graph; a second one (a changed bool here) is said to be
    something else, and the oracle (eager) agrees on every call."""
    m = _Scaled().eval()
    cm = vx.compile(m, vx.CompileConfig(compiler="eager", cache=vx.CacheConfig(tiers=())), session=session)
    with torch.no_grad():
        for n, scale in [(8, True), (1, True), (1, False), (1, False)]:
            x = torch.randn(n, 8)
            torch.testing.assert_close(cm(x, scale), m(x, scale))
    said = [(w.kind, w.graph, str(w)) for r in cm.reports for w in r.warnings]
    assert len(cm.graphs) == 3 and [s[:2] for s in said] == [("decode_trace", 1), ("decode_trace", 2)]
    assert "one extra trace, once" in said[0][2] and "traced for a 1-token call again" in said[1][2]


def test_piece_inputs_propagate_where_meta_is_missing(cache_cfg, session):
    """Pieces' example inputs: Dynamo's fake values, or fake propagation where a graph lacks them."""
    from vexplore.engine.ops import op_name
    from vexplore.engine.split.split import example_inputs, split_graph

    m = Stack(layers=2).eval()
    cm = vx.compile(m, vx.CompileConfig(compiler="eager", cache=cache_cfg), session=session)
    run(cm, torch.randn(8, 16))
    g = cm.graphs[0]
    split = split_graph(g.gm, lambda n: op_name(n) == "vxtest::mix")
    from_meta, how = example_inputs(split, g.fake_inputs, g.fake_mode)
    assert how.startswith("Dynamo")
    for p in split.pieces:   # drop the meta, as a graph not from Dynamo would have it
        for n in p.module.graph.nodes:
            n.meta.pop("example_value", None)
    propagated, how = example_inputs(split, g.fake_inputs, g.fake_mode)
    assert how.startswith("propagated")
    for name, vals in from_meta.items():
        got = propagated[name]
        assert [tuple(map(str, v.shape)) if isinstance(v, torch.Tensor) else str(v) for v in got] == \
               [tuple(map(str, v.shape)) if isinstance(v, torch.Tensor) else str(v) for v in vals]


def test_cpu_isa_warmup_only_for_cpu_code(monkeypatch):
    """The CPU vector-ISA probe is warmed only where Inductor will emit CPU code: on a GPU host
    torch 2.11's probe costs seconds per ISA (it made an H100 warm start 36 s)."""
    from vexplore.engine.model import _compiles_for_cpu

    assert _compiles_for_cpu(torch.nn.Linear(2, 2))
    assert not _compiles_for_cpu(torch.nn.Linear(2, 2, device="meta"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not _compiles_for_cpu(lambda x: x + 1)       # no state: the GPU decides
    assert _compiles_for_cpu(torch.nn.Linear(2, 2))      # CPU weights on a GPU host
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _compiles_for_cpu(lambda x: x + 1)


def test_split_op_runners_are_the_generated_forward(session):
    """A split op's runner is its GraphModule's generated forward, not the lazy stub that goes through
    nn.Module.__call__ on every call (2-4 us a split op a call)."""
    m = Stack(layers=1).eval()
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], compiler="eager"),
                    session=session)
    x = torch.randn(8, 16)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    parent = cm.graphs[0].runner.fn.__self__
    split = [p.name for p in cm.report.pieces if p.kind == "split_op"]
    assert split and all(parent.__dict__[n].__func__.__name__ == "forward" for n in split)
