"""A tiny, independent reference collector for the consistency tests.

It reads a *rendered* collector config and runs it the slow, literal way — one resource
dict per process, one point dict per data point, statements interpreted one by one —
over a small snapshot. It knows nothing of the engine; if both produce the same series,
the engine computes what the YAML says. Only the OTTL subset Phoenix emits is understood;
anything else raises, so an emitter change cannot silently slip past these tests.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

DEFAULT_METRICS = {"process.cpu.time", "process.memory.usage", "process.memory.virtual", "process.disk.io"}
# metric → (data-point attribute key or None, {attribute value or None: snapshot column})
METRICS: dict[str, tuple[str | None, dict[Any, str]]] = {
    "process.cpu.time": ("state", {"user": "cpu_time_user", "system": "cpu_time_system", "wait": "cpu_time_wait"}),
    "process.memory.usage": (None, {None: "memory_usage"}),
    "process.memory.virtual": (None, {None: "memory_virtual"}),
    "process.disk.io": ("direction", {"read": "disk_io_read", "write": "disk_io_write"}),
    "process.cpu.utilization": ("state", {"user": "u_user", "system": "u_system", "wait": "u_wait"}),
    "process.threads": (None, {None: "threads"}),
    "process.open_file_descriptors": (None, {None: "open_file_descriptors"}),
    "process.disk.operations": ("direction", {"read": "disk_operations_read", "write": "disk_operations_write"}),
    "process.paging.faults": ("type", {"major": "paging_faults_major", "minor": "paging_faults_minor"}),
    "process.context_switches": ("type", {"involuntary": "context_switches_involuntary",
                                          "voluntary": "context_switches_voluntary"}),
}
RESOURCE_COLUMNS = {
    "process.pid": "pid", "process.parent_pid": "parent_pid", "process.executable.name": "executable_name",
    "process.executable.path": "executable_path", "process.command": "command",
    "process.command_line": "command_line", "process.owner": "owner",
}

_ATTR = r'resource\.attributes\["([^"]+)"\]'
_STR = r'"((?:[^"\\]|\\.)*)"'


def _unquote(s: str) -> str:
    return s.replace('\\"', '"').replace("\\\\", "\\")


def _utilisation(snapshot: pd.DataFrame) -> dict[tuple[str, int, float], dict[str, float]]:
    """Δcpu / (Δwall × num_cpus) against the same pid's previous scrape, row by row."""
    out: dict[tuple[str, int, float], dict[str, float]] = {}
    rows = snapshot.sort_values(["host_name", "pid", "timestamp"]).to_dict("records")
    for prev, cur in zip(rows, rows[1:], strict=False):
        if (prev["host_name"], prev["pid"], prev["executable_name"]) != (
                cur["host_name"], cur["pid"], cur["executable_name"]):
            continue
        dt = cur["timestamp"] - prev["timestamp"]
        deltas = {s: cur[f"cpu_time_{s}"] - prev[f"cpu_time_{s}"] for s in ("user", "system", "wait")}
        if dt <= 0 or any(d < 0 for d in deltas.values()):
            continue
        cpus = cur.get("num_cpus") or 1
        out[(cur["host_name"], cur["pid"], cur["timestamp"])] = {s: d / (dt * cpus) for s, d in deltas.items()}
    return out


def scrape(snapshot: pd.DataFrame, receiver: dict[str, Any], scrape_index: int) -> list[dict[str, Any]]:
    """Resources the hostmetrics process scraper emits for one scrape."""
    process = receiver["scrapers"]["process"]
    enabled = set(DEFAULT_METRICS)
    for m, cfg in (process.get("metrics") or {}).items():
        (enabled.add if cfg["enabled"] else enabled.discard)(m)
    attrs_off = {a for a, cfg in (process.get("resource_attributes") or {}).items() if not cfg["enabled"]}
    util = _utilisation(snapshot)
    resources = []
    for i, row in enumerate(snapshot[snapshot["scrape"] == scrape_index].to_dict("records")):
        name = row["executable_name"]
        if not _name_filter(process, name):
            continue
        u = util.get((row["host_name"], row["pid"], row["timestamp"]), {})
        row.update({f"u_{k}": v for k, v in u.items()})
        attrs = {k: row[c] for k, c in RESOURCE_COLUMNS.items() if k not in attrs_off}
        points = []
        for metric in sorted(enabled):
            key, cols = METRICS[metric]
            for value, col in cols.items():
                v = row.get(col)
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    continue
                # The real scraper stamps each process when it reads it: no two share a time.
                points.append({"metric": metric, "attrs": {key: value} if key else {}, "value": float(v),
                               "time": float(row["timestamp"]) + i * 1e-6})
        resources.append({"host": row["host_name"], "attrs": attrs, "points": points})
    return resources


