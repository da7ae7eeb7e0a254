"""A real Inductor failure walks the fallback ladder and isolates the failing node."""
from __future__ import annotations

import pytest
import torch

import vexplore as vx
from models import Failing

# Inductor has no lowering for a custom op when implicit_fallbacks is off: a real
# MissingOperatorWithoutDecomp from Inductor, not a mock. The conservative rung keeps the user's
# implicit_fallbacks, so it fails again and the ladder isolates the op. Each test's op is its own
# (models.UNLOWERED): Inductor's lowering registry is per process, and a compile of the same op
# with implicit fallbacks on anywhere earlier in the process would make these compiles succeed.
NO_FALLBACKS = {"implicit_fallbacks": False}


def test_ladder_isolates_the_failing_node(cache_cfg, session):
    m = Failing(op="unlowered_isolate").eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, vx.CompileConfig(strategy="full", inductor_options=NO_FALLBACKS, cache=cache_cfg,
                                        validate=True), session=session)
    with pytest.warns(vx.VexploreFallbackWarning) as rec, torch.no_grad():
        out = cm(x)
    assert len([w for w in rec if issubclass(w.category, vx.VexploreFallbackWarning)]) == 1
    with torch.no_grad():
        torch.testing.assert_close(out, m(x))
        x2 = torch.randn(11, 16)
        torch.testing.assert_close(cm(x2), m(x2))
    p = cm.report.pieces[0]
    assert p.compiler == "inductor"
    assert len(p.isolated) == 1
    assert "unsupported op / lowering error" in p.fallback_reason and "vxtest::unlowered_isolate" in p.fallback_reason
    assert p.fallback_reason.endswith("to run eagerly; the rest compiled")
    # the same as fields code branches on; the prose is written from them
    fb = p.fallback
    assert (fb.kind, fb.rung, fb.category, fb.op) == ("error", "isolate", "unsupported op / lowering error",
                                                      "vxtest::unlowered_isolate.default")
    assert fb.isolated == p.isolated and fb.compiled_parts == 2 and not fb.failed_parts and fb.retry_error
    assert fb.text() == p.fallback_reason
    assert p.validation.startswith("ok")
    c = cm.report.counters
    # rung 1 and 2 fail; rung 3 compiles the two pieces around the op. Part of the piece runs
    # eagerly, so it did not end on the configured compiler: a fallback
    assert (c["conservative_retries"], c["isolated_nodes"], c["inductor_compiles"], c["fallbacks"]) == (1, 1, 2, 1)
    # toggling back later in the session is a memory hit: the ladder is not walked again
    cm.recompile(strategy="piecewise", splitting_ops=["vxtest::nothing"], compiler="eager")
    with pytest.warns(vx.VexploreFallbackWarning):
        again = cm.recompile(cm.config.replace(strategy="full", compiler="inductor"))
    assert again.counters["cache_hits_memory"] == 1 and again.counters["inductor_compiles"] == 0
    assert again.pieces[0].fallback == fb and again.pieces[0].fallback_reason == p.fallback_reason


def test_fallback_false_raises(cache_cfg, session):
    m = Failing(op="unlowered_raise").eval()
    cm = vx.compile(m, vx.CompileConfig(strategy="full", inductor_options=NO_FALLBACKS, fallback=False,
                                        cache=cache_cfg), session=session)
    with pytest.raises(vx.CompileError, match="piece 0: Inductor failed"), torch.no_grad():
        cm(torch.randn(8, 16))


def test_ladder_ends_on_eager_when_nothing_can_be_isolated(cache_cfg, session, monkeypatch, tmp_path):
    """With no working C++ compiler every rung fails for real, no op is to blame, and the piece runs eagerly."""
    import torch._inductor.config as inductor_config

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))   # nothing served from a cache
    m = Failing().eval()
    cm = vx.compile(m, vx.CompileConfig(strategy="full", cache=cache_cfg), session=session)
    x = torch.randn(8, 16)
    with inductor_config.patch({"cpp.cxx": ("/nonexistent/g++",)}), pytest.warns(vx.VexploreFallbackWarning), \
            torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    p = cm.report.pieces[0]
    assert p.compiler == "eager" and "ran eagerly" in p.fallback_reason and "InvalidCxxCompiler" in p.fallback_reason
    assert (p.fallback.kind, p.fallback.rung, p.fallback.cause, p.fallback.op) == ("error", "eager", "c++ compiler", None)
    assert p.fallback.retry_error and p.fallback.text() == p.fallback_reason
    c = cm.report.counters
    assert (c["fallbacks"], c["eager_compiles"], c["conservative_retries"], c["inductor_compiles"]) == (1, 1, 1, 0)


def _bad_fake(cache_cfg, session, counts=False):
    from models import BadFake

    m = BadFake(counts=counts).eval()
    return m, vx.compile(m, vx.CompileConfig(strategy="full", cache=cache_cfg), session=session)


def test_piece_that_raises_at_call_time_runs_eagerly_from_then_on(cache_cfg, session):
    """Inductor compiles vxtest::colmajor on its fake kernel's promise and asserts the strides at
    call time (a real AssertionError from the generated code); the piece falls back for good."""
    m, cm = _bad_fake(cache_cfg, session)
    x = torch.randn(8, 16)
    with pytest.warns(vx.VexploreFallbackWarning, match=r"graph 0 piece 0 \(submod_\d+\): AssertionError: expected size"
                      ) as rec, torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    (w,) = [w for w in rec if issubclass(w.category, vx.VexploreFallbackWarning)]
    assert "runs eagerly from now on (this call ran it eagerly)" in str(w.message)
    (fb,) = cm.runtime_fallbacks
    assert (fb.graph, fb.piece, fb.error_class, fb.retried) == (0, 0, "AssertionError", True)
    assert cm.report.counters["inductor_compiles"] == 1 and cm.report.counters["fallbacks"] == 0
    import warnings
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("error", vx.VexploreFallbackWarning)   # no second warning
        for n in (8, 5):
            y = torch.randn(n, 16)
            torch.testing.assert_close(cm(y), m(y))
    assert len(cm.runtime_fallbacks) == 1 and len(cm.graphs) == 1


def test_call_that_fails_eagerly_too_raises_and_switches_nothing(cache_cfg, session):
    m, cm = _bad_fake(cache_cfg, session)
    with pytest.raises(ValueError, match="input holds inf or nan"), torch.no_grad():
        cm(torch.full((8, 16), float("nan")))
    assert cm.runtime_fallbacks == []


def test_piece_that_writes_inputs_is_not_run_twice(cache_cfg, session):
    m, cm = _bad_fake(cache_cfg, session, counts=True)
    x = torch.randn(8, 16)
    with pytest.warns(vx.VexploreFallbackWarning, match="writes calls in place"), \
            pytest.raises(vx.VexploreError, match="call again: the piece runs eagerly from now on"), torch.no_grad():
        cm(x)
    (fb,) = cm.runtime_fallbacks
    assert fb.retried is False
    before = m.calls.item()
    with torch.no_grad():
        out = cm(x)
    assert m.calls.item() == before + 1                     # the eager piece wrote the buffer once
    with torch.no_grad():
        m.calls.sub_(1)
        torch.testing.assert_close(out, m(x))
