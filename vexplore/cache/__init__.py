"""vexplore's compile cache: keys with named parts, and tiers (memory, disk, remote)."""
from .keys import CacheKey, explain

__all__ = ["CacheKey", "explain"]
