"""The OpenAPI document, finished: problem+json error bodies and both bearer schemes.

FastAPI files every response model under ``application/json``; errors are answered as
``application/problem+json`` (``core.api.problems``), so the document says that. A
protected route takes an access JWT from the password flow or a ``phx_`` API token: both
are bearer credentials, declared as two alternatives.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from core.api.problems import MEDIA_TYPE

OAUTH2 = "OAuth2PasswordBearer"
API_TOKEN = "apiToken"


def document(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemes = doc.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[API_TOKEN] = {"type": "http", "scheme": "bearer",
                          "description": "an API token (phx_…) from POST /api/v1/tokens or 'phoenix token create'"}
    for operations in doc.get("paths", {}).values():
        for op in operations.values():
            for status, answer in op.get("responses", {}).items():
                content = answer.get("content", {})
                if status[:1] in "45" and content:
                    # whatever the route's own media type (YAML, a file), its errors are problem+json
                    answer["content"] = {MEDIA_TYPE: next(iter(content.values()))}
            for param in op.get("parameters", ()):
                # optional in the code so that a missing one is a 428 (not a 422), but required all the same
                if param.get("in") == "header" and param.get("name", "").lower() == "if-match":
                    param["required"] = True
            if any(OAUTH2 in req for req in op.get("security", ())):
                op["security"] = [{OAUTH2: []}, {API_TOKEN: []}]
    app.openapi_schema = doc
    return doc
