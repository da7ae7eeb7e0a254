"""vexplore's compile cache: keys with named parts, and tiers (memory, disk, remote).

    vx.cache.explain(a, b)        # which parts of two cache keys differ
    vx.cache.prewarm(cfg)         # load the entries a compile under cfg can hit into memory
"""
from __future__ import annotations

from .keys import CacheKey, explain
from .tiered import Lookup, Prewarmed, Stored, TieredCache
from .warn import VexploreCacheWarning

__all__ = ["CacheKey", "Lookup", "Prewarmed", "Stored", "TieredCache", "VexploreCacheWarning",
           "explain", "prewarm"]

# ``prewarm`` (vx.cache.prewarm) needs the engine's loader and the Session, which sit above the
# cache: it is defined in engine/build/prewarm.py and published here by vexplore/__init__.py.
