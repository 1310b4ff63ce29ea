"""One contract for every cache: the in-process LRU and Redis on a real redis-server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from core.cache.keys import MAX_VALUE_BYTES, PREFIX
from core.cache.memory import MemoryCache
from core.cache.redis import RedisCache
from core.domain.errors import ValidationError
from core.domain.ports import Cache

#: Bounds a broken expiry only: a 1 s entry is normally gone a moment after its second.
EXPIRES_WITHIN_S = 4.0


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[Cache]:
    made: Cache = MemoryCache() if request.param == "memory" else RedisCache(request.getfixturevalue("redis_url"))
    try:
        yield made
    finally:
        made.close()


def _unique(name: str) -> str:  # the session's Redis is shared by every test
    return f"{name}-{time.monotonic_ns()}"


def test_a_miss_then_a_hit(cache: Cache) -> None:
    key = _unique("k")
    assert cache.get("contract", key) is None
    cache.set("contract", key, b"value", 60)
    assert cache.get("contract", key) == b"value"


def test_a_second_set_overwrites(cache: Cache) -> None:
    key = _unique("k")
    cache.set("contract", key, b"first", 60)
    cache.set("contract", key, b"second", 60)
    assert cache.get("contract", key) == b"second"


def test_delete_forgets(cache: Cache) -> None:
    key = _unique("k")
    cache.set("contract", key, b"v", 60)
    cache.delete("contract", key)
    assert cache.get("contract", key) is None


def test_an_entry_expires_after_its_ttl(cache: Cache) -> None:
    key = _unique("k")
    cache.set("contract", key, b"short-lived", 1)
    assert cache.get("contract", key) == b"short-lived"
    deadline = time.monotonic() + EXPIRES_WITHIN_S
    while cache.get("contract", key) is not None:
        assert time.monotonic() < deadline, f"a 1 s entry was still there after {EXPIRES_WITHIN_S} s"
        time.sleep(0.1)


def test_namespaces_do_not_see_each_other(cache: Cache) -> None:
    key = _unique("same-key")
    cache.set("estimate", key, b"an estimate", 60)
    cache.set("page", key, b"a page", 60)
    assert cache.get("estimate", key) == b"an estimate"
    assert cache.get("page", key) == b"a page"
    assert cache.get("other", key) is None


def test_a_bad_namespace_is_a_clear_error(cache: Cache) -> None:
    with pytest.raises(ValidationError, match="cache namespace"):
        cache.get("Bad Name:*", "k")


def test_values_are_bytes_only(cache: Cache) -> None:
    with pytest.raises(TypeError, match="bytes"):
        cache.set("contract", "k", "text", 60)  # type: ignore[arg-type]


def test_large_values_round_trip_and_too_large_ones_are_not_kept(cache: Cache) -> None:
    key, big = _unique("big"), bytes(range(256)) * 4096  # 1 MiB, every byte value
    cache.set("contract", key, big, 60)
    assert cache.get("contract", key) == big
    cache.set("contract", key, b"x" * (MAX_VALUE_BYTES + 1), 60)
    assert cache.get("contract", key) is None  # neither the huge value nor the older one


def test_concurrent_writers_and_readers_see_whole_values(cache: Cache) -> None:
    keys = [_unique(f"c{i}") for i in range(8)]
    seen: list[bytes | None] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for round_ in range(25):
                cache.set("contract", keys[i % len(keys)], f"{i}:{round_}".encode() * 100, 60)
                seen.append(cache.get("contract", keys[(i + 1) % len(keys)]))
        except BaseException as exc:  # noqa: BLE001 - reported below with the others
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    for value in seen:  # absent, or one writer's whole value: never a torn mix
        if value is not None:
            unit = value[: len(value) // 100]
            assert value == unit * 100


def test_keys_never_reach_redis_in_clear(redis_url: str) -> None:
    import redis

    cache = RedisCache(redis_url)
    secret_key = _unique("tenant-a/pipeline-b")
    cache.set("contract", secret_key, b"v", 60)
    names = [n.decode() for n in redis.Redis.from_url(redis_url).keys(f"{PREFIX}contract:*")]
    assert names and all(len(n.rsplit(":", 1)[1]) == 64 for n in names)
    assert not any("tenant-a" in n for n in names)
    cache.close()


def test_two_redis_clients_share_entries(redis_url: str) -> None:
    one, two = RedisCache(redis_url), RedisCache(redis_url)
    key = _unique("shared")
    one.set("contract", key, b"from one", 60)
    assert two.get("contract", key) == b"from one"
    one.close()
    two.close()
