"""`vexplore cache info | list | explain | verify | prune | clear`, each saying what it did."""
from __future__ import annotations

import os

import pytest

from vexplore.cache.cli import parse_size
from vexplore.cache.disk import DiskTier
from vexplore.cli import main

from cachehelp import art, artifact_paths, flip_data_byte, key


@pytest.fixture
def filled(tmp_path):
    d = DiskTier(tmp_path / "vx")
    ks = [key(0), key(0, config={"compiler": "inductor", "mode": "max-autotune", "inductor_options": {}}), key(2)]
    for i, k in enumerate(ks):
        d.put(k, art(2000, i))
        os.utime(d.path(k), (1_000_000 + i, 1_000_000 + i))
    return tmp_path / "vx", ks


def run(capsys, *argv) -> tuple[int, str]:
    rc = main(["cache", *argv])
    return rc, capsys.readouterr().out


def test_info_and_list(filled, capsys):
    root, ks = filled
    rc, out = run(capsys, "--dir", str(root), "info")
    assert rc == 0 and f"disk cache {root}: 3 entries" in out and "health: ok" in out
    rc, out = run(capsys, "--dir", str(root), "list")
    lines = out.splitlines()
    assert rc == 0 and lines[0].startswith(f"3 entries in {root}")
    assert [ln.split()[0] for ln in lines[1:]] == [k.digest[:16] for k in reversed(ks)]
    assert "inductor/max-autotune" in lines[2]


def test_explain(filled, capsys):
    root, ks = filled
    rc, out = run(capsys, "--dir", str(root), "explain", ks[0].digest[:10], str(DiskTier(root).path(ks[1])))
    assert rc == 0 and out.splitlines()[1:] == ["  config.mode: default -> max-autotune"]
    rc, out = run(capsys, "--dir", str(root), "explain", ks[0].digest[:10], "zz")
    assert rc == 2 and "matches 0 entries" in out


def test_verify_prune_clear(filled, capsys):
    root, ks = filled
    flip_data_byte(DiskTier(root).path(ks[0]))
    rc, out = run(capsys, "--dir", str(root), "verify")
    assert rc == 0 and "verified 3 entries" in out and "2 ok, 1 damaged and deleted" in out
    assert f"deleted {ks[0].digest[:16]}" in out and "checksum mismatch" in out
    size = os.path.getsize(DiskTier(root).path(ks[2]))
    rc, out = run(capsys, "--dir", str(root), "prune", "--max-size", str(size))
    assert rc == 0 and "removed 1 entries" in out and "1 entries" in out and f"evicted {ks[1].digest[:16]}" in out
    rc, out = run(capsys, "--dir", str(root), "clear")
    assert rc == 0 and "removed 1 entries" in out and artifact_paths(root) == []
    rc, out = run(capsys, "--dir", str(root / "nowhere"), "info")
    assert rc == 0 and "no vexplore cache at" in out and not (root / "nowhere").exists()


def test_remote_info_list_verify_clear(redis_server, cache_secret, filled, capsys):
    from vexplore.cache.remote import RemoteTier

    root, ks = filled
    r = RemoteTier(redis_server.url, prefix="cli:")
    for i, k in enumerate(ks):
        r.put(k, art(2000, i))
    redis_server.client().set(r.kname(ks[0]), b"junk")
    common = ["--dir", str(root), "--remote-url", redis_server.url, "--prefix", "cli:"]
    assert "under 'cli:'" in run(capsys, *common, "list")[1]
    rc, out = run(capsys, *common, "info")
    assert rc == 0 and "prefix 'cli:': 3 entries" in out
    rc, out = run(capsys, *common, "verify")
    assert "1 refused and deleted" in out and "unsigned value" in out
    rc, out = run(capsys, *common, "clear")
    assert "removed 2 entries" in out.splitlines()[-1]


def test_parse_size():
    assert parse_size("500M") == 500 * 1024**2 and parse_size("5G") == 5 * 1024**3
    assert parse_size("1.5GB") == int(1.5 * 1024**3) and parse_size("1024") == 1024
    with pytest.raises(ValueError, match="500M"):
        parse_size("lots")
