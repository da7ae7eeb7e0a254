"""The disk tier: one self-checking file per key, written atomically, evicted by total size.

Layout of the cache dir (created 0700)::

    meta.json                      which layout this dir has (rewritten when damaged)
    index.json  index.lock         DiskIndex: sizes, last use and key parts; rebuilt from the files
    artifacts/<d[:2]>/<digest>.vxa one encoded Artifact per key

Any damaged entry (truncated, flipped, foreign schema, undecodable, another key's file under
this key's name) is detected by Artifact.decode, deleted, counted and logged: never loaded,
never a crash. Two processes writing one key each write their own temp file and os.replace
it: the last complete file wins, no reader sees a partial one. The index's read-modify-write
runs under a filelock. A dir that cannot be created or written (read-only, full, not a dir)
turns the tier's writes off with one warning, one that cannot be read (replaced by a file,
permissions) its reads; the other tiers carry on. ``heal()`` re-initialises the tier once the dir
works again (the Session's GuardedTier calls it: cache/guard.py).
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from .artifact import Artifact, ArtifactCorrupt
from .index import SUFFIX, DiskIndex, Entry, artifact_files, unlink_quietly
from .keys import CacheKey
from .warn import degrade

log = logging.getLogger(__name__)

LAYOUT = 1
META = {"format": "vexplore-cache-dir", "layout": LAYOUT}
LOCK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class DiskStats:
    """What ``vexplore cache info`` prints for a disk tier."""

    dir: str
    entries: int
    nbytes: int
    max_bytes: int
    rejected: int
    evictions: int
    index_rebuilds: int
    meta_repairs: int
    disabled_reason: str | None


@dataclass(frozen=True)
class Removed:
    """What prune / clear / verify removed: (digest or file name, bytes, why) per file."""

    files: tuple[tuple[str, int, str], ...]
    checked: int = 0
    remaining_entries: int = 0
    remaining_bytes: int = 0

    @property
    def freed(self) -> int:
        return sum(n for _, n, _ in self.files)


class DiskTier:
    """Artifacts on disk under ``root``, at most ``max_bytes`` in all (least recently used go first)."""

    name = "disk"

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = 5 * 1024**3) -> None:
        self.root = Path(os.path.expanduser(str(root))).absolute()
        self.artifacts = self.root / "artifacts"
        self.max_bytes = max_bytes
        self.evictions = self.meta_repairs = 0
        self.rejections: list[str] = []           # why each damaged entry was deleted, in order
        self.disabled_reason: str | None = None   # set: nothing is read or written
        self.write_error: str | None = None       # set: reads go on, writes are off
        self.read_error: str | None = None        # set: the dir cannot be read (reads fail, not just miss)
        self._index_bytes: int | None = None      # size of an index.json without total_bytes, read once
        self.index = DiskIndex(self.root, self.artifacts, self._damaged)
        self._entries: dict[str, Entry] | None = None   # this process's copy of the index
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.artifacts.mkdir(exist_ok=True, mode=0o700)
        except OSError as e:
            self.disabled_reason = f"cannot create cache dir {self.root}: {e.strerror or e}"
            degrade("vexplore disk cache off: %s. Compiles go on with the memory tier; set "
                    "CacheConfig(dir=...) to a writable directory to keep artifacts.", self.disabled_reason)
            return
        self.lock = FileLock(str(self.root / "index.lock"), timeout=LOCK_TIMEOUT_S)
        self._check_meta()
        self._start_index()

    def _start_index(self) -> None:
        # A new dir gets an empty index, so that a missing index later means a lost one.
        if self.index.path.exists() or any(True for _ in artifact_files(self.artifacts)):
            return
        try:
            with self.lock:
                if not self.index.path.exists():
                    self.index.save({})
        except OSError as e:
            log.info("vexplore disk cache: cannot write %s (%s)", self.index.path, e)

    # -- reading ---------------------------------------------------------------------------
    def path(self, key: CacheKey | str) -> Path:
        d = key if isinstance(key, str) else key.digest
        return self.artifacts / d[:2] / f"{d}{SUFFIX}"

    def get(self, key: CacheKey) -> Artifact | None:
        """The verified artifact of ``key``, or None (absent, or damaged: then deleted and counted)."""
        if self.disabled_reason:
            return None
        p = self.path(key)
        try:
            with open(p, "rb") as f:
                st = os.fstat(f.fileno())
                blob = f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            if self._dirs_readable():   # one entry cannot be read (a dir in its place, its permissions): a miss
                self.rejections.append(f"disk entry {p.name[:12]} cannot be read ({e.strerror or e}); a miss, left in place")
                log.warning("vexplore disk cache: cannot read %s (%s); treated as a miss", p, e.strerror or e)
                return None
            self._read_failed(p, e)   # the dir itself is unusable (not a dir, no permission, I/O error)
            return None
        try:
            art = Artifact.decode(blob, key)
        except ArtifactCorrupt as e:
            self._damaged(p, e.reason, st)
            return None
        try:
            os.utime(p)  # the last-use time every process shares; the index picks it up
        except OSError:
            pass
        if self._entries is not None and key.digest in self._entries:
            self._entries[key.digest].used = time.time()
        return art

    def _dirs_readable(self) -> bool:
        return all(os.path.isdir(d) and os.access(d, os.R_OK | os.X_OK) for d in (self.root, self.artifacts))

    def _read_failed(self, p: Path, e: OSError) -> None:
        first = self.read_error is None
        self.read_error = f"cannot read {p}: {type(e).__name__}: {e.strerror or e}"
        if first:
            degrade("vexplore disk cache: %s; the disk tier is off until it can be read again, compiles go "
                    "on with the other tiers. Make %s a readable directory again.", self.read_error, self.root)

    def _damaged(self, p: Path, reason: str, st: os.stat_result | None = None) -> None:
        self.rejections.append(f"disk entry {p.name[:12]} was damaged ({reason}); deleted")
        log.warning("vexplore disk cache: %s is damaged (%s); deleted, will recompile", p, reason)
        try:
            now = os.stat(p)
            # another process may have replaced the file since we read it: keep its good copy
            if st is None or (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns):
                p.unlink()
        except OSError:
            pass
        if self._entries is not None:
            self._entries.pop(p.name[: -len(SUFFIX)], None)

    def discard(self, key: CacheKey, reason: str) -> None:
        """Delete an entry that decoded but could not be loaded (counted as rejected)."""
        self._damaged(self.path(key), reason)

    # -- writing ---------------------------------------------------------------------------
    def put(self, key: CacheKey, art: Artifact, blob: bytes | None = None) -> int:
        """Write atomically (temp file + os.replace), index it, evict to ``max_bytes``; returns bytes written.

        ``blob`` is ``art.encode(key)`` when the caller has it already (one encoding for every tier).
        """
        if self.disabled_reason or self.write_error:
            return 0
        p = self.path(key)
        blob = art.encode(key) if blob is None else blob
        try:
            p.parent.mkdir(exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(blob)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, p)
            except BaseException:
                unlink_quietly(Path(tmp))
                raise
            self._update(lambda entries: entries.__setitem__(key.digest, Entry(len(blob), time.time(), key.parts())))
        except OSError as e:
            self._write_failed(p, e)
            return 0
        return len(blob)

    def _write_failed(self, p: Path, e: OSError) -> None:
        self.write_error = f"cannot write {p}: {e.strerror or e}"
        degrade("vexplore disk cache: %s; disk writes are off for this session, compiles go on "
                "with the other tiers. Free space or point CacheConfig(dir=...) at a writable "
                "directory.", self.write_error)

    def _update(self, change: Callable[[dict[str, Entry]], Any], max_bytes: int | None = None) -> list[tuple[str, int, str]]:
        """Apply ``change`` to the index under the lock, evict to the bound, save; returns what was evicted."""
        with self.lock:
            entries = self._locked_entries()
            change(entries)
            evicted = self._evict(entries, self.max_bytes if max_bytes is None else max_bytes)
            self.index.save(entries)
        return evicted

    def _locked_entries(self) -> dict[str, Entry]:
        changed = False
        if self._entries is None:                      # first time in this process: reconcile
            entries, changed = self.index.load_or_rebuild()
        else:
            entries, _ = self.index.load()
            if entries is None:
                entries, changed = self.index.load_or_rebuild()
        if changed:
            self.index.save(entries)
        self._entries = entries
        return entries

    def _evict(self, entries: dict[str, Entry], max_bytes: int) -> list[tuple[str, int, str]]:
        total = sum(e.nbytes for e in entries.values())
        if total <= max_bytes:
            return []
        for digest, e in list(entries.items()):        # hits in any process touch the mtime
            try:
                e.used = max(e.used, os.stat(self.path(digest)).st_mtime)
            except OSError:
                total -= e.nbytes
                del entries[digest]
        out = []
        for digest in sorted(entries, key=lambda d: entries[d].used):
            if total <= max_bytes:
                break
            n = entries.pop(digest).nbytes
            unlink_quietly(self.path(digest))
            total -= n
            self.evictions += 1
            out.append((digest, n, "least recently used"))
        if out:
            log.info("vexplore disk cache: evicted %d entries (%d bytes) to stay under %d bytes",
                     len(out), sum(n for _, n, _ in out), max_bytes)
        return out

    # -- health (the Session's GuardedTier) -------------------------------------------------
    @property
    def failure(self) -> str | None:
        """Why the tier cannot be used at all (None: it can, perhaps without writes: ``write_error``)."""
        return self.disabled_reason or self.read_error

    @property
    def location(self) -> str:
        return str(self.root)

    def heal(self) -> int:
        """Re-initialise after a failure: recreate the dirs, check that a file can be written there,
        repair meta.json and reconcile the index with the files (damaged entries deleted, entries
        whose file is gone dropped). Returns how many damaged entries were deleted; raises OSError
        while the dir still cannot be used (then nothing changes)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.artifacts.mkdir(exist_ok=True, mode=0o700)
        fd, probe = tempfile.mkstemp(dir=self.artifacts, prefix=".tmp-probe-")
        try:   # a few KiB written through to the disk: an empty file succeeds even on a full disk
            os.write(fd, b"\0" * 65536)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
        before = len(self.rejections)
        lock = FileLock(str(self.root / "index.lock"), timeout=LOCK_TIMEOUT_S)
        with lock:
            entries, _ = self.index.load_or_rebuild()
            self.index.save(entries)
        self.lock, self._entries = lock, entries
        self._check_meta()
        self.disabled_reason = self.write_error = self.read_error = None
        log.info("vexplore disk cache %s re-initialised: %d entries", self.root, len(entries))
        return len(self.rejections) - before

    def size_bytes(self) -> int:
        """Bytes the tier holds by its index, without a directory walk: this process's copy of the
        index, or (before this process loaded it) the total at the head of index.json; an index
        written without one is read whole, once."""
        entries = self._entries
        if entries is not None:
            return sum(e.nbytes for e in list(entries.values()))
        if self.disabled_reason:
            return 0
        total = self.index.total_bytes()
        if total is not None:
            return total
        if self._index_bytes is None:
            loaded, _ = self.index.load()
            self._index_bytes = sum(e.nbytes for e in (loaded or {}).values())
        return self._index_bytes

    # -- whole-dir operations (the CLI) ----------------------------------------------------
    def entries(self) -> list[tuple[str, Entry]]:
        """(digest, entry) of every stored artifact, most recently used first."""
        if self.disabled_reason:
            return []
        try:
            with self.lock:
                entries = self._locked_entries()
        except OSError:  # read-only dir: read the files without the lock
            entries, _ = self.index.load_or_rebuild()
        return sorted(entries.items(), key=lambda kv: -kv[1].used)

    def keys(self) -> list[tuple[str, dict[str, Any]]]:
        """(digest, key parts) of stored entries, for the nearest-key explanation of a miss."""
        if self._entries is None:
            return [(d, e.key) for d, e in self.entries()]
        return [(d, e.key) for d, e in sorted(self._entries.items(), key=lambda kv: -kv[1].used)]

    def prune(self, max_bytes: int) -> Removed:
        """Evict least recently used entries until the dir holds at most ``max_bytes``."""
        out = self._update(lambda entries: None, max_bytes=max_bytes)
        return self._removed(out)

    def clear(self) -> Removed:
        """Delete every artifact and the index (meta.json stays: the dir is still a cache dir)."""
        out = []
        with self.lock:
            for digest, path, st in artifact_files(self.artifacts):
                unlink_quietly(path)
                out.append((digest, st.st_size, "cleared"))
            self._entries = {}
            self.index.save({})
        return self._removed(out)

    def verify(self) -> Removed:
        """Read and check every artifact in full; delete damaged ones; rebuild the index from the rest."""
        out, checked = [], 0
        with self.lock:
            for digest, path, st in list(artifact_files(self.artifacts)):
                checked += 1
                try:
                    Artifact.decode(path.read_bytes(), digest)
                except (ArtifactCorrupt, OSError) as e:
                    self._damaged(path, str(e))
                    out.append((digest, st.st_size, str(e)))
            self._entries = self.index.scan()
            self.index.save(self._entries)
        return self._removed(out, checked)

    def _removed(self, files: list[tuple[str, int, str]], checked: int = 0) -> Removed:
        entries = self._entries or {}
        return Removed(tuple(files), checked, len(entries), sum(e.nbytes for e in entries.values()))

    def stats(self) -> DiskStats:
        entries = self.entries()
        return DiskStats(str(self.root), len(entries), sum(e.nbytes for _, e in entries), self.max_bytes,
                         len(self.rejections), self.evictions, self.index.rebuilds, self.meta_repairs,
                         self.disabled_reason or self.write_error)

    def _check_meta(self) -> None:
        p = self.root / "meta.json"
        try:
            doc = json.loads(p.read_bytes())
            if doc == META:
                return
            problem = f"foreign layout {doc!r:.80}"
        except FileNotFoundError:
            problem = None
        except (OSError, ValueError) as e:
            problem = f"undecodable ({type(e).__name__})"
        if problem:
            self.meta_repairs += 1
            log.warning("vexplore disk cache: %s was %s; rewritten (artifacts are checked one by one)", p, problem)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-meta-")
            with os.fdopen(fd, "w") as f:
                json.dump(META, f)
            os.replace(tmp, p)
        except OSError as e:
            log.info("vexplore disk cache: cannot write %s (%s)", p, e)
