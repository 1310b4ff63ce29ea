"""Structured logs: one JSON object per line, on stderr, with the ids that tie lines together.

Every Phoenix process calls :func:`configure_logging` once at its entry point (again is fine:
Streamlit reruns its script, the CLI reconfigures when a command turns out to be a server).
A line carries ``ts`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, ``process``, ``pid``,
``correlation_id``, and when known ``experiment_id``, ``trace_id``/``span_id`` (the active
OpenTelemetry span) and ``exc`` (the traceback). Fields passed with ``extra=`` are kept.

Secrets never reach a line: every URL in a message, a field or a traceback is masked with
``core.redact.mask_url``, ``token=``/``password=``-style pairs and bearer credentials are
masked, and the secrets of the URLs Phoenix is configured with (:func:`add_secret_urls`) are
scrubbed wherever a library repeats them.

``PHOENIX_LOG_FORMAT=json|text`` (json unless the caller says otherwise: the CLI's own
warnings stay readable text) and ``PHOENIX_LOG_LEVEL`` override the caller's defaults.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any, Final

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from core.observability import context
from core.redact import MASK, mask_url, redact

FORMAT_ENV: Final = "PHOENIX_LOG_FORMAT"
LEVEL_ENV: Final = "PHOENIX_LOG_LEVEL"
FORMATS: Final = ("json", "text")
PROCESSES: Final = ("api", "ui", "scheduler", "cli", "collector", "loadsim", "operator")

#: Third-party loggers held at WARNING unless the level is DEBUG (see configure_logging).
CHATTY_LOGGERS: Final = ("alembic", "apscheduler")

#: The fields every JSON line starts with, in this order (a reader's eye finds them in place).
CORE_FIELDS: Final = ("ts", "level", "logger", "message", "process", "pid", "correlation_id")

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
_SECRET_PAIR = re.compile(r"(?i)\b([\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|credential)[\w.-]*)"
                          r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")

# Record attributes of the standard library that are not "extra" fields of the caller.
# (uvicorn adds ``color_message``: the message again with terminal colour codes.)
_RESERVED: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                                    "color_message"}

#: Fields filled from the record and the context, never from a caller's text.
_OWN_FIELDS: Final = frozenset({"ts", "level", "logger", "process", "pid", "correlation_id", "experiment_id",
                                "trace_id", "span_id"})

_secret_urls: set[str] = set()
_lock = threading.Lock()


class ConfigurationError(ValueError):
    """PHOENIX_LOG_FORMAT or PHOENIX_LOG_LEVEL has a value that means nothing; the message says which."""


def add_secret_urls(*urls: str | None) -> None:
    """Remember configured URLs (database, Redis, Prometheus) whose secrets must never be logged."""
    with _lock:
        _secret_urls.update(u for u in urls if u)


#: Cheap substring checks before the regular expressions (most lines hold none of these).
_PAIR_HINTS: Final = ("pass", "pwd", "secret", "token", "key", "credential")


def scrub(text: str) -> str:
    """``text`` with URLs masked, secret pairs and bearer credentials masked, known secrets removed."""
    if not text:
        return text
    out = redact(text, *sorted(_secret_urls)) if _secret_urls else text
    if "://" in out:
        out = _URL.sub(lambda m: mask_url(m.group(0)), out)
    lowered = out.lower()
    if any(hint in lowered for hint in _PAIR_HINTS):
        out = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", out)
    if "bearer" in lowered or "basic" in lowered:
        out = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", out)
    return out


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


def _rfc3339(created: float) -> str:
    return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ContextFilter(logging.Filter):
    """Stamps each record with the process, the bound ids and the active span (for any formatter)."""

    def __init__(self, process: str):
        super().__init__()
        self.process = process

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_name = self.process
        # an id passed with extra= (a line about another experiment than the bound one) wins
        record.correlation_id = getattr(record, "correlation_id", None) or context.correlation_id()
        record.experiment_id = getattr(record, "experiment_id", None) or context.experiment_id()
        span = trace.get_current_span().get_span_context()
        record.trace_id = f"{span.trace_id:032x}" if span.is_valid else None
        record.span_id = f"{span.span_id:016x}" if span.is_valid else None
        return True


class PhoenixJsonFormatter(JsonFormatter):
    """python-json-logger with Phoenix's field names and order, and every string scrubbed."""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data.update({
            "ts": _rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": getattr(record, "process_name", None),
            "pid": record.process,
            "correlation_id": getattr(record, "correlation_id", None),
        })
        for name in ("experiment_id", "trace_id", "span_id"):
            if getattr(record, name, None):
                log_data[name] = getattr(record, name)
        if message_dict.get("exc_info"):
            log_data["exc"] = message_dict["exc_info"]
        if message_dict.get("stack_info"):
            log_data["stack"] = message_dict["stack_info"]
        taken = set(log_data) | {"process_name", "correlation_id", "experiment_id", "trace_id", "span_id"}
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in taken and not key.startswith("_"):
                log_data[key] = value

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # the fields Phoenix itself fills in hold no secrets; everything else (message, exc, extras) may
        return {k: v if k in _OWN_FIELDS else _scrub_value(v) for k, v in log_data.items()}


