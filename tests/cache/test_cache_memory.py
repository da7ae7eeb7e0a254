"""Memory tier: LRU order, bounds by entries and bytes, pinning, hit cost (no compiles)."""
from __future__ import annotations

import statistics
import time

from vexplore.cache.memory import MemoryEntry, MemoryTier
from vexplore.cache.tiered import TieredCache

from cachehelp import key


def entry(n: int = 0, pinned: bool = False) -> MemoryEntry:
    return MemoryEntry(fn=lambda *a: a, nbytes=n, pinned=pinned)


def test_lru_order_and_eviction_by_entries():
    m = MemoryTier(max_entries=3)
    for d in "abc":
        m.put(d, entry())
    assert m.get("a") is not None            # a becomes most recently used
    m.put("d", entry())                      # evicts b, the least recently used
    assert m.keys() == ["c", "a", "d"] and m.evictions == 1
    m.put("c", entry())                      # replacing refreshes c
    m.put("e", entry())
    assert m.keys() == ["d", "c", "e"] and m.evictions == 2


def test_eviction_by_bytes():
    m = MemoryTier(max_entries=10, max_bytes=100)
    m.put("a", entry(40))
    m.put("b", entry(40))
    m.put("c", entry(40))
    assert m.keys() == ["b", "c"] and m.nbytes == 80
    m.resize(10, 50)
    assert m.keys() == ["c"] and m.nbytes == 40 and m.evictions == 2


def test_pinned_entries_are_never_evicted():
    m = MemoryTier(max_entries=2)
    m.put("p", entry(pinned=True))
    for d in "abcd":
        m.put(d, entry())
    assert m.keys() == ["p", "d"]
    m.put("q", entry())
    assert m.pin("q") and m.keys() == ["p", "q"]
    m.put("r", entry())                      # the only unpinned entry: it goes at once
    assert m.keys() == ["p", "q"] and m.stats().pinned == 2
    m.put("p", entry())                      # replacing keeps the pin
    assert m.get("p").pinned
    assert m.pin("q", False) and m.keys() == ["q", "p"]
    m.put("s", entry())                      # q is unpinned and least recently used now
    assert m.keys() == ["p", "s"]
    assert not m.pin("nope")


def test_memory_hit_costs_well_under_a_millisecond():
    cache = TieredCache(MemoryTier(), [])
    keys = [key(size=i + 1) for i in range(64)]
    for k in keys:
        cache.store(k, lambda x: x, None, {"compiler": "inductor"})
    times = []
    for _ in range(20):
        for k in keys:
            fresh = type(k)(**{**k.parts(), "graph_text": ""})   # a new key object: digest not cached
            t0 = time.perf_counter()
            hit = cache.lookup(fresh, lambda a: (None, {}))
            times.append(time.perf_counter() - t0)
            assert hit.tier == "memory"
    assert statistics.median(times) < 2e-4, statistics.median(times)
    assert hit.counters() == {"cache_bytes_read": 0, "cache_bytes_written": 0, "cache_rejected": 0,
                              "cache_misses_memory": 0, "cache_load_us_memory": int(hit.seconds * 1e6)}
