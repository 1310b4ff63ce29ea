"""The REST API over the in-memory store: every route, the error mapping, auth, roles and limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from core.api import create_app
from core.api.limits import RateLimit, TokenBucket
from core.catalog.templates import get_template
from core.domain.accounts import Role
from core.domain.experiment import State
from core.domain.pipeline import Pipeline
from core.services.requests import SavePipelineVersion
from tests.actors import ADMIN, add_account, admin

PASSWORD = "correct horse battery"
ROLES = {"viewer": Role.VIEWER, "operator": Role.OPERATOR, "admin": Role.ADMIN}
NEW = {"name": "api run", "baseline": "process-baseline-v1", "candidate": "process-topk-v1",
       "duration_s": 30, "interval_s": 5}


@pytest.fixture
def svc(memory_services: Any) -> Any:
    # real argon2id, with the cheap parameters test_accounts uses (the defaults cost ~0.5 s a hash)
    memory_services.accounts.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    add_account(memory_services, ADMIN)
    for name, role in ROLES.items():
        memory_services.accounts.add_user(ADMIN, name, role, PASSWORD)
    return memory_services


@pytest.fixture
def client(svc: Any) -> TestClient:
    return TestClient(create_app(svc, env={}), raise_server_exceptions=False)


def sign_in(client: TestClient, name: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def heads(client: TestClient) -> dict[str, dict[str, str]]:
    return {name: sign_in(client, name) for name in ROLES}


def is_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == f"urn:phoenix:problem:{code}" and body["status"] == status and body["detail"]
    return body  # type: ignore[no-any-return]


def finish(svc: Any, eid: str, verdict: str = "PROMOTE") -> None:
    with svc.uow() as uow:
        e = uow.experiments.get(eid)
        e.start("test"), e.mark_running("test"), e.begin_analysis("test")
        e.complete({"verdict": verdict, "reasons": []}, "test")
        uow.experiments.save(e)
        uow.commit()


# ------------------------------------------------------------------ auth

def test_password_flow_refresh_and_api_tokens(client: TestClient, svc: Any) -> None:
    r = client.post("/api/v1/auth/token", data={"username": "operator", "password": PASSWORD})
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert r.status_code == 200 and r.json()["access_token"]
    # an access token is not a refresh token, and the other way round
    is_problem(client.post("/api/v1/auth/refresh", json={"refresh_token": body["access_token"]}), 401,
               "unauthenticated")
    is_problem(client.get("/api/v1/experiments", headers={"Authorization": f"Bearer {body['refresh_token']}"}),
               401, "unauthenticated")
    # a long-lived phx_ token of a viewer reads but cannot create
    _, secret = svc.accounts.create_token(admin("viewer"), "ci", "1h")
    tok = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/experiments", headers=tok).status_code == 200
    is_problem(client.post("/api/v1/experiments", json=NEW, headers=tok), 403, "forbidden")


def test_sign_in_refusals_are_401_with_www_authenticate(client: TestClient) -> None:
    r = client.post("/api/v1/auth/token", data={"username": "viewer", "password": "wrong password"})
    assert is_problem(r, 401, "unauthenticated") and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert PASSWORD not in r.text and "wrong password" not in r.text
    r = client.get("/api/v1/experiments")
    assert is_problem(r, 401, "unauthenticated") and "WWW-Authenticate" in r.headers
    is_problem(client.get("/api/v1/experiments", headers={"Authorization": "Bearer phx_forged"}), 401,
               "unauthenticated")
    is_problem(client.get("/api/v1/experiments", headers={"Authorization": "Bearer not.a.jwt"}), 401,
               "unauthenticated")


def test_a_disabled_account_loses_its_access_token_at_once(client: TestClient, svc: Any,
                                                           heads: dict[str, dict[str, str]]) -> None:
    svc.accounts.disable(ADMIN, "operator")
    is_problem(client.get("/api/v1/experiments", headers=heads["operator"]), 401, "unauthenticated")


# ------------------------------------------------------------------ experiments

def test_create_get_cancel_with_etag_and_if_match(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    op = heads["operator"]
    r = client.post("/api/v1/experiments", json=NEW, headers=op)
    assert r.status_code == 201, r.text
    exp = r.json()
    assert exp["state"] == "Pending" and exp["owner"] == "operator" and r.headers["Location"].endswith(exp["id"])
    r = client.get(f"/api/v1/experiments/{exp['id']}", headers=heads["viewer"])
    etag = r.headers["ETag"]
    assert etag == f'"{r.json()["version"]}"'
    url = f"/api/v1/experiments/{exp['id']}/cancel"
    is_problem(client.post(url, headers=op), 428, "precondition-required")
    is_problem(client.post(url, headers={**op, "If-Match": '"999"'}), 412, "precondition-failed")
    is_problem(client.post(url, headers={**op, "If-Match": "garbage"}), 422, "validation")
    is_problem(client.post(url, headers={**heads["viewer"], "If-Match": etag}), 403, "forbidden")
    r = client.post(url, headers={**op, "If-Match": etag}, json={"reason": "not needed"})
    assert r.status_code == 200 and r.json()["state"] == "Cancelled" and r.headers["ETag"] != etag
    # the old ETag is stale now; cancelling again is not a possible transition
    is_problem(client.post(url, headers={**op, "If-Match": etag}), 412, "precondition-failed")
    is_problem(client.post(url, headers={**op, "If-Match": r.headers["ETag"]}), 409, "invalid-transition")


def test_create_refuses_bad_input_with_every_problem(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    body = is_problem(client.post("/api/v1/experiments", json={**NEW, "candidate": "nope", "duration_s": -1},
                                  headers=heads["operator"]), 422, "validation")
    assert len(body["problems"]) >= 2 and any("nope" in p for p in body["problems"])
    body = is_problem(client.post("/api/v1/experiments", json={**NEW, "colour": "red"}, headers=heads["operator"]),
                      422, "validation")
    assert any("colour" in p for p in body["problems"])
    is_problem(client.post("/api/v1/experiments", content=b"{not json", headers={**heads["operator"],
               "Content-Type": "application/json"}), 422, "validation")


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(
        client: TestClient, svc: Any, heads: dict[str, dict[str, str]]) -> None:
    h = {**heads["operator"], "Idempotency-Key": "ci-run-42"}
    first = client.post("/api/v1/experiments", json=NEW, headers=h)
    again = client.post("/api/v1/experiments", json=NEW, headers=h)
    assert first.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert len(svc.experiments.list(ADMIN)) == 1
    is_problem(client.post("/api/v1/experiments", json={**NEW, "name": "other"}, headers=h), 409, "conflict")
    other = client.post("/api/v1/experiments", json=NEW, headers={**h, "Idempotency-Key": "ci-run-43"})
    assert other.json()["id"] != first.json()["id"]


def test_list_filters_by_state_and_pages_by_cursor(client: TestClient, svc: Any,
                                                   heads: dict[str, dict[str, str]]) -> None:
    ids = [client.post("/api/v1/experiments", json={**NEW, "name": f"e{i}"}, headers=heads["operator"]).json()["id"]
           for i in range(5)]
    finish(svc, ids[0])
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/experiments", params=params, headers=heads["viewer"]).json()
        seen += [row["id"] for row in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    done = client.get("/api/v1/experiments", params={"state": "Completed"}, headers=heads["viewer"]).json()
    assert [row["id"] for row in done["items"]] == [ids[0]] and done["items"][0]["verdict"] == "PROMOTE"
    is_problem(client.get("/api/v1/experiments", params={"cursor": "!!"}, headers=heads["viewer"]), 422,
               "validation")
    is_problem(client.get("/api/v1/experiments", params={"limit": 0}, headers=heads["viewer"]), 422, "validation")


def test_rerun_promote_samples_and_not_found(client: TestClient, svc: Any, heads: dict[str, dict[str, str]]) -> None:
    eid = client.post("/api/v1/experiments", json=NEW, headers=heads["operator"]).json()["id"]
    is_problem(client.post(f"/api/v1/experiments/{eid}/rerun", headers=heads["operator"]), 409, "invalid-transition")
    finish(svc, eid)
    r = client.post(f"/api/v1/experiments/{eid}/rerun", headers=heads["operator"])
    assert r.status_code == 201 and r.json()["name"] == "api run (re-run)"
    is_problem(client.post(f"/api/v1/experiments/{eid}/promote", headers=heads["operator"]), 403, "forbidden")
    r = client.post(f"/api/v1/experiments/{eid}/promote", headers=heads["admin"])
    assert r.status_code == 200 and r.json()["experiment_id"] == eid and r.json()["pipeline"] == "process-topk-v1"
    assert client.get(f"/api/v1/experiments/{eid}/samples", headers=heads["viewer"]).json() == []
    for path in ("/api/v1/experiments/missing", "/api/v1/experiments/missing/samples"):
        is_problem(client.get(path, headers=heads["viewer"]), 404, "not-found")
    is_problem(client.get("/api/v1/nowhere", headers=heads["viewer"]), 404, "not-found")


# ------------------------------------------------------------------ pipelines and templates

def _pipeline(name: str) -> dict[str, Any]:
    graph = get_template("process-topk-v1").to_dict()
    graph["name"] = name
    return graph


def test_pipelines_save_get_list_validate_and_templates(client: TestClient,
                                                        heads: dict[str, dict[str, str]]) -> None:
    body = {"pipeline": _pipeline("mine"), "message": "first"}
    r = client.post("/api/v1/pipelines/mine/versions", json=body, headers=heads["operator"])
    assert r.status_code == 201, r.text
    assert r.json()["number"] == 1
    is_problem(client.post("/api/v1/pipelines/other/versions", json=body, headers=heads["operator"]), 422, "validation")
    is_problem(client.post("/api/v1/pipelines/mine/versions", json={"pipeline": _pipeline("mine")},
                           headers=heads["operator"]), 422, "validation")
    # expected_version: a save based on a version someone has since replaced is a 409, not a revert
    stale = is_problem(client.post("/api/v1/pipelines/mine/versions", json={**body, "expected_version": 0},
                                   headers=heads["operator"]), 409, "conflict")
    assert "at version 1 now, not 0" in stale["detail"]
    r = client.post("/api/v1/pipelines/mine/versions", json={**body, "message": "second", "expected_version": 1},
                    headers=heads["operator"])
    assert r.status_code == 201 and r.json()["number"] == 2, r.text
    is_problem(client.post("/api/v1/pipelines/mine/versions", json={**body, "expected_version": -1},
                           headers=heads["operator"]), 422, "validation")
    v = client.get("/api/v1/pipelines/mine/versions/1", headers=heads["viewer"]).json()
    assert v["number"] == 1 and v["message"] == "first" and "receivers" in v["collector_yaml"]
    is_problem(client.get("/api/v1/pipelines/mine/versions/9", headers=heads["viewer"]), 404, "not-found")
    names = [p["name"] for p in client.get("/api/v1/pipelines", headers=heads["viewer"]).json()]
    assert "mine" in names
    ok = client.post("/api/v1/pipelines/validate", json=_pipeline("x"), headers=heads["viewer"]).json()
    assert ok == {"valid": True, "problems": []}
    broken = _pipeline("x")
    broken["edges"] = []
    bad = client.post("/api/v1/pipelines/validate", json=broken, headers=heads["viewer"]).json()
    assert bad["valid"] is False and bad["problems"]
    templates = client.get("/api/v1/templates", headers=heads["viewer"]).json()
    assert "process-topk-v1" in templates
    t = client.get("/api/v1/templates/process-topk-v1", headers=heads["viewer"]).json()
    assert Pipeline.from_dict(t).name == "process-topk-v1"
    is_problem(client.get("/api/v1/templates/nope", headers=heads["viewer"]), 404, "not-found")


# ------------------------------------------------------------------ role matrix

MATRIX = [  # (method, path template, json body, lowest role allowed)
    ("get", "/api/v1/experiments", None, "viewer"),
    ("get", "/api/v1/experiments/{eid}", None, "viewer"),
    ("get", "/api/v1/experiments/{eid}/samples", None, "viewer"),
    ("post", "/api/v1/experiments", NEW, "operator"),
    ("post", "/api/v1/experiments/{eid}/rerun", None, "operator"),
    ("post", "/api/v1/experiments/{eid}/promote", None, "admin"),
    ("get", "/api/v1/pipelines", None, "viewer"),
    ("get", "/api/v1/pipelines/p/versions/1", None, "viewer"),
    ("post", "/api/v1/pipelines/p/versions", {"pipeline": _pipeline("p"), "message": "m"}, "operator"),
    ("post", "/api/v1/pipelines/validate", _pipeline("p"), "viewer"),
    ("get", "/api/v1/templates", None, "viewer"),
]


@pytest.mark.parametrize(("method", "path", "body", "lowest"), MATRIX)
def test_role_matrix(client: TestClient, svc: Any, heads: dict[str, dict[str, str]], method: str, path: str,
                     body: Any, lowest: str) -> None:
    svc.pipelines.save_version(ADMIN, SavePipelineVersion.of(pipeline=Pipeline.from_dict(_pipeline("p")),
                                                             message="v1"))
    for role in ROLES:
        eid = svc.experiments.create(ADMIN, **NEW).id
        finish(svc, eid)
        r = client.request(method, path.format(eid=eid), json=body, headers=heads[role])
        if ROLES[role] >= ROLES[lowest]:
            assert r.status_code < 300, (role, r.text)
        else:
            is_problem(r, 403, "forbidden")


def test_cancel_role_matrix(client: TestClient, svc: Any, heads: dict[str, dict[str, str]]) -> None:
    for role in ROLES:
        exp = svc.experiments.create(ADMIN, **NEW)
        r = client.post(f"/api/v1/experiments/{exp.id}/cancel", headers={**heads[role], "If-Match": f'"{exp.version}"'})
        if role == "viewer":
            is_problem(r, 403, "forbidden")
        else:
            assert r.status_code == 200 and r.json()["state"] == State.CANCELLED.value


# ------------------------------------------------------------------ limits, operations, failures

def test_rate_limit_per_ip_answers_429_with_retry_after(svc: Any) -> None:
    client = TestClient(create_app(svc, env={}, rate_per_s=0.01, burst=3), raise_server_exceptions=False)
    answers = [client.get("/api/v1/templates").status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]
    r = client.get("/api/v1/templates")
    assert is_problem(r, 429, "rate-limited") and int(r.headers["Retry-After"]) >= 1
    assert client.get("/healthz").status_code == 200  # probes are never limited


def test_token_bucket_per_key_refills() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=1.0, burst=2, clock=lambda: now[0])
    assert [bucket.take("a"), bucket.take("a")] == [0, 0] and bucket.take("a") == pytest.approx(1.0)
    assert bucket.take("b") == 0  # another token has its own budget
    now[0] += 1.0
    assert bucket.take("a") == 0


def test_body_size_limit_is_413(svc: Any, heads: dict[str, dict[str, str]]) -> None:
    client = TestClient(create_app(svc, env={}, max_body_bytes=1000), raise_server_exceptions=False)
    big = {**NEW, "description": "x" * 5000}
    is_problem(client.post("/api/v1/experiments", json=big, headers=heads["operator"]), 413, "too-large")

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(10):
            yield b"x" * 500

    r = client.post("/api/v1/experiments", content=chunks(), headers={**heads["operator"],
                    "Content-Type": "application/json"})
    is_problem(r, 413, "too-large")


def test_cors_closed_by_default_and_opened_by_env(svc: Any) -> None:
    pre = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    closed = TestClient(create_app(svc, env={})).options("/api/v1/experiments", headers=pre)
    assert "access-control-allow-origin" not in closed.headers
    opened = TestClient(create_app(svc, env={"PHOENIX_API_CORS_ORIGINS": "https://ci.example"}))
    r = opened.options("/api/v1/experiments", headers={**pre, "Origin": "https://ci.example"})
    assert r.headers["access-control-allow-origin"] == "https://ci.example"


def test_health_ready_and_metrics(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "checks": {"database": "ok"}}
    # The instruments are process-wide (other tests add to them too): compare before and after.
    labels = {"method": "GET", "route": "/api/v1/experiments/{experiment_id}", "status": "404"}
    before = _sample(client.get("/metrics").text, "phoenix_api_requests_total", labels)
    client.get("/api/v1/experiments/nope", headers=heads["viewer"])
    text = client.get("/metrics").text
    assert _sample(text, "phoenix_api_requests_total", labels) == before + 1
    assert "phoenix_api_request_seconds_bucket" in text


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and s.labels == labels)


def test_readyz_is_503_when_the_database_is_away(svc: Any) -> None:
    client = TestClient(create_app(svc, env={}), raise_server_exceptions=False)
    svc.system.uow_factory = _broken
    r = client.get("/readyz")
    assert is_problem(r, 503, "unavailable") and r.headers["Retry-After"]


def _broken() -> Any:
    raise RuntimeError("connection to server at db.internal (password=hunter2) refused")


def test_a_5xx_never_leaks_a_traceback_or_a_secret(svc: Any, heads: dict[str, dict[str, str]]) -> None:
    client = TestClient(create_app(svc, env={}), raise_server_exceptions=False)
    svc.experiments.uow_factory = _broken
    r = client.get("/api/v1/experiments", headers=heads["viewer"])
    body = is_problem(r, 500, "internal")
    assert "hunter2" not in r.text and "Traceback" not in r.text and "db.internal" not in r.text
    # the reference is the request's id: the one its log lines (and the traceback) carry
    assert set(body) == {"type", "title", "status", "detail", "reference"}
    assert body["reference"] == r.headers["X-Request-ID"] and body["reference"] in body["detail"]


def test_rate_limit_per_credential_leaves_other_credentials_alone(svc: Any) -> None:
    app = create_app(svc, env={})
    limited = RateLimit(app, per_ip=TokenBucket(100.0, 100), per_token=TokenBucket(0.01, 2))
    client = TestClient(limited, raise_server_exceptions=False)
    one, two = {"Authorization": "Bearer phx_one"}, {"Authorization": "Bearer phx_two"}
    assert [client.get("/api/v1/templates", headers=one).status_code for _ in range(3)] == [401, 401, 429]
    assert client.get("/api/v1/templates", headers=two).status_code == 401  # its own budget


# ------------------------------------------------------------------ analysis, reports, cursors

def test_analysis_is_409_until_finished_then_the_stored_verdict(client: TestClient, svc: Any,
                                                                heads: dict[str, dict[str, str]]) -> None:
    eid = client.post("/api/v1/experiments", json=NEW, headers=heads["operator"]).json()["id"]
    is_problem(client.get(f"/api/v1/experiments/{eid}/analysis", headers=heads["viewer"]), 409, "invalid-transition")
    finish(svc, eid, "REJECT")
    body = client.get(f"/api/v1/experiments/{eid}/analysis", headers=heads["viewer"]).json()
    assert body["verdict"] == "REJECT" and body["state"] == "Completed" and "min_series_reduction_pct" in body["criteria"]


@pytest.mark.parametrize(("fmt", "media", "magic"), [("csv", "text/csv", b"variant"), ("html", "text/html", b"<"),
                                                     ("pdf", "application/pdf", b"%PDF")])
def test_report_downloads_in_each_format(client: TestClient, svc: Any, heads: dict[str, dict[str, str]],
                                         fmt: str, media: str, magic: bytes) -> None:
    eid = client.post("/api/v1/experiments", json=NEW, headers=heads["operator"]).json()["id"]
    finish(svc, eid)
    r = client.get(f"/api/v1/experiments/{eid}/report", params={"format": fmt}, headers=heads["viewer"])
    assert r.status_code == 200 and r.headers["content-type"].startswith(media)
    assert r.headers["content-disposition"] == f'attachment; filename="{eid}.{fmt}"'
    assert magic in r.content[:200]
    is_problem(client.get(f"/api/v1/experiments/{eid}/report", params={"format": "docx"}, headers=heads["viewer"]),
               422, "validation")


def test_a_tampered_cursor_or_an_unknown_state_is_422(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    for i in range(3):
        client.post("/api/v1/experiments", json={**NEW, "name": f"c{i}"}, headers=heads["operator"])
    page = client.get("/api/v1/experiments", params={"limit": 1}, headers=heads["viewer"]).json()
    cursor = page["next_cursor"]
    body, mac = cursor.split(".")
    forged = ("A" if body[0] != "A" else "B") + body[1:] + "." + mac
    for bad in (forged, body, cursor + "x", "!!"):
        is_problem(client.get("/api/v1/experiments", params={"cursor": bad}, headers=heads["viewer"]), 422,
                   "validation")
    nxt = client.get("/api/v1/experiments", params={"limit": 1, "cursor": cursor}, headers=heads["viewer"]).json()
    assert nxt["items"][0]["id"] != page["items"][0]["id"]
    problem = is_problem(client.get("/api/v1/experiments", params={"state": "Bogus"}, headers=heads["viewer"]), 422,
                         "validation")
    # the state grammar is in the OpenAPI document (any letter case); the answer names the parameter
    assert problem["detail"].startswith("state.0: String should match pattern") and "[Pp][Ee][Nn]" in problem["detail"]
    ok = client.get("/api/v1/experiments", params={"state": ["pending", "COMPLETED"]}, headers=heads["viewer"])
    assert ok.status_code == 200


def test_list_filters_by_owner_and_pipeline(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    client.post("/api/v1/experiments", json=NEW, headers=heads["operator"])
    client.post("/api/v1/experiments", json={**NEW, "candidate": "process-minimal-v1"}, headers=heads["admin"])
    mine = client.get("/api/v1/experiments", params={"owner": "admin"}, headers=heads["viewer"]).json()["items"]
    assert [r["owner"] for r in mine] == ["admin"]
    topk = client.get("/api/v1/experiments", params={"pipeline": "process-topk-v1"}, headers=heads["viewer"]).json()
    assert [r["candidate"] for r in topk["items"]] == ["process-topk-v1"]


# ------------------------------------------------------------------ render, estimate, diff

def test_render_a_pipeline_and_a_saved_version(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    r = client.post("/api/v1/pipelines/render", json=_pipeline("x"), headers=heads["viewer"])
    assert r.status_code == 200 and "receivers:" in r.json()["collector_yaml"]
    broken = {**_pipeline("x"), "edges": []}
    assert is_problem(client.post("/api/v1/pipelines/render", json=broken, headers=heads["viewer"]), 422,
                      "validation")["problems"]
    client.post("/api/v1/pipelines/mine/versions", json={"pipeline": _pipeline("mine"), "message": "one"},
                headers=heads["operator"])
    r = client.get("/api/v1/pipelines/mine/versions/1/render", headers=heads["viewer"])
    assert r.headers["content-type"].startswith("application/yaml") and "receivers:" in r.text
    is_problem(client.get("/api/v1/pipelines/mine/versions/0/render", headers=heads["viewer"]), 422, "validation")


def test_diff_between_two_saved_versions(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    one = _pipeline("mine")
    two = {**one, "description": "the second one"}
    for graph, message in ((one, "one"), (two, "two")):
        assert client.post("/api/v1/pipelines/mine/versions", json={"pipeline": graph, "message": message},
                           headers=heads["operator"]).status_code == 201
    r = client.get("/api/v1/pipelines/mine/diff", params={"from": 1, "to": 2}, headers=heads["viewer"])
    assert r.status_code == 200, r.text
    assert "the second one" in r.json()["diff"] and r.json()["from_version"] == 1
    is_problem(client.get("/api/v1/pipelines/mine/diff", params={"from": 1, "to": 9}, headers=heads["viewer"]), 404,
               "not-found")
    versions = client.get("/api/v1/pipelines/mine/versions", headers=heads["viewer"]).json()
    assert [(v["number"], v["message"]) for v in versions] == [(1, "one"), (2, "two")]


def _snapshot_csv() -> bytes:
    import io

    from core.engine.fleet import generate_fleet
    from core.engine.snapshot import write_snapshot

    buf = io.BytesIO()
    write_snapshot(generate_fleet(3, 20, seed=2, scrapes=2), buf)
    return buf.getvalue()


def test_estimate_on_an_uploaded_snapshot(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    csv_bytes = _snapshot_csv()
    url = "/api/v1/pipelines/estimate"
    r = client.post(url, data={"pipeline": "process-topk-v1"}, files={"snapshot": ("fleet.csv", csv_bytes)},
                    headers=heads["viewer"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0 < body["series_out"] < body["series_in"] and body["reduction_pct"] > 0
    assert body["report"]["cost"] and body["report"]["source"] == "fleet.csv"
    by_graph = client.post(url, data={"graph": json.dumps(_pipeline("x"))}, files={"snapshot": ("f.csv", csv_bytes)},
                           headers=heads["viewer"]).json()
    assert by_graph["series_out"] == body["series_out"]
    bad = is_problem(client.post(url, data={"pipeline": "process-topk-v1"},
                                 files={"snapshot": ("bad.csv", b"host_name,nope\nh,1\n")}, headers=heads["viewer"]),
                     422, "validation")
    assert "column" in bad["detail"]
    is_problem(client.post(url, files={"snapshot": ("f.csv", csv_bytes)}, headers=heads["viewer"]), 422, "validation")
    is_problem(client.post(url, data={"graph": "{nope"}, files={"snapshot": ("f.csv", csv_bytes)},
                           headers=heads["viewer"]), 422, "validation")
    is_problem(client.post(url, data={"pipeline": "nope"}, files={"snapshot": ("f.csv", csv_bytes)},
                           headers=heads["viewer"]), 404, "not-found")


def test_the_snapshot_route_alone_takes_a_body_above_the_json_limit(svc: Any, heads: dict[str, dict[str, str]]) -> None:
    client = TestClient(create_app(svc, env={}, max_body_bytes=2000), raise_server_exceptions=False)
    csv_bytes = _snapshot_csv()
    assert len(csv_bytes) > 2000
    r = client.post("/api/v1/pipelines/estimate", data={"pipeline": "process-topk-v1"},
                    files={"snapshot": ("f.csv", csv_bytes)}, headers=heads["viewer"])
    assert r.status_code == 200, r.text
    is_problem(client.post("/api/v1/pipelines/validate", json={**_pipeline("x"), "description": "x" * 3000},
                           headers=heads["viewer"]), 413, "too-large")


# ------------------------------------------------------------------ settings, price cards

def test_price_cards_need_if_match_and_refuse_a_stale_one(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    r = client.get("/api/v1/price-cards", headers=heads["viewer"])
    tag, cards = r.headers["ETag"], r.json()["cards"]
    assert r.json()["source"] == "default" and cards
    changed = [{**cards[0], "id": "edited"}, *cards[1:]]
    url = "/api/v1/price-cards"
    is_problem(client.put(url, json={"cards": changed}, headers=heads["admin"]), 428, "precondition-required")
    is_problem(client.put(url, json={"cards": changed}, headers={**heads["operator"], "If-Match": tag}), 403,
               "forbidden")
    ok = client.put(url, json={"cards": changed}, headers={**heads["admin"], "If-Match": tag})
    assert ok.status_code == 200, ok.text
    assert ok.json()["source"] == "database" and ok.headers["ETag"] != tag and ok.json()["cards"][0]["id"] == "edited"
    # the first tag is stale now: a second admin working from it is refused, nothing is overwritten
    is_problem(client.put(url, json={"cards": cards}, headers={**heads["admin"], "If-Match": tag}), 412,
               "precondition-failed")
    assert client.get(url, headers=heads["viewer"]).json()["cards"][0]["id"] == "edited"
    is_problem(client.put(url, json={"cards": [{"id": "x"}]}, headers={**heads["admin"], "If-Match": ok.headers["ETag"]}),
               422, "validation")


def test_settings_are_admin_only_and_never_show_a_password(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    is_problem(client.get("/api/v1/settings", headers=heads["operator"]), 403, "forbidden")
    r = client.put("/api/v1/settings/prometheus_url", json={"value": "http://scraper:hunter2@prom:9090"},
                   headers=heads["admin"])
    assert r.status_code == 200 and "hunter2" not in r.text and r.json()["source"] == "database"
    listing = client.get("/api/v1/settings", headers=heads["admin"])
    assert "hunter2" not in listing.text
    assert {s["name"] for s in listing.json()} >= {"prometheus_url", "retention_days", "price_cards"}
    assert client.put("/api/v1/settings/retention_days", json={"value": 12}, headers=heads["admin"]).json()["value"] == 12
    is_problem(client.put("/api/v1/settings/retention_days", json={"value": -1}, headers=heads["admin"]), 422,
               "validation")
    back = client.put("/api/v1/settings/retention_days", json={"value": None}, headers=heads["admin"]).json()
    assert back["source"] == "default"
    is_problem(client.put("/api/v1/settings/nope", json={"value": 1}, headers=heads["admin"]), 422, "validation")


# ------------------------------------------------------------------ users, tokens, audit, shares

def test_users_are_managed_by_an_admin(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    a = heads["admin"]
    r = client.post("/api/v1/users", json={"name": "dana", "role": "operator", "password": "a long passphrase"},
                    headers=a)
    assert r.status_code == 201 and r.json()["role"] == "operator" and "password" not in r.text
    is_problem(client.post("/api/v1/users", json={"name": "dana", "role": "viewer", "password": "a long passphrase"},
                           headers=a), 422, "validation")
    assert client.put("/api/v1/users/dana/role", json={"role": "viewer"}, headers=a).json()["role"] == "viewer"
    assert client.post("/api/v1/users/dana/disable", headers=a).json()["disabled"] is True
    refused = client.post("/api/v1/auth/token", data={"username": "dana", "password": "a long passphrase"})
    assert refused.status_code == 401
    assert client.post("/api/v1/users/dana/enable", headers=a).json()["disabled"] is False
    client.put("/api/v1/users/dana/password", json={"password": "another passphrase"}, headers=a)
    assert client.post("/api/v1/auth/token", data={"username": "dana", "password": "another passphrase"}).status_code == 200
    is_problem(client.get("/api/v1/users/nobody", headers=a), 404, "not-found")
    is_problem(client.put("/api/v1/users/dana/password", json={"password": "short"}, headers=a), 422, "validation")
    assert "dana" in [u["name"] for u in client.get("/api/v1/users", headers=a).json()]


def test_tokens_show_their_secret_once_and_are_revoked_by_their_owner(client: TestClient,
                                                                       heads: dict[str, dict[str, str]]) -> None:
    made = client.post("/api/v1/tokens", json={"name": "ci", "ttl": "1h"}, headers=heads["operator"])
    assert made.status_code == 201 and made.json()["secret"].startswith("phx_") and made.json()["role"] == "operator"
    secret, tid = made.json()["secret"], made.json()["id"]
    listed = client.get("/api/v1/tokens", headers=heads["operator"])
    assert [t["id"] for t in listed.json()] == [tid] and secret not in listed.text
    is_problem(client.post("/api/v1/tokens", json={"name": "up", "role": "admin"}, headers=heads["operator"]), 422,
               "validation")
    is_problem(client.delete(f"/api/v1/tokens/{tid}", headers=heads["viewer"]), 403, "forbidden")  # not theirs
    is_problem(client.get("/api/v1/tokens", params={"everyone": True}, headers=heads["operator"]), 403, "forbidden")
    assert tid in [t["id"] for t in client.get("/api/v1/tokens", params={"everyone": True},
                                                headers=heads["admin"]).json()]
    assert client.delete(f"/api/v1/tokens/{tid}", headers=heads["operator"]).json()["revoked_at"]
    is_problem(client.get("/api/v1/experiments", headers={"Authorization": f"Bearer {secret}"}), 401, "unauthenticated")


def test_audit_lists_the_api_changes_for_admins_only(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    eid = client.post("/api/v1/experiments", json=NEW, headers=heads["operator"]).json()["id"]
    entries = client.get("/api/v1/audit", params={"subject": eid}, headers=heads["admin"]).json()["items"]
    assert [(e["action"], e["actor"], e["source"]) for e in entries] == [("experiment.create", "operator", "api")]
    for i in range(3):
        client.post("/api/v1/experiments", json={**NEW, "name": f"a{i}"}, headers=heads["operator"])
    by_operator = client.get("/api/v1/audit", params={"by": "operator"}, headers=heads["admin"]).json()["items"]
    assert {e["actor"] for e in by_operator} == {"operator"}  # four creates and the sign-in
    assert [e["action"] for e in by_operator].count("experiment.create") == 4
    walked: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"by": "operator", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/audit", params=params, headers=heads["admin"]).json()
        walked += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    assert walked == by_operator  # newest first, no gaps, no repeats
    experiments_cursor = client.get("/api/v1/experiments", params={"limit": 1},
                                    headers=heads["viewer"]).json()["next_cursor"]
    is_problem(client.get("/api/v1/audit", params={"cursor": experiments_cursor}, headers=heads["admin"]), 422,
               "validation")  # a cursor of another listing
    is_problem(client.get("/api/v1/audit", headers=heads["operator"]), 403, "forbidden")


def test_share_links_are_created_listed_and_revoked(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    eid = client.post("/api/v1/experiments", json=NEW, headers=heads["operator"]).json()["id"]
    made = client.post("/api/v1/shares", json={"kind": "experiment", "ref": eid, "ttl": "1d"}, headers=heads["operator"])
    assert made.status_code == 201 and "share=" in made.json()["url"]
    listed = client.get("/api/v1/shares", params={"kind": "experiment", "ref": eid}, headers=heads["viewer"])
    assert [s["id"] for s in listed.json()] == [made.json()["id"]] and "url" not in listed.json()[0]
    is_problem(client.post("/api/v1/shares", json={"kind": "experiment", "ref": "exp-nope"}, headers=heads["operator"]),
               404, "not-found")
    is_problem(client.post("/api/v1/shares", json={"kind": "experiment", "ref": eid, "ttl": "forever"},
                           headers=heads["operator"]), 422, "validation")
    revoked = client.delete(f"/api/v1/shares/{made.json()['id']}", headers=heads["operator"]).json()
    assert revoked["revoked_at"]


# ------------------------------------------------------------------ the OpenAPI document

def test_openapi_declares_security_errors_and_examples_on_every_route(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert schemes["apiToken"] == {**schemes["apiToken"], "type": "http", "scheme": "bearer"}
    for path, operations in doc["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            public = op["x-phoenix-permission"] == "public"
            assert public or op["security"] == [{"OAuth2PasswordBearer": []}, {"apiToken": []}], where
            need = {"422", "429"} | (set() if public else {"401", "403"})
            assert need <= set(op["responses"]), where
            for status, answer in op["responses"].items():
                if status[0] in "45":
                    assert list(answer["content"]) == ["application/problem+json"], (where, status)
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                schema = body["schema"]
                # one model, an optional one (anyOf with null) or one model per kind (oneOf): each has examples
                members = [schema] if "$ref" in schema else schema.get("anyOf", schema.get("oneOf", []))
                refs = [m["$ref"].rsplit("/", 1)[1] for m in members if "$ref" in m]
                assert refs, where
                for ref in refs:
                    assert doc["components"]["schemas"][ref].get("examples"), (where, ref)
                assert "413" in op["responses"], where


def test_every_request_example_is_accepted_by_its_model_and_the_domain() -> None:
    import core.api.schemas as schemas
    from core.cost import parse_price_cards

    checked = 0
    for model in vars(schemas).values():
        if isinstance(model, type) and issubclass(model, schemas.BaseModel) and model.__module__ == schemas.__name__:
            for example in (model.model_config.get("json_schema_extra") or {}).get("examples", []):  # type: ignore[union-attr]
                model.model_validate(example)
                checked += 1
    assert checked >= 10
    version = schemas.PipelineVersionIn.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
    assert Pipeline.from_dict(version["pipeline"]).name == "my-topk"
    cards = schemas.PriceCardsIn.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
    assert parse_price_cards(cards, "example")


def test_a_wrong_method_is_405_naming_every_method_of_the_path(client: TestClient,
                                                               heads: dict[str, dict[str, str]]) -> None:
    r = client.request("PATCH", "/api/v1/users", headers=heads["admin"])
    assert is_problem(r, 405, "method-not-allowed") and r.headers["allow"] == "GET, POST"


def test_a_body_that_is_not_utf8_json_is_400(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    r = client.put("/api/v1/users/viewer/role", content=b"\xd1\x90U/\xff{", headers={
        **heads["admin"], "Content-Type": "application/json"})
    assert is_problem(r, 400, "bad-request")


def test_the_price_cards_cannot_bypass_if_match_through_settings(client: TestClient,
                                                                 heads: dict[str, dict[str, str]]) -> None:
    is_problem(client.put("/api/v1/settings/price_cards", json={"value": None}, headers=heads["admin"]), 422,
               "validation")


def test_json_that_is_no_pipeline_is_refused_in_the_domains_words(client: TestClient,
                                                                   heads: dict[str, dict[str, str]]) -> None:
    # what 'phoenix --server … pipeline validate' prints: the same sentences as the local command,
    # though the OpenAPI document now spells the shape out too (PipelineJSON)
    body = is_problem(client.post("/api/v1/pipelines/validate", json={"name": "x", "nodes": "bad"},
                                  headers=heads["viewer"]), 422, "validation")
    assert body["problems"] == ["nodes must be a list"]
    twice = {"name": "x", "nodes": [{"id": "a", "type": "hostmetrics"}, {"id": "a", "type": "hostmetrics"}]}
    body = is_problem(client.post("/api/v1/pipelines/validate", json=twice, headers=heads["viewer"]), 422, "validation")
    assert body["problems"] == ["duplicate node id 'a'"]
