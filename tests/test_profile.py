"""Runtime profiles on the CPU: ``cm.profile`` / ``vx.profile`` and the RuntimeProfile they return.

One tiny model cut at the custom op vxtest::mix, compiled piecewise with Inductor (three pieces:
compiled, split op, compiled), profiled once for the module: rollups and attribution are checked
exactly against the rows, kernels against the pieces and the model's own source lines, and the
profile through to_dict, a saved report, the Chrome trace and vx.diff. Profiling must leave the
model's calls as they were: the same stitched callable and piece runners after it.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import re
import statistics

import pytest
import torch

import vexplore as vx
from vexplore.bench import profile as P
from vexplore.bench.kernelmap import code_calls, match_nodes, source_line
from vexplore.engine.runtime.stitch import piece_hooks
from vexplore.monitor.profile import build_verdict
from vexplore.monitor.report import PieceNode

import models
from models import Stack

CALLS = 6


def _line_of(fn, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


def _runners(cm) -> dict[str, object]:
    parent = cm.graphs[0].runner.fn.__self__
    return {n: parent.__dict__[n] for n in parent._modules}


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """(cm, profile, what the calls ran before profiling, output before, output after)."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = Stack(layers=1).eval()
    x = torch.randn(8, 16)
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"],
                           cache=vx.CacheConfig(dir=str(tmp_path_factory.mktemp("vxcache"))))
    cm = vx.compile(model, cfg)
    with torch.no_grad():
        before_out = cm(x)
        before = (cm.graphs[0].runner.fn, _runners(cm))
        prof = cm.profile(x, calls=CALLS, warmup=2)
        after_out = cm(x)
    return cm, prof, before, before_out, after_out


@pytest.mark.slow
def test_rollups_sum_exactly_to_the_rows(profiled):
    _, prof, *_ = profiled
    total = sum(r.total_ms for r in prof.rows)
    assert total > 0 and prof.total_ms == total
    assert math.isclose(sum(u.total_ms for u in prof.by_piece()), total, rel_tol=1e-12)
    assert math.isclose(sum(u.total_ms for u in prof.by_source()), total, rel_tol=1e-12)
    busy: dict[int, float] = {}
    for s in prof.slices:
        if s.track == "kernel":
            busy[s.call] = busy.get(s.call, 0.0) + s.dur_ms
    assert sorted(busy) == list(range(CALLS))
    assert math.isclose(sum(busy.values()), total, rel_tol=1e-9)            # every call's kernels are in the rows
    assert math.isclose(statistics.median(busy.values()), prof.device_ms, rel_tol=1e-9)   # device_ms: the median call
    assert math.isclose(sum(u.share for u in prof.by_piece()), 1.0, rel_tol=1e-12)
    for u in prof.by_piece():
        assert u.total_ms == sum(r.total_ms for r in prof.rows if r.piece == u.key)
        assert u.kernels == sum(r.piece == u.key for r in prof.rows)


@pytest.mark.slow
def test_every_kernel_maps_to_a_piece_of_the_report(profiled):
    cm, prof, *_ = profiled
    pieces = {p.index: p for p in cm.report.pieces}
    assert [p.kind for p in cm.report.pieces] == ["compiled", "split_op", "compiled"]
    assert all(r.piece in pieces for r in prof.rows), [r for r in prof.rows if r.piece not in pieces]
    assert [u.key for u in prof.by_piece()] == [0, 1, 2]
    assert all(r.calls == CALLS for r in prof.rows)
    names = {(r.piece, re.sub(r"^graph_\d+_", "", r.name)) for r in prof.rows}
    # Inductor's C++ kernels by name (the profiling build), the linears as their extern addmm, the split op itself
    assert {(0, "cpp_fused_relu_0"), (0, "aten::addmm"), (1, "vxtest::mix"), (2, "cpp_fused_add_0"),
            (2, "aten::addmm")} <= names
    assert sum(r.piece == 0 and r.name == "aten::addmm" for r in prof.rows) == 2   # up and down: two call sites
    assert prof.build == "profiling" and [c.piece for c in prof.build_check] == [0, 1, 2]
    assert all(c.production_ms > 0 and c.profiling_ms > 0 for c in prof.build_check)


