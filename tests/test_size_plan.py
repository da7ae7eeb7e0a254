"""The size plan (when each CUDA-graph capture size is captured), decided without a GPU.

A capture runs the graph at its size on the inputs in hand. Into a cache shorter than that size,
or with less room left than it, the run writes past the end: on the GPU a device assert that ends
the process's CUDA context (issue 23: a StaticCache of 72 under cudagraph="full_and_piecewise").
The plan captures ahead only sizes whose capture writes within what the call in hand writes;
larger ones wait for a call of their own size; one longer than the cache never captures. A graph
that writes a cache is never padded. Each graph's plan is made here where vexplore makes it: in
the Dynamo backend, before the call runs.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import vexplore as vx
from vexplore.engine import _torch_compat as tc
from vexplore.engine.runtime.sizes import pick_size, size_plan
from vexplore.engine.capture.captured import CapturedGraph
from vexplore.engine.runtime.inputplan import GraphInputs, InputPlan, SizeDecision
from vexplore.engine.capture.writes import Reach, token_reach

SIZES = (2, 4, 8, 16)


class ShortCache(nn.Module):
    """Writes each token's key into a 12-row buffer at its position (index_copy_ along dim 0, as
    a KV cache is written), counts calls, and reads the whole buffer."""

    def __init__(self, rows: int = 12, dim: int = 16) -> None:
        super().__init__()
        self.k = nn.Linear(dim, dim)
        self.register_buffer("cache", torch.zeros(rows, dim))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        self.cache.index_copy_(0, pos, self.k(x))
        self.calls.add_(1)
        return x + self.cache.sum(0)


class Counter(nn.Module):
    """Writes a call counter only: what it writes does not grow with the tokens."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.k = nn.Linear(dim, dim)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        self.calls.add_(1)
        return self.k(x) + pos[:, None]


def _inputs(g: CapturedGraph) -> GraphInputs:
    return GraphInputs(g.real_inputs, g.fake_inputs, g.token, g.roles, g.names, g.written_inputs(),
                       tc.symbol_hints(g.fake_mode))


def _planned(model, calls, dims=None, **cfg):
    """[(captured graph, size plan made in the backend)] for ``model`` called with each of ``calls``
    (positional tensors, or a dict of keyword ones); ``dims``: input -> token dim marked dynamic
    (default: dim 0 of every positional tensor)."""
    config = vx.CompileConfig(cudagraph="full_and_piecewise", **cfg)
    out = []

    def backend(gm, example_inputs):
        g = CapturedGraph.from_dynamo(gm, example_inputs, len(out), model)
        out.append((g, size_plan(config, _inputs(g), g.gm)[1]))
        return gm.forward

    fn = torch.compile(model, backend=backend)
    with torch.no_grad():
        for call in calls:
            args, kwargs = ((), call) if isinstance(call, dict) else (call, {})
            for key, d in (dims or {i: 0 for i in range(len(args))}).items():
                tc.maybe_mark_dynamic(kwargs[key] if isinstance(key, str) else args[key], d)
            fn(*args, **kwargs)
    return out


def _brief(plan):
    return [(d.size, d.when, d.reason) for d in plan.decisions]


def _call(n: int, at: int):
    return torch.randn(n, 16), torch.arange(at, at + n)


def test_a_cache_with_less_room_than_a_size_is_never_captured_or_padded_past_its_end():
    """4 tokens at rows 6-9 of a 12-row cache, capture sizes 2-16, padding asked for: 2 and 4
    are captured now (their writes are a part of the call's), 8 waits for a call of 8 tokens (the
    room left is only known to hold 4: at rows 6-13 it would write past the end), 16 never fits.
    No call is padded: 3 tokens at rows 9-11 padded to 4 would write row 12."""
    (g, plan), = _planned(ShortCache().eval(), [_call(4, 6)], cudagraph_sizes=SIZES, cudagraph_pad=True)
    assert _brief(plan) == [(16, "never", "longer_than_cache"), (8, "first_call", "above_call"),
                            (4, "now", "within_call"), (2, "now", "within_call")]
    assert plan.decisions[0].why == ("not captured: a capture of 16 tokens writes 16 rows into cache (index_copy_), "
                                     "which has 12 along dim 0; runs without CUDA graphs")
    assert plan.decisions[1].why == ("cache is written at as many rows as a call has tokens (index_copy_), and the "
                                     "room left there is only known to hold the call in hand's 4")
    assert (plan.pad, plan.pad_reason) == (False, "writes_inputs")
    assert plan.pad_why == ("cudagraph_pad is off for this graph: it writes cache, calls in place, and padding rows "
                            "would write as well; sizes not captured run without graphs")
    captured = sorted(s for s in plan.sizes("now") + plan.sizes("first_call"))
    assert captured == [2, 4, 8]
    assert pick_size(3, captured, plan.pad) is None        # runs without graphs: never padded to 4
    assert pick_size(8, captured, plan.pad) == 8           # a call of 8 tokens: captured with that call


