"""Hand-made snapshots for engine tests: a few processes whose series we can count by hand."""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.catalog.frame import ResourceFrame, from_snapshot
from core.domain.pipeline import Pipeline
from core.engine.snapshot import normalise_snapshot

GiB = 1024**3
MiB = 1024**2


def proc(host: str, pid: int, name: str, *, ts: float = 1000.0, user: float = 10.0, system: float = 5.0,
         wait: float = 0.0, rss: float = 100 * MiB, vms: float = 1 * GiB, read: float | None = 1000.0,
         write: float | None = 500.0, cmdline: str | None = None, owner: str = "app", ppid: int = 1,
         num_cpus: int = 1, **extra: Any) -> dict[str, Any]:
    row = {
        "timestamp": ts, "host_name": host, "pid": pid, "parent_pid": ppid, "executable_name": name,
        "executable_path": f"/usr/bin/{name}", "command": name, "command_line": cmdline or f"{name} --run",
        "owner": owner, "cpu_time_user": user, "cpu_time_system": system, "cpu_time_wait": wait,
        "memory_usage": rss, "memory_virtual": vms, "disk_io_read": read, "disk_io_write": write,
        "num_cpus": num_cpus,
    }
    row.update(extra)
    return row


def snapshot(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return normalise_snapshot(pd.DataFrame(rows))


def frame(rows: list[dict[str, Any]]) -> ResourceFrame:
    return from_snapshot(snapshot(rows))


def two_scrapes(rows: list[dict[str, Any]], dt: float = 10.0, cpu_delta: dict[int, float] | None = None,
                ) -> list[dict[str, Any]]:
    """Each row twice: the second scrape ``dt`` later with user CPU grown by ``cpu_delta[pid]``."""
    later = []
    for r in rows:
        r2 = dict(r)
        r2["timestamp"] = r["timestamp"] + dt
        r2["cpu_time_user"] = r["cpu_time_user"] + (cpu_delta or {}).get(r["pid"], 0.0)
        later.append(r2)
    return rows + later


def pipeline(*processors: tuple[str, str, dict[str, Any]], receiver: dict[str, Any] | None = None,
             exporters: tuple[str, ...] = ("prometheus",), policy: list[dict[str, str]] | None = None) -> Pipeline:
    """receiver → processors (id, type, params) in order → exporters."""
    nodes = [{"id": "receiver", "type": "hostmetrics", "params": receiver or {}}]
    nodes += [{"id": i, "type": t, "params": p} for i, t, p in processors]
    nodes += [{"id": e, "type": e, "params": {}} for e in exporters]
    chain = [n["id"] for n in nodes[: 1 + len(processors)]]
    edges = [{"source": a, "target": b} for a, b in zip(chain, chain[1:], strict=False)]
    edges += [{"source": chain[-1], "target": e} for e in exporters]
    data: dict[str, Any] = {"name": "test-pipeline", "nodes": nodes, "edges": edges}
    if policy is not None:
        data["critical_policy"] = policy
    return Pipeline.from_dict(data)


# A tiny policy: postgres is critical, java high, everything else low.
POLICY = [
    {"match": "executable_name", "pattern": "^postgres$", "priority": "critical"},
    {"match": "executable_name", "pattern": "^java$", "priority": "high"},
]
