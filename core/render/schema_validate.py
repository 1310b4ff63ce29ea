"""Validate collector YAML against the upstream component schemas, plus Phoenix's rules.

Each component's settings are checked by ``jsonschema`` against its vendored schema,
preprocessed once into plain JSON Schema by ``core.render.otelcol_schema`` (unknown keys
are errors, Go durations, the reference's lenient types).

Rules beyond the schemas, each a small named function with its own test: processors must
support metrics; OTTL functions must exist (editors only in ``transform``); filter
keep-lists are negated and critical processes are exempt; process identity is read as
``resource.attributes[...]``; process include/exclude regexes compile in RE2;
``${env:NAME}`` is the only substitution form and secrets are never literal; two
listeners never share a port; every defined component is used and every reference defined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from core.domain.user_regex import quote_pattern, regex_problem
from core.render.otelcol_schema import SCHEMA_ROOT, component_key, known_types, problems

RANKING_ONLY = 'name == "process.cpu.utilization"'  # core.catalog.adaptive's ranking-metric filter

KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")
NON_METRIC_PROCESSORS = {
    "probabilistic_sampler": "samples traces and logs only",
    "tail_sampling": "samples traces only",
    "span": "edits spans only",
    "logdedup": "handles logs only",
    "redaction": "does not handle metrics in this release",
}
ENV_REF = re.compile(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}")
SUBST = re.compile(r"\$\{[^}]*\}")
SECRET_KEY = re.compile(r"(api[-_]?key|token|password|passwd|secret|authorization|license)", re.I)
SECRET_OK = re.compile(r"^(?:(?:Bearer|Basic|Api-Key|ApiKey)\s+)?\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$")
CRITICAL_EXEMPT = 'resource.attributes["phoenix.priority"] != "critical"'
_OTTL_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_OTTL_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_OTTL_KEYWORDS = {"not", "and", "or", "where"}
_BARE_PROCESS_ATTR = re.compile(r'(?<!resource\.)\battributes\s*\[\s*"process\.')


@dataclass(frozen=True)
class OttlFunctions:
    editors: frozenset[str]
    converters: frozenset[str]
    filter_extras: frozenset[str]
    transform_extras: frozenset[str]

    def for_transform(self) -> frozenset[str]:
        return self.editors | self.converters | self.transform_extras

    def for_filter(self) -> frozenset[str]:
        return self.converters | self.filter_extras


@cache
def ottl_functions() -> OttlFunctions:
    """Function names from the vendored ``ottl/functions.md`` (by section)."""
    sections: dict[int, set[str]] = {1: set(), 2: set(), 3: set(), 4: set()}
    current = 0
    for line in (SCHEMA_ROOT / "ottl" / "functions.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^## (\d)\.", line)
        if m:
            current = int(m.group(1))
            continue
        if line.startswith("## "):
            current = 0
        if current not in sections:
            continue
        top = re.match(r"^- ([A-Za-z_][A-Za-z0-9_]*)(?:\s|$)", line)
        nested = re.match(r"^\s+- ([A-Za-z_][A-Za-z0-9_]*)\s*$", line)
        if current == 3:
            if nested:
                sections[3].add(nested.group(1))
        elif top:
            sections[current].add(top.group(1))
    return OttlFunctions(*(frozenset(sections[i]) for i in (1, 2, 3, 4)))


# ---- public API ---------------------------------------------------------------------------------
def validate_collector_yaml(text: str) -> list[str]:
    try:
        # libyaml when present: every save and render checks its YAML here (pure Python is ~10× slower)
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {exc}"]
    return validate_collector_config(data)


def validate_collector_config(config: Any) -> list[str]:
    """Every problem with a collector config (empty list when it is valid)."""
    if not isinstance(config, dict):
        return ["a collector config must be a mapping with receivers, processors, exporters and service"]
    errors: list[str] = []
    for key in config:
        if key not in (*KINDS, "service"):
            errors.append(f"unknown top-level key {key!r}")
    components: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        section = config.get(kind) or {}
        if not isinstance(section, dict):
            errors.append(f"{kind}: must be a mapping of component id to settings")
            continue
        components[kind] = section
        for cid, cfg in section.items():
            errors.extend(_check_component(kind, str(cid), cfg))
    errors.extend(_check_service(config.get("service"), components))
    errors.extend(_check_rules(config, components))
    return errors


def _check_component(kind: str, cid: str, cfg: Any) -> list[str]:
    type_name, _, name = cid.partition("/")
    where = f"{kind}.{cid}"
    if not type_name or (("/" in cid) and not name):
        return [f"{where}: component ids are type[/name]"]
    if kind == "connectors":
        return [f"{where}: connectors are not used by Phoenix pipelines"]
    if kind == "processors" and type_name in NON_METRIC_PROCESSORS:
        return [f"{where}: the {type_name} processor {NON_METRIC_PROCESSORS[type_name]}; it has no place in a "
                "metrics pipeline"]
    key = component_key(kind, type_name)
    if key is None:
        known = ", ".join(known_types(kind))
        return [f"{where}: unknown {kind[:-1]} type {type_name!r} for this collector (known: {known})"]
    return problems(key, where, cfg)


def _check_service(service: Any, components: dict[str, dict[str, Any]]) -> list[str]:
    if not isinstance(service, dict):
        return ["service: missing or not a mapping (it lists the pipelines)"]
    errors: list[str] = []
    for k in service:
        if k not in ("extensions", "pipelines", "telemetry"):
            errors.append(f"service: unknown key {k!r}")
    used: dict[str, set[str]] = {k: set() for k in KINDS}
    for ext in _id_list(service.get("extensions") or [], "service.extensions", errors):
        if ext not in components.get("extensions", {}):
            errors.append(f"service.extensions: {ext!r} is not configured under extensions")
        used["extensions"].add(ext)
    pipelines = service.get("pipelines")
    if not isinstance(pipelines, dict) or not pipelines:
        errors.append("service.pipelines: at least one pipeline is needed")
        pipelines = {}
    for pid, pl in pipelines.items():
        where = f"service.pipelines.{pid}"
        if str(pid).partition("/")[0] != "metrics":
            errors.append(f"{where}: only metrics pipelines are supported (process metrics)")
        if not isinstance(pl, dict):
            errors.append(f"{where}: must be a mapping")
            continue
        for k in pl:
            if k not in ("receivers", "processors", "exporters"):
                errors.append(f"{where}: unknown key {k!r}")
        for kind in ("receivers", "processors", "exporters"):
            ids = pl.get(kind) or []
            if not isinstance(ids, list):
                errors.append(f"{where}.{kind}: must be a list")
                continue
            if kind != "processors" and not ids:
                errors.append(f"{where}: needs at least one {kind[:-1]}")
            seen: set[str] = set()
            for cid in _id_list(ids, f"{where}.{kind}", errors):
                if cid in seen:
                    errors.append(f"{where}.{kind}: {cid!r} appears twice")
                seen.add(cid)
                if cid not in components.get(kind, {}):
                    errors.append(f"{where}.{kind}: {cid!r} is not defined under {kind}")
                used[kind].add(cid)
    for kind in KINDS:
        for cid in components.get(kind, {}):
            if cid not in used[kind]:
                errors.append(f"{kind}.{cid}: defined but never used in service")
    telemetry = service.get("telemetry")
    if telemetry is not None:
        errors.extend(_check_telemetry(telemetry))
    return errors


def _id_list(ids: Any, where: str, errors: list[str]) -> list[str]:
    """The component ids in a service list; anything else is reported (a hostile file must not crash)."""
    if not isinstance(ids, list):
        errors.append(f"{where}: must be a list of component ids")
        return []
    bad = [i for i in ids if not isinstance(i, str)]
    errors.extend(f"{where}: {i!r} is not a component id" for i in bad)
    return [i for i in ids if isinstance(i, str)]


def _check_telemetry(t: Any) -> list[str]:
    if not isinstance(t, dict):
        return ["service.telemetry: must be a mapping"]
    errors = [f"service.telemetry: unknown key {k!r}" for k in t if k not in ("metrics", "logs", "traces", "resource")]
    m = t.get("metrics")
    if isinstance(m, dict):
        errors += [f"service.telemetry.metrics: unknown key {k!r}" for k in m if k not in ("level", "readers", "views")]
        if "level" in m and m["level"] not in ("none", "basic", "normal", "detailed"):
            errors.append("service.telemetry.metrics.level: must be none, basic, normal or detailed")
        readers = m.get("readers") or []
        if not isinstance(readers, list):
            errors.append("service.telemetry.metrics.readers: must be a list")
            readers = []
        for i, r in enumerate(readers):
            if not isinstance(r, dict) or not (set(r) <= {"pull", "periodic"}) or not r:
                errors.append(f"service.telemetry.metrics.readers[{i}]: must be a pull or periodic reader")
    return errors


def _strings(node: Any, path: str = "") -> list[tuple[str, str, str]]:
    """(path, key, value) for every string value in a nested config."""
    out: list[tuple[str, str, str]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else str(k)
            if isinstance(v, str):
                out.append((p, str(k), v))
            else:
                out.extend(_strings(v, p))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, str):
                out.append((f"{path}[{i}]", "", v))
            else:
                out.extend(_strings(v, f"{path}[{i}]"))
    return out


def _ottl_expressions(components: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(path, processor type, expression) for every OTTL statement/condition."""
    out: list[tuple[str, str, str]] = []
    for cid, cfg in (components.get("processors") or {}).items():
        t = str(cid).partition("/")[0]
        if t not in ("transform", "filter") or not isinstance(cfg, dict):
            continue
        for p, _k, v in _strings(cfg, f"processors.{cid}"):
            if t == "filter" and (".metrics." in p or "_conditions" in p or ".conditions" in p) or t == "transform" and (".statements[" in p or ".conditions[" in p):
                out.append((p, t, v))
    return out