def _name_filter(process: dict[str, Any], name: str) -> bool:
    def matches(spec: dict[str, Any]) -> bool:
        if spec["match_type"] == "strict":
            return name in spec["names"]
        return any(re.search(p, name) for p in spec["names"])

    if "include" in process and not matches(process["include"]):
        return False
    return not ("exclude" in process and matches(process["exclude"]))


# ---------------------------------------------------------------- conditions


def _cond(cond: str | None, res: dict[str, Any], metric: str | None = None, point: dict[str, Any] | None = None,
          ) -> bool:
    if not cond:
        return True
    return all(_atom(a.strip(), res, metric, point) for a in re.split(r"\s+and\s+", cond.strip()))


def _atom(atom: str, res: dict[str, Any], metric: str | None, point: dict[str, Any] | None) -> bool:
    attrs = res["attrs"]
    if m := re.fullmatch(_ATTR + r" == nil", atom):
        return attrs.get(m[1]) is None
    if m := re.fullmatch(_ATTR + r" != nil", atom):
        return attrs.get(m[1]) is not None
    if m := re.fullmatch(_ATTR + r" == " + _STR, atom):
        return attrs.get(m[1]) == _unquote(m[2])
    if m := re.fullmatch(_ATTR + r" != " + _STR, atom):
        return attrs.get(m[1]) != _unquote(m[2])
    if m := re.fullmatch(r"IsMatch\(" + _ATTR + r", " + _STR + r"\)", atom):
        v = attrs.get(m[1])
        return v is not None and re.search(_unquote(m[2]), str(v)) is not None
    if m := re.fullmatch(r"not IsMatch\(" + _ATTR + r", " + _STR + r"\)", atom):
        # OTTL: IsMatch on a missing attribute is false, so `not` of it is true.
        v = attrs.get(m[1])
        return v is None or re.search(_unquote(m[2]), str(v)) is None
    if m := re.fullmatch(r"name == " + _STR, atom):  # the filter processor's metric context
        return metric == _unquote(m[1])
    if m := re.fullmatch(r"metric\.name == " + _STR, atom):
        return metric == _unquote(m[1])
    if m := re.fullmatch(r"metric\.name != " + _STR, atom):
        return metric != _unquote(m[1])
    if m := re.fullmatch(r"value_int >= (\d+)", atom):
        return point is not None and point["value"] >= int(m[1])
    if m := re.fullmatch(r"value_double >= ([0-9.eE+-]+)", atom):
        return point is not None and point["value"] >= float(m[1])
    raise AssertionError(f"reference collector does not understand condition {atom!r}")


# ---------------------------------------------------------------- processors


def _split_where(stmt: str) -> tuple[str, str | None]:
    if " where " in stmt:
        head, cond = stmt.split(" where ", 1)
        return head.strip(), cond
    return stmt.strip(), None


def _transform(cfg: dict[str, Any], resources: list[dict[str, Any]]) -> None:
    for group in cfg["metric_statements"]:
        ctx = group["context"]
        for stmt in group["statements"]:
            head, cond = _split_where(stmt)
            for res in resources:
                if ctx == "resource":
                    if _cond(cond, res):
                        _edit(head, res)
                elif ctx == "datapoint":
                    for p in list(res["points"]):
                        if _cond(cond, res, p["metric"], p):
                            _edit_point(head, res, p)
                elif ctx == "metric":
                    for metric in sorted({p["metric"] for p in res["points"]}):
                        if _cond(cond, res, metric):
                            _aggregate(head, res, metric)
                else:
                    raise AssertionError(f"unknown context {ctx}")


