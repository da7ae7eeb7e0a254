"""The advisor's detectors over runtime profiles (vexplore/advise/profiling.py).

On the CPU for real: an MLP cut at every GELU (13 pieces, 6 eager split ops) profiled by cm.profile
gives split-op-overhead, whose config (one graph) ``apply`` measures and keeps; nothing CUDA-only
fires there. The CUDA-only conditions (an idle GPU, calls at uncaptured sizes, kernels far from their
limit, split ops between piece replays) are profiles built from their records (frozen dataclasses, as
a GPU run would have made them) on the latest report of a real CPU model, through the real detectors.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vexplore as vx
from vexplore.advise import CODES
from vexplore.advise.advice import Context
from vexplore.advise.profiling import (BETWEEN_SHARE, DETECTORS, far_from_limit, host_bound, split_op_overhead,
                                       uncaptured_size)
from vexplore.monitor.profile import KernelRow, RuntimeCounters, RuntimeProfile, TraceSlice

GELU = "torch._C._nn.gelu"


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(F.gelu(self.up(x)))


class MLP(nn.Module):
    def __init__(self, dim: int = 64, layers: int = 6) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x


@pytest.fixture
def split_mlp(tmp_path):
    """(cm, x): the MLP cut at every GELU, eager pieces (no C++ builds: under a second), called once."""
    torch.manual_seed(0)
    x = torch.randn(8, 64)
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=[GELU], compiler="eager",
                           cache=vx.CacheConfig(dir=str(tmp_path / "vxcache")))
    cm = vx.compile(MLP().eval(), cfg, session=vx.Session())
    with torch.no_grad():
        cm(x)
    return cm, x


def test_the_profile_codes_are_registered_and_documented():
    assert {"host-bound", "uncaptured-size", "far-from-limit", "split-op-overhead"} <= set(CODES)
    assert [d.__name__ for d in DETECTORS] == ["host_bound", "uncaptured_size", "split_op_overhead", "far_from_limit"]
    with open("docs/api.md", encoding="utf-8") as f:
        api = f.read()
    for code in ("uncaptured-size", "far-from-limit", "split-op-overhead"):
        assert f"| `{code}` |" in api, code


@pytest.mark.solo   # the share of a call outside the pieces, measured: no other test on the cores meanwhile
def test_split_op_overhead_on_the_cpu_is_applied_and_measured(split_mlp):
    cm, x = split_mlp
    with torch.no_grad():
        assert "split-op-overhead" not in {a.code for a in vx.advise(cm)}   # no profile yet
        cm.profile(x, calls=12, warmup=2)
    advice = vx.advise(cm)
    codes = [a.code for a in advice]
    assert "split-op-overhead" in codes
    assert not {"host-bound", "uncaptured-size", "far-from-limit"} & set(codes)   # CUDA-only: never on the CPU
    [a] = [a for a in advice if a.code == "split-op-overhead"]
    ev = a.evidence
    assert ev["split_pieces"] == 6 and ev["compiled_pieces"] == 7 and ev["split_ops"] == [GELU]
    assert ev["outside_share"] >= BETWEEN_SHARE and 0 < ev["split_op_ms"] <= ev["outside_ms"] < ev["call_ms"]
    assert ev["calls"] == 12 and ev["wall_ms"] == round(cm.report.profiles[-1].wall_ms, 4)
    assert a.config.strategy == "full" and a.metric == "median_ms" and "strategy='full'" in a.message
    with torch.no_grad():
        result = a.apply(cm, (x,))
    assert result.metric == "median_ms" and result.before > 0 and result.after > 0
    if result.kept:      # the cuts gone: one piece, and the latest report has no profile to advise on
        assert cm.config.strategy == "full" and cm.report.counters["pieces"] == 1
        assert "split-op-overhead" not in {b.code for b in vx.advise(cm)}
    else:                # a shared machine can stall the 'after' timing; the figures say so
        assert result.after >= result.before * 0.97, result


# -- the CUDA-only conditions, from records ----------------------------------------------------------
H100 = "NVIDIA H100 80GB HBM3"


def _row(name: str, piece: int | None, total_ms: float, limit: float | None = None, calls: int = 10) -> KernelRow:
    return KernelRow(name, piece, ("linear",), ("model.py:12",), calls, total_ms, total_ms / calls, 1 << 20,
                     1 << 30, True, 500.0, 20.0, limit)


def _profile(rows, wall=1.0, device=0.8, runtime=RuntimeCounters(), slices=()) -> RuntimeProfile:
    return RuntimeProfile(wall_ms=wall, device_ms=device, span_ms=device + 0.1, host_gap_ms=0.1, rows=tuple(rows),
                          attributed_share=1.0, calls=10, device=H100, profiled_wall_ms=wall, warmup=2,
                          runtime=runtime, slices=tuple(slices))


def _context(cm, prof: RuntimeProfile) -> Context:
    """The model's latest report as a GPU run would have left it: on CUDA, with ``prof`` and its counts."""
    rep = dataclasses.replace(cm.report, device="cuda", profiles=(prof,), runtime=prof.runtime)
    return Context(cm, (*cm.reports[:-1], rep), (rep,), None)


