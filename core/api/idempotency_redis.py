"""Idempotency keys in Redis, shared by every API replica (``PHOENIX_REDIS_URL``).

One Redis key per (account, Idempotency-Key), named by a hash so neither appears in Redis.
A create first claims the key with ``SET NX`` ("pending", with a short lease), runs, then
stores its answer for ``TTL_S``. A request that finds the key pending waits for the answer
(up to ``WAIT_S``) and replays it; one that finds another body gets a 409. A create that
fails releases its claim, so a retry can run. When Redis does not answer, the in-process
store takes over: a retry on another replica may then create twice, as without Redis.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from core.api.idempotency import TTL_S, Answer, Idempotency, IdempotencyConflict
from core.domain.errors import ConcurrencyError

log = logging.getLogger(__name__)

PREFIX = "phoenix:idempotency:"
#: How long a claim holds while its create runs (a create is milliseconds; a crash frees it).
PENDING_S = 30
#: How long a racing request waits for the first one's answer before it gives up with a 409.
WAIT_S = 10.0
POLL_S = 0.05
SOCKET_TIMEOUT_S = 1.0


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):  # gRPC answers are serialized messages
        return {"__bytes__": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class SharedIdempotency:
    def __init__(self, url: str, *, fallback: Idempotency | None = None, ttl_s: int = TTL_S,
                 wait_s: float = WAIT_S):
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=SOCKET_TIMEOUT_S,
                                           socket_timeout=SOCKET_TIMEOUT_S)
        self.fallback = fallback or Idempotency()
        self.ttl_s, self.wait_s = ttl_s, wait_s
        self._away = False  # one warning per outage, not one per request

    @staticmethod
    def _name(owner: str, key: str) -> str:
        return PREFIX + hashlib.sha256(f"{owner}\0{key}".encode()).hexdigest()

    def run(self, owner: str, key: str, digest: str, create: Callable[[], Answer]) -> Answer:
        name = self._name(owner, key)
        try:
            claimed = self._redis.set(name, json.dumps({"digest": digest}), nx=True, ex=PENDING_S)
        except redis.RedisError as exc:
            if not self._away:
                self._away = True
                log.warning("idempotency: Redis does not answer (%s); keys stay in this process until it does",
                            type(exc).__name__)
            return self.fallback.run(owner, key, digest, create)
        if self._away:
            self._away = False
            log.info("idempotency: Redis answers again; keys are shared again")
        if claimed:
            return self._create(name, digest, create)
        return self._replay(name, key, digest)

    def _create(self, name: str, digest: str, create: Callable[[], Answer]) -> Answer:
        try:
            answer = create()
        except BaseException:
            self._forget(name)  # nothing was created: a retry may run
            raise
        try:
            self._redis.set(name, json.dumps({"digest": digest, "answer": _encode(answer)}), ex=self.ttl_s)
        except redis.RedisError as exc:  # created all the same; only the replay is lost
            log.warning("idempotency: could not remember an answer in Redis (%s)", type(exc).__name__)
        return answer

    def _forget(self, name: str) -> None:
        with contextlib.suppress(redis.RedisError):  # else the claim expires after PENDING_S
            self._redis.delete(name)

    def _replay(self, name: str, key: str, digest: str) -> Answer:
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                raw = self._redis.get(name)
            except redis.RedisError:
                raise ConcurrencyError(f"Idempotency-Key {key!r}: the first request's answer cannot be read "
                                       "now; retry shortly") from None
            if raw is None:  # the first one failed and let go: a retry may create
                raise ConcurrencyError(f"Idempotency-Key {key!r}: the first request with this key failed; retry")
            entry = json.loads(raw)
            if entry.get("digest") != digest:
                raise IdempotencyConflict(f"Idempotency-Key {key!r} was already used with a different body")
            if "answer" in entry:
                return _decode(entry["answer"])  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                raise ConcurrencyError(f"Idempotency-Key {key!r}: a request with this key is still running; "
                                       "retry shortly")
            time.sleep(POLL_S)


def idempotency_for(redis_url: str | None) -> Idempotency | SharedIdempotency:
    """Shared through Redis when it is configured, this process's otherwise."""
    return SharedIdempotency(redis_url) if redis_url else Idempotency()
