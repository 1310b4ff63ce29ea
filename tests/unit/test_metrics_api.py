"""The REST API's /metrics: the process registry, by route template, with the scheduler's and the database's."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.api import create_app
from core.domain.experiment import State
from tests.actors import ADMIN
from tests.unit.test_api import sign_in, svc  # noqa: F401 - svc is the fixture

Samples = list[tuple[str, dict[str, str], float]]


def samples(text: str) -> Samples:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def count(found: Samples, name: str, **labels: str) -> float:
    return sum(v for n, lab, v in found if n == name and lab == labels)


def test_requests_are_labelled_by_route_template_never_by_raw_id(svc: Any) -> None:  # noqa: F811
    client = TestClient(create_app(svc, env={}), raise_server_exceptions=False)
    viewer = sign_in(client, "viewer")
    created = svc.experiments.create(ADMIN, name="m", baseline="process-baseline-v1",
                                     candidate="process-topk-v1", duration_s=30, interval_s=5)
    route = "/api/v1/experiments/{experiment_id}"
    before = samples(client.get("/metrics").text)
    assert client.get(f"/api/v1/experiments/{created.id}", headers=viewer).status_code == 200
    assert client.get("/api/v1/experiments/no-such-id", headers=viewer).status_code == 404
    text = client.get("/metrics").text
    after = samples(text)
    for status in ("200", "404"):
        assert (count(after, "phoenix_api_requests_total", method="GET", route=route, status=status)
                == count(before, "phoenix_api_requests_total", method="GET", route=route, status=status) + 1)
    assert (count(after, "phoenix_api_request_seconds_count", method="GET", route=route)
            == count(before, "phoenix_api_request_seconds_count", method="GET", route=route) + 2)
    assert created.id not in text and "no-such-id" not in text
    routes = {lab["route"] for n, lab, _ in after if n == "phoenix_api_requests_total"}
    assert all(r.startswith("/") or r == "unmatched" for r in routes)


def test_metrics_serves_the_process_registry(svc: Any) -> None:  # noqa: F811
    client = TestClient(create_app(svc, env={}), raise_server_exceptions=False)
    svc.new_scheduler().run_once()  # the embedded scheduler's metrics are this process's too
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    found = samples(r.text)
    names = {n for n, _, _ in found}
    assert {"phoenix_scheduler_ticks_total", "phoenix_scheduler_tick_seconds_count", "phoenix_database_up",
            "phoenix_experiments", "process_resident_memory_bytes"} <= names
    # the scrape-time collector installed by bootstrap reads this app's database
    assert count(found, "phoenix_database_up") == 1
    assert {lab["state"] for n, lab, _ in found if n == "phoenix_experiments"} == {s.value for s in State}

