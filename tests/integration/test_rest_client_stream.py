"""``core.commands.rest_client`` against a small HTTP server on loopback: the event stream parser,
reconnecting with ``Last-Event-ID``, and the one-line errors for answers that are not Phoenix's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.commands import rest_client
from core.commands.rest_client import RestClient, ServerUnreachable, parse_sse
from core.domain.errors import NotFoundError, PermanentError


def test_parse_sse_follows_the_event_stream_rules() -> None:
    lines = [": keep-alive", "", "id: 7", "event: state", 'data: {"from": "Pending",', 'data: "to": "Running"}',
             "", "data: plain text\r", "", "event: end", "data: {}", ""]
    events = list(parse_sse(iter(lines)))
    assert [(e.name, e.data, e.id) for e in events] == [
        ("state", {"from": "Pending", "to": "Running"}, "7"),
        ("message", "plain text", "7"),  # the last id stays until another one comes
        ("end", {}, "7"),
    ]


class _Stream(BaseHTTPRequestHandler):
    """First connection: a keep-alive and one event, then it drops. The next: the end event."""

    seen_last_ids: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path == "/api/v1/old":
            self._answer(404, "application/problem+json", b'{"type": "urn:phoenix:problem:not-found", '
                         b'"title": "Not found", "status": 404, "detail": "Not Found"}')
            return
        if self.path == "/api/v1/proxy":
            self._answer(502, "text/html", b"<html>bad gateway</html>")
            return
        last = self.headers.get("Last-Event-ID")
        self.seen_last_ids.append(last)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if last is None:
            self.wfile.write(b': keep-alive\n\nid: 1\nevent: state\ndata: {"to": "Running"}\n\n')
        else:
            self.wfile.write(b'id: 2\nevent: end\ndata: {"state": "Completed"}\n\n')
        self.wfile.flush()
        self.close_connection = True

    def _answer(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stream_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(rest_client, "RECONNECT_PAUSE_S", 0.0)
    _Stream.seen_last_ids = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stream)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_dropped_stream_is_reopened_where_it_stopped(stream_server: str) -> None:
    with RestClient(stream_server, token="phx_test") as client:
        events = list(client.events("/stream"))
    assert [(e.name, e.data) for e in events] == [("state", {"to": "Running"}), ("end", {"state": "Completed"})]
    assert _Stream.seen_last_ids == [None, "1"]


def test_a_missing_route_says_the_server_is_older(stream_server: str) -> None:
    with RestClient(stream_server, token="phx_test") as client, pytest.raises(NotFoundError) as err:
        list(client.events("/old"))
    assert str(err.value) == f"the server at {stream_server} has no /api/v1/old: it runs an older Phoenix"


def test_an_answer_that_is_not_phoenix_is_named(stream_server: str) -> None:
    with RestClient(stream_server, token="phx_test") as client, pytest.raises(PermanentError) as err:
        client.get("/proxy")
    assert str(err.value) == f"the server at {stream_server} answered 502 Bad Gateway to GET /api/v1/proxy"


def test_tls_to_a_plain_http_server_is_one_line(stream_server: str) -> None:
    https = stream_server.replace("http://", "https://")
    with RestClient(https, token="phx_test") as client, pytest.raises(ServerUnreachable) as err:
        client.get("/stream")
    assert str(err.value).startswith(f"cannot reach the Phoenix server at {https}: TLS failed (")
