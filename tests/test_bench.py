"""The benchmark core: statistics, the stopping rule, the accuracy gate, training mode, sizes, schema."""
from __future__ import annotations

import json
import pathlib

import pytest
import torch

import vexplore as vx
from vexplore.bench.compare import bench_statement, resize_tokens, tolerance, training_warning
from vexplore.bench.timing import Budget, autorange, stats
from vexplore.bench.variants import variant_name
from models import Stack

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_stats_percentiles():
    s = stats([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.median_ms, s.p20_ms, s.p80_ms, s.n) == (3.0, 1.8, 4.2, 5)
    assert s.spread == pytest.approx((4.2 - 1.8) / 3)
    with pytest.raises(ValueError):
        stats([])


class _Scripted:
    """Samples from a list, as a timer would hand them (the stopping rule is what is tested)."""

    def __init__(self, values):
        self.values, self.i = list(values), 0

    def block(self, k):
        out = [self.values[(self.i + j) % len(self.values)] for j in range(k)]
        self.i += k
        return out


def test_autorange_stops_when_stable_or_out_of_budget():
    budget = Budget(target_ci=0.02, min_samples=10, max_samples=60, seconds=60, block=5)
    got = autorange({"steady": _Scripted([1.0, 1.01, 0.99, 1.0, 1.02]),
                     "wild": _Scripted([1.0, 3.0, 0.5, 2.0, 9.0])}, budget)
    samples, stable = got["steady"]
    assert len(samples) == 10 and stable                 # median known within 2 % at the minimum: stops
    samples, stable = got["wild"]
    assert len(samples) == 60 and not stable             # never known that well: stops at the sample cap
    assert stats(samples).ci > 0.02 and stats(got["steady"][0]).ci < 0.01
    fixed = autorange({"a": _Scripted([1.0, 5.0])}, budget, fixed=7)
    assert len(fixed["a"][0]) == 7                       # reps=N takes exactly N


def test_gate_fails_a_wrong_variant_and_never_calls_it_a_speedup(cache_cfg, session):
    m = Stack(layers=2).eval()
    wrong = lambda x: m(x) * 1.5  # noqa: E731  a variant that is 50 % off, and as fast as eager
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], cache=cache_cfg)
    with pytest.warns(vx.VexploreBenchWarning, match="wrong at 4 tokens: max rel err 0.5"):
        rep = vx.benchmark(m, {4: (torch.randn(4, 16),), 32: (torch.randn(32, 16),)},
                           ["eager", cfg, ("wrong", wrong)], warmup=2, reps=5, session=session, noise_threshold=1e9, max_spread=1e9)
    assert [(r.variant, r.tokens) for r in rep.rows] == [
        ("eager", 4), ("vexplore-piecewise-auto", 4), ("wrong", 4),
        ("eager", 32), ("vexplore-piecewise-auto", 32), ("wrong", 32)]
    by = {(r.variant, r.tokens): r for r in rep.rows}
    assert by[("wrong", 4)].max_rel_err == pytest.approx(0.5, rel=1e-5)   # max|1.5y - y| / max|y|
    assert by[("wrong", 4)].status == by[("wrong", 32)].status == "failed"
    assert rep.speedup(by[("wrong", 4)]) is None and rep.verdict(by[("wrong", 4)]) == "failed"
    assert by[("vexplore-piecewise-auto", 32)].status == "ok" and by[("vexplore-piecewise-auto", 32)].max_rel_err < 1e-4
    assert rep.speedup(by[("vexplore-piecewise-auto", 4)]) is not None
    assert "failed" in rep.table() and sum("over the accuracy gate" in w for w in rep.warnings) == 2
    assert by[("vexplore-piecewise-auto", 4)].compiled_as.startswith("vx.compile(model, CompileConfig(strategy='piecewise'")
    assert all(r.p20_ms <= r.median_ms <= r.p80_ms and r.samples == 5 for r in rep.rows)


def test_tolerance_follows_the_dtype():
    assert tolerance(torch.float32) == 1e-4 and tolerance(torch.float16) == tolerance(torch.bfloat16) == 2e-2


