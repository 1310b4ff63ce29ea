"""The shared cache in Redis (``PHOENIX_REDIS_URL``): every process reuses what one computed.

Redis is a convenience here, never a dependency: any Redis error is caught, logged once per
outage, and the cache falls back to this process's ``MemoryCache`` for ``retry_after_s``
(no request waits on a dead socket more than once per period). After that it tries Redis
again and, when it answers, is back (``phoenix_cache_backend_up{backend="redis"}`` 1).
Values written to the fallback during an outage stay in this process only and are dropped
on recovery, so an outage never leaves an answer Redis does not know about behind.

Values are bytes the caller encoded (JSON in ``core.services.estimate``): nothing read from
the shared store is ever unpickled.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.cache.keys import MAX_VALUE_BYTES, bounded_ttl, entry_name
from core.cache.memory import MemoryCache
from core.domain.errors import TemporaryError
from core.observability.metrics import CACHE_BACKEND_UP, CACHE_REQUESTS
from core.redact import mask_url

log = logging.getLogger(__name__)

#: Connecting and each command give up after this long: an estimate must not hang on Redis.
SOCKET_TIMEOUT_S = 0.5
#: After a failure, Redis is left alone this long (the in-process cache answers meanwhile).
RETRY_AFTER_S = 5.0
BACKEND = "redis"

T = TypeVar("T")


class RedisCache:
    def __init__(self, url: str, *, fallback: MemoryCache | None = None, retry_after_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.url = url
        self.fallback = fallback if fallback is not None else MemoryCache()
        self.retry_after_s = RETRY_AFTER_S if retry_after_s is None else retry_after_s
        self._clock = clock
        # No built-in retries: a failed command falls back at once and the caller moves on.
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=SOCKET_TIMEOUT_S,
                                           socket_timeout=SOCKET_TIMEOUT_S, retry=Retry(NoBackoff(), 0))
        self._lock = threading.Lock()
        self._up: bool | None = None  # None until the first command says which
        self._retry_at = 0.0
        self.outages = 0  # times Redis went away (tests and diagnostics)

    @property
    def degraded(self) -> bool:
        """True while answers come from the in-process fallback."""
        return self._up is False

    def get(self, namespace: str, key: str) -> bytes | None:
        name = entry_name(namespace, key)
        ok, value = self._call(lambda: self._redis.get(name))
        if not ok:
            CACHE_REQUESTS.labels(namespace, "error").inc()
            value = self.fallback.lookup(name)
        elif value is not None and not isinstance(value, bytes):  # not ours: never trust its shape
            value = None
        CACHE_REQUESTS.labels(namespace, "miss" if value is None else "hit").inc()
        return value

    def set(self, namespace: str, key: str, value: bytes, ttl_s: float) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"cache values are bytes, got {type(value).__name__}")
        name, ttl = entry_name(namespace, key), bounded_ttl(ttl_s)
        if len(value) > MAX_VALUE_BYTES:  # not kept anywhere; an older value must not linger either
            self.delete(namespace, key)
            return
        ok, _ = self._call(lambda: self._redis.set(name, value, ex=ttl))
        if not ok:
            self.fallback.store(name, value, ttl)

    def delete(self, namespace: str, key: str) -> None:
        name = entry_name(namespace, key)
        self.fallback.drop(name)
        self._call(lambda: self._redis.delete(name))

    def ping(self) -> None:
        """Asks Redis even during the backoff (readiness wants the truth, and it is one PING)."""
        try:
            self._redis.ping()
        except (redis.RedisError, OSError) as exc:
            raise TemporaryError(f"Redis at {mask_url(self.url)} does not answer ({type(exc).__name__})") from None

    def close(self) -> None:
        self.fallback.close()
        with contextlib.suppress(Exception):  # closing a dead connection may fail; it is gone either way
            self._redis.close()

    # ---- the one place that talks to Redis: (True, answer) or (False, None) while it is away

    def _call(self, command: Callable[[], T]) -> tuple[bool, T | None]:
        if self._up is False and self._clock() < self._retry_at:
            return False, None
        try:
            answer = command()
        except (redis.RedisError, OSError) as exc:
            self._went_down(exc)
            return False, None
        self._came_back()
        return True, answer

    def _went_down(self, exc: BaseException) -> None:
        with self._lock:
            self._retry_at = self._clock() + self.retry_after_s
            if self._up is False:
                return  # still the same outage: it was logged when it began
            self._up = False
            self.outages += 1
        CACHE_BACKEND_UP.labels(BACKEND).set(0)
        log.warning("cache: Redis at %s does not answer (%s); this process caches in memory and retries "
                    "every %gs", mask_url(self.url), type(exc).__name__, self.retry_after_s)

    def _came_back(self) -> None:
        if self._up:
            return
        with self._lock:
            was_down, self._up = self._up is False, True
        CACHE_BACKEND_UP.labels(BACKEND).set(1)
        if was_down:
            self.fallback.clear()  # what only this process knew is dropped: Redis is the truth again
            log.warning("cache: Redis at %s answers again; the shared cache is back", mask_url(self.url))
