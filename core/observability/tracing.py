"""Traces: OpenTelemetry spans for API requests, service calls, scheduler ticks and SQL.

Nothing is traced unless asked: :func:`configure_tracing` installs an SDK tracer provider
only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (spans go there over OTLP/HTTP in batches,
configured by the standard ``OTEL_*`` variables) or when a test hands it an exporter.
Otherwise the global provider stays OpenTelemetry's no-op one and :func:`span` costs a
dictionary lookup.

Spans carry the bound correlation id and experiment id (``phoenix.correlation_id``,
``phoenix.experiment_id``), and log lines carry the active span's ids, so a trace finds its
log lines and back. SQL spans carry the statement text with its placeholders, never the
bound parameters (they can hold secrets).
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Tracer
from sqlalchemy import Engine, event

from core.observability import context

ENDPOINT_ENV: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT_ENV: Final = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
INSTRUMENTATION: Final = "phoenix"
#: Longest SQL text kept on a span: enough to recognise the statement, bounded in size.
MAX_STATEMENT: Final = 2000

P = ParamSpec("P")
R = TypeVar("R")

_provider: TracerProvider | None = None
_lock = threading.Lock()


def configure_tracing(service_name: str, *, exporter: SpanExporter | None = None,
                      env: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Trace this process as ``service_name`` (phoenix-api, phoenix-scheduler, phoenix-ui…).

    ``exporter`` (tests: an ``InMemorySpanExporter``) gets every span as it ends. Without one,
    spans go over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-only
    variable) is set, and nothing is installed at all otherwise. Returns the provider in use
    (None: not tracing). A second call with the same situation keeps the first provider.
    """
    global _provider
    env = os.environ if env is None else env
    endpoint = (env.get(TRACES_ENDPOINT_ENV) or env.get(ENDPOINT_ENV) or "").strip()
    if exporter is None and not endpoint:
        return _provider
    with _lock:
        if exporter is None and _provider is not None:
            return _provider  # Streamlit reruns, a CLI command that turns into a server
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))  # at once: tests read spans right after
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # reads the OTEL_* variables
            trace.set_tracer_provider(provider)  # once per process: libraries that trace see it too
        _provider = provider
        _instrument_sql()
    return provider


def reset_tracing() -> None:
    """Stop tracing in this process (tests): flush and drop the provider :func:`configure_tracing` made."""
    global _provider
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        _provider = None


def is_tracing() -> bool:
    return _provider is not None


def tracer() -> Tracer:
    """Phoenix's tracer: the configured provider's, else the global one (the no-op).

    Phoenix's helpers (``span``, ``traced``) trace only with a provider ``configure_tracing``
    installed; asking OpenTelemetry for the global provider on every call costs microseconds.
    """
    if _provider is not None:
        return _provider.get_tracer(INSTRUMENTATION)
    return trace.get_tracer(INSTRUMENTATION)


def _context_attributes() -> dict[str, str]:
    out: dict[str, str] = {}
    if cid := context.correlation_id():
        out["phoenix.correlation_id"] = cid
    if eid := context.experiment_id():
        out["phoenix.experiment_id"] = eid
    return out


@contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any) -> Iterator[Span]:
    """A span named ``name`` around the block, child of the active one, with the bound ids.

    An exception leaving the block is recorded on the span (and re-raised).
    """
    if _provider is None:
        yield trace.INVALID_SPAN  # not tracing: no span objects, no context switch
        return
    attrs = {**_context_attributes(), **{k: v for k, v in attributes.items() if v is not None}}
    with tracer().start_as_current_span(name, kind=kind, attributes=attrs) as current:
        yield current


def annotate(**attributes: Any) -> None:
    """Add attributes (None values skipped) to the active span, e.g. ids learnt half-way."""
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes({k: v for k, v in attributes.items() if v is not None})


def traced(name: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a service method: a span named ``Class.method`` (or ``name``) around each call.

    Attributes: ``phoenix.actor.role`` from the ``Actor`` argument (its role, never its name or
    credentials) and ``phoenix.experiment_id`` when the call names one (an ``experiment_id``
    argument or request field) or returns one (an ``Experiment``).
    """

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        span_name = name or fn.__qualname__
        params = list(inspect.signature(fn).parameters)
        eid_index = params.index("experiment_id") if "experiment_id" in params else None

        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            if _provider is None:
                return fn(*args, **kwargs)
            attrs: dict[str, Any] = {}
            for value in (*args[1:3], *kwargs.values()):
                role = getattr(value, "role", None)  # an Actor's Role (an IntEnum): its name, never who
                if isinstance(getattr(role, "name", None), str) and hasattr(value, "name"):
                    attrs["phoenix.actor.role"] = role.name.lower()  # type: ignore[union-attr]
                    break
            eid = kwargs.get("experiment_id") if eid_index is None or eid_index >= len(args) else args[eid_index]
            if eid is None:
                eid = next((a.experiment_id for a in (*args[1:], *kwargs.values())
                            if isinstance(getattr(a, "experiment_id", None), str)), None)
            with span(span_name, **attrs, **({"phoenix.experiment_id": eid} if isinstance(eid, str) else {})) as s:
                result = fn(*args, **kwargs)
                if type(result).__name__ == "Experiment" and isinstance(getattr(result, "id", None), str):
                    s.set_attribute("phoenix.experiment_id", result.id)  # type: ignore[attr-defined]
                return result

        return inner

    return wrap


def traced_service(cls: type[R]) -> type[R]:
    """Class decorator: :func:`traced` on every public method of a service class (one line per class)."""
    for attr, value in list(vars(cls).items()):
        if attr.startswith("_") or not inspect.isfunction(value):
            continue  # properties, static/class methods and helpers stay as they are
        setattr(cls, attr, traced(f"{cls.__name__}.{attr}")(value))
    return cls


# ---------------------------------------------------------------- SQL

_SQL_SPAN = "_phoenix_span"
_instrumented = False


def _instrument_sql() -> None:
    """One span per statement on every SQLAlchemy engine of this process (listeners on ``Engine``)."""
    global _instrumented
    if _instrumented:
        return
    event.listen(Engine, "before_cursor_execute", _before_execute)
    event.listen(Engine, "after_cursor_execute", _after_execute)
    event.listen(Engine, "handle_error", _on_error)
    _instrumented = True


def _before_execute(conn: Any, cursor: Any, statement: str, parameters: Any, ctx: Any, executemany: bool) -> None:
    if _provider is None or ctx is None:
        return
    operation = (statement.lstrip().split(None, 1) or ["SQL"])[0].upper()
    system = conn.engine.dialect.name
    db_span = tracer().start_span(f"{operation} {system}", kind=SpanKind.CLIENT, attributes={
        "db.system.name": system, "db.operation.name": operation,
        "db.query.text": statement[:MAX_STATEMENT], **_context_attributes()})
    setattr(ctx, _SQL_SPAN, db_span)


def _after_execute(conn: Any, cursor: Any, statement: str, parameters: Any, ctx: Any, executemany: bool) -> None:
    db_span = getattr(ctx, _SQL_SPAN, None)
    if db_span is not None:
        db_span.end()
        setattr(ctx, _SQL_SPAN, None)


def _on_error(exception_context: Any) -> None:
    ctx = exception_context.execution_context
    db_span = getattr(ctx, _SQL_SPAN, None) if ctx is not None else None
    if db_span is not None:
        db_span.set_status(trace.Status(trace.StatusCode.ERROR, type(exception_context.original_exception).__name__))
        db_span.end()
        setattr(ctx, _SQL_SPAN, None)
