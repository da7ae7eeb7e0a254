"""The memory tier: an LRU of loaded compiled callables, bounded by entries and optionally bytes.

A hit is a dict lookup and a move-to-end (microseconds). Pinned entries are never evicted, so
the tier can stay over its bounds while everything in it is pinned.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from .keys import CacheKey


@dataclass
class MemoryEntry:
    """One loaded callable; ``nbytes`` is its artifact's size (the bound's unit)."""

    fn: Callable[..., Any]
    nbytes: int = 0
    pinned: bool = False
    info: dict[str, Any] = field(default_factory=dict)  # compiler, reason, code: what the report shows
    key: CacheKey | None = None     # for explaining a nearby miss


@dataclass(frozen=True)
class MemoryStats:
    entries: int
    nbytes: int
    pinned: int
    evictions: int
    max_entries: int
    max_bytes: int | None


class MemoryTier:
    """Least-recently-used map from key digest to a loaded callable. Pinned entries stay."""

    name = "memory"

    def __init__(self, max_entries: int = 256, max_bytes: int | None = None) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._d: OrderedDict[str, MemoryEntry] = OrderedDict()
        self._bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, digest: str) -> bool:
        return digest in self._d

    def get(self, digest: str) -> MemoryEntry | None:
        """The entry, marked most recently used; None when absent."""
        e = self._d.get(digest)
        if e is not None:
            self._d.move_to_end(digest)
        return e

    def put(self, digest: str, entry: MemoryEntry) -> None:
        """Insert or replace (keeping a pin), mark most recently used, then evict to the bounds."""
        old = self._d.pop(digest, None)
        if old is not None:
            self._bytes -= old.nbytes
            entry.pinned = entry.pinned or old.pinned
        self._d[digest] = entry
        self._bytes += entry.nbytes
        self._evict()

    def remove(self, digest: str) -> bool:
        e = self._d.pop(digest, None)
        if e is not None:
            self._bytes -= e.nbytes
        return e is not None

    def pin(self, digest: str, pinned: bool = True) -> bool:
        """Pin (or unpin) an entry; returns False when it is not in the tier."""
        e = self._d.get(digest)
        if e is None:
            return False
        e.pinned = pinned
        if not pinned:
            self._evict()
        return True

    def resize(self, max_entries: int, max_bytes: int | None) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._evict()

    def keys(self) -> list[str]:
        """Digests, least recently used first."""
        return list(self._d)

    def entries(self) -> list[tuple[str, MemoryEntry]]:
        return list(self._d.items())

    @property
    def nbytes(self) -> int:
        return self._bytes

    def stats(self) -> MemoryStats:
        return MemoryStats(len(self._d), self._bytes, sum(e.pinned for e in self._d.values()),
                           self.evictions, self.max_entries, self.max_bytes)

    def clear(self) -> None:
        """Drop every entry, pinned ones included."""
        self._d.clear()
        self._bytes = 0

    def _over(self) -> bool:
        return len(self._d) > self.max_entries or (self.max_bytes is not None and self._bytes > self.max_bytes)

    def _evict(self) -> None:
        if not self._over():
            return
        for digest in list(self._d):
            if not self._over():
                return
            e = self._d[digest]
            if not e.pinned:
                del self._d[digest]
                self._bytes -= e.nbytes
                self.evictions += 1
