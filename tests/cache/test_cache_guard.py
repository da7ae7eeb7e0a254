"""GuardedTier against real faults: a disk dir replaced by a file and restored, a disk that can no
longer be written, Redis killed and started again, and a tier that raises."""
from __future__ import annotations

import shutil

import pytest

from vexplore.cache.disk import DiskTier
from vexplore.cache.guard import GuardedTier
from vexplore.cache.remote import RemoteTier
from vexplore.cache.warn import VexploreCacheWarning

from cachehelp import art, key


class Alerts(list):
    def __call__(self, code: str, severity: str, message: str) -> None:
        self.append((code, severity, message))


def test_disk_dir_replaced_by_a_file_is_off_until_restored(tmp_path):
    root = tmp_path / "vx"
    d, alerts = DiskTier(root), Alerts()
    g = GuardedTier(d, alerts, retry_s=0)
    assert g.put(key(1), art(1000, 1)) > 0
    shutil.move(root, tmp_path / "saved")
    root.write_text("")
    with pytest.warns(VexploreCacheWarning, match="cannot read") as w:
        assert g.get(key(1)) is None
        assert g.put(key(2), art(1000, 2)) == 0 and g.keys() == []
    assert len(w) == 1 and [a[:2] for a in alerts] == [("cache-failure", "warning")]
    assert g.failed.startswith(f"cannot read {root}/artifacts/") and g.failures == 1
    assert d.size_bytes() > 0                      # the last index this process saw
    root.unlink()
    shutil.move(tmp_path / "saved", root)
    assert g.get(key(1)) == art(1000, 1)           # healed on the way: reads resume
    assert [a[:2] for a in alerts] == [("cache-failure", "warning"), ("cache-recovered", "info")]
    assert "re-initialised; reads and writes resume" in alerts[1][2] and g.recoveries == 1
    assert g.put(key(2), art(1000, 2)) > 0 and len(d.entries()) == 2


def test_one_unreadable_entry_is_a_miss_not_a_failed_tier(tmp_path):
    # a directory where one artifact file should be (IsADirectoryError on open): that entry misses,
    # the tier stays on, and nothing is deleted — a repair would otherwise flap and sweep good entries
    root = tmp_path / "vx"
    d, alerts = DiskTier(root), Alerts()
    g = GuardedTier(d, alerts, retry_s=0)
    assert g.put(key(1), art(1000, 1)) > 0 and g.put(key(2), art(1000, 2)) > 0
    bad = d.path(key(2))
    bad.unlink()
    bad.mkdir()
    assert g.get(key(2)) is None and g.get(key(1)) == art(1000, 1)
    assert alerts == [] and g.failed is None and bad.is_dir()
    assert any("cannot be read" in r and "a miss, left in place" in r for r in d.rejections)
    assert g.put(key(3), art(1000, 3)) > 0 and g.get(key(3)) == art(1000, 3)


def test_a_failed_tier_waits_for_its_back_off(tmp_path):
    root = tmp_path / "vx"
    d, alerts = DiskTier(root), Alerts()
    g = GuardedTier(d, alerts, retry_s=3600)
    shutil.rmtree(root)
    root.write_text("")
    with pytest.warns(VexploreCacheWarning):
        assert g.get(key(1)) is None
    root.unlink()
    assert g.get(key(1)) is None and g.failed    # the dir could be made again, but the back-off has not passed
    g.retry_at = 0.0
    assert g.get(key(1)) is None and g.failed is None and root.is_dir()   # recreated: an empty, working tier
    assert [a[0] for a in alerts] == ["cache-failure", "cache-recovered"]


def test_a_disk_that_cannot_be_written_still_serves_hits(tmp_path):
    root = tmp_path / "vx"
    d, alerts = DiskTier(root), Alerts()
    g = GuardedTier(d, alerts, retry_s=3600)
    g.put(key(1), art(1000, 1))
    shard = root / "artifacts" / key(2).digest[:2]
    assert shard != d.path(key(1)).parent
    shard.write_text("")                                  # key 2's shard is a file: its write fails
    with pytest.warns(VexploreCacheWarning, match="disk writes are off"):
        assert g.put(key(2), art(1000, 2)) == 0
    assert g.reads_ok and g.get(key(1)) == art(1000, 1)   # hits are still served
    assert g.put(key(3), art(1000, 3)) == 0               # writes stay off until the back-off passes
    assert [a[:2] for a in alerts] == [("cache-failure", "warning")]
    assert "Writes are off, hits are still served" in alerts[0][2]


class Raising:
    name, rejections = "remote", []

    def __init__(self) -> None:
        self.broken = True

    def get(self, k):
        if self.broken:
            raise OSError("connection reset")
        return art(10, 1)

    def put(self, k, a, blob=None):
        return 10

    def discard(self, k, reason):
        pass

    def keys(self):
        return []


def test_a_tier_that_raises_is_switched_off_not_raised():
    t, alerts = Raising(), Alerts()
    g = GuardedTier(t, alerts, retry_s=0)
    assert g.get(key(1)) is None and g.failed == "get raised OSError: connection reset"
    assert "Fix: make Redis at it reachable" in alerts[0][2]
    t.broken = False
    assert g.get(key(1)) == art(10, 1) and [a[0] for a in alerts] == ["cache-failure", "cache-recovered"]


def test_redis_killed_and_started_again(redis_server, cache_secret):
    r, alerts = RemoteTier(redis_server.url, timeout_s=0.3), Alerts()
    g = GuardedTier(r, alerts, retry_s=0)
    assert g.put(key(1), art(1000, 1)) > 0
    redis_server.kill()
    with pytest.warns(VexploreCacheWarning, match="unavailable"):
        assert g.get(key(1)) is None
    assert alerts[0][:2] == ("cache-failure", "warning") and "GET failed" in alerts[0][2]
    assert g.get(key(1)) is None and len(alerts) == 1    # still down: the heal's PING fails, no new warning
    redis_server.start()                                 # an empty Redis on the same port
    assert g.get(key(1)) is None and g.failed is None and r.down_reason is None
    assert [a[0] for a in alerts] == ["cache-failure", "cache-recovered"]
    assert g.put(key(1), art(1000, 1)) > 0 and g.get(key(1)) == art(1000, 1)


def test_a_session_alerts_once_on_a_dir_that_cannot_be_made(tmp_path):
    import vexplore as vx

    blocker = tmp_path / "file"
    blocker.write_text("")
    s = vx.Session()
    cfg = vx.CacheConfig(dir=str(blocker / "vx"))
    with pytest.warns(VexploreCacheWarning, match="cannot create cache dir"):
        s.cache(cfg)
    s.cache(cfg)                                   # the same tier, the same guard: no second alert
    (a,) = s.monitor.alerts
    assert (a.code, a.severity) == ("cache-failure", "warning")
    assert a.message.startswith(f"the disk cache tier ({blocker / 'vx'}) failed: cannot create cache dir")
