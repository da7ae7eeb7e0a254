"""Remote tier on a real redis-server: signing, refusals, secrets, passwords, outages."""
from __future__ import annotations

import logging
import os
import time

import pytest

from vexplore.cache.artifact import Artifact
from vexplore.cache.disk import DiskTier
from vexplore.cache.remote import RemoteTier, sign
from vexplore.cache.tiered import TieredCache
from vexplore.cache.warn import VexploreCacheWarning

from cachehelp import art, key
from conftest import RedisServer, free_port

LOG = "vexplore.cache"


def test_round_trip_is_signed_and_indexed(redis_server, cache_secret):
    r = RemoteTier(redis_server.url, prefix="t:")
    n = r.put(key(1), art(700))
    raw = redis_server.client().get("t:art:" + key(1).digest)
    assert n == len(raw) and raw.startswith(b"VXR1") and raw[36:] == art(700).encode(key(1))
    assert r.get(key(1)) == art(700) and r.get(key(2)) is None
    assert [d for d, _ in r.keys()] == [key(1).digest] and len(r.rejections) == 0


def test_discard_and_verify_remove_the_index_field_too(redis_server, cache_secret):
    r = RemoteTier(redis_server.url, prefix="t:")
    for i in (1, 2, 3):
        r.put(key(i), art(300, i))
    r.discard(key(1), "failed to load (test)")
    redis_server.client().set(r.kname(key(2)), b"junk")
    assert [name for name, _ in r.verify()] == [r.kname(key(2))]
    assert r.names() == [r.kname(key(3))] and [d for d, _ in r.keys()] == [key(3).digest]
    assert redis_server.client().hkeys("t:index") == [key(3).digest.encode()]


def test_store_encodes_once_for_every_tier(redis_server, cache_secret, tmp_path, monkeypatch):
    encoded = []
    real = Artifact.encode
    monkeypatch.setattr(Artifact, "encode", lambda self, k: encoded.append(k) or real(self, k))
    disk, remote = DiskTier(tmp_path / "vx"), RemoteTier(redis_server.url, prefix="t:")
    stored = TieredCache(None, [disk, remote]).store(key(1), lambda: None, art(300))
    assert encoded == [key(1)] and [t for t, n in stored.written if n > 0] == ["disk", "remote"]
    assert disk.get(key(1)) == art(300) == remote.get(key(1))


def _refused(r: RemoteTier, k, caplog, why: str) -> None:
    with caplog.at_level(logging.WARNING, logger=LOG):
        assert r.get(k) is None
    assert why in r.rejections[-1]
    assert any(why in rec.getMessage() for rec in caplog.records)


def test_unsigned_wrongly_signed_damaged_and_misplaced_values_are_refused(redis_server, cache_secret, caplog):
    r = RemoteTier(redis_server.url, prefix="t:")
    c = redis_server.client()
    c.set(r.kname(key(1)), art(500).encode(key(1)))                          # unsigned
    _refused(r, key(1), caplog, "unsigned value")
    c.set(r.kname(key(2)), sign(b"another-secret-of-32-bytes......", r.kname(key(2)), art(500).encode(key(2))))
    _refused(r, key(2), caplog, "wrong signature")
    r.put(key(3), art(500))
    v = bytearray(c.get(r.kname(key(3))))
    v[-3] ^= 0x01                                                           # damaged in Redis
    c.set(r.kname(key(3)), bytes(v))
    _refused(r, key(3), caplog, "wrong signature")
    r.put(key(4), art(500))
    c.set(r.kname(key(5)), c.get(r.kname(key(4))))                          # another key's value
    _refused(r, key(5), caplog, "wrong signature")
    # correctly signed by this secret but holding a damaged artifact (the writer's bug): framing check
    c.set(r.kname(key(6)), sign(cache_secret.encode(), r.kname(key(6)), art(500).encode(key(6))[:-10]))
    _refused(r, key(6), caplog, "length")
    c.set(r.kname(key(7)), sign(cache_secret.encode(), r.kname(key(7)), art(500).encode(key(8))))
    _refused(r, key(7), caplog, "entry belongs to another key")
    assert len(r.rejections) == 6
    r.put(key(1), art(500))                                                 # a recompile overwrites it
    assert r.get(key(1)) == art(500) and len(r.rejections) == 6
    assert len(r.verify()) == 5 and len(r.rejections) == 11                        # 2, 3, 5, 6, 7 deleted
    assert sorted(r.names()) == sorted([r.kname(key(1)), r.kname(key(4))])


