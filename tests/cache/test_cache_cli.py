"""`vexplore cache info | list | explain | verify | prune | clear`, each saying what it did."""
from __future__ import annotations

import os
import re

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


# -- issue 23: mistakes that used to pass silently ------------------------------------------------
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COMMANDS = [["info"], ["list"], ["verify"], ["clear"], ["prune", "--max-size", "1G"], ["explain", "aa", "bb"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_unreachable_remote_is_one_line_and_exit_1(command, filled, cache_secret, capsys):
    """Every command refuses to read a Redis that does not answer as an empty one, before doing anything."""
    root, ks = filled
    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    rc = main(["cache", "--dir", str(root), "--remote", url, *command])   # --remote: argparse's abbreviation
    out, err = capsys.readouterr()
    assert rc == 1 and out == "" and err.count("\n") == 1, (out, err)
    shown = url.replace("hunter2", "***")
    assert err.startswith(f"vexplore cache {command[0]}: error: the remote cache {shown} is unreachable (")
    assert "Connection refused" in err and "start Redis there or fix --remote-url" in err and "hunter2" not in err
    assert len(artifact_paths(root)) == len(ks)   # clear, verify, prune did nothing on disk either


def test_remote_without_a_signing_secret_is_one_line_and_exit_1(filled, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("VEXPLORE_CACHE_KEY", raising=False)
    monkeypatch.setenv("VEXPLORE_CACHE_KEY_FILE", str(tmp_path / "no.key"))
    root, _ = filled
    rc = main(["cache", "--dir", str(root), "--remote-url", f"redis://127.0.0.1:{closed_port()}", "list"])
    out, err = capsys.readouterr()
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert "cannot be used: no signing secret: set VEXPLORE_CACHE_KEY" in err and str(tmp_path / "no.key") in err


def test_prune_says_the_remote_is_not_pruned(redis_server, cache_secret, filled, capsys):
    root, _ = filled
    rc, out = run(capsys, "--dir", str(root), "--remote-url", redis_server.url, "prune", "--max-size", "1G")
    assert rc == 0 and f"{redis_server.url} is not pruned: Redis bounds its own memory" in out


def test_explain_a_file_that_is_not_an_artifact(filled, capsys, tmp_path):
    root, ks = filled
    text, empty, old = tmp_path / "notes.txt", tmp_path / "empty.vxa", tmp_path / "old.vxa"
    text.write_text("hello, this is not an artifact\n")
    empty.write_bytes(b"")
    damaged = DiskTier(root).path(ks[0]).read_bytes()
    old.write_bytes(damaged[:6] + b"\x63" + damaged[7:])          # another cache schema
    what = r"is not a vexplore cache artifact \(a file under a cache dir's artifacts/, named <digest>\.vxa, starting with b'VXART\\x00'\)"
    for path, found in [(text, r"found a 31-byte file starting with b'hello, this is n'"), (empty, "found an empty file")]:
        rc = main(["cache", "--dir", str(root), "explain", str(path), ks[1].digest[:10]])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1
        assert re.fullmatch(rf"vexplore cache explain: error: {re.escape(str(path))} {what}: {found}\n", err), err
    rc = main(["cache", "--dir", str(root), "explain", ks[1].digest[:10], str(old)])
    err = capsys.readouterr().err
    assert rc == 2 and f"{old} is a vexplore cache artifact this vexplore cannot read (schema 99" in err
    assert "`vexplore cache verify` deletes damaged entries" in err


@pytest.mark.parametrize("argv, why", [
    (["--max-size", "-5G"], "size '-5G' is negative; a cache holds 0 bytes or more"),
    (["--max-size=-5G"], "size '-5G' is negative; a cache holds 0 bytes or more"),
    (["--max-size", "-1"], "size '-1' is negative; a cache holds 0 bytes or more"),
    (["--max-size", "-.5M"], "size '-.5M': give bytes"),
    (["--max-size", "0.5"], "size '0.5' is a fraction of a byte"),
    (["--max-size", "5iB"], "size '5iB': give bytes"),
    (["--max-size", "1e9"], "size '1e9': give bytes"),
    (["--max-size", "5 G B"], "size '5 G B': give bytes"),
])
def test_nonsense_sizes_are_refused(capsys, argv, why):
    line = mistake(capsys, "prune", *argv)
    assert line.startswith(f"vexplore cache prune: error: argument --max-size: {why}"), line
    assert line.endswith("give bytes or a number with K, M, G or T (e.g. 500M, 5G)")


def test_parse_size_edges():
    assert parse_size("0") == 0 and parse_size("0.5K") == 512 and parse_size("2kib") == 2048
    assert parse_size("9" * 40 + "T") == int("9" * 40) * 1024**4   # exact, no float overflow
    for bad in ("-5G", "1.5", "5IB", "nan", "inf", ""):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse_size(bad)
