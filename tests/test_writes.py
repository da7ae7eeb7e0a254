"""In-place writes: found on the Dynamo graph, reach the caller, are validated and never doubled."""
from __future__ import annotations

import copy

import torch

import vexplore as vx
from models import IntoBuffer, KVArgument, KVBuffer, Stack
from vexplore.engine.split.split import split_graph
from vexplore.engine.ops import op_name
from vexplore.engine.build.validate import validate_graph
from vexplore.engine.capture.writes import find_writes, static_writes


def _eager_cfg(cache_cfg, **kw):
    return vx.CompileConfig(compiler="eager", cache=cache_cfg, **kw)


def _call(cm, *args):
    with torch.no_grad():
        return cm(*args)


def _written(g):
    return {g.names[i]: nodes for i, nodes in g.written_inputs().items()}


def test_finds_buffer_writes_by_method_and_by_op(cache_cfg, session):
    m = KVBuffer().eval()
    cm = vx.compile(m, _eager_cfg(cache_cfg), session=session)
    _call(cm, torch.randn(4, 16), torch.arange(40, 44))
    g = cm.graphs[0]
    assert _written(g) == {"kv": ("index_copy_",), "calls": ("add_",)}
    assert g.roles[g.names.index("kv")] == "buffer" and g.roles[g.names.index("calls")] == "buffer"
    assert g.writes.how == "fake run"


def test_finds_argument_writes_through_setitem_views_and_out(cache_cfg, session):
    def f(x, cache, out, untouched):
        cache[:4] = x              # operator.setitem on an argument
        view = cache[4:]
        view.mul_(2)               # through a view of the same argument
        torch.add(x, 1, out=out)   # out=
        return x + untouched.sum()
    cm = vx.compile(f, _eager_cfg(cache_cfg), session=session)
    args = torch.randn(4, 3), torch.zeros(8, 3), torch.zeros(4, 3), torch.ones(2)
    _call(cm, *args)
    got = _written(cm.graphs[0])
    assert set(got) == {"args[1]", "args[2]"}
    assert len(got["args[1]"]) == 2 and len(got["args[2]"]) == 1


def test_finds_custom_op_writes_and_undeclared_batch_norm_stats(cache_cfg, session):
    """A custom op's mutates_args (its schema marks the argument written), and batch norm's
    running statistics in training mode (its aten schema does not say so)."""
    bn = torch.nn.BatchNorm1d(16).train()
    cm = vx.compile(bn, _eager_cfg(cache_cfg), session=session)
    _call(cm, torch.randn(8, 16))
    assert set(_written(cm.graphs[0])) == {"running_mean", "running_var", "num_batches_tracked"}

    m = IntoBuffer().eval()
    cm = vx.compile(m, _eager_cfg(cache_cfg, strategy="piecewise", splitting_ops=["vxtest::mix_into"]), session=session)
    _call(cm, torch.randn(8, 16))
    g = cm.graphs[0]
    assert g.written_inputs() == {}                      # it writes a buffer made inside the graph
    split = split_graph(g.gm, lambda n: op_name(n) == "vxtest::mix_into")
    written = {p.name: g.writes.written_args(p.module) for p in split.pieces}
    op_piece = next(p for p in split.pieces if p.kind == "split_op")
    phs = [n.name for n in op_piece.module.graph.nodes if n.op == "placeholder"]
    assert [phs[i] for i in written[op_piece.name]] == ["out"]
    assert all(not written[p.name] for p in split.pieces if p.kind == "compiled")


def test_node_scan_stands_in_without_a_fake_mode(cache_cfg, session):
    m = KVBuffer().eval()
    cm = vx.compile(m, _eager_cfg(cache_cfg), session=session)
    _call(cm, torch.randn(4, 16), torch.arange(4))
    g = cm.graphs[0]
    scan = static_writes(g.gm)
    assert scan.how == "node scan" and scan.inputs(g.gm) == g.written_inputs()
    assert find_writes(g.gm, g.fake_inputs, None).how == "node scan"


def test_pure_graph_writes_nothing(cache_cfg, session):
    """No node of a pure graph can write, so it is not even run (the fake run costs as much as
    Dynamo's propagation); the toy Llama's graph is one."""
    from vexplore.models import ToyLlama

    for m, x in ((Stack(layers=2).eval(), (torch.randn(8, 16),)), (ToyLlama(layers=2).eval(), (torch.arange(8),))):
        cm = vx.compile(m, _eager_cfg(cache_cfg), session=session)
        _call(cm, *x)
        assert not cm.graphs[0].writes and all(p.writes == () for p in cm.report.pieces)
        assert cm.graphs[0].writes.how == "node scan: no node writes"


