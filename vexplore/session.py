"""Session: the caches and the monitor that compiles share; it outlives single compiles."""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Iterator

from .cache.disk import DiskTier
from .cache.guard import DEFAULT_RETRY_S, GuardedTier
from .cache.memory import MemoryTier
from .cache.tiered import Tier, TieredCache
from .cancel import CancelToken
from .config import CacheConfig
from .errors import ConfigError
from .monitor.events import Monitor


class Session:
    """Holds the memory tier, one disk tier per cache dir, the remote tiers, the Monitor, and the
    cancel tokens of the compiles in progress.

    ``vx.compile(model, cfg, session=s)`` compiles into ``s``; without one, the process's
    default session is used (``vx.default_session()``). The tiers take their bounds from the
    CacheConfig of the latest compile: a compile calls ``set_bounds(cfg)`` once as it starts
    (``resize_memory`` resizes the memory tier on its own); ``cache(cfg)`` only returns tiers.
    A disk or remote tier that fails is switched off with a ``cache-failure`` alert and tried
    again ``cache_retry_s`` seconds later, at the next compile (cache/guard.py). ``cancel()``
    stops the compiles in progress at their next step (``compiling()`` gives each its token).
    """

    def __init__(self, memory_entries: int = 256, memory_bytes: int | None = None,
                 cache_retry_s: float = DEFAULT_RETRY_S) -> None:
        if isinstance(cache_retry_s, bool) or not isinstance(cache_retry_s, (int, float)) or not cache_retry_s >= 0:
            raise ConfigError(f"Session(cache_retry_s={cache_retry_s!r}): seconds a failed cache tier waits before it is "
                              "tried again, a number >= 0 (default 30.0).")
        self.memory = MemoryTier(memory_entries, memory_bytes)
        self.monitor = Monitor(disk_bytes=self._disk_bytes, cancel=self.cancel)
        self.cache_retry_s = cache_retry_s
        self._disk: dict[str, DiskTier] = {}
        self._remote: dict[tuple[str, str], Tier] = {}
        self._guards: dict[int, GuardedTier] = {}   # id(tier) -> its guard; tiers live as long as the session
        self._pool: Any = None   # engine.build's WorkerPool or RayPool, started by the first compile with workers
        self._active: set[CancelToken] = set()   # the tokens of the compiles in progress (any thread)
        self._active_lock = threading.Lock()
        self._scope = threading.local()           # .token: the token of this thread's compile in progress

    # -- cancel ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def compiling(self) -> Iterator[CancelToken]:
        """The cancel token of the compile(s) run inside the block: ``cancel()`` reaches it while the
        block runs, never after. A block inside another of the same thread shares its token (so one
        Cancel stops every compile of an ``advice.apply``, the one about to start included)."""
        outer = getattr(self._scope, "token", None)
        if outer is not None:
            yield outer
            return
        token = CancelToken()
        with self._active_lock:
            self._active.add(token)
        self._scope.token = token
        try:
            yield token
        finally:
            self._scope.token = None
            with self._active_lock:
                self._active.discard(token)

    def cancel(self) -> None:
        """Stop the compiles in progress at their next step (each raises CancelledError and keeps the
        model's previous callables); nothing when none runs. ``s.monitor.cancel()`` is the same."""
        with self._active_lock:
            tokens = list(self._active)
        for token in tokens:
            token.cancel()

    # -- cache tiers -----------------------------------------------------------------------
    def resize_memory(self, entries: int, max_bytes: int | None = None) -> None:
        """Bound the memory tier to ``entries`` entries and ``max_bytes`` bytes (None: entries only),
        evicting the least recently used unpinned entries down to the new bounds."""
        self.memory.resize(entries, max_bytes)

    def set_bounds(self, cfg: CacheConfig) -> None:
        """Bound the tiers ``cfg`` enables to its sizes: the memory tier (``memory_entries``,
        ``memory_bytes``) and the disk tier of ``cfg.dir`` (``disk_max_bytes``). A compile calls it
        once, as it starts."""
        if "memory" in cfg.tiers:
            self.resize_memory(cfg.memory_entries, cfg.memory_bytes)
        if "disk" in cfg.tiers:
            self.disk_tier(cfg.dir, cfg.disk_max_bytes)

    def disk_tier(self, directory: str, max_bytes: int | None = None) -> DiskTier:
        """The disk tier of ``directory`` (one per dir and session); ``max_bytes`` updates its bound."""
        path = os.path.abspath(os.path.expanduser(directory))
        if path not in self._disk:
            self._disk[path] = DiskTier(path) if max_bytes is None else DiskTier(path, max_bytes)
        elif max_bytes is not None:
            self._disk[path].max_bytes = max_bytes
        return self._disk[path]

    def _disk_of(self, cfg: CacheConfig) -> DiskTier:
        """The disk tier of ``cfg.dir``, made with ``cfg``'s bound when new; an existing one keeps its bound."""
        path = os.path.abspath(os.path.expanduser(cfg.dir))
        return self._disk[path] if path in self._disk else self.disk_tier(path, cfg.disk_max_bytes)

    def remote_tier(self, cfg: CacheConfig) -> Tier | None:
        """The remote tier of ``cfg.remote_url`` and ``cfg.remote_prefix`` (one per pair and session)."""
        from .cache.remote import RemoteTier  # redis is optional

        url = cfg.remote_url or ""
        if (url, cfg.remote_prefix) not in self._remote:
            self._remote[(url, cfg.remote_prefix)] = RemoteTier(url, prefix=cfg.remote_prefix,
                                                               timeout_s=cfg.remote_timeout_s)
        return self._remote[(url, cfg.remote_prefix)]

    def cache(self, cfg: CacheConfig) -> TieredCache:
        """The tiers ``cfg`` enables, in lookup order. Bounds stay as they are: a tier made now takes
        ``cfg``'s, an existing one changes only through ``set_bounds`` / ``resize_memory``."""
        lower: list[Tier] = []
        if "disk" in cfg.tiers:
            lower.append(self._disk_of(cfg))
        if "remote" in cfg.tiers:
            remote = self.remote_tier(cfg)
            if remote is not None:
                lower.append(remote)
        return TieredCache(self.memory if "memory" in cfg.tiers else None, [self._guard(t) for t in lower])

    def _guard(self, tier: Tier) -> GuardedTier:
        """The session's guard of ``tier``: it keeps the tier's health across compiles."""
        g = self._guards.get(id(tier))
        if g is None:
            g = self._guards[id(tier)] = GuardedTier(tier, self.monitor.raise_alert, self.cache_retry_s)
            g.check()   # a tier that failed on creation (a dir that cannot be made) alerts at once
        return g

    def _disk_bytes(self) -> int:
        """What the disk tiers hold, by their indexes (the monitor's samples read it)."""
        return sum(d.size_bytes() for d in list(self._disk.values()))

    def worker_pool(self, size: int | str) -> Any:
        """The Session's compile worker pool of ``size`` processes (``"ray"``: Ray tasks on a Ray cluster),
        started on first use and kept (so each compile does not pay for starting processes and importing torch)."""
        from .engine.build.workers import WorkerPool

        pool = self._pool
        if pool is None or pool.size != size:
            if pool is not None:
                pool.close()
            if size == "ray":
                from .engine.build.raypool import RayPool   # imports ray: only when asked for
                pool = self._pool = RayPool()
            else:
                pool = self._pool = WorkerPool(size)
        return pool

    def close(self) -> None:
        """Stop periodic sampling (``monitor.start``) and the compile workers; the caches, the
        samples and the alerts stay usable."""
        self.monitor.stop()
        if self._pool is not None:
            self._pool.close()
            self._pool = None


_default: Session | None = None
_lock = threading.Lock()


def default_session() -> Session:
    """The process's default Session (created on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = Session()
        return _default