@pytest.mark.slow
def test_build_check_pairs_and_ranges(profiled):
    _, prof, *_ = profiled
    checks = {c.piece: c for c in prof.build_check}
    assert sorted(checks) == [0, 1, 2]
    pairs = {c.pairs for c in checks.values()}
    assert len(pairs) == 1 and P.CHECK_PAIRS[0] <= pairs.pop() <= P.CHECK_PAIRS[1]   # the same pairs for every piece
    # the profiler ranges the profiling build adds per call: one per C++ kernel call site of the piece
    cpp = {p: sum(r.piece == p and "::" not in r.name for r in prof.rows) for p in checks}
    assert {p: c.ranges for p, c in checks.items()} == cpp == {0: 1, 1: 0, 2: 1}
    assert all(c.diff_low <= c.diff <= c.diff_high for c in checks.values())
    assert prof.build_verdict == build_verdict(prof.build_check) and prof.build_verdict in ("agrees", "differs", "unresolved")
    assert prof.build_agrees == {"agrees": True, "differs": False, "unresolved": None}[prof.build_verdict]
    assert "Build check" in prof.note


@pytest.mark.slow
def test_the_check_interleaves_and_the_profiling_build_runs_the_production_split_op(cache_cfg, monkeypatch):
    torch.manual_seed(0)   # a model of its own: Dynamo is reset before each test, so the fixture's would trace again
    x = torch.randn(8, 16)
    cm = vx.compile(Stack(layers=1).eval(), vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"],
                                                             cache=cache_cfg))
    with torch.no_grad():
        cm(x)
    parent = cm.graphs[0].runner.fn.__self__
    [name] = [p.name for p in cm.report.pieces if p.kind == "split_op"]
    own, order = parent.__dict__[name], []

    def counting(*args):
        order.append(cm.graphs[0].runner.fn.which.build)     # 0: the profiling build's call, 1: production's
        return own(*args)

    monkeypatch.setattr(P, "CHECK_PAIRS", (3, 3))
    with torch.no_grad():
        build, _ = P._profiling_build(cm)
        parent.__dict__[name] = counting
        try:
            run, pairs = P._traced(cm, [x], 2, build, warm=1, check=3)
        finally:
            parent.__dict__[name] = own
    # warm-up (one per build), the profiler's warm-up (one per build), then 3 pairs, production first in
    # every other pair: every split op ran production's own runner, in both builds
    assert order == [0, 1, 0, 1, 1, 0, 0, 1, 1, 0]
    assert sorted(run.calls) == [0, 1] and {p: len(v) for p, v in pairs.items()} == {0: 3, 1: 3, 2: 3}
    assert parent.__dict__[name] is own and not hasattr(cm.graphs[0].runner.fn, "which")   # all put back


@pytest.mark.slow
def test_nodes_and_source_lines_are_the_models_own(profiled):
    _, prof, *_ = profiled
    up, relu = _line_of(models.Layer.forward, "self.up(x)"), _line_of(models.Layer.forward, "torch.relu(h)")
    down, head = _line_of(models.Layer.forward, "self.down(h)"), _line_of(models.Stack.forward, "self.head(x)")
    where = os.path.relpath(models.__file__)
    by = {(r.piece, re.sub(r"^graph_\d+_", "", r.name), r.nodes): r.source_lines for r in prof.rows}
    assert by == {
        (0, "aten::addmm", ("h",)): (f"{where}:{up}",),
        (0, "cpp_fused_relu_0", ("h_1",)): (f"{where}:{relu}",),
        (0, "aten::addmm", ("linear_1",)): (f"{where}:{down}",),
        (1, "vxtest::mix", ("mix",)): (f"{where}:{down}",),
        (2, "cpp_fused_add_0", ("x",)): (f"{where}:{down}",),
        (2, "aten::addmm", ("linear_2",)): (f"{where}:{head}",),
    }
    for r in prof.rows:
        assert all(not os.path.isabs(s.rsplit(":", 1)[0]) for s in r.source_lines)


@pytest.mark.slow
def test_attributed_share_is_the_mapped_share_of_device_time(profiled):
    _, prof, *_ = profiled
    mapped = sum(r.total_ms for r in prof.rows if r.piece is not None and r.source_lines)
    assert prof.attributed_share == mapped / prof.total_ms
    assert prof.attributed_share == 1.0   # every kernel of this model has a piece and a line


@pytest.mark.slow
def test_times_per_call(profiled):
    _, prof, *_ = profiled
    assert prof.calls == CALLS and prof.warmup == 2
    # per call, busy <= span <= the call: so the medians of span and wall keep that order (device_ms is a mean)
    assert prof.device_ms > 0 and 0 < prof.span_ms <= prof.profiled_wall_ms
    assert prof.host_gap_ms >= 0 and prof.wall_ms > 0
    # the CPU has no CUDA events: the span is the trace's (on CUDA, calls without the profiler: tests/gpu)
    assert (prof.span_timer, prof.traced_span_ms) == ("profiler trace", prof.span_ms)
    # the call's start to its first piece's range, in the trace: some host time, within the call (medians of
    # different calls: lead-in + span per call is within it, their medians need not be)
    assert 0 < prof.lead_in_ms < prof.profiled_wall_ms
    assert prof.device.startswith("cpu")
    assert prof.inputs == ("(8, 16) float32",)
    tracks = {s.track for s in prof.slices}
    assert tracks == {"call", "piece", "kernel"}
    assert sum(s.track == "kernel" for s in prof.slices) == sum(r.calls for r in prof.rows)


