"""Validate collector YAML against the upstream component schemas, plus Phoenix's rules.

Schemas are the vendored copy in ``core/render/schemas/`` (see its README). The
upstream files declare neither ``additionalProperties: false`` nor ``required``, so this
validator walks them itself:

- ``$ref`` resolution: same-file (``name`` / ``#/$defs/name``) and cross-file through
  ``refmap.yaml``; refs upstream could not provide (hostmetrics scraper configs, legacy
  filterset blocks, most resourcedetection detectors) accept any value, except the
  ``process``/``processes`` scrapers, checked against their mdatagen metadata schema
  plus the scraper's own keys (from ``processscraper/config.go``);
- unknown keys are errors, with ``allOf`` treated as Go struct squashing (the union of
  all parts' properties is allowed at that level); map-valued fields (``headers``,
  ``const_labels`` …) are exempt;
- ``format: duration`` is a Go duration; the declared-vs-accepted type gotchas listed in
  the reference INDEX are handled leniently (debug verbosity, initial_value,
  compression level, headers as a map) and ``error_mode`` is checked against its
  documented values.

Rules beyond the schemas (DESIGN §3; each has its own test): processors must support
metrics; OTTL functions must exist (editors only in ``transform``); filter keep-lists are
negated and critical processes are exempt; process identity is read as
``resource.attributes[...]``; ``${env:NAME}`` is the only substitution form and secrets
are never literal; every defined component is used and every reference defined.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from core.domain.durations import duration_or_none
from core.domain.user_regex import quote_pattern, regex_problem

SCHEMA_ROOT = Path(__file__).resolve().parent / "schemas"
KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")
_KIND_DIR = {"receivers": "receiver", "processors": "processor", "exporters": "exporter", "extensions": "extension"}
# Deprecated type names the pinned release still accepts, per kind (the otlp *receiver* is otlp).
ALIASES = {"exporters": {"otlphttp": "otlp_http", "otlp": "otlp_grpc"}}
NON_METRIC_PROCESSORS = {
    "probabilistic_sampler": "samples traces and logs only",
    "tail_sampling": "samples traces only",
    "span": "edits spans only",
    "logdedup": "handles logs only",
    "redaction": "does not handle metrics in this release",
}
PROCESS_SCRAPER_KEYS: dict[str, Any] = {
    "include": {"$phoenix": "match"},
    "exclude": {"$phoenix": "match"},
    "mute_process_all_errors": {"type": "boolean"},
    "mute_process_name_error": {"type": "boolean"},
    "mute_process_exe_error": {"type": "boolean"},
    "mute_process_io_error": {"type": "boolean"},
    "mute_process_user_error": {"type": "boolean"},
    "mute_process_cgroup_error": {"type": "boolean"},
    "scrape_process_delay": {"type": "string", "format": "duration"},
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


@dataclass
class _Store:
    files: dict[str, Any] = field(default_factory=dict)
    refs: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)

    def load(self) -> _Store:
        for path in sorted((SCHEMA_ROOT / "schemas").rglob("*.schema.yaml")):
            key = "schemas/" + path.relative_to(SCHEMA_ROOT / "schemas").as_posix()
            self.files[key] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        refmap = yaml.safe_load((SCHEMA_ROOT / "refmap.yaml").read_text(encoding="utf-8"))
        for r in refmap.get("refs", []):
            if r.get("status") == "resolved" and r.get("local") in self.files:
                self.refs[(r["from_file"], r["ref"])] = (r["local"], r.get("definition"))
        return self

    def resolve(self, ref: str, file: str) -> tuple[Any, str]:
        """(schema, file it lives in), or (None, file) when upstream has no target."""
        if ref.startswith("@"):  # Phoenix-internal: "@<file>#<def>"
            f, _, d = ref[1:].partition("#")
            return self.files[f]["$defs"][d], f
        if ref.startswith("#/$defs/"):
            return self.files[file].get("$defs", {}).get(ref[len("#/$defs/"):]), file
        if "/" not in ref and "." not in ref:
            return self.files[file].get("$defs", {}).get(ref), file
        hit = self.refs.get((file, ref))
        if hit is None:
            return None, file
        local, definition = hit
        doc = self.files[local]
        if definition and definition in doc.get("$defs", {}):
            return doc["$defs"][definition], local
        return doc, local

    def component(self, kind: str, type_name: str) -> str | None:
        key = f"schemas/{_KIND_DIR[kind]}/{ALIASES.get(kind, {}).get(type_name, type_name)}.schema.yaml"
        return key if key in self.files else None


@cache
def _store() -> _Store:
    store = _Store().load()
    hm = "schemas/receiver/hostmetrics.schema.yaml"
    proc_meta = "schemas/receiver/hostmetrics.process.metadata.schema.yaml"
    procs_meta = "schemas/receiver/hostmetrics.processes.metadata.schema.yaml"
    scrapers = store.files[hm]["properties"]["scrapers"]["properties"]
    scrapers["process"] = {
        "type": "object",
        "properties": PROCESS_SCRAPER_KEYS,
        "allOf": [{"$ref": f"@{proc_meta}#metrics_builder_config"}],
    }
    scrapers["processes"] = {"type": "object", "allOf": [{"$ref": f"@{procs_meta}#metrics_builder_config"}]}
    return store


# ---- lenient types (reference INDEX "gotchas") ---------------------------------------------
def _lenient_level(v: Any, path: str, errors: list[str]) -> None:
    if not (isinstance(v, int) and not isinstance(v, bool)) and v not in ("none", "basic", "normal", "detailed"):
        errors.append(f"{path}: must be basic, normal or detailed, got {v!r}")


def _lenient_initial_value(v: Any, path: str, errors: list[str]) -> None:
    if not (isinstance(v, int) and not isinstance(v, bool)) and v not in ("auto", "keep", "drop"):
        errors.append(f"{path}: must be auto, keep or drop, got {v!r}")


def _lenient_int(v: Any, path: str, errors: list[str]) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        errors.append(f"{path}: must be an integer, got {v!r}")


def _lenient_map_list(v: Any, path: str, errors: list[str]) -> None:
    if isinstance(v, dict):
        for k, val in v.items():
            if not isinstance(val, str):
                errors.append(f"{path}.{k}: header values must be strings")
        return
    if isinstance(v, list) and all(isinstance(i, dict) and set(i) <= {"name", "value"} for i in v):
        return
    errors.append(f"{path}: must be a mapping of header name to value")


def _lenient_error_mode(v: Any, path: str, errors: list[str]) -> None:
    if v not in ("ignore", "silent", "propagate"):
        errors.append(f"{path}: must be ignore, silent or propagate, got {v!r}")


_LENIENT: dict[str, Callable[[Any, str, list[str]], None]] = {
    "configtelemetry.level": _lenient_level,
    "tracking.initial_value": _lenient_initial_value,
    "configcompression.level": _lenient_int,
    "configopaque.map_list": _lenient_map_list,
    "ottl.error_mode": _lenient_error_mode,
}


def _lenient_for(ref: str) -> Callable[[Any, str, list[str]], None] | None:
    for suffix, fn in _LENIENT.items():
        if ref.endswith(suffix):
            return fn
    return None


# ---- the schema walk --------------------------------------------------------------------------
def _collect(schema: Any, file: str, store: _Store) -> tuple[dict[str, tuple[Any, str]], bool, Any]:
    """Properties allowed at this level (allOf squashed), whether it is open, map value schema."""
    props: dict[str, tuple[Any, str]] = {}
    open_ = False
    addl = None
    if not isinstance(schema, dict):
        return props, True, None
    if "$ref" in schema:
        target, tfile = store.resolve(schema["$ref"], file)
        if target is None:
            return props, True, None
        p2, o2, a2 = _collect(target, tfile, store)
        props.update(p2)
        open_ |= o2
        addl = a2
    for k, sub in (schema.get("properties") or {}).items():
        props[k] = (sub, file)
    for part in schema.get("allOf") or []:
        p2, o2, a2 = _collect(part, file, store)
        props.update(p2)
        open_ |= o2
        addl = addl or a2
    if isinstance(schema.get("additionalProperties"), dict):
        addl = (schema["additionalProperties"], file)
    if schema.get("additionalProperties") is True:
        open_ = True
    return props, open_, addl


def _is_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" or "properties" in schema or "allOf" in schema


def _check(value: Any, schema: Any, file: str, path: str, errors: list[str], store: _Store) -> None:
    if not isinstance(schema, dict):
        return
    if schema.get("$phoenix") == "match":
        _check_match(value, path, errors)
        return
    if "$ref" in schema and not _is_object({k: v for k, v in schema.items() if k != "$ref"}):
        ref = schema["$ref"]
        lenient = _lenient_for(ref)
        if lenient:
            if value is not None or not schema.get("x-optional"):
                lenient(value, path, errors)
            return
        if value is None and (schema.get("x-optional") or schema.get("x-pointer")):
            return
        target, tfile = store.resolve(ref, file)
        if target is None:
            return  # upstream provides no schema for this block: accept (documented above)
        _check(value, target, tfile, path, errors, store)
        return
    if value is None and (schema.get("x-optional") or schema.get("x-pointer")):
        return
    if _is_object(schema) or "$ref" in schema:
        if value is None:
            return  # an empty YAML block: Go leaves the struct at its defaults
        if not isinstance(value, dict):
            errors.append(f"{path}: must be a mapping, got {type(value).__name__}")
            return
        props, open_, addl = _collect(schema, file, store)
        if not props and not addl and schema.get("type") == "object" and "allOf" not in schema:
            return  # map-valued field without declared properties
        for k, v in value.items():
            sub_path = f"{path}.{k}" if path else str(k)
            if k in props:
                _check(v, props[k][0], props[k][1], sub_path, errors, store)
            elif addl is not None:
                _check(v, addl[0], addl[1], sub_path, errors, store)
            elif not open_:
                near = difflib.get_close_matches(str(k), list(props), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                errors.append(f"{path}: unknown key {k!r}{hint}")
        return
    typ = schema.get("type")
    if typ == "array":
        if not isinstance(value, list):
            errors.append(f"{path}: must be a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(item, schema.get("items"), file, f"{path}[{i}]", errors, store)
        return
    if typ == "string":
        if not isinstance(value, str):
            errors.append(f"{path}: must be a string, got {value!r}")
        elif schema.get("format") == "duration" and duration_or_none(value) is None and value != "0":
            errors.append(f"{path}: must be a Go duration such as 10s or 1m30s, got {value!r}")
    elif typ == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: must be an integer, got {value!r}")
    elif typ == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{path}: must be a number, got {value!r}")
    elif typ == "boolean" and not isinstance(value, bool):
        errors.append(f"{path}: must be true or false, got {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: must be one of {', '.join(map(str, schema['enum']))}, got {value!r}")


def _check_match(value: Any, path: str, errors: list[str]) -> None:
    """process scraper include/exclude (filterset.Config)."""
    if not isinstance(value, dict):
        errors.append(f"{path}: must be a mapping with names and match_type")
        return
    for k in value:
        if k not in ("names", "match_type", "regexp"):
            errors.append(f"{path}: unknown key {k!r}")
    names = value.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        errors.append(f"{path}.names: must be a list of strings")
    elif value.get("match_type") == "regexp":
        # The collector compiles these with Go's RE2 at startup: refuse what it would refuse.
        for i, name in enumerate(names):
            why = regex_problem(name)
            if why:
                errors.append(f"{path}.names[{i}] {quote_pattern(name)} {why}")
    if value.get("match_type") not in ("strict", "regexp"):
        errors.append(f"{path}.match_type: must be strict or regexp, got {value.get('match_type')!r}")


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
    store = _store()
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
            errors.extend(_check_component(kind, str(cid), cfg, store))
    errors.extend(_check_service(config.get("service"), components))
    errors.extend(_check_rules(config, components))
    return errors


def _check_component(kind: str, cid: str, cfg: Any, store: _Store) -> list[str]:
    type_name, _, name = cid.partition("/")
    where = f"{kind}.{cid}"
    if not type_name or (("/" in cid) and not name):
        return [f"{where}: component ids are type[/name]"]
    if kind == "connectors":
        return [f"{where}: connectors are not used by Phoenix pipelines"]
    if kind == "processors" and type_name in NON_METRIC_PROCESSORS:
        return [f"{where}: the {type_name} processor {NON_METRIC_PROCESSORS[type_name]}; it has no place in a "
                "metrics pipeline"]
    key = store.component(kind, type_name)
    if key is None:
        known = sorted(
            p.name.removesuffix(".schema.yaml")
            for p in (SCHEMA_ROOT / "schemas" / _KIND_DIR[kind]).glob("*.schema.yaml")
            if ".metadata." not in p.name
        )
        return [f"{where}: unknown {kind[:-1]} type {type_name!r} for this collector (known: {', '.join(known)})"]
    errors: list[str] = []
    _check({} if cfg is None else cfg, store.files[key], key, where, errors, store)
    return errors


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


def ottl_expressions(components: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
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
    exprs = ottl_expressions(components)
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
            errors.extend(_filter_rule(path, expr, phoenix_marked and not receiver_choice))
    errors.extend(_port_conflicts(config, components))
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
