"""Split policies (CompileConfig.split_policy): "repeats" cuts at repeated blocks so identical
blocks compile once, "memory" bounds each piece and cuts where the fewest bytes cross; split ops
cut in every policy, and each piece says which policy began it and why. Eager PyTorch is the oracle."""
from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import vexplore as vx
from models import Blocks, Stack
from vexplore.engine.split.costmodel import crossings, node_kind
from vexplore.engine.split.policy import Bounds

KEYS = ("pieces", "compiled_pieces", "unique_pieces", "inductor_compiles")


class Loop(nn.Module):
    """The same step over a ParameterList: it repeats, but no module path says so (4 nodes a step)."""

    def __init__(self, n: int = 6, dim: int = 16) -> None:
        super().__init__()
        self.ws = nn.ParameterList(nn.Parameter(torch.randn(dim, dim) * 0.2) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * 2
        for w in self.ws:
            x = x + torch.tanh(x @ w) * 0.5
        return x.sum(-1)


class Chain(nn.Module):
    """Linears of changing widths with changing activations: nothing repeats (2 nodes a layer)."""

    WIDTHS = (16, 24, 20, 28, 12, 32, 18, 26, 14, 30, 22, 16)
    ACTS = (torch.relu, torch.tanh, torch.sigmoid, nn.functional.gelu, nn.functional.silu)

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(self.WIDTHS, self.WIDTHS[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = self.ACTS[i % len(self.ACTS)](layer(x))
        return x


class Bulge(nn.Module):
    """A 1024-wide intermediate lives from ``up`` to ``down``: an even or greedy cut would pass it."""

    def __init__(self, dim: int = 16, wide: int = 1024) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.up, self.down, self.c = nn.Linear(dim, wide), nn.Linear(wide, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.b(torch.relu(self.a(x))))            # 4 nodes, 16 wide
        big = nn.functional.gelu(self.up(h))                    # 1024 wide from here ...
        big = big * torch.sigmoid(big)
        h = torch.relu(self.down(big))                          # ... to here
        return torch.tanh(self.c(h))                            # 12 nodes in all


class Reshaped(nn.Module):
    """A torch.Size read first and used after two layers: the cheapest places to cut before that
    view (8 bytes a dim) are where a piece would have to return it."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.size()
        h = torch.relu(self.a(x.reshape(-1, x.shape[-1])))
        h = torch.tanh(self.b(h)).view(size)
        return torch.sigmoid(self.c(h)) * 2


def _compile(model, cache_cfg, session, **kw):
    kw.setdefault("strategy", "piecewise")
    kw.setdefault("compiler", "eager")
    return vx.compile(model, vx.CompileConfig(cache=cache_cfg, **kw), session=session)


def _check(cm, model, x):
    """Call ``cm`` (no grad), compare with eager ``model``, return the report."""
    with torch.no_grad():
        torch.testing.assert_close(cm(x), model(x))
    return cm.report


def _counts(rep) -> tuple[int, ...]:
    return tuple(rep.counters[k] for k in KEYS)


def test_repeats_twelve_residual_blocks_compile_once(cache_cfg, session, tmp_path):
    torch.manual_seed(0)
    model, x = Blocks(12).eval(), torch.randn(8, 16)
    rep = _check(_compile(model, cache_cfg, session, split_policy="repeats", compiler="inductor"), model, x)
    # a piece per block, and the head: the blocks are one unique piece, so two Inductor compiles
    assert _counts(rep) == (13, 13, 2, 2)
    assert [p.nodes for p in rep.pieces] == [5] * 12 + [1]
    assert [p.same_as for p in rep.pieces] == [None] + [0] * 11 + [None]
    assert rep.pieces[0].cut is None
    assert rep.pieces[3].cut.policy == "repeats"
    assert rep.pieces[3].cut.reason == "repeats: block blocks.3 begins (12 identical blocks of 5 nodes in blocks)"
    assert (rep.pieces[3].cut.crossing_tensors, rep.pieces[3].cut.crossing_bytes) == (1, 8 * 16 * 4)   # x only
    assert rep.pieces[12].cut.reason.startswith("repeats: the blocks of blocks end after blocks.11")
    assert not [w for w in rep.warnings if w.kind == "no_split"]     # the policy cut it: not "one piece"
    loaded = vx.load_report(rep.save(tmp_path / "rep.json"))
    assert [p.cut for p in loaded.pieces] == [p.cut for p in rep.pieces]


def test_repeats_found_from_node_sequence_without_module_blocks(cache_cfg, session):
    torch.manual_seed(0)
    model, x = Loop(6).eval(), torch.randn(8, 16)
    rep = _check(_compile(model, cache_cfg, session, split_policy="repeats"), model, x)
    # x*2 | 6 steps of (matmul, tanh, mul, add) | sum: the steps are one unique piece
    assert _counts(rep) == (8, 8, 3, 0)
    assert [p.nodes for p in rep.pieces] == [1] + [4] * 6 + [1]
    assert {p.unique_key for p in rep.pieces[1:7]} == {rep.pieces[1].unique_key}
    assert "6 identical blocks of 4 nodes found by node sequence" in rep.pieces[2].cut.reason


def test_repeats_keep_the_split_ops(cache_cfg, session):
    torch.manual_seed(0)
    model, x = Stack(3).eval(), torch.randn(8, 16)
    ops = _check(_compile(model, cache_cfg, session, splitting_ops=["vxtest::mix"]), model, x)
    assert _counts(ops) == (7, 4, 3, 0)                      # 2 * layers + 1, as before
    assert [p.cut.policy for p in ops.pieces[1:]] == ["ops"] * 6
    assert ops.pieces[1].cut.reason == "ops: split op vxtest::mix (in splitting_ops) runs eagerly"
    assert ops.pieces[2].cut.reason == "ops: after split op vxtest::mix"
    torch._dynamo.reset()
    rep = _check(_compile(model, cache_cfg, session, splitting_ops=["vxtest::mix"], split_policy="repeats"), model, x)
    # each layer [up relu down] mix [add], then the head: 3 unique compiled pieces (block body, add, head)
    assert _counts(rep) == (10, 7, 3, 0)
    assert [p.kind for p in rep.pieces] == ["compiled", "split_op", "compiled"] * 3 + ["compiled"]
    assert [p.cut.policy for p in rep.pieces[1:]] == ["ops", "ops", "repeats"] * 3


def test_repeats_with_a_bound_cut_each_block_alike(cache_cfg, session):
    torch.manual_seed(0)
    model, x = Blocks(4).eval(), torch.randn(8, 16)
    rep = _check(_compile(model, cache_cfg, session, split_policy="repeats", max_piece_nodes=3), model, x)
    # every 5-node block in two pieces, cut at the same place in each: two unique block halves and the head
    assert _counts(rep) == (9, 9, 3, 0)
    assert [p.nodes for p in rep.pieces] == [3, 2] * 4 + [1]   # after up or after gelu: 1.5 KiB either way
    assert [p.cut.policy for p in rep.pieces[1:]] == ["memory", "repeats"] * 4


def test_memory_keeps_every_piece_within_the_node_bound(cache_cfg, session):
    torch.manual_seed(0)
    model, x = Chain().eval(), torch.randn(8, 16)
    full = _check(_compile(model, cache_cfg, session, split_policy="memory"), model, x)
    assert _counts(full) == (1, 1, 1, 0)                     # 22 nodes: far under the default 256 MB
    torch._dynamo.reset()
    rep = _check(_compile(model, cache_cfg, session, split_policy="memory", max_piece_nodes=5), model, x)
    assert _counts(rep) == (5, 5, 5, 0)                      # ceil(22 / 5), nothing repeats
    assert all(p.nodes <= 5 for p in rep.pieces) and sum(p.nodes for p in rep.pieces) == 22
    assert all(p.cut.policy == "memory" and "over max_piece_nodes=5" in p.cut.reason for p in rep.pieces[1:])


def test_memory_bounds_the_estimated_compile_memory(cache_cfg, session):
    torch.manual_seed(0)
    model, x = Chain().eval(), torch.randn(8, 16)
    rep = _check(_compile(model, cache_cfg, session, split_policy="memory", max_compile_mb=1.0), model, x)
    # a Linear and an activation are 3 units (0.45 MB); 1 MB holds two layers of them
    assert _counts(rep) == (6, 6, 6, 0)
    assert all(float(p.cut.reason.split("(~")[1].split(" MB")[0]) <= 1.0 for p in rep.pieces[1:])
    assert "over max_compile_mb=1" in rep.pieces[1].cut.reason


def test_memory_cuts_where_no_large_intermediate_crosses(cache_cfg, session):
    torch.manual_seed(0)
    model, x = Bulge().eval(), torch.randn(8, 16)
    rep = _check(_compile(model, cache_cfg, session, split_policy="memory", max_piece_nodes=8), model, x)
    # 12 nodes in two pieces: any cut from after node 4 to after node 8 is within the bound; all but the
    # first pass the 8 x 1024 intermediate (32 KiB). The planner cuts after the tanh (h), where 512 bytes cross.
    assert _counts(rep) == (2, 2, 2, 0)
    assert [p.nodes for p in rep.pieces] == [4, 8]
    cut = rep.pieces[1].cut
    assert (cut.after_node, cut.crossing_tensors, cut.crossing_bytes) == ("h", 1, 8 * 16 * 4)
    assert "1 tensor (512 B) crosses" in cut.reason


@pytest.mark.slow
def test_no_cut_where_a_non_tensor_crosses(cache_cfg, session):
    # a piece cannot return a torch.Size: Inductor compiles graphs that return tensors. With
    # fallback=False a cut there would raise; every cut must pass tensors only.
    torch.manual_seed(0)
    model, x = Reshaped().eval(), torch.randn(4, 16)
    cm = _compile(model, cache_cfg, session, split_policy="memory", max_piece_nodes=2, compiler="inductor",
                  fallback=False)
    rep = _check(cm, model, x)
    assert rep.counters["pieces"] >= 2 and rep.counters["fallbacks"] == 0
    assert all(p.compiler == "inductor" for p in rep.pieces)
    first = rep.pieces[0]          # over the bound: no cut can come before the view that uses the size
    assert [n.target for n in first.graph_nodes][::6] == ["torch.Tensor.size", "torch.Tensor.view"] and first.nodes == 7


def test_a_misspelt_split_op_is_named_when_a_policy_cuts(cache_cfg, session):
    torch.manual_seed(0)
    model, x = Blocks(n=3).eval(), torch.randn(4, 16)
    cm = _compile(model, cache_cfg, session, split_policy="repeats", splitting_ops=["torch.nn.functional.gelu"])
    rep = _check(cm, model, x)
    [w] = rep.warnings
    assert w.kind == "split_op_missing" and "'torch.nn.functional.gelu' matches no node; did you mean" in w.message
    assert rep.counters["pieces"] == 4                       # the repeats were cut all the same
    assert "split-op-missing" in [a.code for a in vx.advise(cm)]


def test_auto_splits_by_policy_and_full_ignores_it(cache_cfg, session):
    torch.manual_seed(0)
    model, x = Blocks(4).eval(), torch.randn(8, 16)
    rep = _check(_compile(model, cache_cfg, session, strategy="auto", split_policy="repeats"), model, x)
    assert rep.strategy == "piecewise" and rep.strategy_reason == "auto: split_policy=repeats cuts the graph (4 cuts: 4 repeats)"
    assert _counts(rep) == (5, 5, 2, 0)
    cm = _compile(model, cache_cfg, session, strategy="full", split_policy="memory", max_piece_nodes=3)
    rep = _check(cm, model, x)
    assert _counts(rep) == (1, 1, 1, 0) and rep.pieces[0].cut is None
    again = cm.recompile(strategy="piecewise")
    assert again.counters["pieces"] == 7 and all(p.nodes <= 3 for p in again.pieces)


def test_old_report_without_cuts_loads(cache_cfg, session, tmp_path):
    model, x = Blocks(2).eval(), torch.randn(4, 16)
    rep = _check(_compile(model, cache_cfg, session, split_policy="repeats"), model, x)
    d = rep.to_dict()
    for p in d["pieces"]:
        del p["cut"]
    old = vx.CompileReport.from_dict(d)
    assert [p.cut for p in old.pieces] == [None] * 3 and rep.pieces[1].cut is not None


@pytest.mark.parametrize("kw, message", [
    (dict(split_policy="blocks"), "CompileConfig.split_policy='blocks' is not allowed; choose one of 'ops', 'repeats', 'memory'"),
    (dict(split_policy="memory", max_piece_nodes=0), "max_piece_nodes=0: a node count >= 1"),
    (dict(split_policy="memory", max_piece_nodes=True), "max_piece_nodes=True: a node count >= 1"),
    (dict(split_policy="memory", max_piece_nodes=2.5), "max_piece_nodes=2.5: a node count >= 1"),
    (dict(split_policy="memory", max_compile_mb=-1), "max_compile_mb=-1: a positive number of MB"),
    (dict(split_policy="memory", max_compile_mb="1G"), "max_compile_mb='1G': a positive number of MB"),
    (dict(max_piece_nodes=40), "max_piece_nodes bounds pieces only under split_policy='memory'"),
    (dict(max_compile_mb=64), "add split_policy='memory', or leave the bound out"),
])
def test_config_validation(kw, message):
    with pytest.raises(vx.ConfigError, match=re.escape(message)):
        vx.CompileConfig(**kw)


def test_config_policy_fields_default_and_stay_out_of_the_cache_key():
    cfg = vx.CompileConfig()
    assert (cfg.split_policy, cfg.max_piece_nodes, cfg.max_compile_mb) == ("ops", None, None)
    mem = cfg.replace(split_policy="memory", max_compile_mb=64)
    assert mem.compile_relevant() == cfg.compile_relevant()   # a piece's artifact is the same, however it was cut
    assert mem.to_dict()["split_policy"] == "memory" and Bounds.of(mem) == Bounds(None, 64)
    assert Bounds.of(cfg.replace(split_policy="memory")) == Bounds(None, 256.0)
    assert Bounds.of(cfg.replace(split_policy="repeats")) is None


def test_cost_model_kinds_and_crossings():
    gm = torch.fx.symbolic_trace(Bulge())
    kinds = {n.name: node_kind(n) for n in gm.graph.nodes if n.op.startswith("call_")}
    assert kinds["up"] == "matmul" and kinds["gelu"] == "pointwise" and kinds["tanh"] == "pointwise"
    nodes = list(gm.graph.nodes)
    cross = dict(zip((n.name for n in nodes), crossings(nodes)))
    assert cross["tanh"].tensors == 1 and cross["mul"].tensors == 1      # h, then big * sigmoid(big)
    assert cross["gelu"].tensors == 1 and cross["sigmoid"].tensors == 2  # big and sigmoid(big) both live


def test_memory_plan_is_the_best_plan():
    """The planner's cuts against every possible set of cuts, on random costs: the fewest pieces
    within the bound, then the fewest bytes crossing, then the fewest tensors."""
    import itertools
    import random

    from vexplore.engine.split.costmodel import Crossing
    from vexplore.engine.split.policy import _best_ends, _View

    g = torch.fx.Graph()
    x = g.placeholder("x")
    nodes = [x := g.call_function(torch.relu, (x,)) for _ in range(11)]
    rng = random.Random(0)
    for trial in range(60):
        units = [rng.choice([0.25, 1.0, 2.0, 3.0]) for _ in nodes]
        cross = tuple(Crossing(rng.randint(1, 3), rng.choice([64, 512, 4096])) for _ in nodes)
        view = _View(tuple(nodes), (False,) * len(nodes), cross, tuple(itertools.accumulate(units, initial=0.0)))
        bounds = Bounds(rng.choice([2, 3, 5, None]), rng.choice([0.5, 1.0, 2.0, None]) if trial % 3 else 0.3)
        n = len(nodes)

        def score(ends):
            starts = [0] + [e + 1 for e in ends]
            pieces = list(zip(starts, list(ends) + [n - 1]))
            over = [bounds.fits(e - s + 1, view.units[e + 1] - view.units[s]) or s == e for s, e in pieces]
            return (len(pieces), sum(cross[e].bytes for e in ends), sum(cross[e].tensors for e in ends)) if all(over) else None

        options = [sc for k in range(n) for ends in itertools.combinations(range(n - 1), k)
                   if (sc := score(ends)) is not None]
        assert score(_best_ends(view, bounds, 0, n - 1)) == min(options)