def test_a_capture_below_the_call_sees_the_calls_first_positions():
    """A size captured now gets the leading rows of the call's token inputs (positions 6, 7 of
    6-9: rows the call writes itself), not zeros; a size above the call gets zeros."""
    (g, _), = _planned(ShortCache().eval(), [_call(4, 6)], cudagraph_sizes=SIZES)
    plan = InputPlan.make(_inputs(g))
    pos = g.names.index("pos")
    assert plan.static_inputs(2, g.real_inputs)[pos].tolist() == [6, 7]
    assert plan.static_inputs(8, g.real_inputs)[pos].tolist() == [0] * 8
    assert plan.static_inputs(4, g.real_inputs)[pos].data_ptr() != g.real_inputs[pos].data_ptr()   # a copy


def test_after_the_graph_ran_every_size_waits_for_its_first_call():
    """A recompile plans on the inputs Dynamo traced with, which hold a later state by then (the
    cache filled, its write position moved on): no size is captured ahead, the static 1-token
    graph included; the size longer than the cache still never is."""
    model = ShortCache().eval()
    planned = _planned(model, [_call(4, 6), _call(1, 10)], cudagraph_sizes=SIZES)
    assert [_brief(p) for _, p in planned][1] == [(None, "now", "within_call")]   # Dynamo's own 1-token graph
    later = [size_plan(vx.CompileConfig(cudagraph_sizes=SIZES), _inputs(g), g.gm)[1] for g, _ in planned]
    assert _brief(later[0]) == [(16, "never", "longer_than_cache"), (8, "first_call", "state_moved"),
                                (4, "first_call", "state_moved"), (2, "first_call", "state_moved")]
    assert _brief(later[1]) == [(None, "first_call", "state_moved")]
    assert later[1].decisions[0].why == ("the graph's inputs were written since Dynamo traced it (cache, calls): a "
                                         "capture now would run on a later state than a call brings, so the first "
                                         "call of this size captures it")


def test_writes_that_do_not_grow_with_the_tokens_let_every_size_be_captured_now():
    (g, plan), = _planned(Counter().eval(), [_call(4, 0)], cudagraph_sizes=SIZES, cudagraph_pad=True)
    assert _brief(plan) == [(16, "now", "fixed_extent"), (8, "now", "fixed_extent"),
                            (4, "now", "within_call"), (2, "now", "within_call")]
    assert token_reach(g.gm, g.written_inputs(), InputPlan.make(_inputs(g)).tied) == ()   # a 0-d counter has no rows
    assert plan.pad_reason == "writes_inputs"           # a padded call would still count itself: no padding
    (g, plan), = _planned(nn.Linear(16, 16).eval(), [(torch.randn(4, 16),)], cudagraph_sizes=SIZES, cudagraph_pad=True)
    assert {d.reason for d in plan.decisions} == {"no_held_writes"} and plan.pad and plan.pad_reason is None


def test_the_plan_of_a_hugging_face_static_cache():
    """LlamaForCausalLM with a StaticCache of 24 (written at its own length counter, index_copy_
    along dim 2), a 6-token prompt: 2 and 4 now, 8 and 16 at their first call, 32 and above never;
    the 1-token decode graph is captured on its own call."""
    transformers = pytest.importorskip("transformers")
    import inspect

    cfg = transformers.LlamaConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=256, attn_implementation="sdpa")
    torch.manual_seed(0)
    m = transformers.LlamaForCausalLM(cfg).eval()
    cache = transformers.StaticCache(config=cfg, max_cache_len=24)
    cache.early_initialization(1, 2, 16, torch.float32, torch.device("cpu"))
    kw = "cache" if "cache" in inspect.signature(type(m.model).forward).parameters else "past_key_values"

    def call(n, at):
        return dict(input_ids=torch.randint(0, 256, (1, n)), position_ids=torch.arange(at, at + n)[None],
                    use_cache=True, **{kw: cache})
    planned = _planned(m, [call(6, 0), call(1, 6), call(1, 7)], dims={"input_ids": 1, "position_ids": 1})
    (g, prefill), (_, decode) = planned
    assert _brief(prefill) == [(s, "never", "longer_than_cache") for s in (512, 256, 128, 64, 32)] + \
        [(16, "first_call", "above_call"), (8, "first_call", "above_call"), (4, "now", "within_call"),
         (2, "now", "within_call")]
    assert _brief(decode) == [(None, "now", "within_call")]
    reach = token_reach(g.gm, g.written_inputs(), InputPlan.make(_inputs(g)).tied)
    # the cache as the caller passed it: `past_key_values` (transformers 5.17) or `cache` (5.24), never Dynamo's names
    assert sorted(g.names[r.input].split(".", 1)[1] for r in reach) == [
        f"layers[{i}].{k}" for i in (0, 1) for k in ("keys", "values")]
    assert {(r.tokens, r.dim, r.rows) for r in reach} == {(True, 2, 24)}   # the length counters (0-d) have no rows


