"""The memory tier: an LRU of loaded compiled callables, bounded by entries and optionally bytes."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class MemoryEntry:
    fn: Callable[..., Any]
    artifact: Any = None            # the Artifact it was loaded from, when there is one
    nbytes: int = 0
    pinned: bool = False
    info: dict[str, Any] = field(default_factory=dict)  # compiler, reason, code: what the report shows


class MemoryTier:
    """Least-recently-used map from key digest to a loaded callable. Pinned entries stay."""

    name = "memory"

    def __init__(self, max_entries: int = 256, max_bytes: int | None = None) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._d: OrderedDict[str, MemoryEntry] = OrderedDict()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, digest: str) -> bool:
        return digest in self._d

    def get(self, digest: str) -> MemoryEntry | None:
        e = self._d.get(digest)
        if e is not None:
            self._d.move_to_end(digest)
        return e

    def put(self, digest: str, entry: MemoryEntry) -> None:
        self._d[digest] = entry
        self._d.move_to_end(digest)
        self._evict()

    def pin(self, digest: str, pinned: bool = True) -> None:
        if digest in self._d:
            self._d[digest].pinned = pinned

    def keys(self) -> list[str]:
        """Digests, least recently used first."""
        return list(self._d)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._d.values())

    def clear(self) -> None:
        self._d.clear()

    def _over(self) -> bool:
        return len(self._d) > self.max_entries or (self.max_bytes is not None and self.nbytes > self.max_bytes)

    def _evict(self) -> None:
        for digest in list(self._d):
            if not self._over():
                return
            if not self._d[digest].pinned:
                del self._d[digest]
                self.evictions += 1
