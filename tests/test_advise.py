"""vx.advise and Advice.apply on small CPU models that break, recompile, fail and grow memory."""
from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

import vexplore as vx
from models import BadFake, Branchy, Counter, Failing, Scaled, Stack, eager_cfg, line_of
from vexplore.advise import CODES, AdviceError
from vexplore.bench.compare import BenchReport, BenchRow


def codes(advice) -> list[str]:
    return [a.code for a in advice]


def called(model, cfg, session, *inputs, times: int = 1):
    """``model`` compiled and called ``times``, each call checked against eager (a twin of a stateful model)."""
    twin = copy.deepcopy(model)
    cm = vx.compile(model, cfg, session=session)
    with torch.no_grad():
        for _ in range(times):
            torch.testing.assert_close(cm(*inputs), twin(*inputs))
    return cm


def test_codes_are_the_stable_list():
    assert set(CODES) == {
        "graph-break", "recompile", "recompile-storm", "slow-compile", "repeated-blocks", "no-persistent-cache",
        "low-cache-hit-rate", "memory-growth", "fast-path-op", "split-op-missing", "cudagraph-skipped", "host-bound",
        "training-mode", "noisy-timing", "accuracy", "runtime-fallback", "compile-system-failure", "cache-failure",
        "uncaptured-size", "far-from-limit", "split-op-overhead"}


def test_nothing_to_say_about_a_clean_model(session):
    cm = called(Scaled().eval(), eager_cfg(), session, torch.randn(4, 8), 2.0)
    assert vx.advise(cm) == []
    assert vx.advise(vx.compile(Scaled().eval(), eager_cfg(), session=session)) == []   # never called
    with pytest.raises(vx.VexploreError, match="takes the CompiledModel"):
        vx.advise(cm.report)


def test_graph_break_advice_names_the_line_and_the_fix(session):
    model = Branchy().eval()
    cm = called(model, eager_cfg(), session, torch.randn(4, 8))
    [a] = vx.advise(cm)
    where = line_of(Branchy.forward, "if h.sum() > 0")
    assert (a.code, a.severity, a.config) == ("graph-break", "warning", None)
    assert a.evidence == {"frame": where, "reason": "Data-dependent branching", "code": "if h.sum() > 0:",
                          "graphs": [0], "count": 1}
    assert a.message.startswith(f"Graph break at {where} (`if h.sum() > 0:`): Data-dependent branching.")
    assert "torch.where" in a.message and "torch.cond" in a.message
    with pytest.raises(AdviceError, match="change is in your code"):
        a.apply(cm)


def test_float_argument_recompile_advice(session):
    model = Scaled().eval()
    cm = vx.compile(model, eager_cfg(), session=session)
    with torch.no_grad():
        for s in (2.0, 3.0):
            cm(torch.randn(4, 8), s)
    [a] = vx.advise(cm)
    assert (a.code, a.severity) == ("recompile", "warning")
    assert {k: a.evidence[k] for k in ("name", "recompiles", "guards", "graphs", "limit_hit")} == {
        "name": "scale", "recompiles": 1, "guards": ["scale == 2.0"], "graphs": [1], "limit_hit": False}
    assert a.message.startswith(f"scale at {line_of(Scaled.forward, '* scale')} changed")
    assert "torch.tensor(2.0)" in a.message and "args[1]" not in a.message


def test_step_counter_is_a_storm_then_critical_at_the_limit(session):
    x = torch.randn(4, 8)
    cm = called(Counter().eval(), eager_cfg(), session, x, times=1 + 3)
    [a] = vx.advise(cm)
    assert (a.code, a.severity, a.evidence["recompiles"], a.evidence["limit_hit"]) == ("recompile-storm", "warning", 3, False)
    assert a.message.startswith(f"self.step at {line_of(Counter.forward, 'self.step += 1')} changed on 3 calls")
    assert "allow_unspec_int_on_nn_module = True" in a.message and "register_buffer('step'" in a.message
    limit = torch._dynamo.config.recompile_limit
    with torch.no_grad():
        for _ in range(limit):
            cm(x)
    [a] = vx.advise(cm)
    assert (a.code, a.severity, a.evidence["recompiles"], a.evidence["limit_hit"]) == ("recompile-storm", "critical",
                                                                                        limit, True)
    assert "runs eagerly, uncompiled, on every call" in a.message


