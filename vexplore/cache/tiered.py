"""TieredCache: lookup memory -> disk -> remote, store through to every enabled tier.

A tier below memory stores Artifacts (bytes); the memory tier stores loaded callables, so a
memory hit costs a dict lookup. A hit in a lower tier fills the tiers above it (a remote hit
fills disk and memory). A miss says why: an entry refused on the way, or the nearest stored
key and the parts that differ.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol

from .artifact import Artifact
from .keys import CacheKey, nearest
from .memory import MemoryEntry, MemoryTier

log = logging.getLogger(__name__)

TIER_NAMES = ("memory", "disk", "remote")
Loader = Callable[[Artifact], "tuple[Callable[..., Any], dict[str, Any]]"]


class Tier(Protocol):
    """A tier below memory: stores and returns Artifacts under a CacheKey.

    ``get`` never raises: a damaged or refused entry is counted in ``rejected`` with the reason
    in ``last_rejection`` and comes back as None.
    """

    name: str
    rejected: int
    last_rejection: str | None

    def get(self, key: CacheKey) -> Artifact | None: ...

    def put(self, key: CacheKey, art: Artifact) -> int: ...

    def discard(self, key: CacheKey, reason: str) -> None: ...

    def keys(self) -> list[tuple[str, dict[str, Any]]]: ...


def _zero(tiers: Iterable[str]) -> dict[str, int]:
    out = {"cache_bytes_read": 0, "cache_bytes_written": 0, "cache_rejected": 0}
    for t in tiers:
        out[f"cache_misses_{t}"] = 0
        out[f"cache_load_us_{t}"] = 0
        if t != "memory":
            out.update({f"cache_rejected_{t}": 0, f"cache_bytes_read_{t}": 0, f"cache_bytes_written_{t}": 0})
    return out


@dataclass(frozen=True)
class Lookup:
    """One lookup: where it was served from (or ``miss``), what it cost and what it found on the way."""

    tier: str                                  # memory | disk | remote | miss
    fn: Callable[..., Any] | None = None
    artifact: Artifact | None = None
    seconds: float = 0.0
    bytes_read: int = 0
    miss_reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    tiers: tuple[str, ...] = ()                # the tiers that were enabled, in lookup order
    missed: tuple[str, ...] = ()               # tiers that had no usable entry
    rejected: tuple[tuple[str, str], ...] = () # (tier, why) of entries refused on the way
    written: tuple[tuple[str, int], ...] = ()  # (tier, bytes) filled above a lower-tier hit
    nearest: str | None = None                 # digest of the nearest stored key on a miss

    def counters(self) -> dict[str, int]:
        """The report counters this lookup adds (every per-tier key of the enabled tiers, zeros too)."""
        c = _zero(self.tiers)
        for t in self.missed:
            c[f"cache_misses_{t}"] += 1
        for t, _ in self.rejected:
            c["cache_rejected"] += 1
            c[f"cache_rejected_{t}"] += 1
        if self.tier in TIER_NAMES:
            c[f"cache_load_us_{self.tier}"] += int(self.seconds * 1e6)
            if self.tier != "memory":
                c["cache_bytes_read"] += self.bytes_read
                c[f"cache_bytes_read_{self.tier}"] += self.bytes_read
        for t, n in self.written:
            c["cache_bytes_written"] += n
            c[f"cache_bytes_written_{t}"] += n
        return c


@dataclass(frozen=True)
class Stored:
    """What ``store`` wrote below memory: (tier, bytes) per tier."""

    written: tuple[tuple[str, int], ...] = ()
    tiers: tuple[str, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()  # damaged entries found while indexing the write

    @property
    def nbytes(self) -> int:
        return sum(n for _, n in self.written)

    def counters(self) -> dict[str, int]:
        c = {k: v for k, v in _zero(self.tiers).items() if k.startswith(("cache_bytes_written", "cache_rejected"))}
        for t, n in self.written:
            c["cache_bytes_written"] += n
            c[f"cache_bytes_written_{t}"] += n
        for t, _ in self.rejected:
            c["cache_rejected"] += 1
            c[f"cache_rejected_{t}"] += 1
        return c


class TieredCache:
    """The tiers one CacheConfig enables, in lookup order."""

    def __init__(self, memory: MemoryTier | None, lower: list[Tier]) -> None:
        self.memory, self.lower = memory, lower
        self.tiers = (("memory",) if memory is not None else ()) + tuple(t.name for t in lower)

    @property
    def enabled(self) -> bool:
        return self.memory is not None or bool(self.lower)

    def lookup(self, key: CacheKey, load: Loader) -> Lookup:
        """Find ``key``; ``load`` turns a lower tier's Artifact into (callable, info)."""
        t0 = time.perf_counter()
        digest = key.digest
        if self.memory is not None:
            e = self.memory.get(digest)
            if e is not None:
                return Lookup("memory", e.fn, e.artifact, time.perf_counter() - t0, info=e.info, tiers=self.tiers)
        missed = ["memory"] if self.memory is not None else []
        rejected: list[tuple[str, str]] = []
        before = [t.rejected for t in self.lower]
        for i, tier in enumerate(self.lower):
            art = self._get(tier, key, rejected)
            if art is not None:
                try:
                    fn, info = load(art)
                except Exception as e:  # an artifact this process cannot load is a miss, not a crash
                    why = f"failed to load ({type(e).__name__}: {str(e)[:200]})"
                    tier.discard(key, why)
                    rejected.append((tier.name, tier.last_rejection or why))
                    art = None
            if art is None:
                missed.append(tier.name)
                continue
            written = self._fill(key, art, fn, info, self.lower[:i])
            rejected += self._found_damage(before, rejected)
            return Lookup(tier.name, fn, art, time.perf_counter() - t0, len(art.data), info=info, tiers=self.tiers,
                          missed=tuple(missed), rejected=tuple(rejected), written=written)
        reason, near = self.explain_miss(key, rejected)
        rejected += self._found_damage(before, rejected)
        return Lookup("miss", seconds=time.perf_counter() - t0, miss_reason=reason, tiers=self.tiers,
                      missed=tuple(missed), rejected=tuple(rejected), nearest=near)

    def _found_damage(self, before: list[int], rejected: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Entries a tier refused beyond those in ``rejected`` (found while indexing or listing)."""
        out = []
        for tier, n in zip(self.lower, before):
            extra = tier.rejected - n - sum(t == tier.name for t, _ in rejected)
            out += [(tier.name, tier.last_rejection or "damaged entry")] * max(extra, 0)
        return out

    @staticmethod
    def _get(tier: Tier, key: CacheKey, rejected: list[tuple[str, str]]) -> Artifact | None:
        before = tier.rejected
        art = tier.get(key)
        if tier.rejected > before:
            rejected.append((tier.name, tier.last_rejection or "refused"))
        return art

    def _fill(self, key: CacheKey, art: Artifact, fn: Callable[..., Any], info: dict[str, Any],
              upper: list[Tier]) -> tuple[tuple[str, int], ...]:
        if self.memory is not None:
            self.memory.put(key.digest, MemoryEntry(fn, art, len(art.data), info=info, key=key))
        return tuple((t.name, t.put(key, art)) for t in upper)

    def explain_miss(self, key: CacheKey, rejected: list[tuple[str, str]] = ()) -> tuple[str, str | None]:
        """(reason, nearest digest): refused entries first, then the nearest stored key's differing parts."""
        found = nearest(key, self._candidates())
        said = [why for _, why in rejected]
        if found is None:
            said.append(f"nothing stored in {', '.join(self.tiers)} yet" if not rejected else
                        "no other stored key to compare with")
            return "; ".join(said), None
        tier, digest, lines = found
        shown = "; ".join(lines[:4]) + (f"; +{len(lines) - 4} more" if len(lines) > 4 else "")
        said.append(f"nearest stored key {digest[:12]} ({tier}) differs in {shown}")
        return "; ".join(said), digest

    def _candidates(self) -> Iterable[tuple[str, Mapping[str, Any] | CacheKey]]:
        if self.memory is not None:
            for _, e in self.memory.entries():
                if e.key is not None:
                    yield "memory", e.key
        for tier in self.lower:
            try:
                for _, parts in tier.keys():
                    yield tier.name, parts
            except Exception as e:  # a listing problem must not turn a miss into a crash
                log.info("vexplore %s cache: cannot list keys (%s)", tier.name, e)

    def store(self, key: CacheKey, fn: Callable[..., Any], art: Artifact | None,
              info: dict[str, Any] | None = None, pin: bool = False) -> Stored:
        """Store in every enabled tier (only memory when there are no bytes); returns what was written."""
        if self.memory is not None:
            self.memory.put(key.digest, MemoryEntry(fn, art, len(art.data) if art else 0, pin,
                                                    dict(info or {}), key))
        if art is None:
            return Stored((), self.tiers)
        before = [t.rejected for t in self.lower]
        written = tuple((t.name, t.put(key, art)) for t in self.lower)
        return Stored(written, self.tiers, tuple(self._found_damage(before, [])))

    def prewarm(self, load: Loader, match: Callable[[dict[str, Any]], bool], limit: int | None = None) -> "Prewarmed":
        """Load stored entries whose key parts ``match`` into memory, most recently used first."""
        t0, loaded, failed, seen = time.perf_counter(), 0, 0, set()
        if self.memory is None:
            return Prewarmed(0, 0, 0.0)
        cap = self.memory.max_entries
        limit = cap if limit is None else min(limit, cap)
        for tier in self.lower:
            for digest, parts in tier.keys():
                if loaded >= limit or digest in seen or not match(parts) or digest in self.memory:
                    continue
                seen.add(digest)
                hit = self.lookup(CacheKey.from_dict(parts), load)
                loaded += hit.tier != "miss"
                failed += hit.tier == "miss"
        return Prewarmed(loaded, failed, time.perf_counter() - t0)


@dataclass(frozen=True)
class Prewarmed:
    """What ``vx.cache.prewarm`` did: entries loaded into memory, entries refused, seconds."""

    loaded: int
    failed: int
    seconds: float
