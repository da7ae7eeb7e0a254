"""The tiers through vx.compile: exact report counters after every fault (Inductor compiles)."""
from __future__ import annotations

import logging
import os

import pytest

import vexplore as vx
from vexplore.monitor.report import Miss
from vexplore.cache.artifact import Artifact
from vexplore.cache.disk import DiskTier
from vexplore.cache.keys import CACHE_SCHEMA

from cachehelp import artifact_paths, flip_data_byte, garble_header_json, set_schema, swap, truncate
from conftest import compile_toy

pytestmark = pytest.mark.slow


def data_bytes(root) -> int:
    return sum(len(Artifact.decode(p.read_bytes(), None).data) for p in artifact_paths(root))


def cfg(d, **kw) -> vx.CacheConfig:
    return vx.CacheConfig(tiers=kw.pop("tiers", ("memory", "disk")), dir=str(d), **kw)


def nonzero(c: dict) -> dict:
    return {k: v for k, v in c.items() if v and k.startswith(("cache", "inductor"))}


def test_cold_compile_counts_and_explains_every_miss(toy_template):
    rep, root = toy_template.report, toy_template.dir
    files = sum(os.path.getsize(p) for p in artifact_paths(root))
    assert nonzero(rep.counters) == {"inductor_compiles": 3, "cache_misses": 3, "cache_misses_memory": 3,
                                     "cache_misses_disk": 3, "cache_bytes_written": files,
                                     "cache_bytes_written_disk": files}
    assert rep.counters["cache_rejected"] == rep.counters["cache_rejected_disk"] == 0
    # every piece is looked up before any is built (hits resolve at once), so in an empty cache
    # each miss says so; the config-change test below shows the nearest-key explanation
    assert [p.miss_reasons for p in rep.unique_pieces] == [("size general: nothing stored in memory, disk yet",)] * 3
    assert [p.misses for p in rep.unique_pieces] == [(Miss(None, "nothing stored in memory, disk yet"),)] * 3


def test_warm_disk_in_a_new_session_then_memory(warm_dir):
    s = vx.Session()
    rep = compile_toy(cfg(warm_dir), s)
    c = rep.counters
    assert nonzero(c) == {"cache_hits_disk": 3, "cache_misses_memory": 3, "cache_bytes_read": data_bytes(warm_dir),
                          "cache_bytes_read_disk": data_bytes(warm_dir), "cache_load_us_disk": c["cache_load_us_disk"]}
    assert c["cache_load_us_disk"] > 0 and all(p.cache == "disk" and not p.miss_reasons for p in rep.unique_pieces)
    loads = [e for e in rep.events if e.step == "load"]
    assert [e.tier for e in loads] == ["disk"] * 3
    assert [p.compile_s for p in rep.unique_pieces] == pytest.approx([e.duration_s for e in loads], abs=1e-3)
    rep2 = compile_toy(cfg(warm_dir), s)
    assert nonzero(rep2.counters) == {"cache_hits_memory": 3, "cache_load_us_memory": rep2.counters["cache_load_us_memory"]}


def test_config_change_misses_with_the_differing_part_then_toggle_back_hits_memory(warm_dir):
    s = vx.Session()
    compile_toy(cfg(warm_dir), s)
    rep = compile_toy(cfg(warm_dir), s, mode="max-autotune-no-cudagraphs")
    assert (rep.counters["cache_misses"], rep.counters["inductor_compiles"]) == (3, 3)
    for p in rep.unique_pieces:
        [reason] = p.miss_reasons
        assert reason.endswith("differs in config.mode: default -> max-autotune-no-cudagraphs"), reason
        assert [(m.size, m.differs, m.rejected) for m in p.misses] == [(None, ("config.mode",), ())]
    back = compile_toy(cfg(warm_dir), s)
    assert (back.counters["cache_hits_memory"], back.counters["cache_misses"]) == (3, 0)


