"""A small client of Phoenix's REST API (``/api/v1``), for ``phoenix --server URL``.

It speaks HTTP and JSON only: the commands and the API are sibling layers, so nothing here
imports ``core.api``. Every failure becomes the ``PhoenixError`` the local command would
raise for the same cause, worded by the server (problem+json ``detail``, ``problems``), so
the CLI prints it as one line. A server that cannot be reached (refused, timed out, TLS)
is one line naming the URL, never a traceback. Tokens are sent, never printed.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.domain.errors import (
    AuthenticationError,
    ConcurrencyError,
    NotFoundError,
    PermanentError,
    PhoenixError,
    TemporaryError,
    ValidationError,
)
from core.redact import mask_url

API = "/api/v1"
TIMEOUT_S = 10.0
#: An event stream may be quiet between keep-alives; after this long without a byte, reconnect.
STREAM_IDLE_S = 90.0
#: How often a dropped event stream is reopened (with ``Last-Event-ID``) before giving up.
STREAM_RECONNECTS = 5
RECONNECT_PAUSE_S = 1.0


class ServerUnreachable(TemporaryError):
    """No HTTP answer at all: refused, timed out, a TLS failure, a dropped connection."""


class Forbidden(PhoenixError):
    """The server refused the action for this account's role (403)."""


@dataclass(frozen=True)
class ServerEvent:
    """One server-sent event: its ``event:`` name, ``data:`` parsed as JSON, and ``id:``."""

    name: str
    data: Any
    id: str | None


