"""vexplore's compile cache: keys with named parts, and tiers (memory, disk, remote).

    vx.cache.explain(a, b)        # which parts of two cache keys differ
    vx.cache.prewarm(cfg)         # load the entries a compile under cfg can hit into memory
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .keys import CacheKey, explain
from .tiered import Lookup, Prewarmed, Stored, TieredCache
from .warn import VexploreCacheWarning

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["CacheKey", "Lookup", "Prewarmed", "Stored", "TieredCache", "VexploreCacheWarning",
           "explain", "prewarm"]


def prewarm(config: Any = None, *, session: "Session | None" = None, device: str = "cpu",
            limit: int | None = None) -> Prewarmed:
    """Load a model's stored entries into the session's memory tier, before its first call.

    ``config`` (a CompileConfig, or a CacheConfig for every compile config) picks the entries a
    compile under it can hit: same compile-relevant fields and this machine's versions for
    ``device``. They are read from the config's disk (and remote) tiers, most recently used
    first, up to ``limit`` and the memory tier's size. The first call then finds its pieces in
    memory. Returns how many were loaded and how long it took.
    """
    from ..session import default_session  # the Session sits above the cache; resolved on call

    return (session or default_session()).prewarm(config, device=device, limit=limit)
