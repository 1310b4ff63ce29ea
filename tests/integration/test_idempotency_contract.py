"""One contract for both idempotency stores: this process's, and Redis' (a real redis-server)
shared by replicas. Plus what only the shared one does: two replicas racing with one key create
once, and Redis going away degrades to this process's keys instead of failing the create."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.api import create_app
from core.api.idempotency import Idempotency, IdempotencyConflict, IdempotencyKeys
from core.api.idempotency_redis import SharedIdempotency, idempotency_for
from core.domain.errors import ConcurrencyError
from tests.conftest import ThrowawayRedis

Factory = Callable[[], IdempotencyKeys]


@pytest.fixture(params=["memory", "redis"])
def new_keys(request: pytest.FixtureRequest) -> Factory:
    """A factory of stores; each call is another API replica (for the memory store: the same one)."""
    if request.param == "memory":
        one = Idempotency()
        return lambda: one
    url = request.getfixturevalue("redis_url")
    prefix = f"t{time.monotonic_ns()}-"  # the session's Redis is shared: keys of one test only

    def replica() -> IdempotencyKeys:
        store = SharedIdempotency(url)
        run = store.run
        store.run = lambda owner, key, digest, create: run(owner, prefix + key, digest, create)  # type: ignore[method-assign]
        return store

    return replica


class Counter:
    def __init__(self) -> None:
        self.made = 0
        self.lock = threading.Lock()

    def create(self) -> dict[str, Any]:
        with self.lock:
            self.made += 1
            return {"id": self.made, "blob": b"\x00serialized\xff"}


def test_replay_conflict_and_keys_per_account(new_keys: Factory) -> None:
    keys, made = new_keys(), Counter()
    first = keys.run("ops", "k", "body-a", made.create)
    assert first == {"id": 1, "blob": b"\x00serialized\xff"}  # bytes (a gRPC answer) come back as bytes
    assert new_keys().run("ops", "k", "body-a", made.create) == first and made.made == 1
    assert keys.run("someone-else", "k", "body-a", made.create)["id"] == 2
    with pytest.raises(IdempotencyConflict):
        new_keys().run("ops", "k", "body-b", made.create)


def test_a_failed_create_lets_a_retry_run(new_keys: Factory) -> None:
    keys, made = new_keys(), Counter()

    def fails() -> dict[str, Any]:
        raise ConcurrencyError("the database was busy")

    with pytest.raises(ConcurrencyError):
        keys.run("ops", "k", "body", fails)
    assert new_keys().run("ops", "k", "body", made.create)["id"] == 1


def test_replicas_racing_with_one_key_create_once(new_keys: Factory) -> None:
    made, answers = Counter(), []
    inside = threading.Event()

    def slow() -> dict[str, Any]:
        inside.set()
        time.sleep(0.3)  # the other replicas arrive while this one creates
        return made.create()

    def call(create: Callable[[], dict[str, Any]]) -> None:
        answers.append(new_keys().run("ops", "k", "body", create))

    first = threading.Thread(target=call, args=(slow,))
    first.start()
    assert inside.wait(5)
    others = [threading.Thread(target=call, args=(made.create,)) for _ in range(3)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(10)
    assert made.made == 1 and len(answers) == 4 and all(a == answers[0] for a in answers)


def test_without_redis_the_creates_go_on_with_this_process_keys(caplog: pytest.LogCaptureFixture) -> None:
    server = ThrowawayRedis().start()
    keys, made = SharedIdempotency(server.url), Counter()
    try:
        assert keys.run("ops", "before", "b", made.create)["id"] == 1
        server.kill()
        with caplog.at_level(logging.WARNING, logger="core.api.idempotency_redis"):
            assert keys.run("ops", "during", "b", made.create)["id"] == 2  # degraded, not failed
            assert keys.run("ops", "during", "b", made.create)["id"] == 2  # still idempotent in this process
            assert keys.run("ops", "during-2", "b", made.create)["id"] == 3
        outage = [r for r in caplog.records if "does not answer" in r.getMessage()]
        assert len(outage) == 1, "one warning per outage, not one per request"
    finally:
        server.stop()


def test_two_api_replicas_sharing_redis_create_one_experiment(memory_services: Any, redis_url: str) -> None:
    from tests.actors import ADMIN, add_account

    add_account(memory_services, ADMIN)
    memory_services.settings = dataclasses.replace(memory_services.settings, redis_url=redis_url)
    assert isinstance(idempotency_for(redis_url), SharedIdempotency)
    replicas = [TestClient(create_app(memory_services, env={})) for _ in range(2)]
    _, secret = memory_services.accounts.create_token(ADMIN, "replicas", "1h")
    head = {"Authorization": f"Bearer {secret}", "Idempotency-Key": f"ci-run-{time.monotonic_ns()}"}
    body = {"name": "once", "baseline": "process-baseline-v1", "candidate": "process-topk-v1",
            "duration_s": 60, "interval_s": 10}
    answers = [client.post("/api/v1/experiments", json=body, headers=head) for client in replicas]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert len(memory_services.experiments.list(ADMIN)) == 1
    other = replicas[1].post("/api/v1/experiments", json={**body, "name": "another"}, headers=head)
    assert other.status_code == 409 and other.headers["content-type"] == "application/problem+json"

