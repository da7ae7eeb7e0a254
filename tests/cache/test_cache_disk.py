"""Disk tier on synthetic artifacts: every kind of damage, the index, eviction, read-only dirs."""
from __future__ import annotations

import json
import logging
import os
import stat
import time

import pytest

from vexplore.cache.artifact import Artifact
from vexplore.cache.disk import DiskTier
from vexplore.cache.keys import CACHE_SCHEMA
from vexplore.cache.memory import MemoryTier
from vexplore.cache.tiered import TieredCache
from vexplore.cache.warn import VexploreCacheWarning

from cachehelp import art, artifact_paths, flip_data_byte, garble_header_json, key, set_schema, swap, truncate

LOG = "vexplore.cache"


def test_round_trip_modes_and_layout(tmp_path):
    d = DiskTier(tmp_path / "vx")
    assert d.put(key(1), art(500)) == os.path.getsize(d.path(key(1)))
    got = d.get(key(1))
    assert got == art(500)
    assert stat.S_IMODE(os.stat(tmp_path / "vx").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(d.path(key(1))).st_mode) == 0o600
    assert json.loads((tmp_path / "vx" / "meta.json").read_text()) == {"format": "vexplore-cache-dir", "layout": 1}
    assert [dg for dg, _ in d.entries()] == [key(1).digest]
    assert d.get(key(2)) is None and len(d.rejections) == 0


@pytest.mark.parametrize("fault, reason", [
    (truncate, "length"),
    (flip_data_byte, "checksum mismatch"),
    (garble_header_json, "undecodable header"),
    (set_schema, f"schema {CACHE_SCHEMA + 1}, expected {CACHE_SCHEMA}"),
])
def test_damaged_entry_is_detected_deleted_counted_logged(tmp_path, caplog, fault, reason):
    d = DiskTier(tmp_path / "vx")
    d.put(key(1), art(800))
    p = d.path(key(1))
    fault(p)
    with caplog.at_level(logging.WARNING, logger=LOG):
        assert d.get(key(1)) is None
    assert len(d.rejections) == 1 and not p.exists()
    assert reason in d.rejections[-1]
    [rec] = [r for r in caplog.records if "damaged" in r.getMessage()]
    assert str(p) in rec.getMessage() and reason in rec.getMessage()
    assert d.get(key(1)) is None and len(d.rejections) == 1          # now simply absent
    d.put(key(1), art(800))
    assert d.get(key(1)) == art(800)


def test_foreign_version_and_swapped_entries_are_misplaced(tmp_path, caplog):
    d = DiskTier(tmp_path / "vx")
    k1, k2 = key(1), key(2)
    d.put(k1, art(300, 1))
    d.put(k2, art(300, 2))
    swap(d.path(k1), d.path(k2))
    other = key(1, versions={**k1.versions, "torch": "2.11.0"})   # a valid entry of another version
    d.put(key(3), art(300, 3))
    d.path(key(3)).write_bytes(art(300, 3).encode(other))
    with caplog.at_level(logging.WARNING, logger=LOG):
        assert d.get(k1) is None and d.get(k2) is None and d.get(key(3)) is None
    assert len(d.rejections) == 3
    assert "entry belongs to another key" in d.rejections[-1]
    assert artifact_paths(tmp_path / "vx") == []
    assert len([r for r in caplog.records if "damaged" in r.getMessage()]) == 3


def _three(d: DiskTier) -> list:
    ks = [key(i) for i in range(3)]
    for i, k in enumerate(ks):
        d.put(k, art(400, i))
        os.utime(d.path(k), (1_000_000 + i, 1_000_000 + i))   # distinct last-use times
    return ks