def test_the_advised_torch_config_stops_the_storm(session):
    with torch._dynamo.config.patch(allow_unspec_int_on_nn_module=True):
        cm = called(Counter().eval(), eager_cfg(), session, torch.randn(4, 8), times=6)
    assert [r.name for r in cm.recompiles] == ["self.step"]      # once: from then on the int is symbolic
    assert codes(vx.advise(cm)) == ["recompile"]


def _stack(session, **kw):
    model = Stack(4).eval()
    cfg = vx.CompileConfig(compiler="eager", cache=vx.CacheConfig(tiers=()), **kw)
    return model, called(model, cfg, session, torch.randn(6, 16))


def test_repeated_blocks_applied_compiles_one_block(session):
    model, cm = _stack(session, strategy="full")
    [a] = vx.advise(cm)
    assert (a.code, a.severity, a.metric) == ("repeated-blocks", "info", "compiled_nodes")
    assert a.evidence == {"piece": 0, "graph": 0, "blocks": 4, "block_nodes": 5, "container": "layers", "piece_nodes": 21}
    assert (a.config.strategy, a.config.split_policy) == ("piecewise", "repeats")
    res = a.apply(cm)
    assert (res.metric, res.before, res.after, res.kept) == ("compiled_nodes", 21.0, 6.0, True)
    # compile time is watched only where Inductor compiles: the eager compiler's milliseconds are load noise
    assert res.checks == ()
    assert cm.config == a.config and res.report is cm.report and res.report.counters["unique_pieces"] == 2
    x = torch.randn(9, 16)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), model(x))
    assert "repeated-blocks" not in codes(vx.advise(cm))


def test_apply_rolls_back_what_measures_worse(session):
    model, cm = _stack(session, strategy="piecewise", splitting_ops=["vxtest::mix"])
    before = cm.config
    worse = vx.Advice("repeated-blocks", "info", "compile it whole", {}, before.replace(strategy="full"), "compiled_nodes")
    res = worse.apply(cm)
    assert (res.before, res.after, res.kept) == (9.0, 21.0, False)    # 3 unique pieces: first, middle, last
    assert res.report.strategy == "full" and cm.config == before and cm.report.strategy == "piecewise"


def test_split_op_missing_applied(session):
    model, cm = _stack(session, strategy="piecewise", splitting_ops=["vxtest::mixx"])
    [a] = [a for a in vx.advise(cm) if a.code == "split-op-missing"]
    assert a.config.splitting_ops == ("vxtest::mix",) and a.evidence == {"missing": ["vxtest::mixx"],
                                                                          "suggested": ["vxtest::mix"]}
    res = a.apply(cm)
    assert (res.metric, res.before, res.after, res.kept) == ("split_pieces", 0.0, 4.0, True)


def test_default_split_ops_absent_is_not_a_missing_op(session):
    # the user named no split ops: a graph without the default (attention) ops warns no_split, but
    # there is no op of theirs to correct
    model, cm = _stack(session, strategy="piecewise")
    assert [w.kind for w in cm.report.warnings] == ["no_split"]
    assert "split-op-missing" not in codes(vx.advise(cm))


def test_memory_growth_across_recompiles(session):
    model, cm = _stack(session, strategy="full")
    held = []
    for _ in range(3):   # something keeps ~120 MiB per compile alive (as graphs of a storm would)
        held.append(torch.ones(30 * 2**20))
        cm.recompile(strategy="full")
    [a] = [a for a in vx.advise(cm) if a.code == "memory-growth"]
    e = a.evidence
    assert (e["what"], e["compiles"], e["graphs"]) == ("process memory (RSS)", 4, 1)
    assert e["last_mb"] - e["first_mb"] >= 300
    assert a.message.startswith(f"process memory (RSS) grew from {e['first_mb']} to {e['last_mb']} MiB over 4 compiles of this model (about {e['per_compile_mb']} MiB each)")


