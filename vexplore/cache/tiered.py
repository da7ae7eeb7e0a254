"""TieredCache: lookup memory -> disk -> remote, store through to every enabled tier.

A tier below memory stores Artifacts (bytes); the memory tier stores loaded callables, so a
memory hit costs a dict lookup. A hit in a lower tier fills the tiers above it (a remote hit
fills disk and memory). A miss says why: an entry refused on the way, or the nearest stored
key and the parts that differ. Each tier below memory sits behind a GuardedTier (guard.py): a
tier that fails is switched off with an alert and re-initialised once healthy.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol

from .artifact import Artifact
from .guard import GuardedTier
from .keys import CacheKey, nearest
from .memory import MemoryEntry, MemoryTier

log = logging.getLogger(__name__)

TIER_NAMES = ("memory", "disk", "remote")
Loader = Callable[[Artifact], "tuple[Callable[..., Any], dict[str, Any]]"]


class Tier(Protocol):
    """A tier below memory: stores and returns Artifacts under a CacheKey.

    ``get`` never raises: a damaged or refused entry comes back as None and its reason is
    appended to ``rejections`` (every reason, in order; also those found while indexing or
    listing), so a caller can take the reasons its own calls added.
    """

    name: str
    rejections: list[str]

    def get(self, key: CacheKey) -> Artifact | None: ...

    def put(self, key: CacheKey, art: Artifact, blob: bytes | None = None) -> int: ...

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


def _count(c: dict[str, int], written: Iterable[tuple[str, int]],
           rejected: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Add bytes written and entries refused, in total and per tier, to the counters ``c``."""
    for t, n in written:
        c["cache_bytes_written"] += n
        c[f"cache_bytes_written_{t}"] += n
    for t, _ in rejected:
        c["cache_rejected"] += 1
        c[f"cache_rejected_{t}"] += 1
    return c


@dataclass(frozen=True)
class Lookup:
    """One lookup: where it was served from (or ``miss``), what it cost and what it found on the way."""

    tier: str                                  # memory | disk | remote | miss
    fn: Callable[..., Any] | None = None
    seconds: float = 0.0
    bytes_read: int = 0
    miss_reason: str | None = None
    differs: tuple[str, ...] = ()              # a miss: the key parts the nearest stored key differs in (keys.differing_parts)
    info: dict[str, Any] = field(default_factory=dict)
    tiers: tuple[str, ...] = ()                # the tiers that were enabled, in lookup order
    missed: tuple[str, ...] = ()               # tiers that had no usable entry
    rejected: tuple[tuple[str, str], ...] = () # (tier, why) of entries refused on the way
    written: tuple[tuple[str, int], ...] = ()  # (tier, bytes) filled above a lower-tier hit

    def counters(self) -> dict[str, int]:
        """The report counters this lookup adds (every per-tier key of the enabled tiers, zeros too)."""
        c = _zero(self.tiers)
        for t in self.missed:
            c[f"cache_misses_{t}"] += 1
        if self.tier in TIER_NAMES:
            c[f"cache_load_us_{self.tier}"] += int(self.seconds * 1e6)
            if self.tier != "memory":
                c["cache_bytes_read"] += self.bytes_read
                c[f"cache_bytes_read_{self.tier}"] += self.bytes_read
        return _count(c, self.written, self.rejected)


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
        return _count(c, self.written, self.rejected)


