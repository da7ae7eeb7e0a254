"""The benchmark core: statistics, rows, error against eager."""
from __future__ import annotations

import pytest
import torch

import vexplore as vx
from vexplore.bench.compare import bench_statement, resize_tokens
from vexplore.bench.timing import stats
from models import Stack


def test_stats_percentiles():
    s = stats([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.median_ms, s.p20_ms, s.p80_ms, s.n) == (3.0, 1.8, 4.2, 5)
    assert s.spread == pytest.approx((4.2 - 1.8) / 3)
    with pytest.raises(ValueError):
        stats([])


def test_benchmark_rows_and_errors(cache_cfg, session):
    m = Stack(layers=2).eval()
    wrong = lambda x: m(x) * 1.5  # noqa: E731  a variant that is 50 % off
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], compiler="eager", cache=cache_cfg)
    rep = vx.benchmark(m, {4: (torch.randn(4, 16),), 32: (torch.randn(32, 16),)},
                       ["eager", cfg, ("wrong", wrong)], warmup=2, reps=5, session=session)
    assert [(r.variant, r.tokens) for r in rep.rows] == [
        ("eager", 4), ("vexplore-piecewise-none", 4), ("wrong", 4),
        ("eager", 32), ("vexplore-piecewise-none", 32), ("wrong", 32)]
    errs = {(r.variant, r.tokens): r.max_rel_err for r in rep.rows}
    assert errs[("eager", 4)] == 0 and errs[("vexplore-piecewise-none", 32)] < 1e-5
    assert errs[("wrong", 4)] == pytest.approx(0.5, rel=1e-5)  # max|1.5y - y| / max|y|
    assert all(r.p20_ms <= r.median_ms <= r.p80_ms for r in rep.rows)
    d = rep.to_dict()
    assert set(d) == {"device", "torch", "triton", "rows"} and d["device"].startswith("cpu")
    assert set(d["rows"][0]) == {"model", "tokens", "variant", "median_ms", "p20_ms", "p80_ms", "first_call_s", "max_rel_err"}
    assert "speedup" in rep.table()


def test_benchmark_bad_input():
    with pytest.raises(vx.VexploreError, match="inputs_by_size is empty"):
        vx.benchmark(Stack(1), {})
    with pytest.raises(vx.VexploreError, match="variant 'fastest' is unknown"):
        vx.benchmark(Stack(1), {4: (torch.randn(4, 16),)}, ["fastest"])


def test_noise_warning_when_spread_is_wide():
    m = Stack(layers=1).eval()
    rep = vx.benchmark(m, {4: (torch.randn(4, 16),)}, ["eager"], warmup=1, reps=5, noise_threshold=0.0)
    # any spread at all exceeds a zero threshold: one warning per row, naming variant and size
    assert len(rep.warnings) == 1 and rep.warnings[0].startswith("eager at 4 tokens: spread")
    quiet = vx.benchmark(m, {4: (torch.randn(4, 16),)}, ["eager"], warmup=1, reps=5, noise_threshold=1e9)
    assert quiet.warnings == ()


def test_resize_tokens_repeats_rows():
    ids, x, scale = torch.tensor([3, 5, 7]), torch.arange(6.0).reshape(3, 2), 0.5
    big, small = resize_tokens((ids, x, scale), 7), resize_tokens((ids, x, scale), 2)
    assert big[0].tolist() == [3, 5, 7, 3, 5, 7, 3] and big[1].shape == (7, 2) and big[1].is_contiguous()
    assert small[0].tolist() == [3, 5] and small[2] == 0.5


def test_bench_statement_reports_per_call(cache_cfg, session):
    m, x = Stack(layers=1).eval(), torch.randn(4, 16)
    cfg = vx.CompileConfig(compiler="eager", cache=cache_cfg)
    rep = bench_statement(lambda: m(x), number=3, repeat=4, config=cfg, session=session, name="m(x)")
    assert [(r.model, r.variant, r.tokens) for r in rep.rows] == [("m(x)", "eager", 0), ("m(x)", "vexplore-auto-none", 0)]
    assert all(r.max_rel_err < 1e-5 and r.p20_ms <= r.median_ms <= r.p80_ms for r in rep.rows)
    with pytest.raises(vx.VexploreError, match="must both be >= 1"):
        bench_statement(lambda: m(x), number=0)
