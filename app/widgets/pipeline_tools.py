"""Builder helpers with no Streamlit: render, diff and estimate a pipeline for the UI.

Each returns plain data or a readable message, so a page shows a useful panel even when
the pipeline is invalid or an optional part (Kubernetes manifests, host snapshot) is
unavailable.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from core.catalog.compiler import validate_graph
from core.domain.errors import PhoenixError
from core.domain.pipeline import Pipeline
from core.numbers import human_bytes
from core.services.estimate import Estimates
from core.services.settings import SettingsService


@dataclass
class Rendered:
    collector_yaml: str | None
    manifests: dict[str, str]
    problems: list[str]
    # What the schemas and (when built) the real collector said of collector_yaml.
    collector_problems: list[str] = field(default_factory=list)
    validated_by: str = ""
    validation_notes: list[str] = field(default_factory=list)


@lru_cache(maxsize=64)
def _check(yaml_text: str) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """Cached by text: the builder reruns on every click, the collector's verdict only changes with the YAML."""
    from core.otelcol.validate import check_collector_yaml

    check = check_collector_yaml(yaml_text)
    return tuple(check.problems), check.describe(), tuple(check.notes)


def render(pipeline: Pipeline) -> Rendered:
    """Collector YAML and Kubernetes manifests, or the problems that prevent them."""
    problems = validate_graph(pipeline)
    if problems:
        return Rendered(None, {}, problems)
    from core.render.collector import render_collector

    try:
        yaml_text = render_collector(pipeline)
    except PhoenixError as exc:
        return Rendered(None, {}, [str(exc)])
    try:
        from core.render.bundle import render_bundle

        manifests = dict(render_bundle(pipeline).manifests)
    except ModuleNotFoundError:  # the Kubernetes renderer is optional for the local app
        manifests = {}
    except PhoenixError as exc:
        manifests = {"error.txt": f"Kubernetes manifests unavailable: {exc}"}
    problems_, validated_by, notes = _check(yaml_text)
    return Rendered(yaml_text, manifests, [], list(problems_), validated_by, list(notes))


def unified_diff(old: str, new: str, old_name: str = "previous", new_name: str = "current") -> str:
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=old_name, tofile=new_name)
    return "".join(lines)


def fleet_snapshot(hosts: int, procs: int, seed: int = 7) -> Any:
    from core.engine.fleet import generate_fleet

    return generate_fleet(nodes=hosts, procs=procs, seed=seed, scrapes=2)


def host_snapshot() -> Any:
    """Two psutil scrapes of this host, one second apart."""
    from core.engine.hostsnapshot import snapshot_this_host

    return snapshot_this_host(scrapes=2, interval_s=1.0)


def host_snapshot_available() -> bool:
    try:
        importlib.import_module("core.engine.hostsnapshot")
    except ModuleNotFoundError:
        return False
    return True


def run_estimate(pipeline: Pipeline, snapshot: Any, source: str,
                 configuration: SettingsService | None = None, estimates: Estimates | None = None) -> dict[str, Any]:
    """The estimate use case (``core.services.estimate``): priced and classified with what Settings
    holds; through the services' cache when ``estimates`` is given (``backend.estimates()``)."""
    return (estimates or Estimates(configuration or SettingsService(None))).report(pipeline, snapshot, source=source)


def learned_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per process intelligent keeps, with its reasons (the estimate's ``learned``)."""
    rows = []
    for node_id, info in (report.get("learned") or {}).items():
        source = "history" if info.get("mode") == "history" else "one snapshot"
        for e in info.get("explanations") or []:
            rows.append({"node": node_id, "process": e.get("name"),
                         "host": "every host" if e.get("host") == "*" else e.get("host"),
                         "why": "; ".join(e.get("reasons") or []), "anomaly score": e.get("score"),
                         "learned from": source})
        if info.get("note"):
            rows.append({"node": node_id, "process": "", "host": "", "why": info["note"], "anomaly score": None,
                         "learned from": source})
    return rows


def node_types(p: Pipeline) -> list[str]:
    """Every node's type in data order: receiver, processors, exporters (the catalogue lists these,
    and its node count is their number, so the two always agree)."""
    return [n.type for n in [p.receiver(), *p.chain(), *p.exporters()]]


def exporter_rows(exporters: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The estimate's bytes per exporter, the monthly volume in binary units (``26.0 GiB``)."""
    return [{"exporter": name, "type": e.get("type"), "encoding": e.get("encoding"),
             "bytes_per_point": e.get("bytes_per_point"), "per month": human_bytes(e.get("bytes_per_month"))}
            for name, e in exporters.items()]


def cost_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The estimate's cost projection (``core.cost.project_estimate``) as chart/table rows."""
    cost = report.get("cost") or {}
    rows: list[dict[str, Any]] = []
    for c in cost.get("cards") or []:
        label = f"{c['vendor']} — {c['plan']}" if c.get("plan") else c["vendor"]
        rows.append({"vendor": label, "before": c.get("before_usd"), "after": c.get("after_usd"),
                     "saving_usd": c.get("saving_usd"), "saving_pct": c.get("saving_pct"),
                     "source": c.get("source"), "as_of": c.get("as_of"), "note": c.get("note") or ""})
    return rows