def test_training_mode_and_benchmark_figures(session):
    model = Scaled()                     # left in training mode
    cm = called(model, eager_cfg(), session, torch.randn(4, 8), 2.0)
    row = dict(model="Scaled", p20_ms=0.0, p80_ms=0.0, max_rel_err=0.0)
    bench = BenchReport(rows=(
        BenchRow(variant="eager", tokens=1, median_ms=0.05, **row),
        BenchRow(variant="eager", tokens=64, median_ms=0.40, **row),
        BenchRow(variant="vexplore-auto-auto", tokens=1, median_ms=0.10, **row),
        BenchRow(variant="vexplore-auto-auto", tokens=64, median_ms=0.11, **row),
        BenchRow(variant="torch-default", tokens=64, median_ms=0.3, status="noisy", median_ci=0.09, **row),
        BenchRow(variant="vexplore-full-full", tokens=64, median_ms=0.1, status="failed",
                 **{**row, "max_rel_err": 0.3})), device="cpu", torch=torch.__version__, triton=None)
    found = vx.advise(cm, bench=bench)
    assert codes(found) == ["accuracy", "training-mode", "host-bound", "noisy-timing"]
    assert [a.severity for a in found] == ["critical", "warning", "warning", "info"]
    acc, train, host, noisy = found
    assert "vexplore-full-full@64: max rel err 3.00e-01" in acc.message
    assert "Scaled is in training mode" in train.message
    assert host.evidence == {"variant": "vexplore-auto-auto", "sizes": [1, 64], "median_ms": [0.10, 0.11]}
    assert host.config is None and "cudagraph='auto'" in host.message     # CPU: nothing to apply
    assert noisy.evidence == {"rows": [{"variant": "torch-default", "tokens": 64, "median_ci": 0.09}]}


# -- Inductor ---------------------------------------------------------------------------------------
# Inductor's own FX-graph cache off: the lowering must really fail here, whatever an earlier process
# left in the tests' shared Inductor cache under this key
NO_FALLBACKS = {"implicit_fallbacks": False, "fx_graph_cache": False}


@torch.library.custom_op("vxtest::unlowered", mutates_args=())
def unlowered(x: torch.Tensor, s: float) -> torch.Tensor:
    """vxtest::scale for this file alone: an op Inductor has no lowering for. Once any compile lowers an
    op by implicit fallback, Inductor keeps that lowering for the process, so a shared op would compile
    under implicit_fallbacks=False after any other test had compiled it."""
    return x * s


@unlowered.register_fake
def _unlowered_fake(x: torch.Tensor, s: float) -> torch.Tensor:
    return torch.empty_like(x)


class Unlowered(Failing):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return torch.tanh(self.b(torch.ops.vxtest.unlowered(h, 2.0))) + 1


@pytest.mark.slow
def test_compile_failure_advice_makes_the_op_a_split_op(cache_cfg, session):
    model = Unlowered().eval()
    cfg = vx.CompileConfig(strategy="full", inductor_options=NO_FALLBACKS, cache=cache_cfg)
    with pytest.warns(vx.VexploreFallbackWarning):
        cm = called(model, cfg, session, torch.randn(8, 16))
    [a] = [a for a in vx.advise(cm) if a.code == "compile-system-failure"]
    assert (a.severity, a.evidence["pieces"], a.evidence["ops"], a.metric) == ("warning", [0], ["vxtest::unlowered"],
                                                                               "fallbacks")
    assert a.config.strategy == "piecewise" and a.config.splitting_ops[-1] == "vxtest::unlowered"
    res = a.apply(cm)
    assert (res.before, res.after, res.kept) == (1.0, 0.0, True)
    assert [p.kind for p in cm.report.pieces] == ["compiled", "split_op", "compiled"]
    x = torch.randn(5, 16)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), model(x))


@pytest.mark.slow
def test_compile_that_ends_eager_is_critical(cache_cfg, session):
    # a C++ compiler that is not there: every rung of the ladder fails, the piece runs eagerly
    # (an option Inductor lacks no longer gets this far: CompileConfig refuses it)
    cfg = vx.CompileConfig(strategy="full", inductor_options={"cpp.cxx": ("/nonexistent/g++",)}, cache=cache_cfg)
    with pytest.warns(vx.VexploreFallbackWarning):
        cm = called(Failing().eval(), cfg, session, torch.randn(8, 16))
    [a] = [a for a in vx.advise(cm) if a.code == "compile-system-failure"]
    assert a.severity == "critical" and a.evidence["pieces"] == [0] and "ran eagerly" in a.message


@pytest.mark.slow
def test_runtime_fallback_names_the_custom_op(cache_cfg, session):
    model = BadFake().eval()
    with pytest.warns(vx.VexploreFallbackWarning):
        cm = called(model, vx.CompileConfig(strategy="full", cache=cache_cfg), session, torch.randn(8, 16))
    [a] = [a for a in vx.advise(cm) if a.code == "runtime-fallback"]
    assert (a.severity, a.evidence["graph"], a.evidence["piece"], a.evidence["error_class"], a.evidence["ops"]) == (
        "warning", 0, 0, "AssertionError", ["vxtest::colmajor"])
    assert "register_fake" in a.message and "splitting_ops=[..., 'vxtest::colmajor']" in a.message