@pytest.mark.parametrize("damage, problem", [
    (lambda p: p.unlink(), "missing"),
    (lambda p: p.write_bytes(b"\x00\xffnot json at all"), "garbled"),
    (lambda p: p.write_text(p.read_text().replace('"bytes":', '"bytes":1', 1)), "checksum mismatch"),
    (lambda p: p.write_text(json.dumps({"format": "vexplore-disk-index", "version": 99, "entries": {}})),
     "foreign format"),
])
def test_lost_or_damaged_index_is_rebuilt_from_the_files(tmp_path, caplog, damage, problem):
    root = tmp_path / "vx"
    ks = _three(DiskTier(root))
    damage(root / "index.json")
    d = DiskTier(root)                       # a new process opening the dir
    with caplog.at_level(logging.WARNING, logger=LOG):
        entries = d.entries()
    assert d.index.rebuilds == 1 and len(d.rejections) == 0
    assert [dg for dg, _ in entries] == [k.digest for k in reversed(ks)]   # LRU order from the files
    [rec] = [r for r in caplog.records if "index" in r.getMessage()]
    assert problem in rec.getMessage() and "rebuilt from 3 artifact file(s)" in rec.getMessage()
    assert DiskTier(root).index.load()[1] is None                          # saved again, valid


def test_rebuild_deletes_damaged_files_and_adopts_unindexed_ones(tmp_path, caplog):
    root = tmp_path / "vx"
    d = DiskTier(root)
    ks = _three(d)
    truncate(d.path(ks[0]))
    (root / "index.json").unlink()
    e = DiskTier(root)
    with caplog.at_level(logging.WARNING, logger=LOG):
        assert [dg for dg, _ in e.entries()] == [ks[2].digest, ks[1].digest]
    assert len(e.rejections) == 1 and e.index.rebuilds == 1 and not d.path(ks[0]).exists()
    # a file written by a process that died before indexing it is adopted on open
    e.path(key(9)).parent.mkdir(exist_ok=True)
    e.path(key(9)).write_bytes(art(100, 9).encode(key(9)))
    assert key(9).digest in [dg for dg, _ in DiskTier(root).entries()]


@pytest.mark.parametrize("op", ["lookup", "store"])
def test_each_damaged_entry_met_in_one_index_rebuild_keeps_its_own_reason(tmp_path, op):
    root = tmp_path / "vx"
    d = DiskTier(root)
    ks = _three(d)
    truncate(d.path(ks[0]))
    set_schema(d.path(ks[1]))
    (root / "index.json").unlink()
    cache = TieredCache(None, [DiskTier(root)])       # a new process: its first listing rebuilds the index
    if op == "lookup":                                 # the miss lists the tier for the nearest key
        done = cache.lookup(key(9), lambda a: (lambda: None, {}))
        assert done.tier == "miss" and done.counters()["cache_rejected_disk"] == 2
    else:                                              # the write reindexes the dir
        done = cache.store(key(9), lambda: None, art(100, 9))
        assert done.counters()["cache_rejected_disk"] == 2
    by_entry = {why.split()[2]: why for tier, why in done.rejected if tier == "disk"}
    assert set(by_entry) == {ks[0].digest[:12], ks[1].digest[:12]}
    assert "was damaged (length " in by_entry[ks[0].digest[:12]]
    assert f"was damaged (schema {CACHE_SCHEMA + 1}, expected {CACHE_SCHEMA})" in by_entry[ks[1].digest[:12]]


def test_lookup_without_explanation_lists_no_tier(tmp_path, monkeypatch):
    d = DiskTier(tmp_path / "vx")
    d.put(key(1), art(100))
    listed = []
    monkeypatch.setattr(d, "keys", lambda: listed.append(1) or [(key(1).digest, key(1).parts())])
    cache = TieredCache(MemoryTier(), [d])
    miss = cache.lookup(key(2), lambda a: (lambda: None, {}), explain=False)
    assert (miss.tier, miss.miss_reason, listed) == ("miss", "not stored in memory, disk", [])
    assert cache.lookup(key(2), lambda a: (lambda: None, {})).miss_reason.startswith("nearest stored key")
    assert listed == [1]


