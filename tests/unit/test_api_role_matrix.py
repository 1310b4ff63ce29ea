"""Every REST route × every kind of caller, over a real SQLite store.

The expected answer comes from ``core.domain.accounts.PERMISSIONS`` and the permission each
route declares (``x-phoenix-permission``), never from a hand-written table of statuses:
no credential or a disabled account → 401; a role below the permission → 403; otherwise a
2xx. Each route has one ``CALLS`` entry that builds a request that succeeds for an allowed
caller (a fresh experiment to cancel, a token of the caller's own to revoke, …); a route
added without one fails ``test_every_route_has_a_matrix_entry``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from core.api import create_app
from core.api.events import StreamGate
from core.api.routes import PUBLIC, permissions
from core.bootstrap import bootstrap
from core.catalog.templates import get_template
from core.domain.accounts import PERMISSIONS, Actor, Role
from core.domain.pipeline import Pipeline
from core.engine.fleet import generate_fleet
from core.engine.snapshot import write_snapshot
from core.gitops import InMemoryGitOps
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.services.requests import CreateExperiment, SavePipelineVersion
from core.settings import Settings
from core.store.migrate import upgrade
from core.store.uow import Database

PASSWORD = "correct horse battery"
ADMIN = Actor("root", Role.ADMIN, "api")
NEW = {"name": "matrix", "baseline": "process-baseline-v1", "candidate": "process-topk-v1",
       "duration_s": 30, "interval_s": 5}
#: caller → the role it acts with (None: it must be refused with 401 whatever the route).
CALLERS: dict[str, Role | None] = {"none": None, "viewer": Role.VIEWER, "operator": Role.OPERATOR,
                                   "admin": Role.ADMIN, "operator-token": Role.OPERATOR, "disabled": None}
#: the account each caller acts as
ACCOUNT = {"viewer": "viewer", "operator": "operator", "admin": "admin", "operator-token": "operator",
           "disabled": "gone", "none": "nobody"}


@dataclass
class World:
    svc: Any
    client: TestClient
    heads: dict[str, dict[str, str]] = field(default_factory=dict)
    snapshot: bytes = b""
    counter: int = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def experiment(self, finished: bool = False) -> str:
        exp = self.svc.experiments.create(ADMIN, CreateExperiment(**NEW))
        if finished:
            with self.svc.uow() as uow:
                e = uow.experiments.get(exp.id)
                e.start("t"), e.mark_running("t"), e.begin_analysis("t")
                e.complete({"verdict": "PROMOTE", "reasons": []}, "t")
                uow.experiments.save(e)
                uow.commit()
        return str(exp.id)


def _pipeline(name: str) -> dict[str, Any]:
    graph = get_template("process-topk-v1").to_dict()
    graph["name"] = name
    return graph


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("matrix")
    url = f"sqlite:///{tmp / 'phoenix.db'}"
    upgrade(url)
    db = Database(url)
    settings = Settings(data_dir=tmp, database_url=url, gitops_repo=tmp / "gitops", runtime="memory",
                        embedded_scheduler=False, scheduler_interval_s=0.2, scheduler_lease_s=5.0)
    svc = bootstrap(settings, InMemoryDeployer(), InMemoryAnalyzer(), database=db, gitops=InMemoryGitOps())
    svc.accounts.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with svc.uow() as uow:
        uow.users.add(ADMIN.name, Role.ADMIN, svc.accounts.hasher.hash(PASSWORD))
        uow.commit()
    for name, role in (("viewer", Role.VIEWER), ("operator", Role.OPERATOR), ("admin", Role.ADMIN),
                       ("gone", Role.ADMIN), ("victim", Role.OPERATOR)):
        svc.accounts.add_user(ADMIN, name, role, PASSWORD)
    for message in ("one", "two"):
        svc.pipelines.save_version(ADMIN, SavePipelineVersion.of(pipeline=Pipeline.from_dict(_pipeline("p")),
                                                                 message=message))
    client = TestClient(create_app(svc, env={}, rate_per_s=1e6, burst=10**6), raise_server_exceptions=False)
    w = World(svc, client)
    for caller in ("viewer", "operator", "admin", "disabled"):
        r = client.post("/api/v1/auth/token", data={"username": ACCOUNT[caller], "password": PASSWORD})
        w.heads[caller] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    _, secret = svc.accounts.create_token(Actor("operator", Role.OPERATOR, "api"), "matrix", "1h")
    w.heads["operator-token"] = {"Authorization": f"Bearer {secret}"}
    w.heads["none"] = {}
    svc.accounts.disable(ADMIN, "gone")  # its access token was issued before: it must stop at once
    buf = io.BytesIO()
    write_snapshot(generate_fleet(2, 10, seed=1, scrapes=1), buf)
    w.snapshot = buf.getvalue()
    try:
        yield w
    finally:
        db.dispose()


@dataclass(frozen=True)
class Call:
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] | None = None
    files: dict[str, Any] | None = None


def _price_cards(w: World, caller: str) -> Call:
    view = w.svc.configuration.price_card_view(ADMIN)
    return Call("/api/v1/price-cards", json={"cards": view.document["cards"]}, headers={"If-Match": f'"{view.tag}"'})


def _own_token(w: World, caller: str) -> Call:
    role = CALLERS[caller] or Role.VIEWER
    record, _ = w.svc.accounts.create_token(Actor(ACCOUNT[caller] if CALLERS[caller] else "viewer", role, "api"),
                                            "to revoke", "1h")
    return Call(f"/api/v1/tokens/{record.id}")


def _share(w: World, caller: str) -> Call:
    link, _ = w.svc.shares.create(ADMIN, "experiment", w.experiment())
    return Call(f"/api/v1/shares/{link.id}")


def _user(w: World, caller: str) -> str:
    name = w.fresh("user")
    w.svc.accounts.add_user(ADMIN, name, Role.VIEWER, PASSWORD)
    return name


def _feed(w: World, caller: str) -> Call:
    # The all-experiments feed never ends by itself; as at server shutdown, an ended gate lets it
    # answer its first byte and close, so the TestClient gets the whole (short) answer.
    app = w.client.app
    app.state.event_streams = StreamGate()  # type: ignore[attr-defined]
    app.state.event_streams.stop.set()  # type: ignore[attr-defined]
    return Call("/api/v1/events")


#: (method, path template) → how to call it as ``caller`` so that an allowed caller succeeds.
CALLS: dict[tuple[str, str], Callable[[World, str], Call]] = {
    ("POST", "/api/v1/auth/token"): lambda w, c: Call("/api/v1/auth/token",
                                                      data={"username": "viewer", "password": PASSWORD}),
    ("POST", "/api/v1/auth/refresh"): lambda w, c: Call("/api/v1/auth/refresh", json={
        "refresh_token": w.client.post("/api/v1/auth/token", data={"username": "viewer", "password": PASSWORD}
                                       ).json()["refresh_token"]}),
    ("GET", "/api/v1/experiments"): lambda w, c: Call("/api/v1/experiments", params={"limit": 5}),
    ("POST", "/api/v1/experiments"): lambda w, c: Call("/api/v1/experiments", json=NEW),
    ("GET", "/api/v1/experiments/{experiment_id}"): lambda w, c: Call(f"/api/v1/experiments/{w.experiment()}"),
    # a finished experiment's stream replays its log and ends
    ("GET", "/api/v1/experiments/{experiment_id}/events"): lambda w, c: Call(
        f"/api/v1/experiments/{w.experiment(finished=True)}/events"),
    ("GET", "/api/v1/events"): _feed,
    ("POST", "/api/v1/experiments/{experiment_id}/cancel"): lambda w, c: Call(
        f"/api/v1/experiments/{w.experiment()}/cancel", headers={"If-Match": '"1"'}),
    ("POST", "/api/v1/experiments/{experiment_id}/rerun"): lambda w, c: Call(
        f"/api/v1/experiments/{w.experiment(finished=True)}/rerun"),
    ("POST", "/api/v1/experiments/{experiment_id}/promote"): lambda w, c: Call(
        f"/api/v1/experiments/{w.experiment(finished=True)}/promote"),
    ("GET", "/api/v1/experiments/{experiment_id}/samples"): lambda w, c: Call(
        f"/api/v1/experiments/{w.experiment()}/samples"),
    ("GET", "/api/v1/experiments/{experiment_id}/analysis"): lambda w, c: Call(
        f"/api/v1/experiments/{w.experiment(finished=True)}/analysis"),
    ("GET", "/api/v1/experiments/{experiment_id}/report"): lambda w, c: Call(
        f"/api/v1/experiments/{w.experiment(finished=True)}/report", params={"format": "csv"}),
    ("GET", "/api/v1/pipelines"): lambda w, c: Call("/api/v1/pipelines"),
    ("GET", "/api/v1/pipelines/{name}/versions"): lambda w, c: Call("/api/v1/pipelines/p/versions"),
    ("POST", "/api/v1/pipelines/{name}/versions"): lambda w, c: Call(
        "/api/v1/pipelines/p/versions", json={"pipeline": _pipeline("p"), "message": "from the matrix"}),
    ("GET", "/api/v1/pipelines/{name}/versions/{number}"): lambda w, c: Call("/api/v1/pipelines/p/versions/1"),
    ("GET", "/api/v1/pipelines/{name}/versions/{number}/render"): lambda w, c: Call(
        "/api/v1/pipelines/p/versions/1/render"),
    ("GET", "/api/v1/pipelines/{name}/diff"): lambda w, c: Call("/api/v1/pipelines/p/diff",
                                                                params={"from": 1, "to": 2}),
    ("POST", "/api/v1/pipelines/validate"): lambda w, c: Call("/api/v1/pipelines/validate",
                                                              json=_pipeline("x")),
    ("POST", "/api/v1/pipelines/render"): lambda w, c: Call("/api/v1/pipelines/render", json=_pipeline("x")),
    ("POST", "/api/v1/pipelines/estimate"): lambda w, c: Call(
        "/api/v1/pipelines/estimate", data={"pipeline": "process-topk-v1"},
        files={"snapshot": ("fleet.csv", w.snapshot, "text/csv")}),
    ("POST", "/api/v1/pipelines/recommend"): lambda w, c: Call(
        "/api/v1/pipelines/recommend", files={"snapshot": ("fleet.csv", w.snapshot, "text/csv"), "rules": (
            "r.yml", b"groups: [{name: g, rules: [{alert: A, expr: 'process_memory_usage_bytes > 1'}]}]", "text/yaml")}),
    ("GET", "/api/v1/templates"): lambda w, c: Call("/api/v1/templates"),
    ("GET", "/api/v1/templates/{name}"): lambda w, c: Call("/api/v1/templates/process-topk-v1"),
    ("POST", "/api/v1/shares"): lambda w, c: Call("/api/v1/shares", json={"kind": "experiment",
                                                                          "ref": w.experiment()}),
    ("GET", "/api/v1/shares"): lambda w, c: Call("/api/v1/shares", params={"kind": "pipeline", "ref": "p@1"}),
    ("DELETE", "/api/v1/shares/{link_id}"): _share,
    ("GET", "/api/v1/settings"): lambda w, c: Call("/api/v1/settings"),
    ("PUT", "/api/v1/settings/{name}"): lambda w, c: Call("/api/v1/settings/retention_days", json={"value": 40}),
    ("GET", "/api/v1/price-cards"): lambda w, c: Call("/api/v1/price-cards"),
    ("PUT", "/api/v1/price-cards"): _price_cards,
    ("GET", "/api/v1/users"): lambda w, c: Call("/api/v1/users"),
    ("POST", "/api/v1/users"): lambda w, c: Call("/api/v1/users", json={
        "name": w.fresh("new"), "role": "viewer", "password": PASSWORD}),
    ("GET", "/api/v1/users/{name}"): lambda w, c: Call("/api/v1/users/victim"),
    ("PUT", "/api/v1/users/{name}/role"): lambda w, c: Call("/api/v1/users/victim/role", json={"role": "operator"}),
    ("POST", "/api/v1/users/{name}/disable"): lambda w, c: Call(f"/api/v1/users/{_user(w, c)}/disable"),
    ("POST", "/api/v1/users/{name}/enable"): lambda w, c: Call(f"/api/v1/users/{_user(w, c)}/enable"),
    ("PUT", "/api/v1/users/{name}/password"): lambda w, c: Call(f"/api/v1/users/{_user(w, c)}/password",
                                                               json={"password": "a new long passphrase"}),
    ("GET", "/api/v1/tokens"): lambda w, c: Call("/api/v1/tokens"),
    ("POST", "/api/v1/tokens"): lambda w, c: Call("/api/v1/tokens", json={"name": "ci", "ttl": "1h"}),
    ("DELETE", "/api/v1/tokens/{token_id}"): _own_token,
    ("GET", "/api/v1/audit"): lambda w, c: Call("/api/v1/audit", params={"limit": 5}),
}


def test_every_route_has_a_matrix_entry(world: World) -> None:
    declared = permissions(world.client.app)  # type: ignore[arg-type]
    assert set(declared) == set(CALLS), "add a CALLS entry for each new route (and drop the ones removed)"
    for route, permission in declared.items():
        assert permission == PUBLIC or permission in PERMISSIONS, route


def expected(permission: str, caller: str) -> str:
    if permission == PUBLIC:
        return "2xx"
    role = CALLERS[caller]
    if role is None:
        return "401"
    return "2xx" if role >= PERMISSIONS[permission] else "403"


@pytest.mark.parametrize("route", sorted(CALLS), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_answers_each_caller_as_its_permission_says(world: World, route: tuple[str, str]) -> None:
    permission = permissions(world.client.app)[route]  # type: ignore[arg-type]
    seen = {}
    for caller in CALLERS:
        call = CALLS[route](world, caller)
        r = world.client.request(route[0], call.path, json=call.json, params=call.params, data=call.data,
                                 files=call.files, headers={**world.heads[caller], **call.headers})
        want = expected(permission, caller)
        got = "2xx" if 200 <= r.status_code < 300 else str(r.status_code)
        seen[caller] = got
        assert got == want, (caller, permission, r.status_code, r.text[:300])
        if got != "2xx":
            assert r.headers["content-type"] == "application/problem+json"
    if permission != PUBLIC:  # the matrix is not vacuous: someone is refused, someone is let in
        assert "2xx" in seen.values() and "401" in seen.values()