def test_noisy_rows_are_not_speedups():
    m = Stack(layers=1).eval()
    rep = vx.benchmark(m, {4: (torch.randn(4, 16),)}, ["eager", ("twin", m)], warmup=1, reps=5, noise_threshold=0.0)
    # any spread at all exceeds a zero threshold: every row is noisy, named with variant and size
    assert {r.status for r in rep.rows} == {"noisy"} and rep.verdict(rep.rows[1]) == "noisy"
    assert len(rep.warnings) == 2 and rep.warnings[0].startswith("eager at 4 tokens: median known within")
    quiet = vx.benchmark(m, {4: (torch.randn(4, 16),)}, ["eager"], warmup=1, reps=5, noise_threshold=1e9, max_spread=1e9)
    assert quiet.warnings == () and quiet.rows[0].status == "ok"
    # two modes (runs of fast calls, then of slow ones): however tight the median's interval,
    # the p20-p80 spread is wide, and the row is noisy
    import time
    calls = []

    def two_modes():
        calls.append(1)
        time.sleep(0.0005 if (len(calls) // 40) % 2 else 0.0015)
    rep = vx.benchmark({"eager": two_modes}, {1: ()}, reps=60, noise_threshold=1e9)
    assert rep.rows[0].spread > 0.25 and rep.rows[0].status == "noisy"


def test_training_mode_is_named_before_timing():
    m = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Dropout(0.1), torch.nn.BatchNorm1d(16))
    why = training_warning(m)
    assert "training mode" in why and "1 (p=0.1)" in why and "batch norm" in why and "model.eval()" in why
    assert training_warning(m.eval()) is None and training_warning(lambda x: x) is None
    with pytest.warns(vx.VexploreBenchWarning) as caught:
        rep = vx.benchmark(m.train(), {8: (torch.randn(8, 16),)}, ["eager"], reps=3, noise_threshold=1e9, max_spread=1e9)
    assert rep.warnings[0] == why and "training mode" in str(caught[0].message)
    # dropout makes even eager disagree with itself: the gate says so too
    assert rep.rows[0].status == "failed" and "over the accuracy gate" in str(caught[1].message)


def test_sizes_are_named_and_real(cache_cfg, session):
    m = Stack(layers=1).eval()
    rep = vx.benchmark(m, {3: (torch.randn(3, 16),)}, ["eager"], reps=3, size_dim="batch", noise_threshold=1e9, max_spread=1e9)
    assert (rep.rows[0].tokens, rep.rows[0].size_dim) == (3, "batch") and "   batch" in rep.table()
    x = torch.randn(4, 16)
    st = bench_statement(lambda: m(x), number=3, repeat=4, config=vx.CompileConfig(compiler="eager", cache=cache_cfg),
                         session=session, model_name="m(x)", size=(4, "dim 0 of x"))
    assert [(r.model, r.variant, r.tokens, r.size_dim) for r in st.rows] == [
        ("m(x)", "eager", 4, "dim 0 of x"), ("m(x)", "vexplore-auto-auto[compiler=eager]", 4, "dim 0 of x")]
    assert all(r.max_rel_err < 1e-5 and r.p20_ms <= r.median_ms <= r.p80_ms for r in st.rows)
    unknown = bench_statement(lambda: m(x), repeat=3, config=vx.CompileConfig(compiler="eager", cache=cache_cfg),
                              session=session)
    assert {r.tokens for r in unknown.rows} == {None}     # not known: shown as "-", never 0
    with pytest.raises(vx.VexploreError, match="must both be >= 1"):
        bench_statement(lambda: m(x), number=0)


def test_variant_names_say_what_differs():
    assert variant_name(vx.CompileConfig(strategy="full", cudagraph="full", splitting_ops=["a::b"])) == "vexplore-full-full"
    assert variant_name(vx.CompileConfig(strategy="full", mode="max-autotune", compile_sizes=[1, 16])) == \
        "vexplore-full-auto[mode=max-autotune, compile_sizes=1,16]"
    assert variant_name(vx.CompileConfig(cache=vx.CacheConfig(tiers=("memory",)), validate=True)) == "vexplore-auto-auto"
    m = Stack(1).eval()
    with pytest.raises(vx.VexploreError, match="both named eager"):
        vx.benchmark(m, {4: (torch.randn(4, 16),)}, ["eager", ("eager", m)])


def test_benchmark_bad_input():
    with pytest.raises(vx.VexploreError, match="inputs_by_size is empty"):
        vx.benchmark(Stack(1), {})
    with pytest.raises(vx.VexploreError, match="variant 'fastest' is unknown"):
        vx.benchmark(Stack(1), {4: (torch.randn(4, 16),)}, ["fastest"])
    with pytest.raises(vx.VexploreError, match="timer='wall'"):
        vx.benchmark(Stack(1), {4: (torch.randn(4, 16),)}, ["eager"], timer="wall")


def test_results_files_follow_the_schema():
    """Every committed results file with rows: one timer, and rows as benchmarks/README.md's results format has them.
    A device-timed file names its timer (idle | steady) in its name; a wall-clock one (perf_counter
    around a process's compile or load: cache_bench) says so."""
    row_keys = {"model", "tokens", "size_dim", "variant", "median_ms", "p20_ms", "p80_ms", "first_call_s", "max_rel_err"}
    checked = 0
    for path in RESULTS.glob("h200-*.json"):
        d = json.loads(path.read_text())
        if "rows" not in d or not d["rows"] or "median_ms" not in d["rows"][0]:
            continue
        assert d["timer"] == "perf_counter" or (d["timer"] in ("idle", "steady") and path.stem.endswith(d["timer"])), path
        assert {"device", "torch", "triton"} <= set(d)
        for r in d["rows"]:
            assert row_keys <= set(r), (path, set(r))
            assert isinstance(r["tokens"], int) and r["tokens"] > 0 and r["size_dim"] == "tokens"
            assert r["p20_ms"] <= r["median_ms"] <= r["p80_ms"]
        checked += 1
    rep = vx.BenchReport((vx.BenchRow("m", "eager", 4, 1.0, 0.9, 1.1, 0.0),), "cpu", "2.13", None, timer="steady")
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["timer"] == "steady" and row_keys <= set(d["rows"][0])
    assert checked >= 2   # h200-decode-idle.json and h200-decode-steady.json, and earlier runs


def test_resize_tokens_repeats_rows():
    ids, x, scale = torch.tensor([3, 5, 7]), torch.arange(6.0).reshape(3, 2), 0.5
    big, small = resize_tokens((ids, x, scale), 7), resize_tokens((ids, x, scale), 2)
    assert big[0].tolist() == [3, 5, 7, 3, 5, 7, 3] and big[1].shape == (7, 2) and big[1].is_contiguous()
    assert small[0].tolist() == [3, 5] and small[2] == 0.5
