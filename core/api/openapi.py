"""The OpenAPI document, finished: problem+json error bodies, both bearer schemes, examples.

Each route declares the errors it can answer (``core.api.routes._common.needs``). What no
route can see is added here:

- FastAPI files every response model under ``application/json``; errors are answered as
  ``application/problem+json`` (``core.api.problems``), so the document says that, with an
  example of each and the headers that come with it (``Retry-After``, ``WWW-Authenticate``).
- Any operation can fail with a 500 (a bug, logged with its traceback; the answer says no
  more), so every operation documents one. FastAPI's own ``HTTPValidationError`` 422 is
  never sent (the handler answers problem+json) and goes.
- A protected route takes an access JWT from the password flow or a ``phx_`` API token: both
  are bearer credentials, declared as two alternatives.
- ``/metrics`` answers the Prometheus text format, not JSON.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from core.api.problems import HTTP_CODES, MEDIA_TYPE, TITLES, TYPE_PREFIX

OAUTH2 = "OAuth2PasswordBearer"
API_TOKEN = "apiToken"

_RETRY_AFTER = {"description": "seconds to wait before trying again", "schema": {"type": "integer", "minimum": 1}}
_WWW_AUTHENTICATE = {"description": '`Bearer realm="phoenix"`', "schema": {"type": "string"}}
#: status → the headers that answer carries
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": _WWW_AUTHENTICATE, "Retry-After": _RETRY_AFTER},
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}
#: status → an example detail (docs/api.md lists every code)
EXAMPLES = {
    400: "There was an error parsing the body", 401: "sign in: send 'Authorization: Bearer <token>'",
    403: "viewer may not experiment.create", 404: "no experiment with id 'exp-0000'",
    409: "experiment exp-0000 is Completed: it cannot be cancelled",
    412: "experiment exp-0000 is at version 4, not 3; GET it again and decide",
    413: "the request body is larger than 1048576 bytes", 422: "duration_s: must be at least 10",
    428: "send If-Match with the ETag of the experiment (from GET)", 429: "slow down: try again in 1 s",
    500: "the server failed to answer this request; it has been logged", 503: "the database does not answer",
}
INTERNAL = "a bug: logged with its traceback on the server; the answer says no more"


def _problem_example(status: int) -> dict[str, Any]:
    code = HTTP_CODES.get(status, "error")
    example: dict[str, Any] = {"type": TYPE_PREFIX + code, "title": TITLES.get(code, code), "status": status,
                               "detail": EXAMPLES.get(status, code)}
    if status == 422:
        example["problems"] = [example["detail"]]
    return example


def _as_problem(status: int, answer: dict[str, Any], problem_schema: dict[str, Any]) -> None:
    content = answer.get("content") or {}
    # whatever the route's own media type (YAML, a file), its errors are problem+json
    schema = next(iter(content.values()), {}).get("schema", problem_schema)
    if schema.get("$ref", "").endswith("/HTTPValidationError"):
        schema = problem_schema
    answer["content"] = {MEDIA_TYPE: {"schema": schema, "example": _problem_example(status)}}
    if status in HEADERS:
        answer["headers"] = copy.deepcopy(HEADERS[status])


def document(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {})
    schemes = components.setdefault("securitySchemes", {})
    schemes[API_TOKEN] = {"type": "http", "scheme": "bearer",
                          "description": "an API token (phx_…) from POST /api/v1/tokens or 'phoenix token create'"}
    problem_schema = {"$ref": "#/components/schemas/Problem"}
    for operations in doc.get("paths", {}).values():
        for op in operations.values():
            responses = op.setdefault("responses", {})
            responses.setdefault("500", {"description": INTERNAL})
            for status, answer in responses.items():
                if status.isdigit() and int(status) >= 400:
                    _as_problem(int(status), answer, problem_schema)
            for param in op.get("parameters", ()):
                # optional in the code so that a missing one is a 428 (not a 422), but required all the same
                if param.get("in") == "header" and param.get("name", "").lower() == "if-match":
                    param["required"] = True
            if any(OAUTH2 in req for req in op.get("security", ())):
                op["security"] = [{OAUTH2: []}, {API_TOKEN: []}]
    metrics = doc.get("paths", {}).get("/metrics", {}).get("get")
    if metrics:
        metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"/{unused}\"" not in str(doc.get("paths")).replace("'", '"'):
            schemas.pop(unused, None)
    app.openapi_schema = doc
    return doc