def test_compiled_writes_reach_the_caller_call_after_call(cache_cfg, session):
    """Inductor, piecewise at attention: outputs and the buffer equal eager's after every call
    with moving positions, rows never written stay as they were, and the report names the write."""
    torch.manual_seed(0)
    m = KVBuffer().eval()
    ref = copy.deepcopy(m)
    start = m.kv.clone()
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", cache=cache_cfg), session=session)
    for first in (40, 44, 48, 3):
        x, pos = torch.randn(4, 16), torch.arange(first, first + 4)
        torch.testing.assert_close(_call(cm, x, pos), _call(ref, x, pos))
        torch.testing.assert_close(m.kv, ref.kv)
    assert m.calls.item() == ref.calls.item() == 4
    unwritten = [i for i in range(64) if i not in (*range(40, 52), *range(3, 7))]
    assert torch.equal(m.kv[unwritten], start[unwritten])
    piece = cm.report.pieces[0]
    assert piece.writes == ("kv", "calls") and "writes kv, calls" in cm.report.table()


def test_cache_argument_is_written_in_place(cache_cfg, session):
    torch.manual_seed(0)
    m = KVArgument().eval()
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", cache=cache_cfg), session=session)
    cache = torch.randn(64, 16)
    want = cache.clone()
    for first in (40, 41, 42):
        x, pos = torch.randn(2, 16), torch.arange(first, first + 2)
        torch.testing.assert_close(_call(cm, x, pos, cache), _call(m, x, pos, want))
        torch.testing.assert_close(cache, want)
    assert cm.report.pieces[0].writes == ("args[2]",)


def test_validation_compares_written_state_and_leaves_it_alone(cache_cfg, session):
    """validate=True checks the buffers a graph writes, not only outputs, and the extra runs it
    makes leave the caller's tensors as one call leaves them (``calls`` counts once)."""
    m = KVBuffer().eval()
    ref = copy.deepcopy(m)
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", validate=True, cache=cache_cfg), session=session)
    x, pos = torch.randn(4, 16), torch.arange(8, 12)
    torch.testing.assert_close(_call(cm, x, pos), _call(ref, x, pos))
    assert m.calls.item() == 1
    torch.testing.assert_close(m.kv, ref.kv)
    assert cm.report.validation == (cm.report.validation[0],) and "2 written inputs" in cm.report.validation[0]
    assert cm.report.validation[0].startswith("graph 0: ok")
    assert all(p.validation.startswith("ok") for p in cm.report.pieces if p.kind == "compiled")


def test_validation_catches_a_lost_write(cache_cfg, session):
    """A callable that computes the right outputs but loses the buffer write (what CUDA graphs
    did with a cloned buffer) is a mismatch, named as a written input."""
    m = KVBuffer().eval()
    cm = vx.compile(m, _eager_cfg(cache_cfg), session=session)
    x, pos = torch.randn(4, 16), torch.arange(8, 12)
    _call(cm, x, pos)
    g = cm.graphs[0]
    written = g.written_inputs()

    def loses_writes(*args):
        return g.gm(*[a.clone() if i in written else a for i, a in enumerate(args)])
    before = m.kv.clone()
    with torch.no_grad():
        status = validate_graph(g.gm, loses_writes, g.real_inputs, written, grad=False)
        assert validate_graph(g.gm, g.gm, g.real_inputs, written, grad=False).startswith("ok")
    assert status.startswith("mismatch: written inputs: max relative error")
    assert torch.equal(m.kv, before)       # validation restored what it wrote


def test_a_swapped_buffer_of_the_same_shape_is_read(cache_cfg, session):
    """A buffer reassigned at the same shape (a rotary cache rebuilt) reaches the compiled graph:
    Dynamo does not re-trace, vexplore reads the new tensor."""
    m = KVBuffer().eval()
    ref = copy.deepcopy(m)
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", cache=cache_cfg), session=session)
    x, pos = torch.randn(4, 16), torch.arange(4)
    _call(cm, x, pos)
    _call(ref, x, pos)
    fresh = torch.randn(64, 16)
    m.kv, ref.kv = fresh, fresh.clone()
    y, pos = torch.randn(4, 16), torch.arange(10, 14)
    torch.testing.assert_close(_call(cm, y, pos), _call(ref, y, pos))
    torch.testing.assert_close(m.kv, ref.kv)
    assert m.kv is fresh and len(cm.graphs) == 1 and len(cm.reports) == 1
