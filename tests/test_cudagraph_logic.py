"""CUDA-graph dispatch logic that needs no GPU: size choice, capture order, token inputs."""
from __future__ import annotations

import json

import pytest
import torch

import vexplore as vx
from vexplore.engine import _torch_compat as tc
from vexplore.engine.runtime.sizes import DEFAULT_SIZES, capture_sizes, pick_size
from vexplore.engine.runtime.inputplan import REBIND_CALLS, GraphInputs, InputPlan
from models import KVArgument, KVBuffer, Stack


def test_pick_size():
    sizes = [2, 4, 8, 16]
    assert pick_size(8, sizes, pad=False) == 8
    assert pick_size(5, sizes, pad=False) is None      # not captured: runs without graphs
    assert pick_size(5, sizes, pad=True) == 8          # padding only when allowed
    assert pick_size(17, sizes, pad=True) is None      # above the largest capture
    assert pick_size(1, sizes, pad=True) == 2


def test_capture_sizes_largest_first():
    assert capture_sizes([4, 1, 16, 4], dynamic=True) == [16, 4]   # 1 lives in its own Dynamo graph
    assert capture_sizes(None, dynamic=True) == sorted((s for s in DEFAULT_SIZES if s >= 2), reverse=True)
    assert capture_sizes([4, 8], dynamic=False) == [None]


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


def test_a_fixed_input_moving_every_few_calls_is_copied_from_then_on():
    plan = InputPlan(fixed=[0, 1], copied=[2], scalars=[], dims={2: 0}, written={1}, names=["w", "kv", "x"])
    current = {0: 100, 1: 200}
    assert not plan.moved(1, 200, current, call=3)         # where it was: nothing to do
    assert not plan.moved(1, 300, current, call=5)         # moved once: captured again at the new address
    assert plan.fixed == [0, 1] and plan.last_move == {1: 5}
    assert not plan.moved(1, 300, current, call=6)         # the same move seen from another size
    assert plan.moved(1, 400, current, call=5 + REBIND_CALLS - 1)   # moved again soon: copied from now on
    assert plan.fixed == [0] and plan.copied == [2, 1]


def test_a_cache_rebound_per_generation_stays_in_place():
    """A new KV cache per generate() call moves the input once per generation, tens of calls apart:
    captured again each time, never copied."""
    plan = InputPlan(fixed=[0, 1], copied=[2], scalars=[], dims={2: 0}, written={1}, names=["w", "kv", "x"])
    current = {0: 100, 1: 200}
    for gen in range(1, 6):
        assert not plan.moved(1, 200 + gen, current, call=gen * 49)
    assert plan.fixed == [0, 1] and plan.last_move == {1: 5 * 49}


def test_cudagraph_without_cuda_says_so(cache_cfg, session):
    m = Stack(layers=1).eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, vx.CompileConfig(compiler="eager", cudagraph="piecewise", cache=cache_cfg), session=session)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    assert cm.report.counters["cudagraph_captures"] == 0
    assert any("needs a CUDA device" in w for w in cm.report.warnings)


def test_cudagraph_modes_validate_and_auto_stays_quiet_on_cpu(cache_cfg, session):
    assert vx.CompileConfig(cudagraph="full_and_piecewise").cudagraph_full_max == 512
    with pytest.raises(vx.ConfigError, match="cudagraph_full_max"):
        vx.CompileConfig(cudagraph_full_max=-1)
    m = Stack(layers=1).eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, vx.CompileConfig(compiler="eager", cudagraph="auto", cache=cache_cfg), session=session)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    # "auto" means CUDA graphs where there is a CUDA device: here, none, and nothing to warn about
    assert cm.report.warnings == () and all(p.cudagraph_skip_reason is None for p in cm.report.pieces)
    cm = vx.compile(m, vx.CompileConfig(compiler="eager", cudagraph="full_and_piecewise", cache=cache_cfg), session=session)
    with torch.no_grad():
        cm(x)
    assert any("needs a CUDA device" in w for w in cm.report.warnings)


