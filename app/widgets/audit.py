"""The Audit page's logic, free of Streamlit: filters, paging and a CSV export safe to open.

Filters run over the newest ``FETCH_LIMIT`` entries the service returns (newest first); the
page says so when the limit is reached.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from core.domain.records import AuditEntry

FETCH_LIMIT = 5000
PAGE_SIZE = 50
COLUMNS = ("time", "actor", "source", "action", "target", "details", "before", "after")
#: A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class AuditFilter:
    actors: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    since: date | None = None  # inclusive, UTC days
    until: date | None = None  # inclusive
    target: str = ""  # substring, any case

    def matches(self, e: AuditEntry) -> bool:
        at = e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC)
        return ((not self.actors or e.actor in self.actors)
                and (not self.actions or e.action in self.actions)
                and (not self.sources or (e.source or "") in self.sources)
                and (self.since is None or at >= datetime.combine(self.since, time.min, UTC))
                and (self.until is None or at < datetime.combine(self.until + timedelta(days=1), time.min, UTC))
                and (not self.target or self.target.strip().lower() in e.subject.lower()))


def select(entries: Iterable[AuditEntry], f: AuditFilter) -> list[AuditEntry]:
    """The matching entries, newest first."""
    return sorted((e for e in entries if f.matches(e)), key=lambda e: e.at, reverse=True)


def page_of(entries: Sequence[AuditEntry], page: int, size: int = PAGE_SIZE) -> list[AuditEntry]:
    """Page ``page`` (1-based, clamped to the pages there are)."""
    page = min(max(1, page), pages(len(entries), size))
    return list(entries[(page - 1) * size: page * size])


def pages(count: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-count // size))


def _json(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def row(e: AuditEntry) -> dict[str, str]:
    return {"time": e.at.strftime("%Y-%m-%d %H:%M:%S"), "actor": e.actor, "source": e.source or "",
            "action": e.action, "target": e.subject, "details": _json(e.details or None),
            "before": _json(e.before), "after": _json(e.after)}


def safe_cell(text: str) -> str:
    """A cell a spreadsheet shows as text: a leading formula character gets a ``'`` before it."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(entries: Iterable[AuditEntry]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(COLUMNS)
    for e in entries:
        r = row(e)
        w.writerow([safe_cell(r[c]) for c in COLUMNS])
    return out.getvalue()
