"""`vexplore cache info | list | explain | verify | prune | clear`, each saying what it did."""
from __future__ import annotations

import os

import pytest

import vexplore as vx
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
    rc = main(["cache", "--dir", str(root), "explain", ks[0].digest[:10], "zz"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("vexplore cache explain: error: 'zz' matches 0 entries") and err.count("\n") == 1


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


def test_options_after_the_command(filled, capsys):
    root, ks = filled
    rc, out = run(capsys, "info", "--dir", str(root))
    assert rc == 0 and f"disk cache {root}: 3 entries" in out
    rc, out = run(capsys, "list", "--dir", str(root))
    assert rc == 0 and out.startswith(f"3 entries in {root}")
    rc, out = run(capsys, "--dir", str(root / "nowhere"), "info", "--dir", str(root))   # the later one wins
    assert rc == 0 and f"disk cache {root}: 3 entries" in out
    rc, out = run(capsys, "--dir", str(root), "info", "--prefix", "p:")                  # and none is reset
    assert rc == 0 and f"disk cache {root}: 3 entries" in out
    size = os.path.getsize(DiskTier(root).path(ks[2]))
    rc, out = run(capsys, "prune", "--max-size", str(size), "--dir", str(root))
    assert rc == 0 and "removed 2 entries" in out


def test_default_dir_is_vexplore_cache_dir(filled, capsys, monkeypatch):
    root, _ = filled
    monkeypatch.setenv("VEXPLORE_CACHE_DIR", str(root))
    rc, out = run(capsys, "info")
    assert rc == 0 and f"disk cache {root}: 3 entries" in out


def mistake(capsys, *argv) -> str:
    """The error line of ``vexplore cache *argv`` after its usage line; exit status 2."""
    with pytest.raises(SystemExit) as exc:
        main(["cache", *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: vexplore cache") and "Traceback" not in err, err
    return err.splitlines()[-1]


URL_FORM = "give redis://[:password@]host[:port][/db] (rediss:// for TLS, unix:///path/to/redis.sock)"


@pytest.mark.parametrize("argv, line", [
    (["--remote-url", "notaurl", "info"],
     "vexplore cache: error: argument --remote-url: 'notaurl' is not a redis:// URL; " + URL_FORM),
    (["info", "--remote-url", "localhost:6379"],
     "vexplore cache info: error: argument --remote-url: 'localhost:6379' is not a redis:// URL; " + URL_FORM),
    (["list", "--remote-url", "redis://:hunter2@host:port"],
     "vexplore cache list: error: argument --remote-url: 'redis://:***@host:port' has a port that is not a number "
     "from 0 to 65535; " + URL_FORM),
    (["--remote-url", "redis://host/cache", "clear"],
     "vexplore cache: error: argument --remote-url: 'redis://host/cache' names database 'cache', but Redis "
     "databases are numbers; " + URL_FORM),
    (["prune", "--max-size", "lots"],
     "vexplore cache prune: error: argument --max-size: size 'lots': give bytes or a number with K, M, G or T "
     "(e.g. 500M, 5G)"),
    (["prune"], "vexplore cache prune: error: the following arguments are required: --max-size"),
    (["explain", "abc"], "vexplore cache explain: error: the following arguments are required: b"),
    ([], "vexplore cache: error: the following arguments are required: {info,list,explain,verify,prune,clear}"),
    (["infos"], "vexplore cache: error: argument {info,list,explain,verify,prune,clear}: invalid choice: 'infos' "
                "(choose from 'info', 'list', 'explain', 'verify', 'prune', 'clear')"),
])
def test_mistakes(capsys, argv, line):
    assert mistake(capsys, *argv) == line


def test_dir_that_is_a_file(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    fix = "give a directory for the cache (a missing one is fine)"
    assert mistake(capsys, "--dir", str(f), "info") == f"vexplore cache: error: argument --dir: '{f}' is a file; {fix}"
    assert mistake(capsys, "clear", "--dir", str(f / "sub")) == (
        f"vexplore cache clear: error: argument --dir: '{f / 'sub'}' cannot be a directory: {f} is a file; {fix}")
    assert f.read_text() == "x"


def test_cache_config_dir_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("VEXPLORE_CACHE_DIR", raising=False)
    assert vx.CacheConfig().dir == "~/.cache/vexplore"
    monkeypatch.setenv("VEXPLORE_CACHE_DIR", str(tmp_path / "env"))
    assert vx.CacheConfig().dir == str(tmp_path / "env")
    assert vx.CompileConfig().cache.dir == str(tmp_path / "env")
    assert vx.CacheConfig(dir=str(tmp_path / "mine")).dir == str(tmp_path / "mine")   # an explicit dir wins
    monkeypatch.setenv("VEXPLORE_CACHE_DIR", "")
    assert vx.CacheConfig().dir == "~/.cache/vexplore"


@pytest.mark.parametrize("url, why", [
    ("notaurl", "is not a redis:// URL"),
    ("http://host:6379/0", "is not a redis:// URL"),
    ("redis://:hunter2@host:port/0", "has a port that is not a number"),
    ("redis://host/x", "names database 'x'"),
])
def test_cache_config_remote_url_rejects(url, why):
    with pytest.raises(vx.ConfigError, match=rf"CacheConfig.remote_url=.* {why}.*; give redis://") as exc:
        vx.CacheConfig(remote_url=url)
    assert "hunter2" not in str(exc.value)


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "redis://:pw@10.0.0.1", "rediss://host:6380/2",
                                 "unix:///run/redis.sock", "redis://host/"])
def test_cache_config_remote_url_accepts(url):
    assert vx.CacheConfig(remote_url=url).remote_url == url


def test_remote_url_without_redis_installed(capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a))
    assert mistake(capsys, "info", "--remote-url", "redis://localhost:6379/0") == (
        "vexplore cache info: error: argument --remote-url: the remote tier needs the redis package: "
        "pip install 'vexplore[redis]'")