def _edit(head: str, res: dict[str, Any]) -> None:
    attrs = res["attrs"]
    if m := re.fullmatch(r"set\(" + _ATTR + r", " + _STR + r"\)", head):
        attrs[m[1]] = _unquote(m[2])
    elif m := re.fullmatch(r"set\(" + _ATTR + r", " + _ATTR + r"\)", head):
        attrs[m[1]] = attrs.get(m[2])
    elif m := re.fullmatch(r"replace_pattern\(" + _ATTR + r", " + _STR + r", " + _STR + r"\)", head):
        if attrs.get(m[1]) is not None:
            attrs[m[1]] = re.sub(_unquote(m[2]), _unquote(m[3]), str(attrs[m[1]]))
    elif m := re.fullmatch(r"delete_key\(resource\.attributes, " + _STR + r"\)", head):
        attrs.pop(_unquote(m[1]), None)
    else:
        raise AssertionError(f"reference collector does not understand statement {head!r}")


NOW = -1.0  # what set(time, Now()) writes: one processing instant


def _edit_point(head: str, res: dict[str, Any], point: dict[str, Any]) -> None:
    if head == "set(time_unix_nano, 0)":
        point["time"] = 0.0
    elif head == "set(time, Now())":
        point["time"] = NOW
    else:
        _edit(head, res)


def _aggregate(head: str, res: dict[str, Any], metric: str) -> None:
    """aggregate_on_attributes as contrib's aggregateutil does it: points merge only when
    their attributes *and timestamps* are equal; the merged point keeps the first's time."""
    m = re.fullmatch(r'aggregate_on_attributes\("sum"(?:, \[(.*)\])?\)', head)
    if not m:
        raise AssertionError(f"reference collector does not understand statement {head!r}")
    keys = None if m[1] is None else [k.strip().strip('"') for k in m[1].split(",")]
    sums: dict[tuple, dict[str, Any]] = {}
    rest = []
    for p in res["points"]:
        if p["metric"] != metric:
            rest.append(p)
            continue
        kept = p["attrs"] if keys is None else {k: v for k, v in p["attrs"].items() if k in keys}
        k = (tuple(sorted(kept.items())), p["time"])
        if k in sums:
            sums[k]["value"] += p["value"]
        else:
            sums[k] = {"metric": metric, "attrs": dict(kept), "value": p["value"], "time": p["time"]}
    res["points"] = rest + list(sums.values())


def _filter(cfg: dict[str, Any], resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    conds = cfg.get("metrics", {}).get("metric", [])
    for res in resources:
        res["points"] = [p for p in res["points"] if not any(_cond(c, res, p["metric"]) for c in conds)]
    return [r for r in resources if r["points"]]


def _groupbyattrs(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[tuple, dict[str, Any]] = {}
    for res in resources:
        key = (res["host"], tuple(sorted((k, str(v)) for k, v in res["attrs"].items() if v is not None)))
        if key in merged:
            merged[key]["points"].extend(res["points"])
        else:
            merged[key] = {"host": res["host"], "attrs": dict(res["attrs"]), "points": list(res["points"])}
    return list(merged.values())


def run(config: dict[str, Any], snapshot: pd.DataFrame, scrape_index: int) -> list[tuple]:
    """Exported series of one scrape: sorted (host, metric, attributes, value) tuples."""
    resources = scrape(snapshot, config["receivers"]["hostmetrics"], scrape_index)
    for pid in config["service"]["pipelines"]["metrics"].get("processors", []):
        kind = pid.split("/")[0]
        cfg = config["processors"][pid]
        if kind == "transform":
            _transform(cfg, resources)
        elif kind == "filter":
            resources = _filter(cfg, resources)
        elif kind == "groupbyattrs":
            resources = _groupbyattrs(resources)
        elif kind == "resourcedetection":
            if "system" in cfg["detectors"]:
                for res in resources:
                    res["attrs"].setdefault("host.name", res["host"])
                    res["attrs"].setdefault("os.type", "linux")
        elif kind in ("memory_limiter", "batch", "interval", "cumulativetodelta"):
            continue
        else:
            raise AssertionError(f"reference collector does not know processor {pid}")
    # The prometheus exporter keeps one value per series: points with the same labels
    # overwrite each other (the last one wins).
    out: dict[tuple, tuple] = {}
    for res in resources:
        for p in res["points"]:
            attrs = {k: v for k, v in res["attrs"].items() if v is not None}
            attrs.update(p["attrs"])
            key = tuple(sorted((k, str(int(v)) if isinstance(v, int | float) and k.endswith("pid") else str(v))
                               for k, v in attrs.items()))
            out[(res["host"], p["metric"], key)] = (res["host"], p["metric"], key, p["value"])
    return sorted(out.values(), key=lambda t: t[:3])
