"""slow-compile tells a busy machine from more work: new sizes, Inductor's own cache missing, another compiler.

Each test first compiles a piece and compiles it again, so Inductor's own cache serves the second:
the key's fastest compile. What comes after is slower for a reason the compile events show, and the
advice must name that reason, not a busy machine (the busy case: test_advise's slowed compiler).
"""
from __future__ import annotations

import copy

import pytest
import torch

import vexplore as vx
from models import Failing

pytestmark = pytest.mark.slow

NO_TIERS = vx.CompileConfig(strategy="full", cache=vx.CacheConfig(tiers=()))
# Inductor's caches off: a compile does its whole work, whatever an earlier process left in them
UNCACHED = {"force_disable_caches": True}


def _served_twice(session):
    model = Failing().eval()
    cm = vx.compile(model, NO_TIERS, session=session)
    x = torch.randn(8, 16)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), copy.deepcopy(model)(x))
    cm.recompile(NO_TIERS)
    assert cm.report.counters["fxgraph_cache_hits"] == 1       # the key's fastest: Inductor's cache served it
    return cm


def _slow(cm) -> tuple[vx.Advice, dict]:
    [a] = [a for a in vx.advise(cm) if a.code == "slow-compile"]
    # the latest compile's piece. The second compile (an Inductor cache hit of some 10 ms) is in the evidence
    # too when the machine stalled it by a quarter second (a "busy" finding, the rule working): not this test's
    [p] = [p for p in a.evidence["pieces"] if p["report"] == cm.report.id]
    assert (a.severity, p["piece"]) == ("info", 0)
    assert all(q["cause"] == "busy" for q in a.evidence["pieces"] if q is not p)
    return a, p


def test_new_sizes_are_more_work_not_a_busy_machine(session):
    cm = _served_twice(session)
    cm.recompile(NO_TIERS.replace(compile_sizes=(3, 5), inductor_options=UNCACHED))
    a, p = _slow(cm)
    assert (p["cause"], p["new_sizes"], p["compiles"], p["inductor_cache_served"]) == ("new_sizes", [3, 5], 3, 0)
    assert ("more work, not a slower machine. It compiled sizes 3, 5 that no earlier compile of it did (compile_sizes), "
            "each a compile of its own (Inductor's own cache served 0 of its 3 compiles).") in a.message
    assert "busy" not in a.message


def test_inductors_cache_missing_is_named(session):
    cm = _served_twice(session)
    cm.recompile(NO_TIERS.replace(inductor_options=UNCACHED))
    a, p = _slow(cm)
    assert (p["cause"], p["new_sizes"], p["compiles"], p["inductor_cache_served"]) == ("inductor_cache_miss", [], 1, 0)
    assert (": Inductor's own cache served this work before and missed this time (Inductor's own cache served 0 of "
            "its 1 compiles), so it compiled from scratch") in a.message
    assert "busy" not in a.message


def test_another_compiler_is_other_work(session):
    # compiled with the eager compiler first (milliseconds), then with Inductor: not the same work, not "slow"
    cm = vx.compile(Failing().eval(), NO_TIERS.replace(compiler="eager"), session=session)
    with torch.no_grad():
        cm(torch.randn(8, 16))
    cm.recompile(NO_TIERS.replace(inductor_options=UNCACHED))
    assert cm.report.unique_pieces[0].compile_s > 3 * cm.reports[0].unique_pieces[0].compile_s + 0.25
    assert "slow-compile" not in [a.code for a in vx.advise(cm)]
