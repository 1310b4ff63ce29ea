"""Live events for real: ``phoenix api`` under uvicorn in its own process, a scheduler in this
one, both on one SQLite file; with and without a real Redis between them (docs/api.md)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from core.bootstrap import Services, bootstrap
from core.runtime.memory import InMemoryAnalyzer
from core.settings import Settings
from tests.actors import ADMIN, add_account
from tests.conftest import ThrowawayRedis, free_port
from tests.live_phoenix import wait_answering
from tests.live_world import Clock, SamplingDeployer, new_experiment

PASSWORD = "operator password 1"
#: Bounds for a broken server, never a speed claim: a healthy stream answers in about 1 s.
STREAM_TIMEOUT_S = 60


@dataclass
class Api:
    base: str
    proc: subprocess.Popen[str]
    token: str = ""
    viewer_token: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _prepare(tmp_path: Path, redis_url: str | None = None) -> Settings:
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    settings = Settings(data_dir=tmp_path, database_url=url, gitops_repo=tmp_path / "gitops", runtime="memory",
                        embedded_scheduler=False, redis_url=redis_url, scheduler_interval_s=0.5)
    svc = bootstrap(settings)
    # cheap argon2 parameters: the hash carries them, so the server verifies as cheaply
    svc.accounts.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    add_account(svc, ADMIN)
    svc.accounts.add_user(ADMIN, "ops", "operator", PASSWORD)
    svc.accounts.add_user(ADMIN, "vic", "viewer", PASSWORD)
    svc.close()
    return settings


def _start_api(settings: Settings, **env_extra: str) -> Api:
    env = {**os.environ, "PHOENIX_DATA_DIR": str(settings.data_dir), "PHOENIX_DATABASE_URL": settings.database_url,
           "PHOENIX_GITOPS_REPO": str(settings.gitops_repo), "PHOENIX_RUNTIME": "memory",
           "PHOENIX_EMBEDDED_SCHEDULER": "0", "PHOENIX_SCHEDULER_INTERVAL": "0.5", **env_extra}
    if settings.redis_url:
        env["PHOENIX_REDIS_URL"] = settings.redis_url
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "core", "api", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = Api(f"http://127.0.0.1:{port}", proc)
    try:
        wait_answering(api.base, proc, lambda: proc.stdout.read() if proc.stdout else "", probe="/healthz")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    for user, attr in (("ops", "token"), ("vic", "viewer_token")):
        tok = httpx.post(f"{api.base}/api/v1/auth/token", data={"username": user, "password": PASSWORD}, timeout=30)
        setattr(api, attr, tok.json()["access_token"])
    return api


def _stop(api: Api) -> str:
    api.proc.send_signal(signal.SIGTERM)
    out, _ = api.proc.communicate(timeout=20)
    assert api.proc.returncode in (0, -signal.SIGTERM) and "Finished server process" in out, out
    assert PASSWORD not in out
    return out


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _prepare(tmp_path)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    server = _start_api(settings)
    try:
        yield server
    finally:
        _stop(server)


@dataclass
class Scheduler:
    """A scheduler in this process (the API's is another) on the same database, with a clock."""

    services: Services
    clock: Clock
    sched: Any = None

    def tick(self, n: int = 1, step_s: float = 2.0) -> None:
        for _ in range(n):
            self.sched.run_once()
            self.clock.advance(step_s)


@pytest.fixture
def scheduler(settings: Settings) -> Iterator[Scheduler]:
    clock = Clock()
    svc = bootstrap(settings, SamplingDeployer(clock), InMemoryAnalyzer(verdict="PROMOTE"))
    s = Scheduler(svc, clock)
    s.sched = svc.new_scheduler(scheduler_id="test-scheduler", clock=clock)
    try:
        yield s
    finally:
        svc.close()


# ---- reading a stream -------------------------------------------------------------------


@dataclass
class Event:
    kind: str
    data: dict[str, Any]
    id: str | None
    wake: str | None  # the ": wake=…" comment of the chunk it came in


@dataclass
class Reader:
    """Reads an SSE response in a thread; ``events`` fills as they come, ``done`` when it closes."""

    response: httpx.Response
    events: queue.Queue[Event] = field(default_factory=queue.Queue)
    seen: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: list[BaseException] = field(default_factory=list)

    def run(self) -> None:
        kind, data, eid, wake = "message", "", None, None
        try:
            for line in self.response.iter_lines():
                if line.startswith(":"):
                    self.comments.append(line)
                    if line.startswith(": wake="):
                        wake = line.removeprefix(": wake=")
                elif line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = line.removeprefix("data: ")
                elif line.startswith("id: "):
                    eid = line.removeprefix("id: ")
                elif line == "" and data:
                    self.events.put(Event(kind, json.loads(data), eid, wake))
                    kind, data, eid = "message", "", None
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test
            self.error.append(exc)
        finally:
            self.done.set()

    def until(self, predicate: Any, timeout_s: float = STREAM_TIMEOUT_S) -> list[Event]:
        deadline = time.monotonic() + timeout_s
        while not any(predicate(e) for e in self.seen):
            try:
                self.seen.append(self.events.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"not seen in {timeout_s}s; got {[(e.kind, e.data) for e in self.seen]}"
                                     f" {self.error}") from None
        return self.seen


def _open(client: httpx.Client, path: str, headers: dict[str, str]) -> tuple[Reader, Any]:
    ctx = client.stream("GET", path, headers=headers, timeout=httpx.Timeout(STREAM_TIMEOUT_S, read=30))
    response = ctx.__enter__()
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    reader = Reader(response)
    threading.Thread(target=reader.run, daemon=True).start()
    return reader, ctx


def _drive_until_ended(scheduler: Scheduler, reader: Reader, pause_s: float = 0.0) -> list[Event]:
    for _ in range(40):
        scheduler.tick()
        if pause_s:
            time.sleep(pause_s)
        if scheduler.services.experiments.get(ADMIN, reader_experiment(reader)).is_terminal:
            break
    return reader.until(lambda e: e.kind == "end")


def reader_experiment(reader: Reader) -> str:
    return str(reader.response.url).split("/experiments/")[1].split("/")[0]


def _story(events: list[Event]) -> list[tuple[str, Any]]:
    return [(e.kind, e.data.get("to") or e.data.get("verdict") or e.data.get("state") or e.data.get("variant"))
            for e in events]


# ---- the tests ----------------------------------------------------------------------------


def test_a_stream_replays_then_follows_an_experiment_to_its_end(api: Api, scheduler: Scheduler) -> None:
    eid = new_experiment(scheduler.services, ADMIN)
    scheduler.tick()  # Pending → Initializing happens before anyone listens: replayed
    with httpx.Client(base_url=api.base) as client:
        reader, ctx = _open(client, f"/api/v1/experiments/{eid}/events", {"Authorization": f"Bearer {api.viewer_token}"})
        events = _drive_until_ended(scheduler, reader)
        reader.done.wait(10)
        assert reader.done.is_set(), "the server closes the stream after the end event"
        ctx.__exit__(None, None, None)
    states = [e.data["to"] for e in events if e.kind == "state"]
    assert states == ["Initializing", "Running", "Analyzing", "Completed"]
    samples = [e for e in events if e.kind == "sample"]
    assert samples and {s.data["variant"] for s in samples} == {"baseline", "candidate"}
    assert [e.kind for e in events][-2:] == ["verdict", "end"]
    assert events[-2].data["verdict"] == "PROMOTE" and events[-1].data == {"experiment_id": eid, "state": "Completed"}
    # Without Redis, a scheduler in another process reaches the API by polling only.
    assert {e.wake for e in events if e.wake} == {"poll"}


def test_last_event_id_resumes_without_duplicates_or_gaps(api: Api, scheduler: Scheduler) -> None:
    eid = new_experiment(scheduler.services, ADMIN)
    for _ in range(40):
        scheduler.tick()
        if scheduler.services.experiments.get(ADMIN, eid).is_terminal:
            break
    path = f"/api/v1/experiments/{eid}/events"
    with httpx.Client(base_url=api.base) as client:
        whole, ctx = _open(client, path, api.auth)
        everything = whole.until(lambda e: e.kind == "end")
        ctx.__exit__(None, None, None)
        # Every event has its own id, except the transition to Completed, which shares its
        # verdict's (sent right after it), and the end, which repeats the last one.
        assert [(e.kind, e.data["to"]) for e in everything if e.id is None] == [("state", "Completed")]
        ids = [e.id for e in everything[:-1] if e.id]
        assert len(set(ids)) == len(ids) and everything[-1].id == everything[-2].id
        for cut in (1, len(everything) // 2, len(everything) - 2):
            rest, ctx = _open(client, path, {**api.auth, "Last-Event-ID": everything[cut].id})  # type: ignore[dict-item]
            got = rest.until(lambda e: e.kind == "end")
            ctx.__exit__(None, None, None)
            assert _story(got) == _story(everything[cut + 1:])
        after, ctx = _open(client, f"{path}?after={everything[2].id}", api.auth)
        assert _story(after.until(lambda e: e.kind == "end")) == _story(everything[3:])
        ctx.__exit__(None, None, None)
        bad = client.get(path, headers={**api.auth, "Last-Event-ID": "not-a-cursor"})
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["problems"][0].startswith("last-event-id:")  # the header's declared grammar


def test_streams_need_a_sign_in_and_a_known_experiment(api: Api, scheduler: Scheduler) -> None:
    eid = new_experiment(scheduler.services, ADMIN)
    with httpx.Client(base_url=api.base, timeout=10) as client:
        for path in (f"/api/v1/experiments/{eid}/events", "/api/v1/events"):
            r = client.get(path)
            assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            r = client.get(path, headers={"Authorization": "Bearer nonsense"})
            assert r.status_code == 401
        r = client.get("/api/v1/experiments/exp-nope/events", headers=api.auth)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
        spec = client.get("/openapi.json").json()["paths"]["/api/v1/experiments/{experiment_id}/events"]["get"]
        assert "text/event-stream" in spec["responses"]["200"]["content"]
        assert "event: verdict" in spec["description"]


def test_the_all_experiments_feed_carries_states_and_verdicts_live(api: Api, scheduler: Scheduler) -> None:
    old = new_experiment(scheduler.services, ADMIN)  # before the feed opens: not replayed
    with httpx.Client(base_url=api.base) as client:
        reader, ctx = _open(client, "/api/v1/events", {"Authorization": f"Bearer {api.viewer_token}"})
        time.sleep(1.5)  # the feed has read its starting position
        eid = new_experiment(scheduler.services, ADMIN)
        for _ in range(40):
            scheduler.tick()
            if scheduler.services.experiments.get(ADMIN, eid).is_terminal:
                break
        events = reader.until(lambda e: e.kind == "verdict" and e.data["experiment_id"] == eid)
        ctx.__exit__(None, None, None)
    mine = [e for e in events if e.data["experiment_id"] == eid]
    assert [e.data.get("to") for e in mine if e.kind == "state"] == ["Initializing", "Running", "Analyzing",
                                                                      "Completed"]
    assert mine[-1].data["verdict"] == "PROMOTE"
    assert all(e.data["experiment_id"] in (eid, old) for e in events)
    assert not any(e.data["experiment_id"] == old and e.data.get("to") is None and e.kind == "state" for e in events)


def test_sigterm_ends_open_streams_and_the_server_stops(settings: Settings, scheduler: Scheduler) -> None:
    server = _start_api(settings)
    eid = new_experiment(scheduler.services, ADMIN)
    with httpx.Client(base_url=server.base) as client:
        reader, ctx = _open(client, f"/api/v1/experiments/{eid}/events", server.auth)
        _stop(server)  # asserts a clean exit within its timeout, with the stream still open
        assert reader.done.wait(10)
        ctx.__exit__(None, None, None)


# ---- Redis between the processes ----------------------------------------------------------


@pytest.fixture
def redis_world(tmp_path: Path, private_redis: ThrowawayRedis) -> Iterator[tuple[Api, Scheduler, ThrowawayRedis]]:
    settings = _prepare(tmp_path, private_redis.url)
    server = _start_api(settings)
    clock = Clock()
    svc = bootstrap(settings, SamplingDeployer(clock), InMemoryAnalyzer(verdict="PROMOTE"))
    sched = Scheduler(svc, clock, svc.new_scheduler(scheduler_id="test-scheduler", clock=clock))
    try:
        yield server, sched, private_redis
    finally:
        svc.close()
        _stop(server)


def test_through_redis_the_api_wakes_on_the_schedulers_notices(redis_world: Any) -> None:
    api, scheduler, _ = redis_world
    eid = new_experiment(scheduler.services, ADMIN)
    with httpx.Client(base_url=api.base) as client:
        reader, ctx = _open(client, f"/api/v1/experiments/{eid}/events", api.auth)
        events = _drive_until_ended(scheduler, reader, pause_s=0.3)
        ctx.__exit__(None, None, None)
    assert scheduler.services.events.published > 0  # type: ignore[attr-defined]
    # The notices, not the 1 s poll, woke the stream (the poll may still win a race now and then).
    wakes = [e.wake for e in events if e.wake]
    assert wakes.count("bus") >= 1 and wakes.count("bus") >= wakes.count("poll"), wakes
    assert [e.kind for e in events][-2:] == ["verdict", "end"]


def test_redis_killed_mid_stream_the_stream_goes_on_by_polling_and_recovers(redis_world: Any) -> None:
    api, scheduler, redis = redis_world
    eid = new_experiment(scheduler.services, ADMIN, duration_s=3600)  # runs for as long as the test needs
    with httpx.Client(base_url=api.base) as client:
        reader, ctx = _open(client, f"/api/v1/experiments/{eid}/events", api.auth)
        scheduler.tick()
        reader.until(lambda e: e.kind == "state" and e.data["to"] == "Initializing")
        redis.kill()
        scheduler.tick(3)  # deploy, Running, a first collection: published into the void
        before = len(reader.until(lambda e: e.kind == "sample"))
        assert {e.wake for e in reader.seen[before - 1:] if e.wake} <= {"poll"}
        ready = httpx.get(f"{api.base}/readyz", timeout=10)  # degraded, still serving (docs/api.md)
        assert ready.status_code == 200 and ready.json()["checks"]["redis"].startswith("degraded"), ready.text
        redis.start()  # same port: the API's subscription reconnects by itself
        deadline = time.monotonic() + STREAM_TIMEOUT_S
        while not any(e.wake == "bus" for e in reader.seen[before:]):
            assert time.monotonic() < deadline, [(e.kind, e.wake) for e in reader.seen]
            scheduler.tick()
            time.sleep(0.3)
            while not reader.events.empty():
                reader.seen.append(reader.events.get())
        ctx.__exit__(None, None, None)
    assert scheduler.services.experiments.get(ADMIN, eid).state.value == "Running"
    assert httpx.get(f"{api.base}/readyz", timeout=10).status_code == 200


# ---- readiness ---------------------------------------------------------------------------


def test_readyz_follows_the_scheduler_heartbeat_when_one_is_required(settings: Settings) -> None:
    server = _start_api(settings, PHOENIX_READYZ_REQUIRE_SCHEDULER="true")
    svc = bootstrap(settings)
    try:
        r = httpx.get(f"{server.base}/readyz", timeout=10)
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["failing"] == ["scheduler"] and "no scheduler has ever beaten" in r.json()["detail"]
        sched = svc.new_scheduler(scheduler_id="beating", interval_s=0.5)
        sched.run_once()
        r = httpx.get(f"{server.base}/readyz", timeout=10)
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "ready", "checks": {"database": "ok", "scheduler": "ok"}}
        time.sleep(2.0)  # more than 3 × 0.5 s without a beat
        r = httpx.get(f"{server.base}/readyz", timeout=10)
        assert r.status_code == 503 and "no scheduler has beaten since" in r.json()["detail"]
        assert "beating" in r.json()["detail"]
    finally:
        svc.close()
        _stop(server)


def test_readyz_stays_ready_and_says_redis_is_degraded_when_it_is_configured_and_down(tmp_path: Path) -> None:
    redis = ThrowawayRedis().start()
    settings = _prepare(tmp_path, redis.url.replace("redis://", "redis://:s3cret-pw@"))
    server = _start_api(settings)
    try:
        ok = httpx.get(f"{server.base}/readyz", timeout=10)
        assert ok.status_code == 200, ok.text  # AUTH refused (degraded) or accepted (ok): ready either way
        redis.kill()
        r = httpx.get(f"{server.base}/readyz", timeout=10)
        # Redis only saves work (cache, events, idempotency fall back in-process): still in load balancing.
        assert r.status_code == 200, r.text
        assert r.json()["checks"]["redis"].startswith("degraded: Redis at")
        assert "s3cret-pw" not in r.text
    finally:
        out = _stop(server)
        redis.stop()
    assert "s3cret-pw" not in out
