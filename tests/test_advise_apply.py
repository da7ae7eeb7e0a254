"""Advice.apply starts from the model's config as it is now, and keeps a config only when its metric
improved and nothing else it promises got worse beyond noise; both figures are in the result."""
from __future__ import annotations

import copy
import dataclasses
import time

import pytest
import torch

import vexplore as vx
from models import Stack
from vexplore.engine.build.compilers import InductorCompiler

pytestmark = pytest.mark.slow

X = torch.randn(6, 16)


def _called(model, cfg, session):
    twin = copy.deepcopy(model)
    cm = vx.compile(model, cfg, session=session)
    with torch.no_grad():
        torch.testing.assert_close(cm(X), twin(X))
    return cm


def test_two_advices_applied_in_a_row_keep_the_first(cache_cfg, session):
    # memory tier only, and a misspelt split op: two advices, each with a config made from the config then
    model = Stack(4).eval()
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mixx"],
                           cache=dataclasses.replace(cache_cfg, tiers=("memory",)))
    cm = _called(model, cfg, session)
    advice = vx.advise(cm)
    assert [a.code for a in advice] == ["split-op-missing", "no-persistent-cache", "repeated-blocks"]
    split, persist = advice[0], advice[1]
    first = persist.apply(cm)
    assert (first.metric, first.before, first.after, first.kept) == ("persistent_pieces", 0.0, 1.0, True)
    assert cm.config == cfg.replace(cache=dataclasses.replace(cfg.cache, tiers=("memory", "disk")))
    second = split.apply(cm)      # advised before the disk tier was added: it must not take it away
    assert (second.metric, second.before, second.after, second.kept) == ("split_pieces", 0.0, 4.0, True)
    assert cm.config == cfg.replace(splitting_ops=["vxtest::mix"],
                                    cache=dataclasses.replace(cfg.cache, tiers=("memory", "disk")))
    assert tuple(cm.report.config["cache"]["tiers"]) == ("memory", "disk") and cm.report.counters["cache_bytes_written"] > 0
    x = torch.randn(9, 16)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), model(x))


PER_COMPILE_S = 1.5


def test_fewer_nodes_but_more_compile_time_is_reverted(cache_cfg, session, monkeypatch):
    # repeated-blocks promises less compile work (21 graph nodes compiled -> 6). Here every Inductor compile
    # costs PER_COMPILE_S more (a cost per piece, as Inductor's own overhead is on a loaded machine), so the
    # split config's two unique pieces take longer to compile than the one piece did: not kept
    model = Stack(4).eval()
    cfg = vx.CompileConfig(strategy="full", cache=cache_cfg)
    cm = _called(model, cfg, session)
    [a] = [a for a in vx.advise(cm) if a.code == "repeated-blocks"]
    fast = InductorCompiler.compile
    cost: list[float] = []

    def slow(self, *args, **kwargs):
        # the cost per compile: PER_COMPILE_S, or 3x the first (the one-piece "before") compile's own time when
        # that is longer, so two compiles cost more than one by far however loaded this machine is
        t0 = time.perf_counter()
        out = fast(self, *args, **kwargs)
        if not cost:
            cost.append(max(PER_COMPILE_S, 3 * (time.perf_counter() - t0)))
        time.sleep(cost[0])
        return out
    monkeypatch.setattr(InductorCompiler, "compile", slow)
    res = a.apply(cm)
    assert (res.metric, res.before, res.after, res.kept) == ("compiled_nodes", 21.0, 6.0, False)
    [c] = res.checks
    assert (c.metric, c.worse) == ("compile_s", True) and c.after - c.before > 0.5 * cost[0]
    assert str(res) == res.message
    assert res.message.startswith(f"compiled_nodes: 21 -> 6, reverted (compile_s {c.before:.4g} -> {c.after:.4g} (worse); "
                                  "graph nodes compiled (unique pieces); measured under a trial config)")
    assert res.report.strategy == "piecewise" and res.report.counters["unique_pieces"] == 2   # what was measured
    assert cm.config == cfg and cm.report.strategy == "full"                                 # and left
    x = torch.randn(9, 16)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), model(x))
