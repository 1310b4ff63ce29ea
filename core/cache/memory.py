"""The in-process cache: a bounded LRU with expiry, safe across threads.

It is the cache of a process without Redis, the fallback of ``RedisCache`` while Redis is
away, and the fake the contract tests hold to the same rules as Redis.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from core.cache.keys import MAX_VALUE_BYTES, bounded_ttl, entry_name
from core.observability.metrics import CACHE_REQUESTS

#: Bounds of one process's cache: whichever is reached first evicts the least recently used.
MAX_ENTRIES = 2048
MAX_BYTES = 128 * 1024 * 1024


class MemoryCache:
    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES,
                 clock: Callable[[], float] = time.monotonic):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # name → (expires_at, value)
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, namespace: str, key: str) -> bytes | None:
        value = self.lookup(entry_name(namespace, key))
        CACHE_REQUESTS.labels(namespace, "miss" if value is None else "hit").inc()
        return value

    def set(self, namespace: str, key: str, value: bytes, ttl_s: float) -> None:
        self.store(entry_name(namespace, key), value, bounded_ttl(ttl_s))

    def delete(self, namespace: str, key: str) -> None:
        self.drop(entry_name(namespace, key))

    def ping(self) -> None:
        """Always reachable: it is this process's memory."""

    def close(self) -> None:
        self.clear()

    # ---- by entry name: what RedisCache uses when it falls back (it counts the lookups itself)

    def lookup(self, name: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return None
            expires_at, value = entry
            if self._clock() >= expires_at:
                self._remove(name)
                return None
            self._entries.move_to_end(name)
            return value

    def store(self, name: str, value: bytes, ttl_s: int) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"cache values are bytes, got {type(value).__name__}")
        with self._lock:
            self._remove(name)
            if len(value) > min(MAX_VALUE_BYTES, self.max_bytes):
                return  # too big to keep: the caller recomputes it next time
            self._entries[name] = (self._clock() + ttl_s, value)
            self._bytes += len(value)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._remove(next(iter(self._entries)))

    def drop(self, name: str) -> None:
        with self._lock:
            self._remove(name)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _remove(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is not None:
            self._bytes -= len(entry[1])
