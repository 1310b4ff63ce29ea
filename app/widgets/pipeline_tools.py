"""Builder helpers with no Streamlit: render, diff and estimate a pipeline for the UI.

Each returns plain data or a readable message, so a page shows a useful panel even when
the pipeline is invalid or an optional part (Kubernetes manifests, host snapshot) is
unavailable.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import importlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml

from core.catalog.compiler import validate_graph
from core.catalog.registry import REGISTRY
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


def comparable(p: Pipeline) -> dict[str, Any]:
    """What a pipeline means, for comparing two of them: every node's params with its
    type's defaults filled in (a param left at its default and the same param written out
    are the same pipeline), and no canvas positions (moving a node changes nothing)."""
    out = p.to_dict()
    for n in out["nodes"]:
        t = REGISTRY.get(n["type"])
        n["params"] = t.with_defaults(n["params"]) if t else n["params"]
        n.pop("position", None)
    return out


def pipeline_diff(old: Pipeline, new: Pipeline, old_name: str = "previous", new_name: str = "current") -> str:
    """The real changes between two pipelines (see :func:`comparable`), as a unified diff."""
    def text(p: Pipeline) -> str:
        return yaml.safe_dump(comparable(p), sort_keys=False, allow_unicode=True)

    return unified_diff(text(old), text(new), old_name, new_name)


def graph_signature(p: Pipeline) -> str:
    """Changes whenever the pipeline's meaning changes (not when a node is dragged)."""
    return hashlib.sha1(json.dumps(comparable(p), sort_keys=True, default=str).encode()).hexdigest()


def apply_tuned(p: Pipeline, report: dict[str, Any]) -> tuple[Pipeline, list[str]]:
    """``p`` with the thresholds / learned names the estimate computed written into its
    tunable nodes (``report["tuned_params"]``), so the YAML shown and saved carries them.
    Nodes that already had theirs keep them. Returns the pipeline and the ids filled."""
    out = copy.deepcopy(p)
    filled: list[str] = []
    for node_id, value in (report.get("tuned_params") or {}).items():
        node = next((n for n in out.nodes if n.id == node_id), None)
        t = REGISTRY.get(node.type) if node else None
        if node is None or t is None or not t.tunable or not value or t.is_tuned(node.params):
            continue
        node.params = {**node.params, t.tuned_param: copy.deepcopy(value)}
        filled.append(node_id)
    return out, filled


def drop_stale_tuning(type_name: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Form edits of a tuned node: thresholds computed for K=10 are wrong for K=20, so when
    any other param changes (and the computed one was not edited itself) they are dropped
    and the next estimate computes them again."""
    t = REGISTRY.get(type_name)
    if t is None or not t.tunable:
        return new
    key = t.tuned_param
    others_changed = any(t.with_defaults(old).get(q.name) != t.with_defaults(new).get(q.name)
                         for q in t.params if q.name != key)
    if others_changed and old.get(key) == new.get(key) and new.get(key):
        return {k: v for k, v in new.items() if k != key}
    return new


def untuned_nodes(p: Pipeline) -> list[str]:
    """Tunable nodes still on their documented defaults (nothing computed from data yet)."""
    return [n.id for n in p.nodes
            if (t := REGISTRY.get(n.type)) is not None and t.tunable and not t.is_tuned(n.params)]


def node_figures(report: dict[str, Any], p: Pipeline) -> dict[str, tuple[int, int]]:
    """Series in → out per node from an estimate report; each exporter sends what the
    chain outputs (the engine reports processors and the receiver)."""
    out = {str(n["node_id"]): (int(n["series_in"]), int(n["series_out"])) for n in report.get("nodes") or []}
    for n in p.nodes:
        t = REGISTRY.get(n.type)
        if t is not None and t.kind == "exporter" and n.id not in out:
            out[n.id] = (int(report["series_out"]), int(report["series_out"]))
    return out


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
