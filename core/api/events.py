"""Live experiment events as Server-Sent Events (docs/api.md, "Live events").

``GET /api/v1/experiments/{id}/events`` replays an experiment's log after a cursor, then
follows it live until the experiment ends; ``GET /api/v1/events`` follows every
experiment's transitions and verdicts. Both read the database through the experiments
service: the event bus only wakes a stream early, and without a notice a stream reads again
every ``POLL_S`` (a scheduler in another process without Redis), so nothing is missed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from core.api.routes._common import needs
from core.api.routes.experiments import ExperimentId
from core.api.schemas import EXPERIMENT_EVENT_ID, FEED_EVENT_ID
from core.api.security import ActorDep, current_actor, oauth2
from core.bootstrap import Services
from core.domain.accounts import Actor
from core.domain.errors import PhoenixError, TemporaryError, ValidationError
from core.domain.ports import Subscription
from core.services.experiments import ExperimentService
from core.services.live import Cursor, FeedPosition, LiveBatch

#: Longest a stream waits for a notice before it reads the log anyway.
POLL_S = 1.0
#: A comment line this often keeps proxies and clients from timing the stream out.
KEEPALIVE_S = 15.0
#: How often an open stream re-checks its credential and role.
REAUTH_S = 60.0
#: Open streams one API process serves at most (each holds a worker thread while it waits).
MAX_STREAMS = 100
#: A stream closes after this long; its client reconnects with ``Last-Event-ID`` and loses
#: nothing. Long-lived connections then spread over replicas again and old ones don't pile up.
LIFETIME_S = 3600.0
MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

EXPERIMENT_STREAM_DOC = """\
Server-Sent Events (`text/event-stream`) of one experiment: first every event after the
cursor (`Last-Event-ID` header, or `?after=`; neither: from the beginning), then live.

* `event: state` — a transition: `experiment_id`, `from`, `to`, `actor`, `reason`, `at`, `seq`
* `event: sample` — a stored measurement: `variant`, `t`, `series`, `datapoints`, `bytes`,
  `collector_cpu_pct`, `collector_rss_mb`, `critical_coverage_pct`