@pytest.fixture
def on(split_mlp):
    """``on(**config changes)``: the MLP recompiled under them (eager pieces: milliseconds)."""
    cm, _x = split_mlp
    start = cm.config

    def recompiled(**changes):
        cm.recompile(start.replace(**changes))
        return cm
    return recompiled


def test_host_bound_fires_on_an_idle_gpu_only(on):
    cm = on(cudagraph="none")
    prof = _profile([_row("sm90_gemm", 0, 4.0)], wall=1.0, device=0.4)
    [a] = host_bound(_context(cm, prof))
    assert (a.code, a.severity, a.metric) == ("host-bound", "warning", "median_ms")
    assert a.config.cudagraph == "auto" and a.evidence["idle_share"] == 0.6 and "idle 60%" in a.message
    assert host_bound(_context(cm, _profile([_row("k", 0, 8.0)], wall=1.0, device=0.75))) == []   # 25 % idle
    cpu = dataclasses.replace(prof, device="AMD EPYC (2 threads)")
    assert host_bound(Context(cm, (dataclasses.replace(cm.report, profiles=(cpu,)),), (), None)) == []   # not on the CPU
    # graphs on and every call replayed: what is left is said, with nothing to apply
    cm = on(cudagraph="full_and_piecewise")
    replayed = dataclasses.replace(prof, runtime=RuntimeCounters(captures=3, replays=30, replays_by_size=((16, 30),)))
    [b] = host_bound(_context(cm, replayed))
    assert b.config is None and b.severity == "info" and "split-op-overhead" in b.message
    # graphs on, calls at uncaptured sizes: uncaptured-size speaks instead
    missed = dataclasses.replace(prof, runtime=RuntimeCounters(replays=10, uncaptured_calls=20, uncaptured_sizes=((24, 20),)))
    assert host_bound(_context(cm, missed)) == []


def test_uncaptured_sizes_are_added_to_the_capture_list(on):
    cm = on(cudagraph="full_and_piecewise", cudagraph_sizes=(8, 16, 32), compile_sizes=(16,))
    runtime = RuntimeCounters(captures=3, replays=15, replays_by_size=((16, 15),), uncaptured_calls=7,
                              uncaptured_sizes=((24, 5), (40, 2)))
    [a] = uncaptured_size(_context(cm, _profile([_row("k", 0, 1.0)], runtime=runtime)))
    assert (a.code, a.severity, a.metric) == ("uncaptured-size", "warning", "median_ms")
    assert a.config.cudagraph_sizes == (8, 16, 24, 32, 40) and a.config.compile_sizes == (16, 24, 40)
    assert a.evidence["uncaptured_sizes"] == [[24, 5], [40, 2]] and a.evidence["uncaptured_calls"] == 7
    assert "7 of 22 calls" in a.message and "24 (5 calls)" in a.message and "cudagraph_pad=True" in a.message
    cm = on(cudagraph="full_and_piecewise")          # the default ladder, extended
    [b] = uncaptured_size(_context(cm, _profile([_row("k", 0, 1.0)], runtime=runtime)))
    assert set(b.config.cudagraph_sizes) == {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 24, 40}
    assert b.config.compile_sizes == ()
    assert uncaptured_size(_context(cm, _profile([_row("k", 0, 1.0)]))) == []     # nothing ran outside graphs