@pytest.mark.slow
def test_bytes_and_flops_are_estimated_from_the_nodes(profiled):
    _, prof, *_ = profiled
    [up] = [r for r in prof.rows if r.nodes == ("h",)]
    # x (8, 16) @ W.T (16, 16) + b: 2*8*16*16 FLOPs; x, W, b read, out written, float32
    assert (up.flops, up.bytes, up.estimated) == (2 * 8 * 16 * 16, (8 * 16 + 16 * 16 + 16 + 8 * 16) * 4, True)
    assert math.isclose(up.gbps, up.bytes / (up.mean_ms / 1e3) / 1e9, rel_tol=1e-12)
    assert math.isclose(up.tflops, up.flops / (up.mean_ms / 1e3) / 1e12, rel_tol=1e-12)
    assert all(r.limit_share is None for r in prof.rows)   # no device peaks on the CPU


@pytest.mark.slow
def test_profiling_leaves_the_calls_as_they_were(profiled):
    cm, _, (fn, runners), before_out, after_out = profiled
    assert cm.graphs[0].runner.fn is fn
    assert all(a is b for a, b in zip(_runners(cm).values(), runners.values()))
    assert _runners(cm).keys() == runners.keys()
    torch.testing.assert_close(after_out, before_out)


@pytest.mark.slow
def test_profile_is_kept_on_the_report_and_saved(profiled, tmp_path):
    cm, prof, *_ = profiled
    assert cm.report.profiles[-1] is prof
    assert any(r is cm.report for r in cm.session.monitor.reports)   # the Session's copy has the profile too
    assert cm.runtime == vx.RuntimeCounters() and cm.runtime.empty
    assert cm.report.runtime == vx.RuntimeCounters()
    back = vx.RuntimeProfile.from_dict(json.loads(json.dumps(prof.to_dict())))
    assert back == prof
    assert vx.RuntimeCounters.from_dict(prof.runtime.to_dict()) == prof.runtime
    loaded = vx.load_report(cm.report.save(tmp_path / "r.json"))
    assert loaded.profiles == (prof,) and loaded.runtime == cm.report.runtime
    assert loaded.to_dict() == cm.report.to_dict()


def test_report_saved_before_profiles_loads_without_them(profiled):
    cm, *_ = profiled
    d = cm.report.to_dict()
    del d["profiles"], d["runtime"]
    old = vx.CompileReport.from_dict(d)
    assert old.profiles == () and old.runtime == vx.RuntimeCounters()


@pytest.mark.slow
def test_chrome_trace_has_the_profiled_kernels(profiled, tmp_path):
    cm, prof, *_ = profiled
    trace = json.loads(cm.report.to_chrome_trace(tmp_path / "t.json").read_text())
    events = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    kernels = [e for e in events if e["cat"] == "profile_kernel"]
    assert {e["name"] for e in kernels} == {r.name for r in prof.rows}
    assert len(kernels) == sum(r.calls for r in prof.rows)
    assert min(e["ts"] for e in kernels) >= cm.report.wall_s * 1e6   # after the compile's events
    assert len({e["tid"] for e in kernels}) == 1 and {e["pid"] for e in kernels} != {1}


@pytest.mark.slow
def test_diff_shows_the_profiles(profiled):
    cm, prof, *_ = profiled
    rows = tuple(dataclasses.replace(r, total_ms=r.total_ms * 2) for r in prof.rows)
    slower = dataclasses.replace(prof, wall_ms=prof.wall_ms * 2, device_ms=prof.device_ms * 2, rows=rows)
    d = vx.diff(cm.report, dataclasses.replace(cm.report, profiles=(slower,)))
    what = [c.what for c in d.of("profile")]
    assert what[:2] == ["wall_ms", "device_ms"]
    # per kernel name, summed over pieces: the four names of this model (TOP_KERNELS is 5)
    assert sorted(w for w in what if w.startswith("kernel ")) == [
        "kernel aten::addmm ms/call", "kernel cpp_fused_add_0 ms/call", "kernel cpp_fused_relu_0 ms/call",
        "kernel vxtest::mix ms/call"]
    assert "profile" in d._repr_html_()
    none = vx.diff(cm.report, dataclasses.replace(cm.report, profiles=()))
    assert [(c.what, c.after) for c in none.of("profile")] == [("runtime profile", None)]