* `event: verdict` — when it completes: `verdict`, `reasons`, `summary` (the result's numbers)
* `event: end` — `state`, the final one; the server then closes the stream

Each event's `id:` is an opaque cursor; reconnecting with it as `Last-Event-ID` resumes
without duplicates or gaps. `: keep-alive` comments come every 15 s.
"""

FEED_DOC = """\
Server-Sent Events (`text/event-stream`) of every experiment's `state` and `verdict` events
(same data as the per-experiment stream), live only: it starts at the newest event, or after
`Last-Event-ID` when given. `: keep-alive` comments come every 15 s. The stream never ends.
"""

router = APIRouter(prefix="/api/v1", tags=["events"])
T = TypeVar("T")


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(_services)]


def end_streams_on_exit(server: Any, app: Any) -> None:
    """Make a uvicorn ``Server`` end the open event streams when it is told to stop.

    uvicorn waits for open responses before it stops, and a stream never finishes by itself:
    without this a SIGTERM would hang until the streams' clients go away.
    """
    original = server.handle_exit

    def handle_exit(sig: int, frame: Any) -> None:
        streams = getattr(app.state, "event_streams", None)
        if streams is not None:
            streams.stop.set()
        original(sig, frame)

    server.handle_exit = handle_exit


def sse(kind: str, data: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


def _experiment_chunk(batch: LiveBatch) -> str:
    # A transition to Completed is followed by its verdict at the same cursor: only the last
    # of the two carries the id, so a reader that resumes never skips the verdict.
    out: list[str] = []
    for i, item in enumerate(batch.items):
        same_as_next = i + 1 < len(batch.items) and batch.items[i + 1].cursor == item.cursor \
            and batch.items[i + 1].kind == "verdict"
        out.append(sse(item.kind, item.data, None if same_as_next else str(item.cursor)))
    return "".join(out)


class StreamGate:
    """Open streams of one API process: a thread budget of their own, and a cap.

    A waiting stream holds a worker thread. Drawing those from a limiter of their own keeps
    open streams from using up the threads every other (sync) route runs on.
    """

    def __init__(self, max_streams: int = MAX_STREAMS, lifetime_s: float = LIFETIME_S) -> None:
        self.max_streams = max_streams
        self.lifetime_s = lifetime_s
        self.open = 0
        self.stop = threading.Event()  # set on shutdown: open streams end within POLL_S
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # created on the server's event loop, on first use
            self._limiter = anyio.CapacityLimiter(self.max_streams)
        return self._limiter

    def admit(self) -> None:
        if self.open >= self.max_streams:
            raise TemporaryError(f"this API process already serves {self.max_streams} event streams; "
                                 "try again later or use another replica")
        self.open += 1

    def leave(self) -> None:
        self.open -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        # abandon_on_cancel: a client that goes away ends the stream at once; the thread
        # finishes its (at most POLL_S) wait on its own.
        return await anyio.to_thread.run_sync(lambda: fn(*args), abandon_on_cancel=True, limiter=self.limiter)

    async def wait(self, sub: Subscription) -> str | None:
        """Wait for a notice or the poll interval: 'bus', 'poll', or None when the server stops."""
        if self.stop.is_set():
            return None
        notices = await self.run(sub.wait, POLL_S)
        if self.stop.is_set():
            return None
        return "bus" if notices else "poll"


def gate(request: Request) -> StreamGate:
    found = getattr(request.app.state, "event_streams", None)
    if found is None:
        found = request.app.state.event_streams = StreamGate()
    return found  # type: ignore[no-any-return]


@dataclass
class _Reader:
    """What one open stream needs: who reads (re-checked every ``REAUTH_S``), and how to wait."""

    gate: StreamGate
    sub: Subscription
    actor: Actor
    reauthenticate: Callable[[], Actor]
    checked_at: float = field(default_factory=time.monotonic)
    opened_at: float = field(default_factory=time.monotonic)

    async def still_allowed(self) -> bool:
        """A revoked token, a disabled account or a lowered role ends the stream (the client's
        reconnect then gets the 401 or 403), at most ``REAUTH_S`` after the change; so does
        reaching the stream's lifetime (the client reconnects and resumes)."""
        if time.monotonic() - self.opened_at >= self.gate.lifetime_s:
            return False
        if time.monotonic() - self.checked_at < REAUTH_S:
            return True
        self.checked_at = time.monotonic()
        try:
            self.actor = await self.gate.run(self.reauthenticate)
        except PhoenixError:
            return False
        return True


def _cursor(last_event_id: str | None, after: str | None) -> str | None:
    return last_event_id if last_event_id not in (None, "") else after


#: One event of a stream (OpenAPI 3.1 puts each event's shape under ``schema``): its ``data`` is JSON text.
SSE_EVENT = {"type": "object", "required": ["data"], "properties": {
    "event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"}}}
STREAM_ANSWER = {200: {"content": {MEDIA_TYPE: {"schema": SSE_EVENT}}, "description": "the event stream"}}


@router.get("/experiments/{experiment_id}/events", response_class=StreamingResponse,
            summary="Live events of one experiment (SSE)", description=EXPERIMENT_STREAM_DOC,
            **needs("experiment.read", 404, ok=STREAM_ANSWER))
