"""vx.cache.prewarm: a config's stored entries into the session's memory tier, before a first call.

It lives with the engine (it needs the artifact loader and the Session), not in cache/, which
sits below both; ``vexplore/__init__.py`` publishes it as ``vx.cache.prewarm``.
"""
from __future__ import annotations

from typing import Any

from ...cache.keys import versions
from ...cache.tiered import Prewarmed
from ...config import CacheConfig, CompileConfig
from ...session import Session, default_session
from .loader import load_artifact


def prewarm(config: CompileConfig | CacheConfig | None = None, *, session: Session | None = None,
            device: str = "cpu", limit: int | None = None) -> Prewarmed:
    """Load a model's stored entries into the session's memory tier, before its first call.

    ``config`` (a CompileConfig, or a CacheConfig for every compile config) picks the entries a
    compile under it can hit: same compile-relevant fields and this machine's versions for
    ``device``. They are read from the config's disk (and remote) tiers, most recently used
    first, up to ``limit`` and the memory tier's size. The first call then finds its pieces in
    memory. Returns how many were loaded and how long it took.
    """
    cfg = config if config is not None else CompileConfig()
    cache_cfg = cfg.cache if isinstance(cfg, CompileConfig) else cfg
    want_versions = versions(device)
    want_config = cfg.compile_relevant() if isinstance(cfg, CompileConfig) else None

    def match(parts: dict[str, Any]) -> bool:
        return parts.get("versions") == want_versions and want_config in (None, parts.get("config"))
    return (session or default_session()).cache(cache_cfg).prewarm(load_artifact, match, limit)
