"""The OpenAPI document names the errors every operation can answer, as problem+json, and both credentials."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from core.api import create_app

PROBLEM = "application/problem+json"


def _doc(memory_services: Any) -> dict[str, Any]:
    answer = TestClient(create_app(memory_services, env={})).get("/openapi.json")
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]


def test_every_signed_in_operation_documents_its_errors_as_problems(memory_services: Any) -> None:
    doc = _doc(memory_services)
    signed_in = [(p, m, op) for p, m, op in _operations(doc) if op.get("security")]
    assert len(signed_in) >= 10  # the experiments, pipelines and templates routes
    for path, method, op in signed_in:
        for status in ("401", "403", "422", "429", "500", "503"):
            answer = op["responses"].get(status)
            assert answer, f"{method.upper()} {path} does not document {status}"
            assert answer["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}, (path, status)
            assert answer["content"][PROBLEM]["example"]["status"] == int(status)
        assert "Retry-After" in op["responses"]["429"]["headers"]
        assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
        # an access JWT and an API token are both bearer credentials in the same header
        assert {"apiToken": []} in op["security"]


def test_fastapis_unused_validation_answer_is_replaced(memory_services: Any) -> None:
    doc = _doc(memory_services)
    for path, method, op in _operations(doc):
        json_422 = op["responses"].get("422", {}).get("content", {}).get("application/json")
        assert json_422 is None, f"{method.upper()} {path} still documents FastAPI's HTTPValidationError"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["apiToken"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["apiToken"]["description"]}


def test_probes_are_documented_without_sign_in_and_metrics_as_text(memory_services: Any) -> None:
    paths = _doc(memory_services)["paths"]
    for probe in ("/healthz", "/readyz", "/metrics"):
        op = paths[probe]["get"]
        assert "security" not in op and "401" not in op["responses"] and "500" in op["responses"]
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]


def test_the_sign_in_documents_a_refused_sign_in(memory_services: Any) -> None:
    op = _doc(memory_services)["paths"]["/api/v1/auth/token"]["post"]
    assert "401" in op["responses"] and "403" not in op["responses"] and "400" in op["responses"]