def _check_rules(config: dict[str, Any], components: dict[str, dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    funcs = ottl_functions()
    exprs = _ottl_expressions(components)
    phoenix_marked = any("phoenix.priority" in e for _p, _t, e in exprs)
    for path, ptype, expr in exprs:
        code = _OTTL_STRING.sub('""', expr)
        allowed = funcs.for_transform() if ptype == "transform" else funcs.for_filter()
        for name in _OTTL_CALL.findall(code):
            if name in _OTTL_KEYWORDS:
                continue
            if name not in allowed:
                if ptype == "filter" and name in funcs.editors:
                    errors.append(f"{path}: {name} is an editor; the filter processor only accepts conditions")
                else:
                    errors.append(f"{path}: {name} is not an OTTL function of the {ptype} processor")
        if _BARE_PROCESS_ATTR.search(expr):
            errors.append(f"{path}: process identity is a resource attribute; read it as "
                          'resource.attributes["process.…"]')
        if ptype == "filter":
            # filter/phoenix_tap_*: a variant's own receiver choices replayed behind the tap
            # (core.render.tap); a receiver drops for every process alike, critical ones included.
            receiver_choice = ".filter/phoenix_tap_" in f".{path}"
            # filter/<adaptive>_ranking: drops the ranking metric adaptive enabled only to rank by,
            # for every process; baseline never exports it, so no critical series is lost.
            receiver_choice |= "_ranking." in path and expr == RANKING_ONLY
            errors.extend(_filter_rule(path, expr, phoenix_marked and not receiver_choice))
    errors.extend(_port_conflicts(config, components))
    errors.extend(_process_match_regexes(components))
    for path, key, value in _strings({k: config.get(k) for k in (*KINDS, "service") if k in config}):
        for sub in SUBST.findall(value):
            if not ENV_REF.fullmatch(sub):
                errors.append(f"{path}: {sub} — environment variables must be written ${{env:NAME}}")
        if SECRET_KEY.search(key) and value and not SECRET_OK.match(value):
            errors.append(f"{path}: looks like a literal secret; use ${{env:NAME}} instead")
    return errors


def _port_conflicts(config: dict[str, Any], components: dict[str, dict[str, Any]]) -> list[str]:
    """Two listeners on one port: the collector would fail to start."""
    listeners: list[tuple[str, str]] = []
    for kind in ("exporters", "extensions"):
        for cid, cfg in (components.get(kind) or {}).items():
            # Of the exporters only prometheus listens; otlp & co. connect out to their endpoint
            # (two variants' Services on the same port are two destinations, not a conflict).
            if kind == "exporters" and cid.partition("/")[0] != "prometheus":
                continue
            if isinstance(cfg, dict) and isinstance(cfg.get("endpoint"), str) and "://" not in cfg["endpoint"]:
                listeners.append((f"{kind}.{cid}.endpoint", cfg["endpoint"].rsplit(":", 1)[-1]))
    service = config.get("service") if isinstance(config.get("service"), dict) else {}
    telemetry = service.get("telemetry") if isinstance(service.get("telemetry"), dict) else {}
    metrics = telemetry.get("metrics") if isinstance(telemetry.get("metrics"), dict) else {}
    readers = metrics.get("readers") if isinstance(metrics.get("readers"), list) else []  # else reported above
    for i, reader in enumerate(readers):
        try:
            port = reader["pull"]["exporter"]["prometheus"]["port"]
        except (KeyError, TypeError):
            continue
        listeners.append((f"service.telemetry.metrics.readers[{i}]", str(port)))
    seen: dict[str, str] = {}
    errors = []
    for where, port in listeners:
        if port in seen:
            errors.append(f"{where}: port {port} is already used by {seen[port]}")
        else:
            seen[port] = where
    return errors


def _filter_rule(path: str, expr: str, phoenix_marked: bool) -> list[str]:
    # The filter processor DROPS what matches: a keep-list must be negated.
    errors = []
    if re.search(r'phoenix\.keep"\]\s*==\s*"true"', expr):
        errors.append(f"{path}: drops the processes marked to keep; a keep-list must be negated "
                      '(resource.attributes["phoenix.keep"] == nil)')
    if re.search(r'phoenix\.priority"\]\s*==\s*"critical"', expr):
        errors.append(f"{path}: drops critical processes; filter conditions must exclude them")
    if phoenix_marked and CRITICAL_EXEMPT not in expr:
        errors.append(f"{path}: does not exempt critical processes (add and {CRITICAL_EXEMPT})")
    return errors


def _process_match_regexes(components: dict[str, dict[str, Any]]) -> list[str]:
    """The collector compiles process include/exclude regexps with Go's RE2 at startup:
    refuse what it would refuse (the schema has checked their shape already)."""
    errors: list[str] = []
    for cid, cfg in (components.get("receivers") or {}).items():
        scrapers = cfg.get("scrapers") if isinstance(cfg, dict) and str(cid).partition("/")[0] == "hostmetrics" else None
        process = scrapers.get("process") if isinstance(scrapers, dict) else None
        for side in ("include", "exclude"):
            match = process.get(side) if isinstance(process, dict) else None
            if not isinstance(match, dict) or match.get("match_type") != "regexp" or not isinstance(match.get("names"), list):
                continue
            where = f"receivers.{cid}.scrapers.process.{side}.names"
            for i, name in enumerate(match["names"]):
                why = regex_problem(name) if isinstance(name, str) else None
                if why:
                    errors.append(f"{where}[{i}] {quote_pattern(name)} {why}")
    return errors
