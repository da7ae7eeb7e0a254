"""cm.graph_breaks and cm.recompiles: Dynamo's reasons, in the model's own names and lines (eager as the oracle)."""
from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch import nn

import vexplore as vx
from models import Branchy, Breaks, Counter, Scaled, eager_cfg, line_of
from vexplore.engine.explain import CallNames, guard_subject


class CountingBranchy(Counter):
    """The step counter read on both sides of a graph break: each call re-traces two frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.step += 1
        h = self.a(x)
        if h.sum() > 0:
            h = h * 2
        return h + self.step


class Project(nn.Module):
    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ w)


def check(cm, model, *args, **kwargs):
    with torch.no_grad():
        torch.testing.assert_close(cm(*args, **kwargs), model(*args, **kwargs))


def test_data_dependent_branch_names_its_line(session):
    model = Branchy().eval()
    with torch.no_grad():   # h = x: the sign of x picks the branch
        model.a.weight.copy_(torch.eye(8))
        model.a.bias.zero_()
    cm = vx.compile(model, eager_cfg(), session=session)
    x = torch.rand(4, 8) + 0.1
    check(cm, model, x)
    where = line_of(Branchy.forward, "if h.sum() > 0")
    assert [(b.reason, b.frame, b.graph, b.code) for b in cm.graph_breaks] == [
        ("Data-dependent branching", where, 0, "if h.sum() > 0:")]
    assert "torch.cond" in cm.graph_breaks[0].detail
    assert str(cm.graph_breaks[0]) == f"graph 0 ends at {where}: Data-dependent branching (if h.sum() > 0:)"
    # the call that broke the graph raised an alert, without monitor.start()
    assert [(a.code, a.severity) for a in session.monitor.alerts] == [("graph-break", "info")]
    assert where in session.monitor.alerts[0].message
    # the other branch resumes in a graph of its own, at no new break; a model without breaks sees none of these
    check(cm, model, -x)
    assert len(cm.graphs) == 3 and len(cm.graph_breaks) == 1 and cm.recompiles == []
    assert len(session.monitor.alerts) == 1
    other = vx.compile(Scaled().eval(), eager_cfg(), session=session)
    check(other, other.model, x, 2.0)
    assert other.graph_breaks == [] and other.recompiles == []


def test_a_second_compile_of_the_model_is_not_its_recompile(session):
    # Dynamo re-traces the shared frames for the second wrapper (BACKEND_MATCH): not a change in the code
    model = Branchy().eval()
    x = torch.rand(4, 8) + 0.1
    first = vx.compile(model, eager_cfg(), session=session)
    check(first, model, x)
    second = vx.compile(model, eager_cfg(), session=session)
    check(second, model, x)
    check(first, model, x)
    assert first.recompiles == [] and second.recompiles == []
    assert len(second.graph_breaks) == 1 and "recompile-storm" not in [a.code for a in session.monitor.alerts]


def test_explicit_graph_break_is_named(session):
    model = Breaks().eval()
    cm = vx.compile(model, eager_cfg(), session=session)
    check(cm, model, torch.randn(4, 16))
    [b] = cm.graph_breaks
    assert (b.reason, b.frame, b.graph, b.code) == ("Call to `torch._dynamo.graph_break()`",
                                                     line_of(Breaks.forward, "graph_break()"), 0, "torch._dynamo.graph_break()")


def test_float_argument_recompile_names_the_parameter(session):
    model = Scaled().eval()
    cm = vx.compile(model, eager_cfg(), session=session)
    x = torch.randn(4, 8)
    for s in (2.0, 3.0, 5.0):
        check(cm, model, x, s)
    # Dynamo's wrapper sees args[1]; the model calls it scale. After one change Dynamo makes it symbolic.
    [r] = cm.recompiles
    assert (r.name, r.guard, r.frame, r.graph, r.limit_hit) == ("scale", "scale == 2.0",
                                                                line_of(Scaled.forward, "* scale"), 1, False)
    assert r.reason == "scale changed (compiled for scale == 2.0)"
    assert "args[1]" in r.detail and len(cm.graphs) == 2


def test_keyword_after_positional_recompiles_at_the_call(session):
    model = Scaled().eval()
    cm = vx.compile(model, eager_cfg(), session=session)
    x = torch.randn(4, 8)
    check(cm, model, x, 2.0)
    with torch.no_grad():
        here = f"{__file__}:{inspect.currentframe().f_lineno + 1}"
        cm(x, scale=2.0)
    [r] = cm.recompiles
    assert (r.name, r.guard, r.frame, r.graph) == ("len(args)", "len(args) == 2", here, 1)
    assert r.reason.startswith("the number of arguments changed")


def test_step_counter_recompiles_until_dynamos_limit(session):
    model = Counter().eval()
    cm = vx.compile(model, eager_cfg(), session=session)
    x = torch.randn(4, 8)
    ref = Counter().eval()
    ref.load_state_dict(model.state_dict())
    limit = torch._dynamo.config.recompile_limit
    with torch.no_grad():
        for _ in range(limit + 3):   # past the limit the code runs eagerly: still right
            torch.testing.assert_close(cm(x), ref(x))
    rs = cm.recompiles
    assert [r.name for r in rs] == ["self.step"] * limit
    assert [r.guard for r in rs] == [f"self.step == {i}" for i in range(limit)]
    assert [r.graph for r in rs] == list(range(1, limit)) + [None]
    assert [r.limit_hit for r in rs] == [False] * (limit - 1) + [True]
    assert {r.frame for r in rs} == {line_of(Counter.forward, "self.step += 1")}
    assert "runs eagerly from now on" in rs[-1].reason and "model.step" in rs[0].detail
    # alerts from the calls that caused them: a storm at the third re-trace, critical at the limit
    storms = [(a.severity, a.message.split(" keeps")[0]) for a in session.monitor.alerts if a.code == "recompile-storm"]
    assert storms == [("warning", "self.step"), ("critical", "self.step")]
    assert "re-traced 3 times" in session.monitor.alerts[0].message


def test_alerts_name_a_place_once_and_a_storm_once(session):
    # each call re-traces the frames on both sides of the break, so breaks at the same line and two
    # recompiles of self.step arrive in one call: one graph-break alert, one storm alert at the third
    model = CountingBranchy().eval()
    with torch.no_grad():   # h = x: the branch is taken
        model.a.weight.copy_(torch.eye(8))
        model.a.bias.zero_()
    cm = vx.compile(model, eager_cfg(), session=session)
    ref = copy.deepcopy(model)
    x = torch.rand(4, 8) + 0.1
    for _ in range(3):
        with torch.no_grad():
            torch.testing.assert_close(cm(x), ref(x))
    assert len(cm.graph_breaks) == 3 and [r.name for r in cm.recompiles] == ["self.step"] * 4
    alerts = [(a.code, a.severity) for a in session.monitor.alerts]
    assert alerts == [("graph-break", "info"), ("recompile-storm", "warning")], alerts


def test_a_failure_reading_dynamos_records_costs_neither_the_call_nor_the_report(session, monkeypatch, caplog):
    # as if a torch release changed what vexplore reads: the model runs and reports on, said once
    from vexplore.engine import explain

    def broken(*_a, **_k):
        raise AttributeError("'CompilationMetrics' object has no attribute 'recompile_reason'")
    monkeypatch.setattr(explain.tc, "frame_compiles_since", broken)
    model = Scaled().eval()
    cm = vx.compile(model, eager_cfg(), session=session)
    x = torch.randn(4, 8)
    for s in (2.0, 3.0):
        check(cm, model, x, s)
    assert cm.report is not None and len(cm.reports) == 2 and cm.recompiles == []
    said = [r for r in caplog.records if "reading Dynamo's graph breaks and recompiles failed" in r.getMessage()]
    assert len(said) == 1


def test_tensor_size_change_names_the_tensor(session):
    model = Project()
    cm = vx.compile(model, eager_cfg(), session=session)
    x = torch.randn(4, 8)
    for k in (3, 5, 7):
        check(cm, model, x, torch.randn(8, k))
    [r] = cm.recompiles
    assert (r.name, r.graph) == ("w", 1)
    assert r.guard == "tensor 'w' size mismatch at index 1. expected 3, actual 5"
    assert r.frame == line_of(check, "cm(*args")    # no user frame reads a tensor's size: the call that passed it
    # w came by position: the advice's dynamic_dims names it by position, as the config accepts it here
    [a] = [a for a in vx.advise(cm) if a.code == "recompile"]
    assert "vx.CompileConfig(dynamic_dims={1: 1})" in a.message
    fixed = vx.compile(Project(), eager_cfg().replace(dynamic_dims={1: 1}), session=session)
    for k in (3, 5, 7):
        check(fixed, fixed.model, x, torch.randn(8, k))
    assert fixed.recompiles == [] and len(fixed.graphs) == 1


def test_call_names_map_the_wrappers_view():
    names = CallNames.of(Scaled())
    assert (names.positional, names.self_name) == (("x", "scale"), "self")
    assert names.rewrite("L['args'][1] == 2.0") == "scale == 2.0"
    assert names.rewrite("kwargs['scale'] == 2.0") == "scale == 2.0"
    assert names.rewrite("L['model'].step == 3") == "self.step == 3"
    assert names.rewrite("args[7] == 1") == "args[7] == 1"

    def fn(x, *rest):
        return x
    f = CallNames.of(fn)
    assert (f.positional, f.varargs, f.self_name) == (("x",), "rest", None)
    assert f.rewrite("args[2] == 1") == "rest[1] == 1"


@pytest.mark.parametrize("guard, subject", [
    ("self.step == 0", "self.step"), ("scale == 2.0", "scale"), ("len(args) == 2", "len(args)"),
    ("tensor 'w' size mismatch at index 1. expected 3, actual 5", "w"),
    ("___check_obj_id(self.mode, 140)", "self.mode"), ("not ___dict_contains('k', self.cache)", "self.cache"),
])
def test_guard_subject(guard, subject):
    assert guard_subject(guard) == subject
