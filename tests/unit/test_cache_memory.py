"""The in-process cache's own rules: LRU bounds, expiry on a clock, TTL bounds, metrics."""

from __future__ import annotations

from prometheus_client import REGISTRY

from core.cache import MemoryCache, cache_for
from core.cache.keys import MAX_TTL_S, bounded_ttl, entry_name


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _count(cache: str, result: str) -> float:
    return REGISTRY.get_sample_value("phoenix_cache_requests_total", {"cache": cache, "result": result}) or 0.0


def test_expiry_follows_the_clock() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    cache.set("unit", "k", b"v", 10)
    clock.now += 9.9
    assert cache.get("unit", "k") == b"v"
    clock.now += 0.1
    assert cache.get("unit", "k") is None
    assert len(cache) == 0  # an expired entry is dropped when found, not kept


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = MemoryCache(max_entries=2)
    cache.set("unit", "a", b"1", 60)
    cache.set("unit", "b", b"2", 60)
    assert cache.get("unit", "a") == b"1"  # a is now the most recently used
    cache.set("unit", "c", b"3", 60)
    assert [cache.get("unit", k) for k in "abc"] == [b"1", None, b"3"]


def test_the_byte_bound_evicts_too() -> None:
    cache = MemoryCache(max_bytes=10)
    cache.set("unit", "a", b"12345", 60)
    cache.set("unit", "b", b"12345", 60)
    cache.set("unit", "c", b"1", 60)
    assert cache.get("unit", "a") is None and cache.get("unit", "b") == b"12345"
    cache.set("unit", "huge", b"x" * 11, 60)  # above the whole budget: not kept, nothing evicted for it
    assert cache.get("unit", "huge") is None and cache.get("unit", "b") == b"12345"


def test_ttls_are_bounded() -> None:
    assert bounded_ttl(0) == 1 and bounded_ttl(-5) == 1 and bounded_ttl(10**9) == MAX_TTL_S
    assert bounded_ttl(30.7) == 30


def test_entry_names_are_namespaced_hashes() -> None:
    name = entry_name("estimate", "anything at all")
    assert name.startswith("phoenix:cache:v1:estimate:") and "anything" not in name
    assert entry_name("estimate", "a") != entry_name("page", "a") != entry_name("estimate", "b")


def test_hits_and_misses_are_counted_per_cache() -> None:
    cache = MemoryCache()
    hits, misses = _count("unit-metrics", "hit"), _count("unit-metrics", "miss")
    cache.get("unit-metrics", "k")
    cache.set("unit-metrics", "k", b"v", 60)
    cache.get("unit-metrics", "k")
    cache.get("unit-metrics", "k")
    assert (_count("unit-metrics", "hit") - hits, _count("unit-metrics", "miss") - misses) == (2, 1)


def test_without_a_redis_url_the_cache_is_in_process() -> None:
    assert isinstance(cache_for(None), MemoryCache) and isinstance(cache_for(""), MemoryCache)
