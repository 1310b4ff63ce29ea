"""Stored snapshots and retraining intelligent pipelines from them (issue 16, item 2).

- ``add_snapshot``: validate a snapshot (the same reader as ``phoenix estimate``), store it
  in a scope (Parquet), keep the newest ``history_keep`` of that scope;
- ``retrain``: learn a saved pipeline's intelligent nodes again from the scope's stored
  history and save a new version **only when the learned set changes** (names kept
  fleet-wide, names kept per host); either way one audit entry says what happened;
- ``retrain_due``/``retrainable`` serve the scheduler's periodic job
  (``PHOENIX_RETRAIN_INTERVAL``, docs/configuration.md).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.domain.accounts import Actor
from core.domain.errors import ConcurrencyError, NotFoundError, ValidationError
from core.domain.pipeline import Pipeline
from core.domain.ports import UnitOfWorkFactory
from core.domain.records import SnapshotRecord
from core.domain.user_text import text_problem
from core.engine.history import combine, decode, encode
from core.engine.snapshot import load_snapshot
from core.engine.tuning import tune
from core.services.authz import mutation, query, record
from core.services.pipelines import PipelineService
from core.services.requests import AddSnapshot, RetrainPipeline, SavePipelineVersion

LAST_RETRAIN_KEY = "intelligent.retrained_at"
DEFAULT_SCOPE = "default"


@dataclass(frozen=True)
class RetrainResult:
    pipeline: str
    changed: bool
    version: int  # the new version when changed, else the one that stays
    snapshots: int
    added: dict[str, list[str]] = field(default_factory=dict)  # node id → names (host/name) now kept
    removed: dict[str, list[str]] = field(default_factory=dict)
    explanations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def learned_set(pipeline: Pipeline) -> dict[str, set[str]]:
    """Node id → what an intelligent node keeps: ``name`` (every host) and ``host/name``."""
    out: dict[str, set[str]] = {}
    for node in pipeline.chain():
        if node.type != "intelligent":
            continue
        learned = node.params.get("learned") or {}
        kept = {str(n) for n in learned.get("names") or []}
        for h, names in (learned.get("hosts") or {}).items():
            kept |= {f"{h}/{n}" for n in names}
        out[node.id] = kept
    return out


def _scope(scope: str) -> str:
    s = scope.strip()
    if not s or len(s) > 100 or text_problem(s):
        raise ValidationError(f"snapshot scope must be 1-100 plain characters, got {scope[:40]!r}")
    return s


class LearningService:
    def __init__(self, uow_factory: UnitOfWorkFactory, pipelines: PipelineService, *, history_keep: int = 48,
                 retrain_interval_s: float = 86_400.0):
        self.uow_factory = uow_factory
        self.pipelines = pipelines
        self.history_keep = history_keep
        self.retrain_interval_s = retrain_interval_s

    @mutation("snapshot.add")
    def add_snapshot(self, actor: Actor, request: AddSnapshot, data: bytes) -> SnapshotRecord:
        """Validate and store one snapshot (CSV or Parquet bytes) in ``request.scope``."""
        scope = _scope(request.scope)
        frame = load_snapshot(data)
        blob = encode(frame)
        taken = datetime.fromtimestamp(float(frame["timestamp"].max()), UTC)
        rec = SnapshotRecord(
            0, scope, taken, datetime.now(UTC), actor.name, _plain(request.source)[:200],
            int(frame["host_name"].nunique()), len(frame),
            int(frame.groupby("host_name", observed=True)["scrape"].max().median()) + 1,
            hashlib.sha256(blob).hexdigest(), len(blob))
        with self.uow_factory() as uow:
            stored = uow.snapshots.add(rec, blob)
            pruned = uow.snapshots.prune(scope, self.history_keep)
            record(uow, f"snapshot:{stored.id}", after={"scope": scope, "taken_at": taken.isoformat(),
                                                         "hosts": rec.hosts, "rows": rec.rows},
                   details={"pruned": pruned, "source": rec.source})
            uow.commit()
        return stored

    @query("pipeline.read")
    def snapshots(self, actor: Actor, scope: str | None = None, limit: int = 100) -> list[SnapshotRecord]:
        with self.uow_factory() as uow:
            return uow.snapshots.list(None if scope is None else _scope(scope), limit=limit)

    def _history(self, scope: str) -> tuple[Any, int]:
        with self.uow_factory() as uow:
            recs = uow.snapshots.list(scope, limit=self.history_keep)
            blobs = [uow.snapshots.data(r.id) for r in recs]
        if not recs:
            raise ValidationError(f"no snapshots stored in scope {scope!r}: add some with "
                                  f"`phoenix snapshot add FILE --scope {scope}`")
        return combine([decode(b) for b in reversed(blobs)]), len(recs)

    @mutation("pipeline.retrain")
    def retrain(self, actor: Actor, request: RetrainPipeline) -> RetrainResult:
        """Learn the saved pipeline's intelligent nodes from the scope's history; a new version
        only when what they keep changes."""
        scope = _scope(request.scope)
        current = self.pipelines.version(actor, request.pipeline)
        pipeline = Pipeline.from_dict(current.graph)
        before = learned_set(pipeline)
        if not before:
            raise ValidationError(f"pipeline {request.pipeline} has no intelligent node to retrain")
        frame, n = self._history(scope)
        source = f"{n} stored snapshot(s) of scope {scope}"
        tuned = tune(pipeline, frame, source=source)
        new = copy.deepcopy(pipeline)
        for node_id in before:  # only the intelligent nodes: other thresholds stay as saved
            new.node(node_id).params["learned"] = tuned.node(node_id).params["learned"]
        after = learned_set(new)
        added = {k: sorted(after[k] - before[k]) for k in after if after[k] - before[k]}
        removed = {k: sorted(before[k] - after[k]) for k in after if before[k] - after[k]}
        explanations = {k: list(new.node(k).params["learned"].get("explanations") or []) for k in after}
        if added or removed:
            try:
                # Against the version it learned from: two schedulers retraining at once save
                # one version between them, not the same change twice.
                saved = self.pipelines.save_version(actor, SavePipelineVersion(
                    pipeline=new, expected_version=current.number,
                    message=f"retrained intelligent from {source}: "
                            f"{sum(map(len, added.values()))} kept more, {sum(map(len, removed.values()))} fewer"))
            except ConcurrencyError as exc:
                raise ConcurrencyError(f"pipeline {current.pipeline} changed while it was retrained "
                                       f"(another scheduler or a user saved it); nothing saved: {exc}") from None
            self._stamp(actor)
            return RetrainResult(current.pipeline, True, saved.number, n, added, removed, explanations)
        with self.uow_factory() as uow:
            uow.settings.set(LAST_RETRAIN_KEY, datetime.now(UTC).isoformat(), by=actor.name)
            record(uow, current.pipeline, details={"unchanged": True, "version": current.number, "snapshots": n,
                                                   "scope": scope})
            uow.commit()
        return RetrainResult(current.pipeline, False, current.number, n, {}, {}, explanations)

    def _stamp(self, actor: Actor) -> None:
        # When the scheduler's job last ran, for every scheduler (a bookkeeping key, not a setting).
        with self.uow_factory() as uow:
            uow.settings.set(LAST_RETRAIN_KEY, datetime.now(UTC).isoformat(), by=actor.name)
            uow.commit()

    @query("pipeline.read")
    def retrainable(self, actor: Actor) -> list[str]:
        """Saved pipelines whose latest version has an intelligent node."""
        out = []
        for name in self.pipelines.names(actor):
            try:
                graph = self.pipelines.version(actor, name).graph
            except NotFoundError:
                continue
            if any(n.get("type") == "intelligent" for n in graph.get("nodes", [])):
                out.append(name)
        return out

    @query("pipeline.read")
    def retrain_due(self, actor: Actor, now: datetime) -> bool:
        """True when retraining is on (interval > 0), snapshots are stored and the last
        retrain (by any scheduler) is older than the interval."""
        if self.retrain_interval_s <= 0:
            return False
        with self.uow_factory() as uow:
            if not uow.snapshots.list(limit=1):
                return False
            last = uow.settings.get(LAST_RETRAIN_KEY)
        if not isinstance(last, str):
            return True
        try:
            return now - datetime.fromisoformat(last) >= timedelta(seconds=self.retrain_interval_s)
        except (ValueError, TypeError):
            return True


def _plain(text: str) -> str:
    return "".join(c if c.isprintable() and c != "$" else "_" for c in text)