@pytest.mark.slow
def test_no_persistent_cache_applied_stores_on_disk(cache_cfg, session):
    model = Failing().eval()    # compiles fine with Inductor's implicit fallbacks on
    cfg = vx.CompileConfig(strategy="full", cache=dataclasses.replace(cache_cfg, tiers=("memory",)))
    cm = called(model, cfg, session, torch.randn(8, 16))
    [a] = [a for a in vx.advise(cm) if a.code == "no-persistent-cache"]
    assert a.config.cache.tiers == ("memory", "disk") and a.evidence["tiers"] == ["memory"]
    res = a.apply(cm)
    assert (res.metric, res.before, res.after, res.kept) == ("persistent_pieces", 0.0, 1.0, True)
    assert cm.config.cache.tiers == ("memory", "disk") and "no-persistent-cache" not in codes(vx.advise(cm))
    fresh = vx.compile(model, cm.config, session=vx.Session())   # a new process's view: loaded from disk
    with torch.no_grad():
        fresh(torch.randn(8, 16))
    assert fresh.report.counters["cache_hits_disk"] == 1


@pytest.mark.slow
def test_low_cache_hit_rate_names_the_changing_part(cache_cfg, session):
    # a memory tier of one entry, toggled between two configs: each return to a config compiled
    # before misses (its entry was evicted by the other's); a config's first compile misses by design and is not counted
    tiny = vx.CacheConfig(tiers=("memory",), memory_entries=1)
    cm = called(Failing().eval(), vx.CompileConfig(strategy="full", cache=tiny), session, torch.randn(8, 16))
    for opts in ({"epilogue_fusion": False}, {}, {"epilogue_fusion": False}, {}):
        cm.recompile(inductor_options=opts)
    [a] = [a for a in vx.advise(cm) if a.code == "low-cache-hit-rate"]
    assert (a.evidence["hits"], a.evidence["lookups"]) == (0, 3)
    # the cache's explain: the one entry it holds is the other config's
    assert a.evidence["changing"] == {"config.inductor_options": 3}
    assert "config.inductor_options (3 misses)" in a.message and "keep the disk tier" in a.message
    # new configs alone (an option swept, an advice applied) are not a low hit rate
    sweep = called(Failing().eval(), vx.CompileConfig(strategy="full", cache=cache_cfg), session, torch.randn(8, 16))
    for opts in ({"epilogue_fusion": False}, {"pattern_matcher": False}, {"epilogue_fusion": False, "pattern_matcher": False}):
        sweep.recompile(inductor_options=opts)
    assert "low-cache-hit-rate" not in codes(vx.advise(sweep))


@pytest.mark.slow
def test_slow_compile_against_the_same_keys_history(cache_cfg, session, monkeypatch):
    import time

    from vexplore.engine.build.compilers import InductorCompiler

    cfg = vx.CompileConfig(strategy="full", cache=vx.CacheConfig(tiers=()))
    cm = called(Failing().eval(), cfg, session, torch.randn(8, 16))
    cm.recompile(cfg)
    # an Inductor cache hit of some 10 ms: slow only when the machine stalled it by a quarter second (seen in a
    # full run), and then said to be the machine, not more work
    assert all(p["cause"] == "busy" for a in vx.advise(cm) if a.code == "slow-compile" for p in a.evidence["pieces"])
    fast = InductorCompiler.compile
    # slower than the slow-compile rule's ratio against this key's best, however loaded the machine
    extra = 4 * max(r.pieces[0].compile_s for r in cm.reports) + 1.0

    def slow(self, *args, **kwargs):
        time.sleep(extra)
        return fast(self, *args, **kwargs)
    monkeypatch.setattr(InductorCompiler, "compile", slow)
    cm.recompile(cfg)
    [a] = [a for a in vx.advise(cm) if a.code == "slow-compile"]
    [p] = [p for p in a.evidence["pieces"] if p["report"] == cm.report.id]
    assert (p["piece"], p["graph"]) == (0, 0) and p["seconds"] > extra
    # the same work as the fastest compile (the same size, Inductor's cache serving both), only slower
    assert (p["cause"], p["new_sizes"], p["compiles"]) == ("busy", [], 1)
    assert a.message.startswith(f"piece 0 (graph 0, {p['nodes']} nodes) took {p['seconds']:.2f} s to compile")
    assert "the machine was busy" in a.message