def test_secret_from_a_0600_key_file_only(redis_server, tmp_path, monkeypatch):
    monkeypatch.delenv("VEXPLORE_CACHE_KEY", raising=False)
    kf = tmp_path / "cache.key"
    kf.write_text("0123456789abcdef0123456789abcdef\n")
    os.chmod(kf, 0o644)
    monkeypatch.setenv("VEXPLORE_CACHE_KEY_FILE", str(kf))
    loose = RemoteTier(redis_server.url)
    assert "chmod 600" in loose.disabled_reason
    with pytest.warns(VexploreCacheWarning, match="remote cache off: key file .* has mode 0644") as w:
        assert loose.get(key(1)) is None and loose.put(key(1), art()) == 0 and loose.get(key(1)) is None
    assert len(w) == 1
    os.chmod(kf, 0o600)
    r = RemoteTier(redis_server.url)
    assert r.put(key(1), art()) > 0 and r.get(key(1)) == art()
    monkeypatch.setenv("VEXPLORE_CACHE_KEY_FILE", str(tmp_path / "absent"))
    with pytest.warns(VexploreCacheWarning, match="no signing secret: set VEXPLORE_CACHE_KEY"):
        assert RemoteTier(redis_server.url).get(key(1)) is None


def test_password_from_url_or_environment(cache_secret, monkeypatch):
    srv = RedisServer(free_port(), password="s3cret-pw").start()
    try:
        assert RemoteTier(srv.url).put(key(1), art()) > 0                   # redis://:pw@host:port/0
        bare = srv.url.replace(":s3cret-pw@", "")
        monkeypatch.setenv("VEXPLORE_REDIS_PASSWORD", "s3cret-pw")
        assert RemoteTier(bare).get(key(1)) == art()
        monkeypatch.setenv("VEXPLORE_REDIS_PASSWORD", "wrong")
        with pytest.warns(VexploreCacheWarning, match="unavailable .*AuthenticationError") as w:
            t = RemoteTier(bare)
            assert t.get(key(1)) is None and t.put(key(2), art()) == 0
        assert len(w) == 1 and "s3cret" not in str(w[0].message)
    finally:
        srv.kill()


def test_redis_down_at_start_costs_one_short_timeout_then_retries(cache_secret):
    srv = RedisServer(free_port())                       # not started yet
    r = RemoteTier(srv.url, timeout_s=0.3, retry_after_s=0.5)
    with pytest.warns(VexploreCacheWarning, match="unavailable") as w:
        t0 = time.perf_counter()
        assert r.get(key(1)) is None
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(20):                              # no more attempts while down
            assert r.get(key(i)) is None and r.put(key(i), art()) == 0
        rest = time.perf_counter() - t0
    assert len(w) == 1 and first < 1.0 and rest < 0.05 and r.outages == 1
    srv.start()
    try:
        time.sleep(0.6)
        assert r.put(key(1), art()) > 0 and r.get(key(1)) == art() and r.down_reason is None
    finally:
        srv.kill()


def test_redis_killed_mid_run_warns_once_and_recovers(redis_server, cache_secret):
    r = RemoteTier(redis_server.url, timeout_s=0.3, retry_after_s=0.5)
    assert r.put(key(1), art()) > 0
    redis_server.kill()
    with pytest.warns(VexploreCacheWarning, match="unavailable") as w:
        assert r.get(key(1)) is None and r.put(key(2), art()) == 0 and r.get(key(1)) is None
    assert len(w) == 1 and r.outages == 1
    redis_server.start()                                 # same port, empty (no persistence)
    time.sleep(0.6)
    assert r.get(key(1)) is None and r.put(key(1), art()) > 0 and r.get(key(1)) == art()
