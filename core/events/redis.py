"""An event bus over Redis pub/sub (``PHOENIX_REDIS_URL``): every process sees the notices.

One channel per experiment, ``phoenix:events:<experiment id>``, with the kind as the
message. Each process listens to the pattern ``phoenix:events:*`` on one connection and
hands the notices to its own subscribers (``core.events.memory``).

Redis is a convenience here, never a dependency of correctness: a publish that fails is
logged and dropped (the transition or the samples are already committed, and readers poll
the database), and the listener that loses its connection reconnects with backoff while
subscribers' ``wait`` keeps answering [] on time, so readers degrade to polling and recover
by themselves.
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
from core.events.memory import MemoryEventBus, MemorySubscription
from core.redact import mask_url

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "phoenix:events:"
#: Connecting and each command give up after this long: a scheduler tick must not hang on Redis.
SOCKET_TIMEOUT_S = 1.0
#: How long the listener blocks on the socket before it looks whether the bus was closed.
LISTEN_TICK_S = 0.5
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


class _Listener:
    """One pattern subscription per process (``phoenix:events:*``), in a daemon thread, fanned
    out to the in-process subscribers: a thousand open streams cost Redis one connection.

    It reconnects with backoff for as long as the bus is open; while Redis is away the
    subscribers simply get no notices (and poll the log).
    """

    def __init__(self, url: str, fanout: MemoryEventBus, warnings: _Warnings):
        self._url = url
        self._fanout = fanout
        self._warnings = warnings
        self._closed = threading.Event()
        self.subscribed = threading.Event()  # set while the pattern subscription is live
        self.reconnects = 0
        self._thread = threading.Thread(target=self._run, name="phoenix-events-redis", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff, connected_before = BACKOFF_FIRST_S, False
        while not self._closed.is_set():
            client = pubsub = None
            try:
                client = _client(self._url)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
                self.subscribed.set()
                if connected_before:
                    self.reconnects += 1
                connected_before, backoff = True, BACKOFF_FIRST_S
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=LISTEN_TICK_S)
                    notice = _notice(message) if message else None
                    if notice is not None:
                        self._fanout.publish(notice)
            except Exception as exc:  # noqa: BLE001 - a broken connection shows as any of several errors
                self._warnings.warn("events: no Redis subscription at %s (%s); readers poll the database "
                                    "until it is back", mask_url(self._url), type(exc).__name__)
            finally:
                self.subscribed.clear()
                for thing in (pubsub, client):
                    with contextlib.suppress(Exception):  # a dead connection may fail to close
                        if thing is not None:
                            thing.close()
            self._closed.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=SOCKET_TIMEOUT_S + LISTEN_TICK_S + 1)


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
        self._fanout = MemoryEventBus()
        self._listener: _Listener | None = None
        self._lock = threading.Lock()
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

    def subscribe(self, experiment_id: str | None = None) -> MemorySubscription:
        with self._lock:
            if self._listener is None:
                self._listener = _Listener(self.url, self._fanout, self._warnings)
        sub = self._fanout.subscribe(experiment_id)
        # The first subscriber waits (briefly) for the pattern subscription, so that what is
        # published once it returns reaches it; with Redis away it returns anyway.
        self._listener.subscribed.wait(SOCKET_TIMEOUT_S)
        return sub

    @property
    def reconnects(self) -> int:
        return 0 if self._listener is None else self._listener.reconnects

    def ping(self) -> None:
        try:
            self._client.ping()
        except (redis.RedisError, OSError) as exc:
            raise TemporaryError(f"Redis at {mask_url(self.url)} does not answer ({type(exc).__name__})") from None

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._fanout.close()
        with contextlib.suppress(Exception):  # closing a dead connection may fail; it is gone either way
            self._client.close()