async def experiment_events(
    experiment_id: ExperimentId, actor: ActorDep, services: ServicesDep, request: Request,
    credential: Annotated[str | None, Depends(oauth2)],
    after: Annotated[str | None, Query(pattern=EXPERIMENT_EVENT_ID,
                                       description="resume after this event id (when no Last-Event-ID)")] = None,
    last_event_id: Annotated[str | None, Header(pattern=EXPERIMENT_EVENT_ID,
                                                description="the id of the last event received, e.g. 3.120")] = None,
) -> StreamingResponse:
    cursor = Cursor.parse(_cursor(last_event_id, after))
    streams = gate(request)
    streams.admit()
    # Subscribe before the first read, so a change committed in between wakes us.
    sub = services.experiments.watch(actor, experiment_id)
    try:
        first = await streams.run(services.experiments.events_since, actor, experiment_id, cursor)
    except BaseException:  # 404 / 403 answer as problems; nothing stays open
        sub.close()
        streams.leave()
        raise
    reader = _Reader(streams, sub, actor, lambda: current_actor(request, credential))
    return StreamingResponse(_follow(reader, services.experiments, first), media_type=MEDIA_TYPE, headers=HEADERS)


async def _follow(reader: _Reader, experiments: ExperimentService, batch: LiveBatch) -> AsyncIterator[str]:
    try:
        yield _experiment_chunk(batch)
        idle_s = 0.0
        while not batch.finished:
            woke = "page" if batch.more else await reader.gate.wait(reader.sub)
            if woke is None or not await reader.still_allowed():
                return
            batch = await reader.gate.run(experiments.events_since, reader.actor, batch.experiment_id, batch.cursor)
            if batch.news:
                idle_s = 0.0
                yield f": wake={woke}\n" + _experiment_chunk(batch)
            else:
                idle_s += POLL_S
                if idle_s >= KEEPALIVE_S:
                    idle_s = 0.0
                    yield ": keep-alive\n\n"
    finally:
        reader.sub.close()
        reader.gate.leave()


@router.get("/events", response_class=StreamingResponse, summary="Live state and verdict events of every "
            "experiment (SSE)", description=FEED_DOC, **needs("experiment.read", ok=STREAM_ANSWER))
async def all_events(
    actor: ActorDep, services: ServicesDep, request: Request,
    credential: Annotated[str | None, Depends(oauth2)],
    last_event_id: Annotated[str | None, Header(pattern=FEED_EVENT_ID,
                                                description="the id of the last event received")] = None,
) -> StreamingResponse:
    if last_event_id and (not last_event_id.isdigit() or len(last_event_id) > 20):
        raise ValidationError(f"not an event id of this stream: {last_event_id[:40]!r}")
    streams = gate(request)
    streams.admit()
    sub = services.experiments.watch(actor, None)
    try:
        head = int(last_event_id) if last_event_id else await streams.run(services.experiments.feed_head, actor)
    except BaseException:
        sub.close()
        streams.leave()
        raise
    reader = _Reader(streams, sub, actor, lambda: current_actor(request, credential))
    return StreamingResponse(_feed(reader, services.experiments, head), media_type=MEDIA_TYPE, headers=HEADERS)


async def _feed(reader: _Reader, experiments: ExperimentService, head: int) -> AsyncIterator[str]:
    position = FeedPosition(head)
    try:
        position.prime(await reader.gate.run(experiments.feed_since, reader.actor, position.read_from()))
        yield ": live\n\n"  # headers and a first byte at once: the client knows it is connected
        idle_s = 0.0
        woke: str | None = await reader.gate.wait(reader.sub)
        while woke is not None and await reader.still_allowed():
            items = position.take(await reader.gate.run(experiments.feed_since, reader.actor, position.read_from()))
            if items:
                idle_s = 0.0
                yield f": wake={woke}\n" + "".join(
                    sse(i.kind, i.data, None if n + 1 < len(items) and items[n + 1].event_id == i.event_id
                        else str(i.event_id)) for n, i in enumerate(items))
            else:
                idle_s += POLL_S
                if idle_s >= KEEPALIVE_S:
                    idle_s = 0.0
                    yield ": keep-alive\n\n"
            woke = await reader.gate.wait(reader.sub)
    finally:
        reader.sub.close()
        reader.gate.leave()