class Narrowed(nn.Module):
    """Writes the first rows of a cache argument through a token-sized view: the rows of its base are not read."""

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
        cache.narrow(0, 0, x.shape[0]).copy_(x)
        return x + cache.sum(0)


def test_rows_come_from_an_indexed_assignment_and_stay_unknown_through_a_view():
    """``cache[pos] = v`` (Hugging Face's fallback write) names dim 0 and its 12 rows: 16 never
    fits. A copy into a token-sized view does not say which rows of the base it reaches: 16
    waits for a call of 16 tokens instead of being refused."""
    from models import KVArgument

    (_, plan), = _planned(KVArgument().eval(), [(*_call(4, 6), torch.zeros(12, 16))], dims={0: 0, 1: 0},
                          cudagraph_sizes=SIZES)
    assert _brief(plan)[:2] == [(16, "never", "longer_than_cache"), (8, "first_call", "above_call")]
    assert plan.decisions[0].why.endswith("which has 12 along dim 0; runs without CUDA graphs")
    (g, plan), = _planned(Narrowed(), [(torch.randn(4, 16), torch.zeros(12, 16))], dims={0: 0}, cudagraph_sizes=SIZES)
    assert _brief(plan)[:2] == [(16, "first_call", "above_call"), (8, "first_call", "above_call")]
    reach = token_reach(g.gm, g.written_inputs(), InputPlan.make(_inputs(g)).tied)
    assert [(r.tokens, r.dim, r.rows) for r in reach] == [(True, None, None)]


def test_plan_sizes_reads_only_inputs_that_outlive_the_call():
    """A written input sized by the tokens is copied into a buffer of the capture's own size, so its
    writes cannot run past anything; a write whose rows were not found keeps sizes above the call
    for their first call but refuses none."""
    from vexplore.engine.runtime.inputplan import plan_sizes

    plan = InputPlan(fixed=[0], copied=[1, 2], scalars=[], dims={1: 0, 2: 0}, written={1}, names=["w", "x", "pos"])
    assert {d.reason for d in plan_sizes(plan, [8, 2], 4, (), True, False).decisions} == {"no_held_writes"}
    plan = InputPlan(fixed=[0], copied=[1], scalars=[], dims={1: 0}, written={0}, names=["kv", "x"])
    got = plan_sizes(plan, [64, 8, 2], 4, (Reach(0, "setitem", True),), True, False)
    assert got.decisions == (
        SizeDecision(64, "first_call", "above_call", "kv is written at as many rows as a call has tokens (setitem), "
                     "and the room left there is only known to hold the call in hand's 4"),
        SizeDecision(8, "first_call", "above_call", got.decisions[0].why),
        SizeDecision(2, "now", "within_call", "at most the call in hand's 4 tokens: its capture writes a part of "
                     "what that call writes"))


def test_cudagraph_capture_first_call_leaves_every_size_to_its_first_call():
    """cudagraph_capture="first_call": what the plan would capture ahead waits for its first call instead (as
    torch's reduce-overhead captures); a size that never fits the cache still never captures; "ahead" is the
    plan as before."""
    model = ShortCache().eval()
    (_, ahead), = _planned(model, [_call(4, 6)], cudagraph_sizes=SIZES)
    (_, lazy), = _planned(ShortCache().eval(), [_call(4, 6)], cudagraph_sizes=SIZES, cudagraph_capture="first_call")
    assert _brief(ahead) == [(16, "never", "longer_than_cache"), (8, "first_call", "above_call"),
                             (4, "now", "within_call"), (2, "now", "within_call")]
    assert _brief(lazy) == [(16, "never", "longer_than_cache"), (8, "first_call", "above_call"),
                            (4, "first_call", "asked_first_call"), (2, "first_call", "asked_first_call")]
    assert lazy.decisions[2].why.startswith('cudagraph_capture="first_call": captured at its first call')
    (_, plain), = _planned(nn.Linear(16, 16).eval(), [(torch.randn(4, 16),)], cudagraph_sizes=SIZES,
                           cudagraph_capture="first_call")
    assert {(d.when, d.reason) for d in plain.decisions} == {("first_call", "asked_first_call")}
    with pytest.raises(vx.ConfigError, match="cudagraph_capture='lazy': one of 'ahead', 'first_call'"):
        vx.CompileConfig(cudagraph_capture="lazy")
