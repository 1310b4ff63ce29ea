"""core.observability.logs/context: one JSON object per line, the bound ids on it, secrets never."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime

import pytest

from core.observability import context
from core.observability.logs import CORE_FIELDS, ConfigurationError, configure_logging, json_line
from core.observability.tracing import configure_tracing, reset_tracing, span

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Phoenix's handler writing JSON into a buffer; removed afterwards (the root logger is global)."""
    buf = io.StringIO()
    handler = configure_logging("api", stream=buf, fmt="json", level="DEBUG", env={})
    try:
        yield buf
    finally:
        logging.getLogger().removeHandler(handler)


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_every_line_is_one_json_object_with_the_core_fields(captured: io.StringIO) -> None:
    log = logging.getLogger("phoenix.test")
    log.info("plain %s", "line")
    with context.correlation("req-1", experiment="exp-0001"):
        log.warning("bound", extra={"attempt": 2})
    (plain, bound) = lines(captured)
    assert list(plain)[: len(CORE_FIELDS)] == list(CORE_FIELDS)
    assert plain["message"] == "plain line" and plain["level"] == "info" and plain["logger"] == "phoenix.test"
    assert plain["process"] == "api" and isinstance(plain["pid"], int) and plain["correlation_id"] is None
    assert RFC3339_UTC.fullmatch(str(plain["ts"])) and datetime.fromisoformat(str(plain["ts"])).utcoffset().seconds == 0
    assert "experiment_id" not in plain and "trace_id" not in plain and "exc" not in plain
    assert bound["correlation_id"] == "req-1" and bound["experiment_id"] == "exp-0001" and bound["attempt"] == 2


def test_an_error_carries_its_traceback_in_exc(captured: io.StringIO) -> None:
    with context.correlation("req-2"):
        try:
            {}["missing"]  # noqa: B018 - the error under test
        except KeyError:
            logging.getLogger("phoenix.test").exception("lookup failed")
    (line,) = lines(captured)
    assert line["level"] == "error" and line["correlation_id"] == "req-2"
    assert "Traceback" in str(line["exc"]) and "KeyError: 'missing'" in str(line["exc"])


def test_secrets_are_masked_in_messages_fields_and_tracebacks(captured: io.StringIO) -> None:
    log = logging.getLogger("phoenix.test")
    dsn = "postgresql+psycopg://phoenix:hunter2-secret@db.internal:5432/phoenix"
    log.warning("cannot connect to %s", dsn)
    log.info("calling with token=abc123def456 and Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
             extra={"url": "http://admin:pa55word@prom:9090/api?token=t0ps3cret"})
    try:
        raise ConnectionError(f"refused: {dsn}")
    except ConnectionError:
        log.exception("database away")
    text = captured.getvalue()
    for secret in ("hunter2-secret", "abc123def456", "eyJhbGciOiJIUzI1NiJ9", "pa55word", "t0ps3cret"):
        assert secret not in text, secret
    first, second, third = lines(captured)
    assert first["message"] == "cannot connect to postgresql+psycopg://phoenix:***@db.internal:5432/phoenix"
    assert second["url"] == "http://admin:***@prom:9090/api?token=***"
    assert "token=***" in str(second["message"]) and "Bearer ***" in str(second["message"])
    assert "phoenix:***@db.internal" in str(third["exc"])


def test_trace_and_span_ids_are_on_lines_written_inside_a_span(captured: io.StringIO) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    configure_tracing("phoenix-test", exporter=exporter)
    try:
        with span("unit of work"):
            logging.getLogger("phoenix.test").info("inside")
    finally:
        reset_tracing()
    (line,) = lines(captured)
    (finished,) = exporter.get_finished_spans()
    assert line["trace_id"] == f"{finished.context.trace_id:032x}"
    assert line["span_id"] == f"{finished.context.span_id:016x}"


