"""The OpenAPI document: what FastAPI derives from the routes, plus what it cannot see.

FastAPI documents each route's own answers. The errors come from elsewhere (the problem+json
handlers, the rate and body limits in front of every route, the sign-in dependency), so this
adds them to every operation, as ``application/problem+json`` with one ``Problem`` schema and
an example each. It only adds: a response a route declares itself keeps its description and
gains the problem body; FastAPI's own 422 (``HTTPValidationError``, never sent: the handler
answers problem+json) is replaced.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from core.api.problems import MEDIA_TYPE, TITLES, TYPE_PREFIX

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details. `type` is a stable code (docs/api.md lists them).",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "example": TYPE_PREFIX + "validation"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "problems": {"type": "array", "items": {"type": "string"},
                     "description": "validation only: every problem, one sentence each"},
    },
    "additionalProperties": True,
}

_RETRY_AFTER = {"description": "seconds to wait before trying again", "schema": {"type": "integer", "minimum": 1}}
_WWW_AUTHENTICATE = {"description": "`Bearer realm=\"phoenix\"`", "schema": {"type": "string"}}

#: status → (code, description, example detail, headers)
ERRORS: dict[int, tuple[str, str, str, dict[str, Any]]] = {
    400: ("bad-request", "The body could not be read (not JSON, not UTF-8).",
          "There was an error parsing the body", {}),
    401: ("unauthenticated", "No, a bad or an expired credential.",
          "sign in: send 'Authorization: Bearer <token>'",
          {"WWW-Authenticate": _WWW_AUTHENTICATE, "Retry-After": _RETRY_AFTER}),
    403: ("forbidden", "The role is below what the operation needs.",
          "viewer may not experiment.create", {}),
    409: ("conflict", "A concurrent change, a state that does not allow it, or a refusal (`type` says which).",
          "experiment exp-0000 is Completed: it cannot be cancelled", {}),
    404: ("not-found", "The named resource does not exist.", "no experiment with id 'exp-0000'", {}),
    413: ("too-large", "The body is larger than the limit (1 MiB).",
          "the request body is larger than 1048576 bytes", {}),
    422: ("validation", "The request is not valid; `problems` lists every reason.",
          "duration_s: must be at least 10", {}),
    429: ("rate-limited", "Over the rate budget of the client or its credential.",
          "slow down: try again in 1 s", {"Retry-After": _RETRY_AFTER}),
    500: ("internal", "A bug: logged with its traceback on the server; the answer says no more.",
          "the server failed to answer this request; it has been logged", {}),
    503: ("unavailable", "The database does not answer.", "the database does not answer",
          {"Retry-After": _RETRY_AFTER}),
}

#: Every ``/api/v1`` operation can meet these, whatever it does.
ALWAYS = (413, 422, 429, 500, 503)
#: Probes: outside the sign-in and the limits; they can still fail.
OPEN = (500,)

BEARER_SCHEME = {
    "type": "http", "scheme": "bearer",
    "description": "An API token (`phx_…`) from `phoenix token create` or the Account page, "
                   "or an access JWT from `POST /api/v1/auth/token`.",
}


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    code, default_description, detail, headers = ERRORS[status]
    example = {"type": TYPE_PREFIX + code, "title": TITLES.get(code, code), "status": status, "detail": detail}
    if status == 422:
        example["problems"] = [detail]
    answer: dict[str, Any] = {"description": description or default_description,
                              "content": {MEDIA_TYPE: {"schema": PROBLEM_REF, "example": example}}}
    if headers:
        answer["headers"] = copy.deepcopy(headers)
    return answer


def _statuses_for(path: str, method: str, operation: dict[str, Any]) -> tuple[int, ...]:
    if not path.startswith("/api/"):
        return OPEN
    statuses = list(ALWAYS)
    if "requestBody" in operation:
        statuses.append(400)  # a body that is not JSON (or not UTF-8) at all
    if operation.get("security") or "/auth/" in path:
        statuses.append(401)  # a sign-in that fails is a 401 too
    if operation.get("security"):
        statuses.append(403)
    if "{" in path:
        statuses.append(404)
    if method != "get" and operation.get("security"):
        statuses.append(409)  # any write can meet a concurrent one, a state that forbids it, a refusal
    return tuple(statuses)


def _with_problems(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status in _statuses_for(path, method, operation):
        declared = responses.get(str(status))
        if declared is None or _is_fastapi_validation(declared):
            responses[str(status)] = problem_response(status)
    for status, declared in responses.items():
        # a route's own error answers (409, 412, 428, …) are problem+json like every other
        if status.isdigit() and int(status) >= 400 and not declared.get("content"):
            declared["content"] = {MEDIA_TYPE: {"schema": PROBLEM_REF}}
    if operation.get("security"):
        # both kinds of bearer credential go in the same header
        operation["security"] = [*operation["security"], {"APIToken": []}]


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def build(app: FastAPI) -> dict[str, Any]:
    """The document of ``app``: FastAPI's, completed with the errors, the schemes and examples."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                      tags=app.openapi_tags, servers=app.servers)
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {})["APIToken"] = BEARER_SCHEME
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch"}:
                _with_problems(path, method, operation)
    metrics = doc.get("paths", {}).get("/metrics", {}).get("get")
    if metrics:
        # Prometheus text exposition, not JSON
        metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    # FastAPI's validation schemas are never sent: the handler answers problem+json
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused not in str(doc.get("paths")):
            components["schemas"].pop(unused, None)
    return doc


def install(app: FastAPI) -> None:
    """Serve :func:`build`'s document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