def test_far_from_limit_names_the_kernel_and_tries_autotuning_then_the_size(on):
    rows = [_row("triton_poi_fused_mul_silu_3", 2, 6.0, limit=0.12), _row("sm90_gemm", 0, 3.0, limit=0.8),
            _row("triton_red_fused_rms_1", 1, 0.5, limit=0.05)]      # 5 % of the time: not worth it
    runtime = RuntimeCounters(captures=1, replays=10, replays_by_size=((16, 10),))
    prof = _profile(rows, runtime=runtime)
    cm = on(mode="default")
    [a] = far_from_limit(_context(cm, prof))
    assert (a.code, a.severity, a.metric, a.config.mode) == ("far-from-limit", "info", "median_ms", "max-autotune")
    assert "triton_poi_fused_mul_silu_3 in piece 2 (model.py:12)" in a.message and "12% of what" in a.message
    assert [k["name"] for k in a.evidence["kernels"]] == ["triton_poi_fused_mul_silu_3"]
    assert a.evidence["kernels"][0]["share"] == round(6.0 / 9.5, 4) and a.evidence["size"] == 16
    cm = on(mode="max-autotune")
    [b] = far_from_limit(_context(cm, prof))
    assert b.config.compile_sizes == (16,) and b.config.mode == "max-autotune"
    assert far_from_limit(_context(cm, _profile([dataclasses.replace(r, limit_share=None) for r in rows]))) == []


def _slices(compiled_ms: float, split_ms: float, call_ms: float, calls: int = 3) -> list[TraceSlice]:
    """Per call: the call, two compiled pieces (0, 2) and the split op between them (1)."""
    out = []
    for c in range(calls):
        t = c * 10.0
        out += [TraceSlice("call", f"call {c}", t, call_ms, c), TraceSlice("piece", "piece 0", t, compiled_ms / 2, c, 0),
                TraceSlice("piece", "piece 1", t + 1, split_ms, c, 1), TraceSlice("piece", "piece 2", t + 2, compiled_ms / 2, c, 2)]
    return out


def test_split_op_overhead_on_cuda_captures_the_split_ops_at_the_size(on):
    cm = on(cudagraph="piecewise", cudagraph_full_max=32)
    assert [p.kind for p in cm.report.pieces][:3] == ["compiled", "split_op", "compiled"]
    runtime = RuntimeCounters(captures=1, replays=3, replays_by_size=((64, 3),))
    slow = _profile([_row("k", 0, 1.0)], runtime=runtime, slices=_slices(compiled_ms=0.5, split_ms=0.3, call_ms=1.0))
    [a] = split_op_overhead(_context(cm, slow))
    assert a.config.cudagraph == "full_and_piecewise" and a.config.cudagraph_full_max == 64
    assert a.evidence["outside_share"] == 0.5 and a.evidence["split_op_ms"] == 0.3 and a.evidence["outside_ms"] == 0.5
    assert "cudagraph_full_max=64" in a.message
    fast = dataclasses.replace(slow, slices=tuple(_slices(compiled_ms=0.8, split_ms=0.1, call_ms=1.0)))
    assert split_op_overhead(_context(cm, fast)) == []                       # 20 % outside the pieces
    cm = on(cudagraph="full_and_piecewise", cudagraph_full_max=128)          # size 64 runs one full graph already
    assert split_op_overhead(_context(cm, slow)) == []
