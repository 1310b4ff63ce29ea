"""Chaos: Phoenix uses one real redis-server for its cache, its event bus and the API's
idempotency keys; the server is SIGKILLed mid-run and later started again on the same port.

While it is gone Phoenix keeps answering, degraded: estimates are computed (then served from
the in-process cache), experiments are created (with an Idempotency-Key) and cancelled,
/readyz stays 200 and says Redis is degraded, and nothing raises or logs a traceback. Once
it is back, the cache, the bus and idempotency use Redis again by themselves.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

import core.cache.redis as redis_cache
import core.events.redis as redis_bus
from core.api import create_app
from core.bootstrap import Services, bootstrap
from core.cache.keys import PREFIX as CACHE_PREFIX
from core.cache.redis import RedisCache
from core.domain.experiment import State
from core.domain.ports import Notice
from core.engine.fleet import generate_fleet
from core.engine.snapshot import write_snapshot
from core.events.redis import RedisEventBus
from core.services.requests import CancelExperiment, EstimatePipeline
from core.settings import Settings
from tests.actors import ADMIN, add_account
from tests.conftest import ThrowawayRedis

PASSWORD = "correct horse battery"
NEW = {"name": "chaos run", "baseline": "process-baseline-v1", "candidate": "process-topk-v1",
       "duration_s": 30, "interval_s": 5}
#: Bounds recovery only: with the shortened backoffs below it takes about a second.
RECOVERS_WITHIN_S = 15.0
#: Bounds one notice's trip through Redis (milliseconds when it works).
ARRIVES_S = 5.0


@pytest.fixture
def phoenix(tmp_path: Path, private_redis: ThrowawayRedis,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Services, Services, TestClient]]:
    """An API process's services (with its app) and a second process's, on one database and one Redis."""
    # Shorter pauses than production so recovery is quick to see; the behaviour is the same.
    monkeypatch.setattr(redis_cache, "RETRY_AFTER_S", 0.3)
    monkeypatch.setattr(redis_bus, "PUBLISH_PAUSE_S", 0.3)
    monkeypatch.setattr(redis_bus, "BACKOFF_MAX_S", 0.5)
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'phoenix.db'}",
                        gitops_repo=tmp_path / "gitops", runtime="memory", embedded_scheduler=False,
                        redis_url=private_redis.url)
    api, peer = bootstrap(settings), bootstrap(settings)
    api.accounts.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    add_account(api, ADMIN)
    api.accounts.add_user(ADMIN, "operator", "operator", PASSWORD)
    try:
        yield api, peer, TestClient(create_app(api, env={}), raise_server_exceptions=False)
    finally:
        api.close()
        peer.close()


def _snapshot(seed: int) -> bytes:
    buf = io.BytesIO()
    write_snapshot(generate_fleet(3, 25, seed=seed, scrapes=2), buf)
    return buf.getvalue()


def _computed() -> float:
    return REGISTRY.get_sample_value("phoenix_estimate_seconds_count") or 0.0


def _cache_up() -> float | None:
    return REGISTRY.get_sample_value("phoenix_cache_backend_up", {"backend": "redis"})


def _until(what: str, ready: Callable[[], bool], within_s: float = RECOVERS_WITHIN_S) -> None:
    deadline = time.monotonic() + within_s
    while not ready():
        assert time.monotonic() < deadline, f"{what} did not happen within {within_s} s"
        time.sleep(0.1)


def _notice_arrives(sub: Any, publish: Callable[[], None], wanted: Notice) -> bool:
    """Publish until ``wanted`` reaches ``sub`` (a reconnecting listener may miss the first one)."""
    deadline = time.monotonic() + ARRIVES_S
    while time.monotonic() < deadline:
        publish()
        if wanted in sub.wait(0.5):
            return True
    return False


def _estimate(client: TestClient, heads: dict[str, str], snapshot: bytes) -> dict[str, Any]:
    r = client.post("/api/v1/pipelines/estimate", data={"pipeline": "process-topk-v1"},
                    files={"snapshot": ("chaos.csv", snapshot)}, headers=heads)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_redis_killed_mid_run_phoenix_degrades_and_recovers(
        phoenix: tuple[Services, Services, TestClient], private_redis: ThrowawayRedis,
        caplog: pytest.LogCaptureFixture) -> None:
    api, peer, client = phoenix
    assert isinstance(api.cache, RedisCache) and isinstance(api.events, RedisEventBus)
    store = redis.Redis.from_url(private_redis.url)
    caplog.set_level(logging.WARNING)
    token = client.post("/api/v1/auth/token", data={"username": "operator", "password": PASSWORD})
    heads = {"Authorization": f"Bearer {token.json()['access_token']}"}
    request = EstimatePipeline(pipeline="process-topk-v1", source="chaos.csv")

    # ---- Redis up: shared cache, cross-process notices, idempotency keys in Redis
    computed = _computed()
    first = _estimate(client, heads, _snapshot(1))
    assert peer.pipelines.estimate(ADMIN, request, _snapshot(1)) == first["report"]
    assert _computed() == computed + 1, "the peer process should have found the estimate in Redis"
    listener = peer.experiments.watch(ADMIN, None)
    made = client.post("/api/v1/experiments", json=NEW, headers={**heads, "Idempotency-Key": "chaos-1"})
    assert made.status_code == 201, made.text
    assert Notice(made.json()["id"], "state") in listener.wait(ARRIVES_S)
    assert store.keys("phoenix:idempotency:*") and store.keys(f"{CACHE_PREFIX}estimate:*")
    assert _cache_up() == 1

    # ---- SIGKILL mid-run
    private_redis.kill()
    computed = _computed()
    down = _estimate(client, heads, _snapshot(2))  # computed: Redis cannot answer
    assert _estimate(client, heads, _snapshot(2)) == down  # the in-process fallback's hit
    assert _computed() == computed + 1
    assert api.cache.degraded and _cache_up() == 0  # type: ignore[attr-defined]

    created = client.post("/api/v1/experiments", json={**NEW, "name": "while down"},
                          headers={**heads, "Idempotency-Key": "chaos-2"})
    assert created.status_code == 201, created.text
    replay = client.post("/api/v1/experiments", json={**NEW, "name": "while down"},
                         headers={**heads, "Idempotency-Key": "chaos-2"})
    assert replay.json()["id"] == created.json()["id"]  # this process remembers the key meanwhile
    cancelled = api.experiments.cancel(ADMIN, CancelExperiment(experiment_id=created.json()["id"], reason="chaos"))
    assert cancelled.state is State.CANCELLED
    via_services = api.experiments.create(ADMIN, name="by the services", baseline="process-baseline-v1",
                                          candidate="process-topk-v1")
    assert api.experiments.get(ADMIN, via_services.id).state is State.PENDING
    started = time.monotonic()
    assert listener.wait(0.3) == [] and time.monotonic() - started < 2  # nothing, on time, no exception

    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text  # degraded, still in load balancing
    assert ready.json()["checks"]["redis"].startswith("degraded: Redis at redis://127.0.0.1")
    assert api.system.readiness(ADMIN).degraded == ["redis"]

    # ---- Redis back on the same port
    private_redis.start()
    _until("the cache going back to Redis",
           lambda: (api.cache.set("chaos", "probe", b"x", 10), not api.cache.degraded)[1])  # type: ignore[attr-defined]
    assert _cache_up() == 1
    computed = _computed()
    after = _estimate(client, heads, _snapshot(3))
    assert peer.pipelines.estimate(ADMIN, request, _snapshot(3)) == after["report"]
    assert _computed() == computed + 1, "after recovery the peer should find the new estimate in Redis"

    other = api.experiments.create(ADMIN, name="after", baseline="process-baseline-v1", candidate="process-topk-v1")
    assert _notice_arrives(listener, lambda: api.events.publish(Notice(other.id, "state")),
                           Notice(other.id, "state")), "the peer's bus did not get notices through Redis again"
    assert peer.events.reconnects >= 1  # type: ignore[attr-defined]

    idem_before = len(store.keys("phoenix:idempotency:*"))
    again = client.post("/api/v1/experiments", json={**NEW, "name": "after"},
                        headers={**heads, "Idempotency-Key": "chaos-3"})
    assert again.status_code == 201 and len(store.keys("phoenix:idempotency:*")) == idem_before + 1
    assert client.get("/readyz").json()["checks"]["redis"] == "ok"
    listener.close()

    assert "Traceback" not in caplog.text, caplog.text  # degraded, never crashed
    outage = [r for r in caplog.records if r.name == "core.cache.redis" and "does not answer" in r.getMessage()]
    assert len(outage) == 1, [r.getMessage() for r in outage]  # once for the outage, not once per lookup