@pytest.mark.parametrize("fault, reason", [
    (truncate, "length"), (flip_data_byte, "checksum mismatch"),
    (garble_header_json, "undecodable header"), (set_schema, f"schema {CACHE_SCHEMA + 1}, expected {CACHE_SCHEMA}"),
])
def test_damaged_disk_entry_is_recompiled(warm_dir, caplog, fault, reason):
    victim = artifact_paths(warm_dir)[0]
    fault(victim)
    with caplog.at_level(logging.WARNING, logger="vexplore.cache"):
        rep = compile_toy(cfg(warm_dir))
    c = rep.counters
    assert (c["cache_hits_disk"], c["cache_misses"], c["inductor_compiles"]) == (2, 1, 1)
    assert (c["cache_rejected"], c["cache_rejected_disk"], c["cache_misses_disk"]) == (1, 1, 1)
    [missed] = [p for p in rep.unique_pieces if p.cache == "miss"]
    [why] = missed.miss_reasons
    assert f"disk entry {victim.name[:12]} was damaged ({reason}" in why
    assert missed.misses[0].rejected == ("disk",) and missed.misses[0].reason in why
    assert len([r for r in caplog.records if "damaged" in r.getMessage()]) == 1
    v = DiskTier(warm_dir).verify()
    assert (v.checked, v.files) == (3, ()) and victim.exists()         # rewritten by the recompile


def test_two_entries_files_swapped(warm_dir):
    a, b, _ = artifact_paths(warm_dir)
    swap(a, b)
    rep = compile_toy(cfg(warm_dir))
    c = rep.counters
    assert (c["cache_hits_disk"], c["cache_misses"], c["cache_rejected_disk"], c["inductor_compiles"]) == (1, 2, 2, 2)
    # the first lookup meets one file; the other is found when the miss reads the index
    assert any("entry belongs to another key" in p.miss_reasons[0] for p in rep.unique_pieces if p.cache == "miss")
    assert DiskTier(warm_dir).verify().files == ()


@pytest.mark.parametrize("damage", [lambda p: p.unlink(), lambda p: p.write_bytes(b"{garbled")])
def test_lost_or_garbled_index_is_rebuilt(warm_dir, damage):
    damage(warm_dir / "index.json")
    s = vx.Session()
    rep = compile_toy(cfg(warm_dir), s)
    assert (rep.counters["cache_hits_disk"], rep.counters["cache_rejected"]) == (3, 0)
    rep2 = compile_toy(cfg(warm_dir), s, mode="max-autotune-no-cudagraphs")   # misses read the index
    assert rep2.counters["cache_misses"] == 3
    assert s.disk_tier(str(warm_dir)).index.rebuilds == 1
    assert len(DiskTier(warm_dir).entries()) == 6


def test_unwritable_cache_dir_degrades_to_memory_with_one_warning(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    s = vx.Session()
    with pytest.warns(vx.cache.VexploreCacheWarning, match="cannot create cache dir") as w:
        rep = compile_toy(cfg(blocker / "vx"), s)
        rep2 = compile_toy(cfg(blocker / "vx"), s)
    assert len(w) == 1
    assert (rep.counters["cache_misses"], rep.counters["cache_bytes_written"]) == (3, 0)
    assert rep2.counters["cache_hits_memory"] == 3


def test_prewarm_loads_a_configs_entries_into_memory(warm_dir):
    s = vx.Session()
    other = vx.cache.prewarm(vx.CompileConfig(mode="max-autotune", cache=cfg(warm_dir)), session=s)
    assert (other.loaded, other.failed, len(s.memory)) == (0, 0, 0)
    got = vx.cache.prewarm(vx.CompileConfig(cache=cfg(warm_dir)), session=s)
    assert (got.loaded, got.failed, len(s.memory)) == (3, 0, 3)
    rep = compile_toy(cfg(warm_dir), s)
    assert (rep.counters["cache_hits_memory"], rep.counters["cache_hits_disk"]) == (3, 0)
