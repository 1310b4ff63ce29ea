"""JSON-ready views of domain objects: what ``--json``, downloads and reports show (stable keys)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.domain.experiment import Experiment


def experiment_to_dict(e: Experiment, promoted: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON-ready view used by ``--json`` and downloads.

    ``promoted``: the experiment's promotion record (``core.services.promotion``), added
    under ``"promoted"`` when given.
    """

    def ts(d: datetime | None) -> str | None:
        return d.isoformat() if d else None

    return {
        "id": e.id,
        "name": e.name,
        "description": e.description,
        "owner": e.owner,
        "state": e.state.value,
        "dry_run": e.dry_run,
        "baseline": str(e.baseline),
        "candidate": str(e.candidate),
        "target": e.target.to_dict(),
        "load_profile": e.load.to_dict(),
        "duration_s": e.timing.duration_s,
        "interval_s": e.timing.interval_s,
        "criteria": e.criteria.to_dict(),
        "critical_policy": e.critical_rules,
        "result": e.result,
        "error": e.error,
        "runtime_info": e.runtime_info,
        "version": e.version,
        "created_at": ts(e.created_at),
        "started_at": ts(e.started_at),
        "finished_at": ts(e.finished_at),
        "events": [ev.to_dict() for ev in e.events],
        **({"promoted": promoted} if promoted is not None else {}),
    }