class TieredCache:
    """The tiers one CacheConfig enables, in lookup order.

    ``lower`` tiers are guarded: pass GuardedTiers that outlive this object (the Session keeps one
    per tier, with its alert callback) so that a failed tier stays off across compiles; a plain
    tier gets a guard of its own that logs instead of alerting.
    """

    def __init__(self, memory: MemoryTier | None, lower: list[Tier]) -> None:
        self.memory = memory
        self.lower: list[Tier] = [t if isinstance(t, GuardedTier) else GuardedTier(t) for t in lower]
        self.tiers = (("memory",) if memory is not None else ()) + tuple(t.name for t in lower)

    @property
    def enabled(self) -> bool:
        return self.memory is not None or bool(self.lower)

    def lookup(self, key: CacheKey, load: Loader, explain: bool = True) -> Lookup:
        """Find ``key``; ``load`` turns a lower tier's Artifact into (callable, info).

        ``explain=False`` skips naming the nearest stored key on a miss (it lists every tier):
        the miss reason then only names refused entries.
        """
        t0 = time.perf_counter()
        if self.memory is not None:
            e = self.memory.get(key.digest)
            if e is not None:
                return Lookup("memory", e.fn, time.perf_counter() - t0, info=e.info, tiers=self.tiers)
        missed = ["memory"] if self.memory is not None else []
        mark = self._mark()
        for i, tier in enumerate(self.lower):
            art = tier.get(key)
            if art is not None:
                try:
                    fn, info = load(art)
                except Exception as e:  # an artifact this process cannot load is a miss, not a crash
                    tier.discard(key, f"failed to load ({type(e).__name__}: {str(e)[:200]})")
                    art = None
            if art is None:
                missed.append(tier.name)
                continue
            written = self._put(key, fn, art, info, False, self.lower[:i])
            return Lookup(tier.name, fn, time.perf_counter() - t0, len(art.data), info=info, tiers=self.tiers,
                          missed=tuple(missed), rejected=self._since(mark), written=written)
        refused = self._since(mark)
        reason, differs = (self._explain(key, refused) if explain else
                           ("; ".join(why for _, why in refused) or f"not stored in {', '.join(self.tiers)}", ()))
        return Lookup("miss", seconds=time.perf_counter() - t0, miss_reason=reason, differs=differs, tiers=self.tiers,
                      missed=tuple(missed), rejected=self._since(mark))

    def _mark(self) -> list[int]:
        return [len(t.rejections) for t in self.lower]

    def _since(self, mark: list[int]) -> tuple[tuple[str, str], ...]:
        """(tier, why) of every entry the lower tiers refused since ``mark``, each with its own reason."""
        return tuple((t.name, why) for t, n in zip(self.lower, mark) for why in t.rejections[n:])

    def explain_miss(self, key: CacheKey, rejected: Iterable[tuple[str, str]] = ()) -> str:
        """Refused entries first, then the nearest stored key's differing parts."""
        return self._explain(key, rejected)[0]

    def _explain(self, key: CacheKey, rejected: Iterable[tuple[str, str]]) -> tuple[str, tuple[str, ...]]:
        """(explain_miss's text, the names of the parts the nearest stored key differs in)."""
        said = [why for _, why in rejected]
        found = nearest(key, self._candidates())
        if found is None:
            said.append("no other stored key to compare with" if said else
                        f"nothing stored in {', '.join(self.tiers)} yet")
            return "; ".join(said), ()
        tier, digest, lines, parts = found
        shown = "; ".join(lines[:4]) + (f"; +{len(lines) - 4} more" if len(lines) > 4 else "")
        said.append(f"nearest stored key {digest[:12]} ({tier}) differs in {shown}")
        return "; ".join(said), tuple(parts)

    def _candidates(self) -> Iterable[tuple[str, str, Mapping[str, Any] | CacheKey]]:
        if self.memory is not None:
            for digest, e in self.memory.entries():
                if e.key is not None:
                    yield "memory", digest, e.key
        for tier in self.lower:
            try:
                for digest, parts in tier.keys():
                    yield tier.name, digest, parts
            except Exception as e:  # a listing problem must not turn a miss into a crash
                log.info("vexplore %s cache: cannot list keys (%s)", tier.name, e)

    def store(self, key: CacheKey, fn: Callable[..., Any], art: Artifact | None,
              info: dict[str, Any] | None = None, pin: bool = False) -> Stored:
        """Store in every enabled tier (only memory when there are no bytes); returns what was written."""
        mark = self._mark()
        written = self._put(key, fn, art, dict(info or {}), pin, self.lower)
        return Stored(written, self.tiers, self._since(mark))

    def _put(self, key: CacheKey, fn: Callable[..., Any], art: Artifact | None, info: dict[str, Any],
             pin: bool, lower: list[Tier]) -> tuple[tuple[str, int], ...]:
        """Put into memory and into ``lower`` (encoded once for all of them); (tier, bytes) written below memory."""
        if self.memory is not None:
            self.memory.put(key.digest, MemoryEntry(fn, len(art.data) if art else 0, pin, info, key))
        if art is None or not lower:
            return ()
        blob = art.encode(key)
        return tuple((t.name, t.put(key, art, blob)) for t in lower)

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
                # no miss explanation: it would list every tier again for each entry that fails
                hit = self.lookup(CacheKey.from_dict(parts), load, explain=False)
                loaded += hit.tier != "miss"
                failed += hit.tier == "miss"
        return Prewarmed(loaded, failed, time.perf_counter() - t0)


@dataclass(frozen=True)
class Prewarmed:
    """What ``vx.cache.prewarm`` did: entries loaded into memory, entries refused, seconds."""

    loaded: int
    failed: int
    seconds: float
