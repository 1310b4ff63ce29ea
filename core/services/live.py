"""The live view of experiments: what happened since a cursor, read from the durable log.

The log is the database: an experiment's transitions (``experiment_events``, numbered by
``seq``) and its stored samples (``measurement_samples``, by row id). A ``Cursor`` holds
both positions, so a reader that reconnects with its last cursor gets every event once: no
duplicates, no gaps. The event bus only says *when* to read again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.domain.errors import ValidationError
from core.domain.events import TransitionEvent
from core.domain.experiment import Experiment, State
from core.domain.samples import MeasurementSample

#: Most log entries one read returns; a reader further behind reads again at once.
PAGE = 500


@dataclass(frozen=True, order=True)
class Cursor:
    """``<transitions seen>.<last sample id>``: opaque to clients, stable across processes."""

    seq: int = 0
    sample_id: int = 0

    def __str__(self) -> str:
        return f"{self.seq}.{self.sample_id}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """The cursor of an SSE ``Last-Event-ID`` or ``?after=``; absent or empty: the beginning."""
        if text is None or not text.strip():
            return cls()
        seq, dot, sample = text.strip().partition(".")
        if not dot or not seq.isdigit() or not sample.isdigit() or len(text) > 40:
            raise ValidationError(f"not an event cursor: {text[:40]!r} (expected the id of an event "
                                  "this stream sent, like '3.120')")
        return cls(int(seq), int(sample))


def verdict_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The verdict, its reasons and the result's plain numbers (no nested tables)."""
    summary = {k: v for k, v in result.items()
               if k not in ("verdict", "reasons") and (v is None or isinstance(v, (str, int, float, bool)))}
    return {"verdict": result.get("verdict"), "reasons": list(result.get("reasons") or []), "summary": summary}


@dataclass(frozen=True)
class LiveItem:
    """One entry of the log in order, with the cursor just after it."""

    kind: str  # state | sample | verdict | end
    cursor: Cursor
    data: dict[str, Any]


@dataclass(frozen=True)
class LiveBatch:
    experiment_id: str
    state: str
    start: Cursor
    items: list[LiveItem] = field(default_factory=list)
    #: True when the reader is caught up and the experiment ended: the stream is over.
    finished: bool = False
    #: True when a page limit cut the read short: read again at once.
    more: bool = False

    @property
    def cursor(self) -> Cursor:
        return self.items[-1].cursor if self.items else self.start

    @property
    def news(self) -> bool:
        return bool(self.items)


def _state_data(seq: int, ev: TransitionEvent) -> dict[str, Any]:
    return {**ev.to_dict(), "seq": seq}


def _sample_data(s: MeasurementSample) -> dict[str, Any]:
    return {k: v for k, v in s.to_dict().items() if k in (
        "variant", "t", "series", "datapoints", "bytes", "collector_cpu_pct", "collector_rss_mb",
        "critical_coverage_pct")}


def batch_since(exp: Experiment, samples: list[tuple[int, MeasurementSample]], start: Cursor,
                full_page: bool) -> LiveBatch:
    """Merge the transitions after ``start.seq`` and ``samples`` (read after ``start.sample_id``)
    by time, so a chart sees a variant's samples before the transition that ended them."""
    transitions = list(enumerate(exp.events, start=1))[start.seq:]
    entries: list[tuple[Any, int, Any]] = (
        [(s.t, 0, (sid, s)) for sid, s in samples] + [(ev.at, 1, (seq, ev)) for seq, ev in transitions])
    entries.sort(key=lambda e: (e[0], e[1]))
    items: list[LiveItem] = []
    seq, sample_id = start.seq, start.sample_id
    for _, kind, payload in entries:
        if kind == 0:
            sample_id, sample = payload
            items.append(LiveItem("sample", Cursor(seq, sample_id), _sample_data(sample)))
            continue
        seq, ev = payload
        items.append(LiveItem("state", Cursor(seq, sample_id), _state_data(seq, ev)))
        if ev.to_state == State.COMPLETED.value and exp.result is not None:
            items.append(LiveItem("verdict", Cursor(seq, sample_id),
                                  {"experiment_id": exp.id, **verdict_summary(exp.result)}))
    # Over only once everything is read: a reader still paging through samples goes on.
    finished = exp.is_terminal and not full_page and seq >= len(exp.events)
    if finished:
        items.append(LiveItem("end", Cursor(seq, sample_id), {"experiment_id": exp.id, "state": exp.state.value}))
    return LiveBatch(exp.id, exp.state.value, start, items, finished, more=full_page)


@dataclass(frozen=True)
class FeedItem:
    """An entry of the all-experiments feed: ``state`` or ``verdict``; ``event_id`` is the cursor."""

    kind: str
    event_id: int
    data: dict[str, Any]


def feed_items(events: list[tuple[int, TransitionEvent]], results: dict[str, dict[str, Any]]) -> list[FeedItem]:
    items: list[FeedItem] = []
    for event_id, ev in events:
        items.append(FeedItem("state", event_id, ev.to_dict()))
        if ev.to_state == State.COMPLETED.value and ev.experiment_id in results:
            items.append(FeedItem("verdict", event_id,
                                  {"experiment_id": ev.experiment_id, **verdict_summary(results[ev.experiment_id])}))
    return items


#: How far back the feed looks again: on PostgreSQL two schedulers' transactions can commit
#: in the other order than their ids were drawn, so an id below the newest seen may still appear.
FEED_LOOKBACK = 200


class FeedPosition:
    """Where an all-experiments reader is: the newest id it sent, and the recent ids it sent.

    Each read starts ``FEED_LOOKBACK`` ids back and drops what was already sent, so a
    transition whose commit lands after a higher id's is still delivered, once.
    """

    def __init__(self, head: int) -> None:
        self.head = head
        self._sent: set[tuple[int, str]] = set()  # (event id, kind): a verdict shares its transition's id

    def read_from(self) -> int:
        return max(0, self.head - FEED_LOOKBACK)

    def prime(self, items: list[FeedItem]) -> None:
        """What the reader already has (ids up to ``head`` when it starts): never sent again."""
        self._sent.update((i.event_id, i.kind) for i in items if i.event_id <= self.head)

    def take(self, items: list[FeedItem]) -> list[FeedItem]:
        floor = self.read_from()
        fresh = [i for i in items if i.event_id > floor and (i.event_id, i.kind) not in self._sent]
        for item in fresh:
            self._sent.add((item.event_id, item.kind))
            self.head = max(self.head, item.event_id)
        floor = self.read_from()
        self._sent = {key for key in self._sent if key[0] > floor}
        return fresh