def test_out_variants_are_found_by_convention():
    """An op's ``out`` overload (aten's convention) or a sibling ``<op>_out`` custom op that
    writes its last argument; none for SDPA. The adapter maps the piece's own arguments."""
    import torch.fx as fx
    import vexplore.models  # noqa: F401  (registers vexplore::attention and vexplore::attention_out)
    from vexplore.engine.split.outvariants import out_variant

    def piece(target, nargs, order):
        g = fx.Graph()
        phs = [g.placeholder(f"a{i}") for i in range(nargs)]
        g.output(g.call_function(target, tuple(phs[i] for i in order)))
        return fx.GraphModule(torch.nn.Module(), g)

    into, name = out_variant(piece(torch.ops.vexplore.attention.default, 3, (2, 0, 1)))
    q, k, v = (torch.randn(4, 2, 8) for _ in range(3))
    out = torch.empty(4, 2, 8)
    into(q, k, v, out)     # the piece's arguments in its own order, then out
    assert name == "vexplore::attention.default"
    torch.testing.assert_close(out, torch.ops.vexplore.attention(v, q, k))
    into, _ = out_variant(piece(torch.ops.aten.mm.default, 2, (0, 1)))
    res = torch.empty(2, 2)
    into(torch.eye(2), torch.ones(2, 2), res)
    torch.testing.assert_close(res, torch.ones(2, 2))
    assert out_variant(piece(torch._C._nn.scaled_dot_product_attention, 3, (0, 1, 2)))[0] is None


