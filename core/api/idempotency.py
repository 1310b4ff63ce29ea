"""Remembered answers to creates sent with an ``Idempotency-Key`` (in this process, for a day)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from core.domain.errors import ConcurrencyError

TTL_S = 24 * 3600
MAX_KEYS = 10_000


class IdempotencyConflict(ConcurrencyError):
    """The key was used before with another body."""


class Idempotency:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._seen: OrderedDict[tuple[str, str], tuple[float, str, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, owner: str, key: str, digest: str) -> dict[str, Any] | None:
        """The first answer for this key and body; None when the key is new; 409 for another body."""
        with self._lock:
            hit = self._seen.get((owner, key))
            if hit is None or self.clock() - hit[0] > TTL_S:
                return None
            if hit[1] != digest:
                raise IdempotencyConflict(f"Idempotency-Key {key!r} was already used with a different body")
            return hit[2]

    def put(self, owner: str, key: str, digest: str, answer: dict[str, Any]) -> None:
        with self._lock:
            self._seen[(owner, key)] = (self.clock(), digest, answer)
            self._seen.move_to_end((owner, key))
            while len(self._seen) > MAX_KEYS:
                self._seen.popitem(last=False)
