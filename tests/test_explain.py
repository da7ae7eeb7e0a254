"""cm.graph_breaks and cm.recompiles: Dynamo's reasons, in the model's own names and lines (eager as the oracle)."""
from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch import nn

import vexplore as vx
from models import (Branchy, Breaks, Counter, ReadsGlobal, Remembers, Scaled, Swappable, TakesExtras, ValueAfterBreak,
                    eager_cfg, line_of)
from vexplore.engine.capture.explain import CallNames, guard_subject, source_name


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
    from vexplore.engine.capture import explain

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
    ("len(self.seen) == 3", "self.seen"), ("not self.seen", "self.seen"), ("type(self.act) is ReLU", "self.act"),
    ("'bias' not in extras", "extras"), ("self.act is the object it was", "self.act"),
])
def test_guard_subject(guard, subject):
    assert guard_subject(guard) == subject


# -- Dynamo's own names never reach the user (issue 23 part 4) ---------------------------------------
class Options(nn.Module):
    def forward(self, x: torch.Tensor, scale: float, extras: dict | None = None) -> torch.Tensor:
        return x * scale


@pytest.mark.parametrize("dynamo, ours", [
    ("L['args'][1] == 2.0", "scale == 2.0"),
    ("L['kwargs']['extras'] is None", "extras is None"),
    ("L['model'].step == 3", "self.step == 3"),
    ("G['__import___main__'].SCALE == 0.5", "SCALE == 0.5"),
    ("G['__import_my_dot_models'].SCALE == 0.5", "SCALE == 0.5"),
    ("G['SCALE'] == 0.5", "SCALE == 0.5"),
    ("___check_type_id(model._modules['act'], 93825382831664), type=<class 'torch.nn.modules.activation.ReLU'>",
     "type(self.act) is ReLU"),
    ("___check_type_id(L['self'].act, 93825382831664)", "type(self.act) is the type it had"),
    ("___check_obj_id(L['self']._modules['act'], 140)", "self.act is the object it was"),
    ("L['self']._parameters['weight'].dtype", "self.weight.dtype"),
    ("not ___dict_contains('bias', kwargs['extras'])", "'bias' not in extras"),
    ("___dict_contains('bias', args[2])", "'bias' in extras"),
    ("___tuple_iterator_len(L['it']) == 3", "len(it) == 3"),
    ("___stack1 == 5.6480393409729", "value == 5.6480393409729"),
    ("round(___stack0, 3) == 0.212", "round(value, 3) == 0.212"),
    ("len(model.seen) == 2", "len(self.seen) == 2"),
    ("tensor 'kwargs['past_key_values'].layers[0].keys' size mismatch at index 2. expected 8, actual 9",
     "tensor 'past_key_values.layers[0].keys' size mismatch at index 2. expected 8, actual 9"),
])
def test_dynamo_names_in_the_models_terms(dynamo, ours):
    assert CallNames.of(Options()).rewrite(dynamo) == ours


def test_graph_inputs_by_their_source():
    names = CallNames.of(Options())
    assert source_name("L['kwargs']['past_key_values'].layers[0].keys", "L_kwargs_past_key_values_layers_0_keys",
                       names) == "past_key_values.layers[0].keys"
    assert source_name("L['args'][1]", "L_args_1_", names) == "scale"
    assert source_name("", "L_args_1_", names) == "scale"
    assert source_name("", "L_kwargs_input_ids_", names) == "input_ids"


def _called(model, session, calls):
    cm = vx.compile(model, eager_cfg(), session=session)
    ref = copy.deepcopy(model)
    for args in calls:
        check_each = [copy.deepcopy(a) if isinstance(a, dict) else a for a in args]
        with torch.no_grad():
            torch.testing.assert_close(cm(*args), ref(*check_each))
    return cm


def _seen(cm) -> list[tuple[str, str, str | None]]:
    return [(r.name, r.guard, r.frame) for r in cm.recompiles]


def test_global_is_named_as_the_code_reads_it(session, monkeypatch):
    model = ReadsGlobal().eval()
    cm = vx.compile(model, eager_cfg(), session=session)
    x = torch.randn(4, 8)
    for s in (0.5, 0.7):
        monkeypatch.setattr("models.SCALE", s)
        check(cm, model, x)
    assert _seen(cm) == [("SCALE", "SCALE == 0.5", line_of(ReadsGlobal.forward, "* SCALE"))]
    assert cm.recompiles[0].reason == "SCALE changed (compiled for SCALE == 0.5)"


def test_swapped_submodule_is_named_by_its_attribute(session):
    model = Swappable().eval()
    cm = vx.compile(model, eager_cfg(), session=session)
    x = torch.randn(4, 8)
    check(cm, model, x)
    model.act = nn.GELU()
    check(cm, model, x)
    assert _seen(cm) == [("self.act", "type(self.act) is ReLU", line_of(Swappable.forward, "self.act("))]


def test_dict_keys_are_said_as_membership(session):
    x = torch.randn(4, 8)
    cm = _called(TakesExtras().eval(), session, [(x, {}), (x, {"bias": torch.ones(8)})])
    assert _seen(cm) == [("extras", "'bias' not in extras", line_of(TakesExtras.forward, '"bias" in extras'))]
    assert cm.recompiles[0].reason == "extras changed (compiled for 'bias' not in extras)"


def test_value_carried_over_a_graph_break_is_a_python_value_at_its_line(session, capsys):
    cm = _called(ValueAfterBreak().eval(), session, [(torch.randn(4, 8),) for _ in range(3)])
    stack, local = cm.recompiles
    at = line_of(ValueAfterBreak.forward, "round(m, 3)")
    assert (stack.name, stack.frame, stack.carried) == (f"a Python value at {at}", at, True)
    assert stack.guard.startswith("value == ") and stack.reason.startswith(f"a Python value at {at} changed (compiled for value == ")
    assert (local.name, local.frame, local.carried) == ("m", line_of(ValueAfterBreak.forward, "return h * m"), True)
    assert "___stack" in stack.detail      # Dynamo's own text, kept as it said it


def test_list_the_model_appends_to_is_its_length(session):
    x = torch.randn(4, 8)
    cm = _called(Remembers().eval(), session, [(x,)] * 4)
    where = line_of(Remembers.forward, "self.seen.append(")
    assert _seen(cm) == [("self.seen", "not self.seen", where)] + [("self.seen", f"len(self.seen) == {n}", where)
                                                                   for n in (1, 2)]
    assert [r.reason for r in cm.recompiles] == ["self.seen is no longer empty (compiled for not self.seen)"] + [
        f"the length of self.seen changed (compiled for len(self.seen) == {n})" for n in (1, 2)]