def test_capture_memory_estimate_follows_the_token_count(cache_cfg, session):
    """capturemem's peak of live intermediates: linear in the token count for a token-wise model,
    views free, outputs alive to the end; checked by hand on a two-linear model."""
    from vexplore.engine.runtime import capturemem

    class Mlp(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.up, self.down = torch.nn.Linear(16, 64), torch.nn.Linear(64, 16)

        def forward(self, x):
            return self.down(torch.relu(self.up(x))).view(-1, 4, 4)

    cm = vx.compile(Mlp().eval(), vx.CompileConfig(compiler="eager", cache=cache_cfg), session=session)
    with torch.no_grad():
        cm(torch.randn(8, 16))
    g = cm.graphs[0]
    plan = InputPlan.make(_graph_inputs(cm))
    for n in (8, 32, 512):
        ev = capturemem.evaluator(plan.hints, plan.tied, n)
        # up(x) [n, 64] and relu [n, 64] alive together, then relu + down [n, 16]; the view is free
        assert capturemem.peak_bytes(g.gm, ev) == 4 * n * (64 + 64)
    assert capturemem.nbytes((torch.empty(3, 5), torch.empty(2, dtype=torch.float16)), int) == 3 * 5 * 4 + 2 * 2
    assert capturemem.budget_bytes(64) == (64 * 2**20, "cudagraph_memory_mb=64")
    with pytest.raises(vx.ConfigError, match="cudagraph_memory_mb=0: a positive number of MiB"):
        vx.CompileConfig(cudagraph_memory_mb=0)


def test_piecewise_capture_lets_each_value_go_after_its_last_reader(cache_cfg, session):
    """The liveness a piecewise capture frees by (capturemem.dead_after, used by capture._piecewise):
    each piece output is listed once, under the last piece that reads it (the residual stream of a
    layer lives across the attention op to the next compiled piece); what the graph returns never.
    pinned_bytes counts what split ops read and return: q, k, v and the attention output per layer."""
    from vexplore.engine.runtime import capturemem
    from vexplore.models.toy_llama import ToyLlama

    model = ToyLlama(dim=64, layers=2, ffn=128).eval()
    cm = vx.compile(model, vx.CompileConfig(strategy="piecewise", compiler="eager", cache=cache_cfg), session=session)
    with torch.no_grad():
        cm(*model.example_inputs(8))
    parent = cm.graphs[0].runner.fn.__self__        # the stitched parent graph (no CUDA graphs on CPU)
    nodes = list(parent.graph.nodes)
    dead = capturemem.dead_after(parent.graph)
    listed = [v for vs in dead.values() for v in vs]
    out = nodes[-1]
    assert sorted(v.name for v in listed) == sorted(n.name for n in nodes if n.users and out not in n.users)
    for reader, values in dead.items():
        for v in values:    # listed under its last reader, in graph order
            assert max(nodes.index(u) for u in v.users) == nodes.index(reader)
    calls = [n for n in nodes if n.op == "call_module"]
    split = {p.name for p in cm.report.pieces if p.kind == "split_op"}
    assert [p.kind for p in cm.report.pieces] == ["compiled", "split_op"] * 2 + ["compiled"]
    residual = [a for a in calls[2].args if isinstance(a, torch.fx.Node) and a.op != "placeholder"
                and a.args[0] is calls[0]]   # made by piece 0, skips the attention op, read by piece 2
    assert len(residual) == 1 and residual[0] in dead[calls[2]]
    plan = InputPlan.make(_graph_inputs(cm))
    for n in (8, 64):
        ev = capturemem.evaluator(plan.hints, plan.tied, n)
        assert capturemem.pinned_bytes(parent, split, ev) == 2 * 4 * (n * 64 * 4)


def _token_plan(copied=(0,), fixed=()):
    """An InputPlan whose input 0 has the token count along dim 0 (no GPU, no Dynamo)."""
    import sympy
    s = sympy.Symbol("s0")
    return InputPlan(fixed=list(fixed), copied=list(copied), scalars=[], dims={0: 0}, written=set(),
                     names=["x", "w"][: len(copied) + len(fixed)], exprs={0: [s, 16]}, tied=frozenset({s}))


def test_size_policy_picks_modes_and_sizes():
    from vexplore.engine.runtime.sizes import SizePolicy
    cfg = vx.CompileConfig(cudagraph="full_and_piecewise", cudagraph_full_max=8)
    policy = SizePolicy(cfg, _token_plan(), [16, 8, 4], pad=True)
    assert policy.mode_for(8) == ("full", "full_and_piecewise: 8 <= cudagraph_full_max=8")
    assert policy.mode_for(16) == ("piecewise", "full_and_piecewise: 16 > cudagraph_full_max=8")
    assert policy.mode_for(None)[0] == "full"
    assert SizePolicy(vx.CompileConfig(cudagraph="piecewise"), _token_plan(), [4], True).mode_for(2)[0] == "piecewise"
    assert policy.size_of((torch.empty(5, 16),)) == (5, 8)        # padded up
    assert policy.size_of((torch.empty(17, 16),)) is None          # above the largest: without graphs
    policy.drop(8)
    assert policy.size_of((torch.empty(5, 16),)) == (5, 16) and policy.size_of((torch.empty(8, 16),)) == (8, 16)
    static = SizePolicy(cfg, InputPlan([], [], [], {}, set(), []), [None], pad=False)
    assert static.size_of(()) == (None, None)
    static.drop(None)
    assert static.size_of(()) is None


def test_note_branches_on_reason_codes_not_prose():
    """A size captured piecewise after its full capture failed is named by its code ("full_failed"),
    whatever its words say; a size run without graphs by its mode."""
    from vexplore.engine.runtime.cudagraph import _note
    from vexplore.engine.runtime.inputplan import SizePlan
    from vexplore.engine.runtime.stats import GraphStats, SizeInfo
    stats = GraphStats(sizes={
        16: SizeInfo("piecewise", "the whole graph is not capturable (RuntimeError: x); captured piecewise",
                     reason="full_failed"),
        8: SizeInfo("piecewise", "cudagraph='piecewise' (not capturable in words only)"),
        4: SizeInfo("none", "capture failed (RuntimeError: y); runs without CUDA graphs", reason="capture_failed"),
    })
    note = _note(SizePlan((), pad=False), stats)
    assert note == ("sizes [16] captured piecewise: the whole graph is not capturable (RuntimeError: x); captured "
                    "piecewise; sizes [4] run without CUDA graphs: capture failed (RuntimeError: y); runs without "
                    "CUDA graphs")
    assert _note(SizePlan((), pad=False), GraphStats()) is None


class _Admitted:
    """An Admission stand-in holding captured plans (a real one needs a CUDA pool)."""

    def __init__(self, plans):
        self.plans, self.current, self.admitted = plans, {}, []

    def admit(self, size, args, warm=True):
        self.admitted.append(size if warm else (size, "no warm-up"))


def test_replay_copies_inputs_in_pads_and_copies_outputs_out():
    """The per-call side on the CPU, a plain step standing in for a graph replay: a call's input is
    copied into the plan's buffer, a padded call zeroes the pad rows and gets its own rows back, the
    output is a copy (a later replay never changes it), a size without a plan runs the fallback."""
    from vexplore.engine.runtime.graphcapture import RuntimePlan
    from vexplore.engine.runtime.replay import GraphCudaGraphs
    from vexplore.engine.runtime.sizes import SizePolicy
    from vexplore.engine.runtime.stats import GraphStats
    plan = _token_plan()
    buf, out = torch.zeros(8, 16), torch.empty(8, 16)
    runtime = RuntimePlan([buf], [buf.data_ptr()], [lambda: torch.mul(buf, 2, out=out)], out, (False,), [])
    admission, stats = _Admitted({8: runtime}), GraphStats()
    policy = SizePolicy(vx.CompileConfig(cudagraph="full"), plan, [8], pad=True)
    cg = GraphCudaGraphs(plan, policy, admission, lambda x: x * 3, stats)
    x = torch.randn(8, 16)
    got = cg(x)
    torch.testing.assert_close(got, x * 2)
    assert got.data_ptr() != out.data_ptr() and stats.replays == 1
    y = torch.randn(5, 16)
    torch.testing.assert_close(cg(y), y * 2)
    assert stats.padded_calls == 1 and bool((buf[5:] == 0).all())
    torch.testing.assert_close(cg(torch.ones(9, 16)), torch.full((9, 16), 3.0))   # above every size: fallback
    assert stats.uncaptured_calls == 1 and admission.admitted == []
    admission.plans.clear()                  # no plan for the size: admitted again, and without one runs the fallback
    torch.testing.assert_close(cg(x), x * 3)
    assert admission.admitted == [8] and stats.recaptures == 0 and stats.uncaptured_calls == 2
    from vexplore.engine.runtime.stats import SizeInfo
    stats.sizes[8] = SizeInfo("full", "captured before")   # a size captured before is captured again without warm-ups
    cg(x)
    assert admission.admitted == [8, (8, "no warm-up")]
    stats.sizes[8] = SizeInfo("piecewise", "the whole graph is not capturable", reason="full_failed")
    admission.plans.clear()
    cg(x)                                                # its full capture failed before: warm-ups find why again
    assert admission.admitted == [8, (8, "no warm-up"), 8]
    stats.uncaptured_sizes[8] -= 1
    stats.uncaptured_sizes[8] -= 1                       # that call ran the fallback too: keep the counts below
    # per size, as cm.runtime shows them: replays by capture size, calls without a graph by token count
    assert stats.replays_by_size == {8: 2} and stats.uncaptured_sizes == {9: 1, 8: 1}
    from vexplore.monitor.profile import RuntimeCounters
    counts = RuntimeCounters.of([stats, None])
    assert (counts.replays, counts.padded_calls, counts.uncaptured_calls) == (2, 1, 2)
    assert [tuple(c) for c in counts.replays_by_size] == [(8, 2)]


def test_every_size_without_a_graph_says_why():
    """GraphStats.why_uncaptured, summed into RuntimeCounters (cm.runtime, a profile's, a report's) and saved."""
    from vexplore.engine.runtime.stats import GraphStats, SizeInfo
    from vexplore.monitor.profile import RuntimeCounters
    stats = GraphStats(sizes={8: SizeInfo("full", "captured"), 16: SizeInfo("full", "captured"),
                              32: SizeInfo("none", "not captured: estimated 9 MiB > 4 MiB", reason="over_budget")})
    stats.uncaptured_sizes.update({600: 1, 12: 2, 32: 1, 8: 1})
    why = dict(RuntimeCounters.of([stats, None]).uncaptured_why)
    assert sorted(why) == [8, 12, 32, 600]
    assert why[600].startswith("600 tokens is above the largest capture size (16)")
    assert why[12].startswith("12 tokens is no capture size (captured: 8, 16)") and "cudagraph_pad=False" in why[12]
    assert why[32] == "not captured: estimated 9 MiB > 4 MiB"
    assert why[8].startswith("the call's shapes differ from the capture's")
    counts = RuntimeCounters.of([stats])
    assert RuntimeCounters.from_dict(json.loads(json.dumps(counts.to_dict()))) == counts
    assert RuntimeCounters.from_dict({k: v for k, v in counts.to_dict().items() if k != "uncaptured_why"}).uncaptured_why == ()


def test_cudagraph_whole_builds_the_unsplit_graph_once_and_it_matches_eager(toy, cache_cfg, session):
    """cudagraph_whole: the graph its full captures replay is the Dynamo graph compiled whole, one Inductor
    compile whose events name no piece (it is none of the report's, and the next graph's first piece must not
    be named for it), stored in the tiers (a second build is a memory hit), equal to eager. Built only where
    sizes are captured full and the graph is split (the capture runs on CUDA); a whole graph Inductor cannot
    compile does not fail the compile, even with fallback=False: a warning says why."""
    from vexplore.engine.build.pipeline import GraphContext, _whole
    from vexplore.engine.ops import matches, op_name
    from vexplore.engine.split.split import split_graph
    from vexplore.monitor.events import EventRecorder

    model, x = toy
    cfg = vx.CompileConfig(splitting_ops=["vexplore::attention"], cache=cache_cfg, cudagraph_whole=True)
    cm = vx.compile(model, cfg, session=session)
    with torch.no_grad():
        want = model(*x)
        cm(*x)
    graph, n = cm.graphs[0], len(cm.report.pieces)
    split = split_graph(graph.gm, lambda nd: nd.op.startswith("call_") and matches(op_name(nd), cfg.splitting_ops))
    assert len(split.pieces) == n
    assert n > 1 and "the graph compiled whole" not in json.dumps(cm.report.to_dict())   # CPU: no CUDA graphs, none built
    for mode in (("none", None), ("piecewise", None)):
        assert _whole(graph, cfg, GraphContext(session.cache(cache_cfg), EventRecorder(session.monitor)), split, mode) == (None, [])
    tiers = []
    for _ in range(2):
        rec = EventRecorder(session.monitor)
        whole, warns = _whole(graph, cfg, GraphContext(session.cache(cache_cfg), rec, first_index=0), split,
                              ("full_and_piecewise", None))
        assert whole is not None and warns == [] and "replay the graph compiled whole" in whole.note
        with torch.no_grad():
            got, ref = whole.fn(*graph.real_inputs), graph.gm(*graph.real_inputs)   # the graph run eagerly: the oracle
        torch.testing.assert_close(got, ref)
        torch.testing.assert_close(got[0], want)
        compiles = [e for e in rec.events if e.step == "compile"]
        loads = [e for e in rec.events if e.step == "load"]
        assert [e.piece for e in loads] == [None] and all(e.piece is None for e in compiles)
        tiers.append((len(compiles), loads[0].tier))
    assert tiers[0][0] == 1 and tiers[1] == (0, "memory"), tiers
    assert _whole(graph, cfg.replace(cudagraph_whole=False), GraphContext(session.cache(cache_cfg), rec), split,
                  ("full", None)) == (None, [])
    # Inductor failing on the whole graph (an option it rejects at compile time) leaves the stitched pieces
    bad = cfg.replace(fallback=False, inductor_options={"triton.cudagraphs": "not a bool"}, cache=vx.CacheConfig(tiers=()))
    whole, warns = _whole(graph, bad, GraphContext(session.cache(bad.cache), EventRecorder(session.monitor)), split,
                          ("full", None))
    assert whole is None and len(warns) == 1 and "the whole graph did not compile with Inductor" in warns[0].message, warns


def test_cudagraph_whole_in_the_background_builds_after_the_compiling_call(toy, cache_cfg, session):
    """cudagraph_whole="background": the whole graph is built in a thread that waits for the compile lock the
    compiling call holds, then equals eager; nothing is built where no size is captured full or for True (built
    in the call); a build Inductor fails, or one cancelled before it began, says why and gives no callable."""
    from vexplore.engine import _torch_compat as tc
    from vexplore.engine.build.pipeline import GraphContext, _whole_later
    from vexplore.engine.ops import matches, op_name
    from vexplore.engine.split.split import split_graph
    from vexplore.monitor.events import EventRecorder

    model, x = toy
    cfg = vx.CompileConfig(splitting_ops=["vexplore::attention"], cache=cache_cfg, cudagraph_whole="background")
    cm = vx.compile(model, cfg, session=session)
    with torch.no_grad():
        want = model(*x)
        cm(*x)
    assert cm.settle(timeout=0) is True   # the CPU captures no CUDA graph: nothing is built off the call path
    graph = cm.graphs[0]
    split = split_graph(graph.gm, lambda nd: nd.op.startswith("call_") and matches(op_name(nd), cfg.splitting_ops))
    ctx = GraphContext(session.cache(cache_cfg), EventRecorder(session.monitor))
    full = ("full_and_piecewise", None)
    assert _whole_later(graph, cfg, ctx, split, ("piecewise", None)) is None
    assert _whole_later(graph, cfg.replace(cudagraph_whole=True), ctx, split, full) is None
    later = _whole_later(graph, cfg, ctx, split, full)
    with tc.compile_lock():   # as the compiling call holds it: the build waits
        later.start()
        assert not later.wait(1.0) and not later.done()
    assert later.wait(300)
    fn, note = later.result()
    assert fn is not None and "replay the graph compiled whole" in note and "off the call path" in note, note
    with torch.no_grad():
        torch.testing.assert_close(fn(*graph.real_inputs)[0], want)
    assert any(e.step in ("compile", "load") and e.piece is None for e in later.events) and not ctx.rec.events
    bad = cfg.replace(inductor_options={"triton.cudagraphs": "not a bool"}, cache=vx.CacheConfig(tiers=()))
    failed = _whole_later(graph, bad, GraphContext(session.cache(bad.cache), EventRecorder(session.monitor)), split, full)
    assert failed.start().wait(300)
    assert failed.result()[0] is None and "the whole graph did not compile with Inductor" in failed.result()[1]
    cancelled = _whole_later(graph, cfg, ctx, split, full)
    cancelled.cancel.cancel()
    assert cancelled.start().wait(60) and cancelled.result() == (None, 'graph 0: cudagraph_whole="background": cancelled '
                                                                       'before it began')


def test_cudagraph_whole_takes_true_false_or_background():
    assert vx.CompileConfig(cudagraph_whole="background").cudagraph_whole == "background"
    with pytest.raises(vx.ConfigError, match='"background" \\(the same, built off the call path\\)'):
        vx.CompileConfig(cudagraph_whole="later")