def test_configuring_twice_keeps_one_handler_and_text_format_is_readable() -> None:
    root = logging.getLogger()
    first, second = io.StringIO(), io.StringIO()
    configure_logging("scheduler", stream=first, env={})
    handler = configure_logging("scheduler", stream=second, env={"PHOENIX_LOG_FORMAT": "text"})
    try:
        assert [h for h in root.handlers if getattr(h, "_phoenix", False)] == [handler]
        assert configure_logging("ui", keep_existing=True, env={}) is handler  # a Streamlit rerun
        with context.correlation("run-7"):
            logging.getLogger("phoenix.test").warning("to %s", "sqlite:///x.db?password=p4ss")
    finally:
        root.removeHandler(handler)
    assert first.getvalue() == ""
    assert re.search(r" WARNING phoenix\.test \[run-7\]: to sqlite:///x\.db\?password=\*\*\*$", second.getvalue().strip())


def test_log_settings_from_the_environment_win_and_nonsense_is_a_clear_error() -> None:
    root = logging.getLogger()
    handler = configure_logging("api", stream=io.StringIO(), level="WARNING", env={"PHOENIX_LOG_LEVEL": "debug"})
    try:
        assert root.level == logging.DEBUG
    finally:
        root.removeHandler(handler)
    with pytest.raises(ConfigurationError, match="PHOENIX_LOG_FORMAT='xml' is not a log format; use json or text"):
        configure_logging("api", env={"PHOENIX_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigurationError, match="PHOENIX_LOG_LEVEL='loud' is not a log level"):
        configure_logging("api", env={"PHOENIX_LOG_LEVEL": "loud"})


def test_the_cli_refuses_a_bad_log_format_without_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main

    monkeypatch.setenv("PHOENIX_LOG_FORMAT", "yaml")
    assert main(["db", "upgrade"]) == 2  # refused before the command touches anything
    err = capsys.readouterr().err
    assert err == "error: PHOENIX_LOG_FORMAT='yaml' is not a log format; use json or text\n"


def test_ids_from_outside_must_be_sane_tokens() -> None:
    assert context.sane_id("abc-DEF_1.2") == "abc-DEF_1.2"
    assert context.sane_id(" padded ") == "padded"
    for bad in ("", "x" * 65, "a b", "a\nb", "<script>", "é", None):
        assert context.sane_id(bad) is None, bad
    assert re.fullmatch(r"[0-9a-f]{16}", context.new_id()) and context.new_id() != context.new_id()


def test_ids_travel_to_children_in_their_environment_and_back() -> None:
    assert context.child_env({"PATH": "/bin"}) == {"PATH": "/bin"}  # nothing bound: nothing added
    with context.correlation("req-9", experiment="exp-9"):
        env = context.child_env({"PATH": "/bin"})
    assert env == {"PATH": "/bin", "PHOENIX_CORRELATION_ID": "req-9", "PHOENIX_EXPERIMENT_ID": "exp-9"}
    with context.scope():
        assert context.bind_from_env(env) == "req-9" and context.experiment_id() == "exp-9"
        assert context.bind_from_env({"PHOENIX_CORRELATION_ID": "no spaces allowed"}) is None
        assert context.correlation_id() == "req-9"  # an insane value binds nothing
    assert context.correlation_id() is None and context.experiment_id() is None  # the scope undid it all


def test_a_json_line_for_a_foreign_log_file_carries_the_bound_ids() -> None:
    with context.correlation("req-5", experiment="exp-5"):
        line = json.loads(json_line("collector", "core.runtime.local", "starting otelcol token=xyz789"))
    assert line["correlation_id"] == "req-5" and line["experiment_id"] == "exp-5"
    assert line["process"] == "collector" and line["message"] == "starting otelcol token=***"


def test_library_chatter_stays_out_unless_debugging() -> None:
    """APScheduler writes two INFO lines per scheduler tick; Alembic one per schema check."""
    for level, shown in ((logging.INFO, False), (logging.DEBUG, True)):
        out = io.StringIO()
        configure_logging("api", level=level, stream=out, env={})
        logging.getLogger("apscheduler.executors.default").info("Running job")
        logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
        logging.getLogger("apscheduler.scheduler").warning("job missed")
        text = out.getvalue()
        assert ("Running job" in text) is shown and ("Context impl" in text) is shown
        assert "job missed" in text
