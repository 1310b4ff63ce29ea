"""Caches of computed answers: in-process (``memory``) or shared through Redis (``redis``).

Both implement ``core.domain.ports.Cache``. A cache only saves work: every value can be
recomputed, so a Redis that goes away costs time (answers come from the in-process cache
or are computed again), never a wrong or missing answer.
"""

from __future__ import annotations

from core.cache.memory import MemoryCache
from core.domain.ports import Cache


def cache_for(redis_url: str | None) -> Cache:
    """Shared through Redis when ``PHOENIX_REDIS_URL`` is set, this process's otherwise."""
    if redis_url:
        from core.cache.redis import RedisCache

        return RedisCache(redis_url)
    return MemoryCache()


__all__ = ["MemoryCache", "cache_for"]
