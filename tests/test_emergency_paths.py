"""The emergency paths, by real faults: a compile system that cannot compile anything (a broken C++
compiler) runs the model eagerly with a critical alert; a cache dir replaced by a file is switched
off with an alert and re-initialised once it is restored; a piece that raises when called alerts."""
from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

import vexplore as vx
from vexplore.cache.warn import VexploreCacheWarning
from models import BadFake, Stack

SPLIT = ["vxtest::mix"]


def _cfg(cache: vx.CacheConfig, **kw) -> vx.CompileConfig:
    return vx.CompileConfig(strategy="piecewise", splitting_ops=SPLIT, cache=cache, **kw)


def test_no_working_cxx_runs_eagerly_with_a_critical_alert(cache_cfg, session, monkeypatch, tmp_path):
    import torch._inductor.config as inductor_config

    # a fresh Inductor cache and a shape no other test compiles: nothing can be served from a cache
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch.manual_seed(0)
    m = Stack(layers=1, dim=12).eval()
    x = torch.randn(7, 12)
    cm = vx.compile(m, _cfg(cache_cfg), session=session)
    # (inductor's own patch: monkeypatch.setattr on its sub-configs deletes the option when undone)
    with inductor_config.patch({"cpp.cxx": ("/nonexistent/g++",)}), \
            pytest.warns(vx.VexploreFallbackWarning, match="InvalidCxxCompiler"), torch.no_grad():
        out = cm(x)
    with torch.no_grad():
        torch.testing.assert_close(out, m(x))
        x2 = torch.randn(5, 12)
        torch.testing.assert_close(cm(x2), m(x2))
    c = cm.report.counters
    assert (c["pieces"], c["compiled_pieces"], c["unique_pieces"], c["inductor_compiles"], c["eager_compiles"],
            c["fallbacks"], c["conservative_retries"], c["cache_misses"]) == (3, 2, 2, 0, 2, 2, 2, 2)
    (a,) = session.monitor.alerts
    assert (a.code, a.severity) == ("compile-system-failure", "critical")
    assert a.message.startswith("report 0: all 2 compiled piece(s) fell back to eager, so the model runs eagerly")
    assert "piece 0: other: InductorError: InvalidCxxCompiler: No working C++ compiler found" in a.message
    assert "install one (e.g. `apt-get install g++`) or set the CXX environment variable" in a.message


def test_a_compile_where_some_pieces_compile_raises_no_system_alert(cache_cfg, session):
    from models import Failing

    m = Failing(op="unlowered_partial").eval()   # an op of its own: see models.Failing
    cfg = vx.CompileConfig(strategy="full", inductor_options={"implicit_fallbacks": False}, cache=cache_cfg)
    with pytest.warns(vx.VexploreFallbackWarning), torch.no_grad():
        vx.compile(m, cfg, session=session)(torch.randn(8, 16))
    assert session.monitor.reports[-1].counters["fallbacks"] == 1     # isolated one node, the rest compiled
    assert session.monitor.alerts == []


def test_a_piece_that_raises_when_called_alerts(cache_cfg, session):
    m = BadFake().eval()
    cm = vx.compile(m, vx.CompileConfig(strategy="full", cache=cache_cfg), session=session)
    with pytest.warns(vx.VexploreFallbackWarning), torch.no_grad():
        cm(torch.randn(8, 16))
    (a,) = session.monitor.alerts
    assert (a.code, a.severity) == ("runtime-fallback", "warning")
    assert a.message.startswith("graph 0 piece 0 (submod_") and "AssertionError: expected size" in a.message


def test_a_cache_dir_replaced_by_a_file_is_switched_off_and_healed(cache_cfg, tmp_path):
    torch.manual_seed(0)
    m = Stack(layers=1).eval()
    x = torch.randn(8, 16)
    disk_only = dataclasses.replace(cache_cfg, tiers=("disk",))
    root = tmp_path / "vxcache"

    def run(s: vx.Session) -> dict[str, int]:
        torch._dynamo.reset()
        cm = vx.compile(m, _cfg(disk_only), session=s)
        with torch.no_grad():
            torch.testing.assert_close(cm(x), m(x))
        return cm.report.counters

    first = run(vx.Session())                       # fills the disk tier: 2 entries
    assert (first["cache_misses"], first["cache_bytes_written_disk"] > 0) == (2, True)

    s = vx.Session(cache_retry_s=0)                 # try to heal at every use: no waiting in the test
    assert run(s)["cache_hits_disk"] == 2
    shutil.move(root, tmp_path / "saved")
    root.write_text("not a directory")
    with pytest.warns(VexploreCacheWarning, match="cannot read .*NotADirectoryError"):
        down = run(s)
    assert (down["cache_misses"], down["inductor_compiles"], down["cache_hits_disk"],
            down["cache_bytes_written_disk"]) == (2, 2, 0, 0)
    (a,) = s.monitor.alerts
    assert (a.code, a.severity) == ("cache-failure", "warning")
    assert a.message.startswith(f"the disk cache tier ({root}) failed: cannot read {root}/artifacts/")
    assert "It is off (no reads, no writes)" in a.message and f"Fix: make {root} a writable directory" in a.message

    # while it was off, an artifact file got damaged: the heal deletes it
    junk = tmp_path / "saved" / "artifacts" / "ab" / ("ab" + "0" * 62 + ".vxa")
    junk.parent.mkdir(exist_ok=True)
    junk.write_bytes(b"half-written")
    root.unlink()
    shutil.move(tmp_path / "saved", root)
    back = run(s)
    assert (back["cache_hits_disk"], back["cache_misses"], back["inductor_compiles"]) == (2, 0, 0)
    assert [x.code for x in s.monitor.alerts] == ["cache-failure", "cache-recovered"]
    b = s.monitor.alerts[1]
    assert b.severity == "info" and b.message.startswith(f"the disk cache tier ({root}) is back: re-initialised; "
                                                         "1 damaged entry deleted; reads and writes resume")
    assert not (root / "artifacts" / "ab" / junk.name).exists()

    # writes resume too: a config never compiled stores its pieces
    torch._dynamo.reset()
    cm = vx.compile(m, _cfg(disk_only, mode="max-autotune-no-cudagraphs"), session=s)
    with torch.no_grad():
        cm(x)
    c = cm.report.counters
    assert (c["cache_misses"], c["cache_bytes_written_disk"] > 0) == (2, True)
    assert len(s.monitor.alerts) == 2
