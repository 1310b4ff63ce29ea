"""The SSE routes in process (TestClient over the in-memory store): what needs no real server.

The end-to-end behaviour (uvicorn, a scheduler in another process, Redis) is in
tests/integration/test_live_events_server.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from core.api import create_app
from core.api import events as api_events
from core.domain.accounts import Role
from tests.actors import ADMIN, add_account, viewer
from tests.live_world import new_experiment

PASSWORD = "correct horse battery"


@pytest.fixture
def svc(memory_services: Any) -> Any:
    memory_services.accounts.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    add_account(memory_services, ADMIN)
    memory_services.accounts.add_user(ADMIN, "vic", Role.VIEWER, PASSWORD)
    return memory_services


@pytest.fixture
def client(svc: Any) -> Iterator[TestClient]:
    with TestClient(create_app(svc, env={}), raise_server_exceptions=False) as c:
        yield c


def test_a_finished_experiment_replays_and_ends(client: TestClient, svc: Any) -> None:
    _, secret = svc.accounts.create_token(viewer("vic", "api"), "t", "1h")
    eid = new_experiment(svc, ADMIN)
    with svc.uow() as uow:
        e = uow.experiments.get(eid)
        e.start("t"), e.mark_running("t"), e.begin_analysis("t")
        e.complete({"verdict": "REJECT", "reasons": ["too few"], "series_reduction_pct": 12.5}, "t")
        uow.experiments.save(e)
        uow.commit()
    r = client.get(f"/api/v1/experiments/{eid}/events", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    kinds = [line.removeprefix("event: ") for line in r.text.splitlines() if line.startswith("event: ")]
    assert kinds == ["state"] * 4 + ["verdict", "end"]
    assert '"summary":{"series_reduction_pct":12.5}' in r.text and '"reasons":["too few"]' in r.text


@pytest.mark.timeout(120)
def test_a_revoked_token_ends_an_open_stream(client: TestClient, svc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_events, "REAUTH_S", 0.0)
    monkeypatch.setattr(api_events, "POLL_S", 0.05)
    record, secret = svc.accounts.create_token(viewer("vic", "api"), "t", "1h")
    eid = new_experiment(svc, ADMIN)  # Pending: nothing would end this stream but the revocation
    # The TestClient hands over a streamed body once it is complete, so revoke from aside.
    revoke = threading.Timer(0.5, svc.accounts.revoke_token, args=(ADMIN, record.id))
    revoke.start()
    r = client.get(f"/api/v1/experiments/{eid}/events", headers={"Authorization": f"Bearer {secret}"})
    revoke.join()
    assert r.status_code == 200 and "event: end" not in r.text  # closed early, not finished
    again = client.get(f"/api/v1/experiments/{eid}/events", headers={"Authorization": f"Bearer {secret}"})
    assert again.status_code == 401


def test_past_the_cap_a_new_stream_is_a_503_problem(client: TestClient, svc: Any) -> None:
    _, secret = svc.accounts.create_token(viewer("vic", "api"), "t", "1h")
    eid = new_experiment(svc, ADMIN)
    streams = client.app.state.event_streams  # type: ignore[attr-defined]
    streams.open = streams.max_streams
    r = client.get(f"/api/v1/experiments/{eid}/events", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert "event streams" in r.json()["detail"] and r.headers["Retry-After"]
    streams.open = 0


def test_a_refused_stream_leaves_nothing_open(client: TestClient, svc: Any) -> None:
    _, secret = svc.accounts.create_token(viewer("vic", "api"), "t", "1h")
    h = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/experiments/exp-nope/events", headers=h).status_code == 404
    assert client.get("/api/v1/events", headers={**h, "Last-Event-ID": "x1"}).status_code == 422
    assert client.get("/api/v1/experiments/exp-nope/events", headers={**h, "Last-Event-ID": "1"}).status_code == 422
    assert client.app.state.event_streams.open == 0  # type: ignore[attr-defined]


@pytest.mark.timeout(60)  # without a lifetime the feed never ends: fail, not hang
def test_the_endless_feed_closes_at_its_lifetime(svc: Any) -> None:
    """The all-experiments feed never ends by itself; its lifetime does (the client then
    reconnects with Last-Event-ID). A TestClient reads the whole answer, so this returns."""
    _, secret = svc.accounts.create_token(viewer("vic", "api"), "t", "1h")
    with TestClient(create_app(svc, env={}, stream_lifetime_s=0.5)) as client:
        r = client.get("/api/v1/events", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200 and r.text.startswith(": live")
