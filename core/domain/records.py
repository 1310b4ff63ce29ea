"""Plain records the store hands out besides experiments (read models, no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PipelineVersionRecord:
    """One immutable, numbered version of a named pipeline."""

    pipeline: str
    number: int
    graph: dict[str, Any]
    collector_yaml: str
    commit_id: str | None
    message: str
    author: str
    created_at: datetime
    computed: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.pipeline}@{self.number}"


@dataclass(frozen=True)
class PipelineRecord:
    name: str
    description: str
    builtin: bool
    created_at: datetime
    latest_version: int | None = None


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    subject: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # ui | cli | api | scheduler | operator | share ("" for entries before accounts)
    before: Any = None  # the target's state before the change (JSON), when it had one
    after: Any = None


@dataclass(frozen=True)
class CollectorProcess:
    id: int
    owner_ref: str  # experiment id or 'production'
    role: str
    pid: int
    port: int | None
    started_at: datetime
    status: str


@dataclass(frozen=True)
class ShareLinkRecord:
    """A read-only link to one experiment or one pipeline version (``scope_ref`` is ``NAME@N``)."""

    id: str
    scope_kind: str  # "experiment" | "pipeline"
    scope_ref: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "active"


@dataclass(frozen=True)
class SnapshotRecord:
    """A stored process snapshot (``process_snapshots``): the history intelligent learns from.

    ``scope`` names a history (a fleet, a cluster); ``taken_at`` is the snapshot's last
    scrape. The data itself (Parquet) is read separately: listings never load it.
    """

    id: int
    scope: str
    taken_at: datetime
    added_at: datetime
    added_by: str
    source: str
    hosts: int
    rows: int
    scrapes: int
    sha256: str
    size_bytes: int
