"""An in-process event bus: one queue per subscriber, fed under a lock."""

from __future__ import annotations

import contextlib
import queue
import threading

from core.domain.ports import Notice

#: A subscriber that stops reading must not grow memory without bound: past this many
#: unread notices new ones are dropped (the reader still polls the log).
MAX_PENDING = 1000


class MemorySubscription:
    def __init__(self, bus: MemoryEventBus, experiment_id: str | None):
        self.experiment_id = experiment_id
        self._bus = bus
        self._queue: queue.Queue[Notice] = queue.Queue(MAX_PENDING)

    def offer(self, notice: Notice) -> None:
        if self.experiment_id is None or self.experiment_id == notice.experiment_id:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(notice)

    def wait(self, timeout_s: float) -> list[Notice]:
        try:
            first = self._queue.get(timeout=max(timeout_s, 0.0))
        except queue.Empty:
            return []
        got = [first]
        while True:
            try:
                got.append(self._queue.get_nowait())
            except queue.Empty:
                return got

    def close(self) -> None:
        self._bus.forget(self)


class MemoryEventBus:
    """Notices reach the subscribers of this process only (no ``PHOENIX_REDIS_URL``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[MemorySubscription] = []

    def publish(self, notice: Notice) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.offer(notice)

    def subscribe(self, experiment_id: str | None = None) -> MemorySubscription:
        sub = MemorySubscription(self, experiment_id)
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def forget(self, sub: MemorySubscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._subscribers.clear()
