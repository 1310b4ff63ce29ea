"""The REST API (``phoenix api``): FastAPI routes over the same services as the pages and the CLI.

Routes hold no rules of their own: they parse the request, call one service method with the
acting ``Actor`` (source ``"api"``) and shape the answer. Errors are RFC 9457 problem+json
(``core.api.problems``); auth, rate and size limits live in ``core.api.security`` and
``core.api.limits``. See docs/api.md.
"""

from core.api.app import create_app

__all__ = ["create_app"]
