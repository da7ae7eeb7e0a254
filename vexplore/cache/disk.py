"""The disk tier: one self-checking file per key, written atomically.

Any damaged entry (truncated, flipped, foreign schema, another key's file) is detected by
Artifact.decode, deleted, counted and logged: never loaded, never a crash.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from .artifact import Artifact, ArtifactCorrupt
from .keys import CacheKey

log = logging.getLogger(__name__)


class DiskTier:
    name = "disk"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(os.path.expanduser(str(root)))
        self.rejected = 0
        self.disabled_reason: str | None = None
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            (self.root / "artifacts").mkdir(exist_ok=True, mode=0o700)
        except OSError as e:
            self.disabled_reason = f"cannot create cache dir {self.root}: {e}"

    def path(self, key: CacheKey) -> Path:
        d = key.digest
        return self.root / "artifacts" / d[:2] / f"{d}.vxa"

    def get(self, key: CacheKey) -> Artifact | None:
        p = self.path(key)
        try:
            blob = p.read_bytes()
        except OSError:
            return None
        try:
            return Artifact.decode(blob, key)
        except ArtifactCorrupt as e:
            self.rejected += 1
            log.warning("vexplore disk cache: %s is damaged (%s); deleted, will recompile", p, e.reason)
            try:
                p.unlink()
            except OSError:
                pass
            return None

    def put(self, key: CacheKey, art: Artifact) -> int:
        """Write atomically (temp file + os.replace); returns bytes written."""
        if self.disabled_reason:
            return 0
        p = self.path(key)
        blob = art.encode(key)
        try:
            p.parent.mkdir(exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, p)
        except OSError as e:
            self.disabled_reason = f"cannot write {p}: {e}"
            log.warning("vexplore disk cache disabled: %s", self.disabled_reason)
            return 0
        return len(blob)
