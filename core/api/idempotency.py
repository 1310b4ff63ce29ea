"""Remembered answers to creates sent with an ``Idempotency-Key`` (REST) or ``request_id`` (gRPC).

Two stores, one contract (``run``): the same key and body give the first answer, another
body is a 409, and two requests racing with the same key create once.

- ``Idempotency``: in this process, least recently used first out, at most ``MAX_KEYS``
  keys, each for ``TTL_S`` (a day). Used without Redis: a client retrying against another
  replica may then create twice.
- ``SharedIdempotency`` (``core.api.idempotency_redis``): in Redis when
  ``PHOENIX_REDIS_URL`` is set, so every API replica and both protocols share the keys.
  While Redis is away it falls back to the in-process store (degraded, never failing).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from core.domain.errors import ConcurrencyError

TTL_S = 24 * 3600
MAX_KEYS = 10_000

Answer = dict[str, Any]


class IdempotencyConflict(ConcurrencyError):
    """The key was used before with another body."""


class IdempotencyKeys(Protocol):
    def run(self, owner: str, key: str, digest: str, create: Callable[[], Answer]) -> Answer:
        """The answer remembered for ``(owner, key)`` when ``digest`` matches, or ``create()``'s,
        remembered; IdempotencyConflict when the key was used with another body."""
        ...


class Idempotency:
    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS, ttl_s: float = TTL_S):
        self.clock, self.max_keys, self.ttl_s = clock, max_keys, ttl_s
        self._seen: OrderedDict[tuple[str, str], tuple[float, str, Answer]] = OrderedDict()
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], _Running] = {}  # keys whose create is under way

    def get(self, owner: str, key: str, digest: str) -> Answer | None:
        """The first answer for this key and body; None when the key is new or expired; 409 for another body."""
        with self._lock:
            hit = self._seen.get((owner, key))
            if hit is None:
                return None
            if self.clock() - hit[0] > self.ttl_s:
                del self._seen[(owner, key)]
                return None
            if hit[1] != digest:
                raise IdempotencyConflict(f"Idempotency-Key {key!r} was already used with a different body")
            self._seen.move_to_end((owner, key))
            return hit[2]

    def put(self, owner: str, key: str, digest: str, answer: Answer) -> None:
        with self._lock:
            self._seen[(owner, key)] = (self.clock(), digest, answer)
            self._seen.move_to_end((owner, key))
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)

    def run(self, owner: str, key: str, digest: str, create: Callable[[], Answer]) -> Answer:
        """The remembered answer, or ``create()``'s, remembered; one create per key at a time."""
        with self._lock:
            entry = self._running.setdefault((owner, key), _Running())
            entry.waiting += 1
        try:
            with entry.lock:
                earlier = self.get(owner, key, digest)
                if earlier is not None:
                    return earlier
                answer = create()
                self.put(owner, key, digest, answer)
                return answer
        finally:
            with self._lock:
                entry.waiting -= 1
                if not entry.waiting:  # the last one out forgets the lock: the table stays small
                    del self._running[(owner, key)]


class _Running:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = 0
