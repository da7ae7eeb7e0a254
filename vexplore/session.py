"""Session: the caches and the monitor that compiles share; it outlives single compiles."""
from __future__ import annotations

import os
import threading

from .cache.disk import DiskTier
from .cache.memory import MemoryTier
from .cache.tiered import Tier, TieredCache
from .config import CacheConfig
from .monitor.events import Monitor


class Session:
    """Holds the memory tier, one disk tier per cache dir, and the Monitor (reports, events).

    ``vx.compile(model, cfg, session=s)`` compiles into ``s``; without one, the process's
    default session is used (``vx.default_session()``).
    """

    def __init__(self, memory_entries: int = 256, memory_bytes: int | None = None) -> None:
        self.memory = MemoryTier(memory_entries, memory_bytes)
        self.monitor = Monitor()
        self._disk: dict[str, DiskTier] = {}
        self._remote: dict[str, Tier] = {}

    def disk_tier(self, directory: str) -> DiskTier:
        path = os.path.abspath(os.path.expanduser(directory))
        if path not in self._disk:
            self._disk[path] = DiskTier(path)
        return self._disk[path]

    def remote_tier(self, cfg: CacheConfig) -> Tier | None:
        from .cache.remote import RemoteTier  # redis is optional

        url = cfg.remote_url or ""
        if url not in self._remote:
            self._remote[url] = RemoteTier(url, prefix=cfg.remote_prefix, timeout_s=cfg.remote_timeout_s)
        return self._remote[url]

    def cache(self, cfg: CacheConfig) -> TieredCache:
        """The tiers ``cfg`` enables, in lookup order."""
        lower: list[Tier] = []
        if "disk" in cfg.tiers:
            lower.append(self.disk_tier(cfg.dir))
        if "remote" in cfg.tiers:
            remote = self.remote_tier(cfg)
            if remote is not None:
                lower.append(remote)
        return TieredCache(self.memory if "memory" in cfg.tiers else None, lower)


_default: Session | None = None
_lock = threading.Lock()


def default_session() -> Session:
    """The process's default Session (created on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = Session()
        return _default
