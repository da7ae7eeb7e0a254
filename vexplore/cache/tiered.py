"""TieredCache: lookup memory -> disk -> remote, store through to every enabled tier.

A tier below memory stores Artifacts (bytes); the memory tier stores loaded callables, so a
memory hit costs a dict lookup. A hit in a lower tier fills the tiers above it.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from .artifact import Artifact
from .keys import CacheKey
from .memory import MemoryEntry, MemoryTier

log = logging.getLogger(__name__)


class Tier(Protocol):
    """A tier below memory: stores and returns Artifacts under a CacheKey."""

    name: str
    rejected: int

    def get(self, key: CacheKey) -> Artifact | None: ...

    def put(self, key: CacheKey, art: Artifact) -> int: ...


@dataclass(frozen=True)
class Lookup:
    tier: str                                  # memory | disk | remote | miss
    fn: Callable[..., Any] | None = None
    artifact: Artifact | None = None
    seconds: float = 0.0
    bytes_read: int = 0
    miss_reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


class TieredCache:
    def __init__(self, memory: MemoryTier | None, lower: list[Tier]) -> None:
        self.memory, self.lower = memory, lower

    @property
    def enabled(self) -> bool:
        return self.memory is not None or bool(self.lower)

    def lookup(self, key: CacheKey, load: Callable[[Artifact], tuple[Callable[..., Any], dict[str, Any]]]) -> Lookup:
        """Find ``key``; ``load`` turns a lower tier's Artifact into (callable, info)."""
        t0 = time.perf_counter()
        digest = key.digest
        if self.memory is not None:
            e = self.memory.get(digest)
            if e is not None:
                return Lookup("memory", e.fn, e.artifact, time.perf_counter() - t0, info=e.info)
        for i, tier in enumerate(self.lower):
            art = tier.get(key)
            if art is None:
                continue
            try:
                fn, info = load(art)
            except Exception as e:  # an artifact this torch cannot load is a miss, not a crash
                log.warning("vexplore %s cache: entry %s failed to load (%s: %s); recompiling",
                            tier.name, digest[:12], type(e).__name__, e)
                tier.rejected += 1
                continue
            if self.memory is not None:
                self.memory.put(digest, MemoryEntry(fn, art, len(art.data), info=info))
            for upper in self.lower[:i]:
                upper.put(key, art)
            return Lookup(tier.name, fn, art, time.perf_counter() - t0, len(art.data), info=info)
        return Lookup("miss", seconds=time.perf_counter() - t0, miss_reason="no entry for this key in any enabled tier")

    def store(self, key: CacheKey, fn: Callable[..., Any], art: Artifact | None,
              info: dict[str, Any] | None = None) -> int:
        """Store in every enabled tier; returns bytes written below memory."""
        if self.memory is not None:
            self.memory.put(key.digest, MemoryEntry(fn, art, len(art.data) if art else 0, info=dict(info or {})))
        if art is None:
            return 0
        return sum(t.put(key, art) for t in self.lower)