def base_url(url: str) -> str:
    """The server's base URL as given to ``--server`` (``http(s)://host[:port]``), checked."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"--server: {mask_url(url)!r} is not a server URL; give its base URL, "
                              "e.g. http://127.0.0.1:8080")
    return url.strip().rstrip("/")


def _error_for(status: int, detail: str, problems: list[str]) -> PhoenixError:
    """The local error class of an HTTP error status (``core/api/problems.py`` maps them the other way)."""
    if status == 422 or status == 400:
        return ValidationError(problems or [detail])
    if status == 404:
        return NotFoundError(detail)
    if status == 401:
        return AuthenticationError(detail)
    if status == 403:
        return Forbidden(detail)
    if status in (409, 412, 428):
        return ConcurrencyError(detail)
    if status in (429, 503):
        return TemporaryError(detail)
    return PermanentError(detail)


class RestClient:
    """One server, one credential. ``token``: a ``phx_`` API token or an access token (JWT)."""

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self.url = base_url(url)
        self.shown_url = mask_url(self.url)
        self.timeout_s = timeout_s
        self._refresh_token: str | None = None
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, follow_redirects=False,
                                  headers={"Accept": "application/json"})
        if token:
            self.use_token(token)

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def use_token(self, token: str) -> None:
        self._http.headers["Authorization"] = f"Bearer {token}"

    # ------------------------------------------------------------------ sign-in

    def sign_in(self, name: str, password: str) -> None:
        """The OAuth2 password flow; the refresh token renews the access token on a long watch."""
        pair = self._send("POST", "/auth/token", data={"username": name, "password": password}).json()
        self._refresh_token = pair.get("refresh_token")
        self.use_token(pair["access_token"])

    def _refresh(self) -> bool:
        """A new access token from the refresh token, when signed in with a password."""
        if not self._refresh_token:
            return False
        pair = self._send("POST", "/auth/refresh", json={"refresh_token": self._refresh_token}).json()
        self._refresh_token = pair.get("refresh_token")
        self.use_token(pair["access_token"])
        return True

    # ------------------------------------------------------------------ requests

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None).json()

    def post(self, path: str, body: Any = None, *, headers: dict[str, str] | None = None) -> Any:
        return self.request("POST", path, json=body, headers=headers).json()

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """``method API+path``; an expired access token is renewed once."""
        try:
            return self._send(method, path, **kw)
        except AuthenticationError:
            if not self._refresh():
                raise
        return self._send(method, path, **kw)

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            answer = self._http.request(method, API + path, **kw)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if answer.status_code >= 400:
            raise self._problem(answer)
        return answer

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnreachable:
        where = f"the Phoenix server at {self.shown_url}"
        if isinstance(exc, httpx.TimeoutException):
            return ServerUnreachable(f"{where} did not answer within {self.timeout_s:g}s")
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, ssl.SSLError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, ssl.SSLError):
            why = getattr(cause, "reason", None) or cause.__class__.__name__
            return ServerUnreachable(f"cannot reach {where}: TLS failed ({why})")
        if isinstance(exc, httpx.ConnectError):
            return ServerUnreachable(f"cannot reach {where}: {_reason(exc) or 'connection failed'}")
        return ServerUnreachable(f"lost the connection to {where}: {_reason(exc) or exc.__class__.__name__}")

    def _problem(self, answer: httpx.Response) -> PhoenixError:
        body: Any = None
        if "json" in answer.headers.get("content-type", ""):
            try:
                body = answer.json()
            except ValueError:
                body = None
        if not isinstance(body, dict) or "detail" not in body:
            # not Phoenix answering (a proxy's error page, another service on that port)
            return _error_for(answer.status_code, f"the server at {self.shown_url} answered "
                              f"{answer.status_code} {answer.reason_phrase} to {answer.request.method} "
                              f"{answer.request.url.path}", [])
        detail = body["detail"] if isinstance(body["detail"], str) else json.dumps(body["detail"])
        problems = [str(p) for p in body.get("problems") or []]
        err = _error_for(answer.status_code, detail, problems)
        if answer.status_code == 404 and detail == "Not Found":
            # the route itself is missing: an older server
            err = NotFoundError(f"the server at {self.shown_url} has no {answer.request.url.path}: "
                                "it runs an older Phoenix")
        return err

    # ------------------------------------------------------------------ event streams

    def events(self, path: str) -> Iterator[ServerEvent]:
        """The server-sent events of ``API+path``, reconnecting with ``Last-Event-ID`` when dropped.

        Ends when the server closes the stream after an ``end`` event; the caller may stop earlier.
        """
        last_id: str | None = None
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
            timeout = httpx.Timeout(self.timeout_s, read=STREAM_IDLE_S)
            try:
                with self._http.stream("GET", API + path, headers=headers, timeout=timeout) as answer:
                    if answer.status_code == 401 and self._refresh():
                        continue
                    if answer.status_code >= 400:
                        answer.read()
                        raise self._problem(answer)
                    for event in parse_sse(answer.iter_lines()):
                        failures = 0
                        if event.id is not None:
                            last_id = event.id
                        yield event
                        if event.name == "end":
                            return
            except httpx.TransportError as exc:
                failures += 1
                if failures > STREAM_RECONNECTS:
                    raise self._unreachable(exc) from None
                time.sleep(RECONNECT_PAUSE_S)
                continue
            # closed without an end event (a restart, a proxy's timeout): pick up where it stopped
            failures += 1
            if failures > STREAM_RECONNECTS:
                raise ServerUnreachable(f"the event stream of {self.shown_url}{API}{path} keeps closing "
                                        "before the experiment ends")
            time.sleep(RECONNECT_PAUSE_S)


def _reason(exc: Exception) -> str:
    """``[Errno 111] Connection refused`` → ``connection refused``."""
    text = str(exc).strip()
    if "] " in text:
        text = text.split("] ", 1)[1]
    return text[:1].lower() + text[1:]


def parse_sse(lines: Iterator[str]) -> Iterator[ServerEvent]:
    """Server-sent events (the WHATWG rules): ``event:``, ``data:`` (joined by newlines), ``id:``,
    ``:`` comments; a blank line ends an event. ``data`` is JSON when it parses, else text."""
    name, data, event_id = "", [], None
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data or name:
                text = "\n".join(data)
                try:
                    payload: Any = json.loads(text) if text else None
                except ValueError:
                    payload = text
                yield ServerEvent(name or "message", payload, event_id)
            name, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment: keep-alive
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id" and "\0" not in value:
            event_id = value