def test_damaged_meta_is_rewritten(tmp_path, caplog):
    root = tmp_path / "vx"
    DiskTier(root)
    (root / "meta.json").write_bytes(b"\x00\x01")
    with caplog.at_level(logging.WARNING, logger=LOG):
        d = DiskTier(root)
    assert d.meta_repairs == 1 and json.loads((root / "meta.json").read_text())["layout"] == 1
    (root / "meta.json").write_text('{"format": "vexplore-cache-dir", "layout": 7}')
    assert DiskTier(root).meta_repairs == 1 and DiskTier(root).meta_repairs == 0


def test_eviction_by_total_size_in_lru_order_across_processes(tmp_path):
    root = tmp_path / "vx"
    size = len(art(1000).encode(key(0)))
    a = DiskTier(root, max_bytes=int(3.5 * size))
    b = DiskTier(root, max_bytes=int(3.5 * size))      # another process on the same dir
    ks = [key(i) for i in range(5)]
    for i in range(3):
        a.put(ks[i], art(1000, i))
        time.sleep(0.02)
    assert b.get(ks[0]) is not None                    # a hit in the other process
    time.sleep(0.02)
    a.put(ks[3], art(1000, 3))                         # over the bound: ks[1] is least recently used
    assert not a.path(ks[1]).exists() and a.evictions == 1
    assert [dg for dg, _ in a.entries()] == [ks[3].digest, ks[0].digest, ks[2].digest]
    assert sum(e.nbytes for _, e in a.entries()) == 3 * size


def test_prune_clear_verify(tmp_path):
    root = tmp_path / "vx"
    d = DiskTier(root)
    ks = _three(d)
    size = os.path.getsize(d.path(ks[0]))
    r = d.prune(size + 1)
    assert [(dg, n) for dg, n, _ in r.files] == [(ks[0].digest, size), (ks[1].digest, size)]
    assert (r.remaining_entries, r.remaining_bytes) == (1, size)
    d.put(ks[0], art(400, 0))
    flip_data_byte(d.path(ks[0]))
    v = DiskTier(root).verify()
    assert v.checked == 2 and [(dg, why) for dg, _, why in v.files] == [(ks[0].digest, "checksum mismatch")]
    assert v.remaining_entries == 1
    c = DiskTier(root).clear()
    assert len(c.files) == 1 and artifact_paths(root) == [] and DiskTier(root).entries() == []


def test_dir_that_cannot_be_created_degrades_with_one_warning(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.warns(VexploreCacheWarning, match="cannot create cache dir") as w:
        d = DiskTier(blocker / "vx")
        assert d.put(key(1), art(100)) == 0 and d.get(key(1)) is None
        assert d.put(key(2), art(100)) == 0
    assert len(w) == 1 and "Not a directory" in str(w[0].message)


def test_write_failure_mid_run_degrades_with_one_warning(tmp_path):
    root = tmp_path / "vx"
    d = DiskTier(root)
    d.put(key(1), art(100, 1))
    (root / "artifacts" / key(2).digest[:2]).write_text("a file where a shard dir goes")
    with pytest.warns(VexploreCacheWarning, match="disk writes are off") as w:
        assert d.put(key(2), art(100, 2)) == 0
        assert d.put(key(3), art(100, 3)) == 0           # no second warning, no attempt
    assert len(w) == 1
    assert d.get(key(1)) == art(100, 1)                  # reads go on


def test_stale_temp_files_are_removed(tmp_path):
    root = tmp_path / "vx"
    d = DiskTier(root)
    d.put(key(1), art(100))
    shard = d.path(key(1)).parent
    old, new = shard / ".tmp-old", shard / ".tmp-new"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    DiskTier(root).entries()
    assert not old.exists() and new.exists()


def test_artifact_decode_refuses_other_keys():
    blob = art(10).encode(key(1))
    assert Artifact.decode(blob, key(1)) == art(10)
    with pytest.raises(Exception, match="another key"):
        Artifact.decode(blob, key(2))