class PhoenixTextFormatter(logging.Formatter):
    """One readable line (time, level, logger, [correlation id], message), scrubbed like JSON."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        cid, eid = getattr(record, "correlation_id", None), getattr(record, "experiment_id", None)
        record.ids = f" [{cid}{' ' + eid if eid else ''}]" if cid or eid else ""
        return scrub(super().format(record))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at each line (test capture and Streamlit swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass  # StreamHandler.__init__ sets it; the property always answers the current stderr


def _level(level: int | str | None, env: Mapping[str, str]) -> int:
    given = env.get(LEVEL_ENV, "").strip() or level
    if given is None or given == "":
        return logging.INFO
    if isinstance(given, int):
        return given
    value = logging.getLevelName(given.upper())
    if not isinstance(value, int):
        raise ConfigurationError(f"{LEVEL_ENV}={given!r} is not a log level; use DEBUG, INFO, WARNING, ERROR "
                                 "or CRITICAL")
    return value


def _format(fmt: str | None, env: Mapping[str, str]) -> str:
    given = (env.get(FORMAT_ENV, "").strip().lower() or fmt or "json").lower()
    if given not in FORMATS:
        raise ConfigurationError(f"{FORMAT_ENV}={given!r} is not a log format; use json or text")
    return given


def configure_logging(process: str, *, level: int | str | None = None, stream: IO[str] | None = None,
                      fmt: str | None = None, keep_existing: bool = False,
                      env: Mapping[str, str] | None = None) -> logging.Handler:
    """Send every log record of this process to ``stream`` (stderr) as JSON lines (or text).

    ``process`` names the kind of process (api, ui, scheduler, cli, collector, loadsim, operator).
    ``level``/``fmt`` are the caller's defaults; ``PHOENIX_LOG_LEVEL``/``PHOENIX_LOG_FORMAT``
    in ``env`` (the environment) win over them; a value that means nothing raises
    ``ConfigurationError``. Idempotent: a second call replaces the handler the first one
    installed (never a second handler, so no line is written twice), or with
    ``keep_existing`` (Streamlit's reruns) keeps it. Returns the handler in use.
    """
    if process not in PROCESSES:
        raise ValueError(f"unknown process kind {process!r}; one of {', '.join(PROCESSES)}")
    env = os.environ if env is None else env
    root = logging.getLogger()
    with _lock:
        ours = [h for h in root.handlers if getattr(h, "_phoenix", False)]
        if keep_existing and ours:
            return ours[0]
        handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
        handler.addFilter(ContextFilter(process))
        handler.setFormatter(PhoenixJsonFormatter() if _format(fmt, env) == "json" else PhoenixTextFormatter())
        handler._phoenix = True  # type: ignore[attr-defined]  # marks ours, for the next call to replace
        new_level = _level(level, env)
        for old in ours:
            root.removeHandler(old)
        root.addHandler(handler)
        root.setLevel(new_level)
        # Libraries that narrate routine work at INFO: Alembic every schema check ("Context impl
        # SQLiteImpl.", noise around the one line a refused database gets), APScheduler two lines
        # per scheduler tick (one a second). Kept when debugging.
        for chatty in CHATTY_LOGGERS:
            logging.getLogger(chatty).setLevel(logging.NOTSET if new_level <= logging.DEBUG else logging.WARNING)
    return handler


def json_line(process: str, logger: str, message: str, *, level: int = logging.INFO) -> bytes:
    """One JSON log line as ``configure_logging`` would write it, for a file Phoenix hands to another
    program (the real collector's log): its first line then carries the bound ids."""
    record = logging.LogRecord(logger, level, __file__, 0, message, (), None)
    ContextFilter(process).filter(record)
    return (PhoenixJsonFormatter().format(record) + "\n").encode()
