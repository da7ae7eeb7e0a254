"""Disk tier against real OS failures: a full filesystem, a read-only one, a file-size limit,
and four processes writing the same keys into one dir at once."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from vexplore.cache.artifact import Artifact
from vexplore.cache.disk import DiskTier
from vexplore.cache.warn import VexploreCacheWarning

from cachehelp import art, artifact_paths, key

HERE = Path(__file__).parent


@pytest.fixture
def tmpfs(tmp_path):
    """A real 256 KiB tmpfs (needs root with CAP_SYS_ADMIN, as in CI's container; else skipped)."""
    mnt = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "vxtest", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); the RLIMIT_FSIZE test covers writes failing")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_filesystem_degrades_to_memory_with_one_warning(tmpfs):
    d = DiskTier(tmpfs / "vx")
    with pytest.warns(VexploreCacheWarning, match="No space left on device") as w:
        results = [d.put(key(i), art(60_000, i)) for i in range(8)]     # 480 KB into 256 KiB
    assert len(w) == 1
    ok = [i for i, n in enumerate(results) if n]
    assert ok == list(range(len(ok))) and 1 <= len(ok) < 5 and results[len(ok):] == [0] * (8 - len(ok))
    assert [p.name for p in artifact_paths(tmpfs / "vx")] == sorted(f"{key(i).digest}.vxa" for i in ok)
    assert not list((tmpfs / "vx" / "artifacts").glob("*/.tmp-*"))      # the partial write is gone
    assert all(d.get(key(i)) == art(60_000, i) for i in ok)       # what was written still loads


def test_read_only_filesystem_reads_but_never_writes(tmpfs):
    d = DiskTier(tmpfs / "vx")
    d.put(key(1), art(1000, 1))
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    ro = DiskTier(tmpfs / "vx")                      # a new session on the read-only dir
    assert ro.get(key(1)) == art(1000, 1)
    with pytest.warns(VexploreCacheWarning, match="Read-only file system") as w:
        assert ro.put(key(2), art(1000, 2)) == 0
        assert ro.put(key(3), art(1000, 3)) == 0
    assert len(w) == 1 and ro.get(key(2)) is None


CHILD = """
import json, resource, signal, sys, warnings
sys.path.insert(0, {here!r})
from cachehelp import art, key
from vexplore.cache.disk import DiskTier
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # the kernel then fails the write with EFBIG
d = DiskTier({root!r})
small = d.put(key(1), art(1000, 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    big = [d.put(key(i), art(100_000, i)) for i in (2, 3)]
print(json.dumps({{"small": small, "big": big, "warnings": [str(x.message) for x in w],
                   "hit": d.get(key(1)) is not None}}))
"""


def test_file_size_limit_write_failure_in_a_child_process(tmp_path):
    root = tmp_path / "vx"
    out = subprocess.run([sys.executable, "-c", CHILD.format(here=str(HERE), root=str(root))],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["small"] > 0 and res["big"] == [0, 0] and res["hit"]
    assert len(res["warnings"]) == 1 and "File too large" in res["warnings"][0]
    assert [p.name for p in artifact_paths(root)] == [f"{key(1).digest}.vxa"]
    assert not list((root / "artifacts").glob("*/.tmp-*"))


WRITER = """
import sys
sys.path.insert(0, {here!r})
from cachehelp import art, key
from vexplore.cache.disk import DiskTier
d = DiskTier({root!r}, max_bytes=10**9)
bad = 0
for round in range(15):
    for i in range(6):
        d.put(key(i), art(20_000 + i, i))
        got = d.get(key((i + 3) % 6))
        bad += got is not None and got != art(20_000 + (i + 3) % 6, (i + 3) % 6)
print(len(d.rejections), bad)
"""


def test_four_processes_writing_the_same_keys_never_corrupt_them(tmp_path):
    root = tmp_path / "vx"
    code = WRITER.format(here=str(HERE), root=str(root))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e for _, e in outs]
    assert [o.split() for o, _ in outs] == [["0", "0"]] * 4                 # nothing rejected, nothing wrong
    d = DiskTier(root)
    v = d.verify()
    assert (v.checked, v.files) == (6, ())
    assert sorted(dg for dg, _ in d.entries()) == sorted(key(i).digest for i in range(6))
    assert {dg: e.nbytes for dg, e in d.entries()} == {
        key(i).digest: len(art(20_000 + i, i).encode(key(i))) for i in range(6)}
    assert all(Artifact.decode(d.path(key(i)).read_bytes(), key(i)) == art(20_000 + i, i) for i in range(6))
