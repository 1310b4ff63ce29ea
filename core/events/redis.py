"""An event bus over Redis pub/sub (``PHOENIX_REDIS_URL``): every process sees the notices.

One channel per experiment, ``phoenix:events:<experiment id>``, with the kind as the
message; a reader of all experiments subscribes to the pattern ``phoenix:events:*``.

Redis is a convenience here, never a dependency of correctness: a publish that fails is
logged and dropped (the transition or the samples are already committed, and readers poll
the database), and a subscription that loses its connection reconnects with backoff while
``wait`` keeps answering [] on time, so readers degrade to polling and recover by themselves.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.domain.errors import TemporaryError
from core.domain.ports import NOTICE_KINDS, Notice
from core.redact import mask_url

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "phoenix:events:"
#: Connecting and each command give up after this long: a scheduler tick must not hang on Redis.
SOCKET_TIMEOUT_S = 1.0
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0
#: At most one "Redis is down" warning per this many seconds per bus (the log stays readable).
WARN_EVERY_S = 30.0


def _client(url: str) -> redis.Redis:
    # No built-in retries: a failed publish is dropped at once and the caller moves on.
    return redis.Redis.from_url(url, socket_connect_timeout=SOCKET_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S,
                                retry=Retry(NoBackoff(), 0))


class _Warnings:
    def __init__(self) -> None:
        self._last = -WARN_EVERY_S
        self._lock = threading.Lock()

    def warn(self, msg: str, *args: object) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < WARN_EVERY_S:
                log.debug(msg, *args)
                return
            self._last = now
        log.warning(msg, *args)


class RedisSubscription:
    def __init__(self, url: str, experiment_id: str | None, warnings: _Warnings):
        self._url = url
        self._experiment_id = experiment_id
        self._warnings = warnings
        self._pubsub: redis.client.PubSub | None = None
        self._client: redis.Redis | None = None
        self._retry_at = 0.0
        self._backoff = BACKOFF_FIRST_S
        self._closed = False
        self.reconnects = 0
        self._connect()  # subscribed before returning: nothing published afterwards is missed

    def _connect(self) -> bool:
        try:
            client = _client(self._url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            if self._experiment_id is None:
                pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
            else:
                pubsub.subscribe(f"{CHANNEL_PREFIX}{self._experiment_id}")
        except redis.RedisError as exc:
            self._warnings.warn("events: cannot subscribe at %s (%s); readers poll the database until it is back",
                                mask_url(self._url), type(exc).__name__)
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
            return False
        self._client, self._pubsub = client, pubsub
        self._backoff = BACKOFF_FIRST_S
        return True

    def _drop(self) -> None:
        for thing in (self._pubsub, self._client):
            with contextlib.suppress(Exception):  # a dead connection may fail to close; it is gone either way
                if thing is not None:
                    thing.close()
        self._pubsub = self._client = None
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)

    def wait(self, timeout_s: float) -> list[Notice]:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        got: list[Notice] = []
        while not self._closed:
            remaining = deadline - time.monotonic()
            if self._pubsub is None:
                if time.monotonic() < self._retry_at:
                    time.sleep(max(0.0, min(remaining, self._retry_at - time.monotonic())))
                    if time.monotonic() >= deadline:
                        return got
                    continue
                if not self._connect():
                    continue
                self.reconnects += 1
            pubsub = self._pubsub
            if pubsub is None:  # closed by another thread meanwhile
                return got
            try:
                # the first notice waits; the ones right behind it come in the same answer
                message = pubsub.get_message(timeout=0.0 if got else max(remaining, 0.0))
            except Exception as exc:  # noqa: BLE001 - a broken connection shows as any of several errors
                self._warnings.warn("events: lost the Redis subscription (%s); reconnecting", type(exc).__name__)
                self._drop()
                continue
            if message is None:
                if got or time.monotonic() >= deadline:
                    return got
                continue
            notice = _notice(message)
            if notice is not None:
                got.append(notice)
        return got

    def close(self) -> None:
        self._closed = True
        self._drop()


def _notice(message: dict[str, object]) -> Notice | None:
    if message.get("type") not in ("message", "pmessage"):
        return None
    channel, data = message.get("channel"), message.get("data")
    if not isinstance(channel, bytes) or not isinstance(data, bytes):
        return None
    experiment_id = channel.decode("utf-8", "replace").removeprefix(CHANNEL_PREFIX)
    kind = data.decode("utf-8", "replace")
    return Notice(experiment_id, kind) if kind in NOTICE_KINDS and experiment_id else None


#: After a failed publish, further notices are dropped without trying for this long: a
#: Redis that hangs (rather than refuses) must not cost every commit a socket timeout.
PUBLISH_PAUSE_S = 5.0


class RedisEventBus:
    def __init__(self, url: str):
        self.url = url
        self._warnings = _Warnings()
        self._client = _client(url)
        self._paused_until = 0.0
        self.published = 0  # notices Redis accepted (tests and diagnostics)
        self.dropped = 0  # notices dropped while Redis was away

    def publish(self, notice: Notice) -> None:
        if time.monotonic() < self._paused_until:
            self.dropped += 1
            return
        try:
            self._client.publish(f"{CHANNEL_PREFIX}{notice.experiment_id}", notice.kind)
            self.published += 1
        except (redis.RedisError, OSError) as exc:
            self.dropped += 1
            self._paused_until = time.monotonic() + PUBLISH_PAUSE_S
            self._warnings.warn("events: could not publish to Redis at %s (%s); readers fall back to polling",
                                mask_url(self.url), type(exc).__name__)

    def subscribe(self, experiment_id: str | None = None) -> RedisSubscription:
        return RedisSubscription(self.url, experiment_id, self._warnings)

    def ping(self) -> None:
        try:
            self._client.ping()
        except (redis.RedisError, OSError) as exc:
            raise TemporaryError(f"Redis at {mask_url(self.url)} does not answer ({type(exc).__name__})") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection may fail; it is gone either way
            self._client.close()
