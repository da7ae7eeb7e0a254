"""DiskIndex: what a disk tier holds (size, last use, key parts of each entry), crash-safe.

``index.json`` is rewritten whole (temp file + os.replace) under ``index.lock`` and carries its
own format version and a sha256 of its entries, and, first in the file, the entries' total size
(``total_bytes``: advisory, for the monitor's samples to read without parsing the entries). The
artifact files stay the truth: the index is
rebuilt from their headers and mtimes when it is lost, garbled, foreign or fails its checksum,
and reconciled with them once per process (a crash between writing an artifact and the index
leaves a file the index does not know yet).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .artifact import ArtifactCorrupt, read_header

log = logging.getLogger(__name__)

INDEX_FORMAT = "vexplore-disk-index"
INDEX_VERSION = 1
SUFFIX = ".vxa"
STALE_TMP_S = 600.0     # a temp file this old belongs to a writer that died
_TOTAL = re.compile(rb'"total_bytes":(\d+)[,}]')


@dataclass
class Entry:
    """One artifact file as the index knows it."""

    nbytes: int
    used: float               # last use (write or hit), seconds since the epoch
    key: dict[str, Any]       # the key's parts, for list / explain / nearest-key on a miss

    def to_json(self) -> dict[str, Any]:
        return {"bytes": self.nbytes, "used": self.used, "key": self.key}


def _body_sha(entries: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


def artifact_files(artifacts: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(digest, path, stat) of every artifact file; stale temp files are removed on the way."""
    try:
        shards = list(os.scandir(artifacts))
    except OSError:
        return
    for shard in shards:
        if not shard.is_dir(follow_symlinks=False):
            continue
        for f in os.scandir(shard.path):
            try:
                st = f.stat(follow_symlinks=False)
            except OSError:
                continue
            if f.name.startswith(".tmp-"):
                if time.time() - st.st_mtime > STALE_TMP_S:
                    unlink_quietly(Path(f.path))
                continue
            if f.name.endswith(SUFFIX):
                yield f.name[: -len(SUFFIX)], Path(f.path), st


def unlink_quietly(p: Path) -> None:
    """Delete ``p`` if it can be deleted (gone already, or not ours to delete: nothing to do)."""
    try:
        p.unlink()
    except OSError:
        pass


def peek(path: Path, digest: str, st: os.stat_result) -> dict[str, Any]:
    """The key parts in an artifact file's header; ArtifactCorrupt when the framing is bad or
    the file holds another key's entry (the data checksum is left to load and verify)."""
    with open(path, "rb") as f:
        h = read_header(f, st.st_size)
    if h.key.digest != digest:
        raise ArtifactCorrupt(f"entry belongs to another key ({h.key.digest[:12]})")
    return h.key.parts()


class DiskIndex:
    """Load, check, save and rebuild ``root/index.json``. Callers hold ``lock`` around changes."""

    def __init__(self, root: Path, artifacts: Path,
                 on_damaged: Callable[[Path, str], None]) -> None:
        self.path, self.artifacts, self.on_damaged = root / "index.json", artifacts, on_damaged
        self.rebuilds = 0

    def load(self) -> tuple[dict[str, Entry] | None, str | None]:
        """(entries, None), or (None, what is wrong with the file: 'missing', 'garbled: ...')."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None, "missing"
        except OSError as e:
            return None, f"unreadable ({e.strerror})"
        try:
            doc = json.loads(raw)
            if doc.get("format") != INDEX_FORMAT or doc.get("version") != INDEX_VERSION:
                return None, f"foreign format {doc.get('format')!r} version {doc.get('version')!r}"
            body = doc["entries"]
            if _body_sha(body) != doc["sha256"]:
                return None, "checksum mismatch"
            return {d: Entry(int(e["bytes"]), float(e["used"]), dict(e["key"])) for d, e in body.items()}, None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            return None, f"garbled ({type(e).__name__})"

    def save(self, entries: dict[str, Entry]) -> None:
        """Write atomically; raises OSError when the dir cannot be written."""
        body = {d: e.to_json() for d, e in sorted(entries.items())}
        doc = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "total_bytes": sum(e.nbytes for e in entries.values()),
               "sha256": _body_sha(body), "entries": body}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-index-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            unlink_quietly(Path(tmp))
            raise

    def total_bytes(self) -> int | None:
        """The total size ``index.json`` records, read from the file's head (the entries are not
        parsed); None when the file is missing, unreadable or written without it."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(256)
        except OSError:
            return None
        m = _TOTAL.search(head)
        return int(m.group(1)) if m else None

    def scan(self) -> dict[str, Entry]:
        """Entries read from the artifact files; a damaged file is reported and deleted."""
        out: dict[str, Entry] = {}
        for digest, path, st in artifact_files(self.artifacts):
            try:
                key = peek(path, digest, st)
            except ArtifactCorrupt as e:
                self.on_damaged(path, str(e))
                continue
            except OSError as e:   # unreadable now (permissions, I/O), not damaged: never deleted, left out
                log.info("vexplore disk cache: cannot read %s (%s); left out of the index", path, e)
                continue
            out[digest] = Entry(st.st_size, st.st_mtime, key)
        return out

    def load_or_rebuild(self) -> tuple[dict[str, Entry], bool]:
        """The index, reconciled with the files; (entries, changed: needs saving)."""
        entries, problem = self.load()
        if entries is None:
            entries = self.scan()
            if problem != "missing" or entries:
                self.rebuilds += 1
                log.warning("vexplore disk cache: index %s was %s; rebuilt from %d artifact file(s)",
                            self.path, problem, len(entries))
            return entries, True
        return self.reconcile(entries)

    def reconcile(self, entries: dict[str, Entry]) -> tuple[dict[str, Entry], bool]:
        """Add files the index lacks, drop entries whose file is gone, take sizes from the files."""
        seen: dict[str, os.stat_result] = {}
        changed = False
        for digest, path, st in artifact_files(self.artifacts):
            seen[digest] = st
            e = entries.get(digest)
            if e is not None and e.nbytes == st.st_size:
                e.used = max(e.used, st.st_mtime)
                continue
            try:
                entries[digest] = Entry(st.st_size, st.st_mtime, peek(path, digest, st))
            except ArtifactCorrupt as err:
                self.on_damaged(path, str(err))
                entries.pop(digest, None)
                seen.pop(digest)
            except OSError as err:   # unreadable now (permissions, I/O), not damaged: never deleted, left out
                log.info("vexplore disk cache: cannot read %s (%s); left out of the index", path, err)
                entries.pop(digest, None)
            changed = True
        for digest in [d for d in entries if d not in seen]:
            del entries[digest]
            changed = True
        return entries, changed