def test_eager_pieces_map_their_aten_ops(cache_cfg):
    torch.manual_seed(0)
    model = Stack(layers=1).eval()
    x = torch.randn(8, 16)
    cm = vx.compile(model, vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], compiler="eager",
                                            cache=cache_cfg))
    with torch.no_grad():
        first = vx.profile(cm, x, calls=3, warmup=1)
        second = cm.profile(x, calls=2, warmup=0)
    assert cm.report.profiles == (first, second)
    assert first.build == "production" and first.build_check == ()
    linears = [r for r in first.rows if r.name == "aten::linear"]
    assert sorted(r.nodes for r in linears) == [("h",), ("linear_1",), ("linear_2",)]
    assert math.isclose(sum(u.total_ms for u in first.by_piece()), first.total_ms, rel_tol=1e-12)
    assert {r.piece for r in first.rows} <= {p.index for p in cm.report.pieces}


@pytest.mark.parametrize("kw", [{"calls": 0}, {"calls": 2.5}, {"warmup": -1}, {"calls": True}])
def test_bad_counts_say_what_to_pass(kw, cache_cfg):
    cm = vx.compile(Stack(layers=1).eval(), vx.CompileConfig(compiler="eager", cache=cache_cfg))
    with pytest.raises(vx.ConfigError, match="cm.profile"):
        cm.profile(torch.randn(4, 16), **kw)


def test_vx_profile_wants_a_compiled_model():
    with pytest.raises(vx.VexploreError, match="vx.compile"):
        vx.profile(torch.nn.Linear(2, 2), torch.randn(1, 2))


def test_piece_hooks_leave_other_callables_alone():
    fn = lambda x: x   # noqa: E731  (a CUDA-graph runtime, say: not a stitched graph)
    with piece_hooks(fn, lambda name, r: None) as hooked:
        assert hooked is False


def test_kernel_names_and_code_comments_map_to_nodes():
    code = '''cpp_fused_relu_0 = async_compile.cpp_pybinding(['float*'], r"""...""")
def call(self, args):
    # Topologically Sorted Source Nodes: [h], Original ATen: [aten.t, aten.addmm]
    extern_kernels.addmm(a, b, c, out=buf0)
    cpp_fused_relu_0(buf1, s33)
    # Topologically Sorted Source Nodes: [h_1, linear_1], Original ATen: [aten.relu, aten.addmm]
    extern_kernels.addmm(d, buf1, e, out=buf2)
'''
    calls = code_calls(code)
    assert calls == [("addmm", ("h",)), ("cpp_fused_relu_0", ()), ("addmm", ("h_1", "linear_1"))]
    nodes = [PieceNode("h", "call_function", "torch._C._nn.linear"), PieceNode("h_1", "call_function", "torch.relu"),
             PieceNode("linear_1", "call_function", "torch._C._nn.linear")]
    assert match_nodes("addmm", 0, nodes, calls) == ("h",)
    assert match_nodes("addmm", 1, nodes, calls) == ("linear_1",)   # its own op, not the relu whose buffer it reuses
    assert match_nodes("cpp_fused_relu_0", 0, nodes, calls) == ("h_1",)
    assert match_nodes("linear", 1, nodes, []) == ("linear_1",)


def test_source_lines_are_never_absolute(tmp_path):
    here = os.path.join(os.getcwd(), "pkg", "m.py")
    assert source_line(f'File "{here}", line 7, in f') == os.path.join("pkg", "m.py") + ":7"
    elsewhere = "/nowhere/at/all/deep.py"
    assert source_line(f'File "{elsewhere}", line 3, in g') == "deep.py:3"
    assert source_line(None) is None


def test_keyword_inputs_reach_every_profiled_call(cache_cfg):
    """cm.profile(*inputs, **kwargs) calls cm(*inputs, **kwargs), as a Hugging Face model is called; the
    profile names the keyword inputs too."""

    def f(x, *, scale):
        return torch.relu(x) * scale

    cm = vx.compile(f, vx.CompileConfig(compiler="eager", cache=cache_cfg))
    x, s = torch.randn(8, 16), torch.tensor(2.0)
    with torch.no_grad():
        torch.testing.assert_close(cm(x, scale=s), f(x, scale=s))
        prof = cm.profile(x, calls=3, warmup=1, scale=s)
    assert prof.calls == 3 and len(cm.graphs) == 1 and prof.rows
    assert prof.inputs[0] == "(8, 16) float32" and prof.inputs[1].startswith("scale=")
