"""The Redis cache when its redis-server is SIGKILLed and started again on the same port:
no exception, the in-process fallback, one warning per outage, the gauge, and recovery."""

from __future__ import annotations

import logging
import time

import pytest
from prometheus_client import REGISTRY

from core.cache.redis import RedisCache
from core.domain.errors import TemporaryError
from tests.conftest import ThrowawayRedis

#: Bounds a cache that never recovers; with retry_after_s=0.2 it takes a fraction of a second.
RECOVERS_WITHIN_S = 10.0


def _up() -> float | None:
    return REGISTRY.get_sample_value("phoenix_cache_backend_up", {"backend": "redis"})


def _errors(cache: str) -> float:
    return REGISTRY.get_sample_value("phoenix_cache_requests_total", {"cache": cache, "result": "error"}) or 0.0


def test_redis_killed_falls_back_in_process_then_recovers(private_redis: ThrowawayRedis,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    cache, other = RedisCache(private_redis.url, retry_after_s=0.2), RedisCache(private_redis.url)
    cache.set("outage", "before", b"shared", 60)
    assert other.get("outage", "before") == b"shared" and _up() == 1

    private_redis.kill()
    errors = _errors("outage")
    with caplog.at_level(logging.WARNING, logger="core.cache.redis"):
        assert cache.get("outage", "before") is None  # Redis held it; this process never did
        cache.set("outage", "during", b"local", 60)  # kept in process meanwhile
        for _ in range(5):
            assert cache.get("outage", "during") == b"local"
        time.sleep(0.3)  # past the backoff: Redis is tried again, still dead, still no exception
        assert cache.get("outage", "during") == b"local"
    assert cache.degraded and _up() == 0 and _errors("outage") >= errors + 1
    down = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(down) == 1, [r.getMessage() for r in caplog.records]  # one warning for the whole outage
    with pytest.raises(TemporaryError, match="does not answer"):
        cache.ping()

    private_redis.start()  # same port
    deadline = time.monotonic() + RECOVERS_WITHIN_S
    while True:
        cache.set("outage", "after", b"through redis again", 60)
        if not cache.degraded:
            break
        assert time.monotonic() < deadline, f"the cache did not return to Redis within {RECOVERS_WITHIN_S} s"
        time.sleep(0.1)
    assert _up() == 1 and cache.outages == 1
    assert other.get("outage", "after") == b"through redis again"  # a second client sees it: it is in Redis
    assert cache.get("outage", "during") is None  # what only this process knew was dropped on recovery
    cache.ping()
    cache.close()
    other.close()
