"""The vendored collector component schemas, compiled once into ``jsonschema`` validators.

The upstream ``config.schema.yaml`` files (``core/render/schemas/``, see its README) are
not usable by a JSON Schema validator as they stand: their ``$ref``s are Go import paths
resolved through ``refmap.yaml``, embedded structs are ``allOf`` parts (Go squashes them
into one level) and no object says ``additionalProperties: false``. So they are
preprocessed once, at first use, into plain self-contained JSON Schema (Draft 2020-12):

- every ``$ref`` is replaced by the (shared, compiled) schema it resolves to; a ref
  upstream cannot provide (hostmetrics scraper configs, legacy filterset blocks, most
  resourcedetection detectors) becomes ``{}``, which accepts anything — except the
  ``process``/``processes`` scrapers, given their mdatagen metadata schema plus the
  scraper's own keys (from ``processscraper/config.go``);
- an object's ``allOf`` parts are squashed into one ``properties`` map and the object gets
  ``additionalProperties: false`` (unknown keys are errors) unless a part is open or the
  field is a map (``headers``, ``const_labels`` …);
- an empty YAML block (``null``) is a struct left at its defaults, and ``x-optional`` /
  ``x-pointer`` fields may be ``null``;
- ``format: duration`` is a Go duration, checked by the ``FormatChecker``; the
  declared-vs-accepted type gotchas of the reference INDEX (debug verbosity,
  initial_value, compression level, headers as a map) get lenient schemas and
  ``error_mode`` its documented values.

``jsonschema`` then does the validating; ``problems`` turns its errors into one line each
that names the component and the dotted path to the offending key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft202012Validator, FormatChecker, validators

from core.domain.durations import duration_or_none

SCHEMA_ROOT = Path(__file__).resolve().parent / "schemas"
_KIND_DIR = {"receivers": "receiver", "processors": "processor", "exporters": "exporter", "extensions": "extension"}
# Deprecated type names the pinned release still accepts, per kind (the otlp *receiver* is otlp).
ALIASES = {"exporters": {"otlphttp": "otlp_http", "otlp": "otlp_grpc"}}
# A Phoenix annotation on a compiled schema: the message for a value it refuses (JSON Schema
# ignores unknown keywords).
MESSAGE = "x-phoenix-message"
_MATCH = {"$phoenix": "match"}  # marker for the process scraper's include/exclude (filterset.Config)
PROCESS_SCRAPER_KEYS: dict[str, Any] = {
    "include": _MATCH,
    "exclude": _MATCH,
    "mute_process_all_errors": {"type": "boolean"},
    "mute_process_name_error": {"type": "boolean"},
    "mute_process_exe_error": {"type": "boolean"},
    "mute_process_io_error": {"type": "boolean"},
    "mute_process_user_error": {"type": "boolean"},
    "mute_process_cgroup_error": {"type": "boolean"},
    "scrape_process_delay": {"type": "string", "format": "duration"},
}
# filterset.Config as the process scraper reads it; names are RE2-checked by a Phoenix rule.
MATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    MESSAGE: "must be a mapping with names and match_type",
    "properties": {
        "names": {"type": "array", "items": {"type": "string"}, MESSAGE: "must be a list of strings"},
        "match_type": {"enum": ["strict", "regexp"]},
        "regexp": {},
    },
    "required": ["names", "match_type"],
    "additionalProperties": False,
}


def _int_or(values: list[str], message: str) -> dict[str, Any]:
    return {"anyOf": [{"type": "integer"}, {"enum": values}], MESSAGE: message}


# Lenient schemas for the reference INDEX "gotchas", by the ref suffix they replace.
LENIENT: dict[str, dict[str, Any]] = {
    "configtelemetry.level": _int_or(["none", "basic", "normal", "detailed"], "must be basic, normal or detailed"),
    "tracking.initial_value": _int_or(["auto", "keep", "drop"], "must be auto, keep or drop"),
    "configcompression.level": {"type": "integer"},
    "configopaque.map_list": {
        "type": ["object", "array"],
        MESSAGE: "must be a mapping of header name to value",
        "additionalProperties": {"type": "string", MESSAGE: "header values must be strings"},
        "items": {"type": "object", "propertyNames": {"enum": ["name", "value"]},
                  MESSAGE: "must be a mapping of header name to value"},
    },
    "ottl.error_mode": {"enum": ["ignore", "silent", "propagate"]},
}


def _lenient_for(ref: str, nullable: bool) -> dict[str, Any] | None:
    for suffix, schema in LENIENT.items():
        if ref.endswith(suffix):
            return _or_null(schema) if nullable else schema
    return None


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, also accepting null (an ``x-optional`` field left empty)."""
    if "anyOf" in schema:
        return {**schema, "anyOf": [{"type": "null"}, *schema["anyOf"]]}
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    types = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
    return {**schema, "type": [*types, "null"]}


def _is_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" or "properties" in schema or "allOf" in schema


Source = tuple[Any, str]  # an upstream (sub)schema and the vendored file it lives in


@dataclass
class _Compiler:
    """Upstream schemas (with refmap refs) → self-contained JSON Schema, each named def once."""

    files: dict[str, Any] = field(default_factory=dict)
    refs: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)
    _named: dict[tuple[str, str | None, bool], dict[str, Any]] = field(default_factory=dict)

    def load(self) -> _Compiler:
        for path in sorted((SCHEMA_ROOT / "schemas").rglob("*.schema.yaml")):
            key = "schemas/" + path.relative_to(SCHEMA_ROOT / "schemas").as_posix()
            self.files[key] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        refmap = yaml.safe_load((SCHEMA_ROOT / "refmap.yaml").read_text(encoding="utf-8"))
        for r in refmap.get("refs", []):
            if r.get("status") == "resolved" and r.get("local") in self.files:
                self.refs[(r["from_file"], r["ref"])] = (r["local"], r.get("definition"))
        self._add_process_scrapers()
        return self

    def _add_process_scrapers(self) -> None:
        """Upstream has no schema for the hostmetrics process scrapers: build them from mdatagen's."""
        meta = "schemas/receiver/hostmetrics.{}.metadata.schema.yaml"
        scrapers = self.files["schemas/receiver/hostmetrics.schema.yaml"]["properties"]["scrapers"]["properties"]
        scrapers["process"] = {"type": "object", "properties": PROCESS_SCRAPER_KEYS,
                               "allOf": [{"$ref": f"@{meta.format('process')}#metrics_builder_config"}]}
        scrapers["processes"] = {"type": "object",
                                 "allOf": [{"$ref": f"@{meta.format('processes')}#metrics_builder_config"}]}

    def _target(self, ref: str, file: str) -> tuple[str, str | None] | None:
        """(file, $defs name or None for the file's root) a ref points at; None when upstream has none."""
        if ref.startswith("@"):  # Phoenix-internal: "@<file>#<def>"
            f, _, d = ref[1:].partition("#")
            return f, d
        name = ref.removeprefix("#/$defs/")
        if ref.startswith("#/$defs/") or ("/" not in ref and "." not in ref):
            return (file, name) if name in (self.files[file].get("$defs") or {}) else None
        hit = self.refs.get((file, ref))
        if hit is None:
            return None
        local, definition = hit
        return local, definition if definition and definition in (self.files[local].get("$defs") or {}) else None

    def _resolve(self, ref: str, file: str) -> Source | None:
        target = self._target(ref, file)
        if target is None:
            return None
        f, d = target
        return (self.files[f] if d is None else self.files[f]["$defs"][d]), f

    def component(self, key: str) -> dict[str, Any]:
        return self.named(key, None, False)

    def named(self, file: str, definition: str | None, nullable: bool) -> dict[str, Any]:
        """A def compiled once and shared; recursion would close the loop through the same dict."""
        key = (file, definition, nullable)
        if key not in self._named:
            out: dict[str, Any] = {}
            self._named[key] = out
            node = self.files[file] if definition is None else self.files[file]["$defs"][definition]
            out.update(self.compile(node, file, nullable))
        return self._named[key]

    def compile(self, schema: Any, file: str, nullable: bool = False) -> dict[str, Any]:
        if not isinstance(schema, dict):
            return {}
        if schema.get("$phoenix") == "match":
            return MATCH_SCHEMA
        nullable = nullable or bool(schema.get("x-optional") or schema.get("x-pointer"))
        if "$ref" in schema and not _is_object({k: v for k, v in schema.items() if k != "$ref"}):
            ref = schema["$ref"]
            lenient = _lenient_for(ref, bool(schema.get("x-optional")))
            if lenient is not None:
                return lenient
            target = self._target(ref, file)
            return {} if target is None else self.named(*target, nullable)
        if _is_object(schema) or "$ref" in schema:
            return self._object(schema, file)
        return _leaf(schema, self.compile(schema.get("items"), file) if "items" in schema else None, nullable)

    def _object(self, schema: dict[str, Any], file: str) -> dict[str, Any]:
        props, open_, addl = self._squash(schema, file)
        out: dict[str, Any] = {"type": ["object", "null"]}  # null: an empty YAML block, the struct's defaults
        if not props and not addl and schema.get("type") == "object" and "allOf" not in schema:
            return out  # a map-valued field without declared properties
        out["properties"] = {k: self.compile(sub, f) for k, (sub, f) in props.items()}
        if addl is not None:
            out["additionalProperties"] = self.compile(*addl)
        elif not open_:
            out["additionalProperties"] = False
        return out

    def _squash(self, schema: Any, file: str) -> tuple[dict[str, Source], bool, Source | None]:
        """Properties allowed at this level (``$ref`` and ``allOf`` parts squashed, as Go embeds
        structs), whether the level is open, and the schema of map values."""
        props: dict[str, Source] = {}
        open_ = False
        addl: Source | None = None
        if not isinstance(schema, dict):
            return props, True, None
        if "$ref" in schema:
            target = self._resolve(schema["$ref"], file)
            if target is None:
                return props, True, None
            props, open_, addl = self._squash(*target)
        props.update({k: (sub, file) for k, sub in (schema.get("properties") or {}).items()})
        for part in schema.get("allOf") or []:
            p2, o2, a2 = self._squash(part, file)
            props.update(p2)
            open_ |= o2
            addl = addl or a2
        if isinstance(schema.get("additionalProperties"), dict):
            addl = (schema["additionalProperties"], file)
        if schema.get("additionalProperties") is True:
            open_ = True
        return props, open_, addl


def _leaf(schema: dict[str, Any], items: dict[str, Any] | None, nullable: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    typ = schema.get("type")
    if typ in ("array", "string", "integer", "number", "boolean"):
        out["type"] = [typ, "null"] if nullable else typ
    if typ == "array" and items is not None:
        out["items"] = items
    if typ == "string" and schema.get("format") == "duration":
        out["format"] = "duration"
    if "enum" in schema:
        out["enum"] = [*schema["enum"], *([None] if nullable else [])]
    return out


# ---- validators -----------------------------------------------------------------------------------
def _go_duration(value: object) -> bool:
    return not isinstance(value, str) or value == "0" or duration_or_none(value) is not None


FORMATS = FormatChecker(formats=())
FORMATS.checks("duration")(_go_duration)
# YAML 1.0 is a float, not an integer, to the collector; JSON Schema would accept it.
_TYPES = Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool))
Validator = validators.extend(Draft202012Validator, type_checker=_TYPES)


@cache
def _compiler() -> _Compiler:
    return _Compiler().load()


def component_key(kind: str, type_name: str) -> str | None:
    """The vendored schema file of a component type, or None when this collector lacks it."""
    key = f"schemas/{_KIND_DIR[kind]}/{ALIASES.get(kind, {}).get(type_name, type_name)}.schema.yaml"
    return key if key in _compiler().files else None


def known_types(kind: str) -> list[str]:
    return sorted(p.name.removesuffix(".schema.yaml") for p in (SCHEMA_ROOT / "schemas" / _KIND_DIR[kind]).glob(
        "*.schema.yaml") if ".metadata." not in p.name)


@cache
def validator(key: str) -> jsonschema.protocols.Validator:
    """The compiled validator of one component schema file (built once per process)."""
    return Validator(_compiler().component(key), format_checker=FORMATS)


def problems(key: str, where: str, config: Any) -> list[str]:
    """Every schema problem of one component's settings, each as ``<where>.<path>: <what>``."""
    return [msg for err in validator(key).iter_errors({} if config is None else config) for msg in _messages(err, where)]


# ---- readable messages ------------------------------------------------------------------------------
_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false"}


def _path(where: str, err: jsonschema.ValidationError) -> str:
    return where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_of(values: list[Any]) -> str:
    words = [str(v) for v in values if v is not None]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _messages(err: jsonschema.ValidationError, where: str) -> Iterator[str]:
    path = _path(where, err)
    schema = err.schema if isinstance(err.schema, dict) else {}
    value = err.instance
    if err.validator == "additionalProperties":
        allowed = [str(k) for k in schema.get("properties") or {}]
        for key in value:
            if key not in (schema.get("properties") or {}):
                near = difflib.get_close_matches(str(key), allowed, n=1)
                yield f"{path}: unknown key {key!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
    elif err.validator == "required":
        missing = [k for k in err.validator_value if k not in value]
        yield from (f"{path}.{k}: is required" for k in missing)
    elif schema.get(MESSAGE):
        yield f"{path}: {schema[MESSAGE]}, got {_shown(value)}"
    elif err.validator == "type":
        types = [err.validator_value] if isinstance(err.validator_value, str) else list(err.validator_value)
        typ = next(t for t in types if t != "null")
        got = type(value).__name__ if typ in ("object", "array") else _shown(value)
        yield f"{path}: must be {_TYPE_WORDS.get(typ, typ)}, got {got}"
    elif err.validator == "enum":
        yield f"{path}: must be {_one_of(err.validator_value)}, got {_shown(value)}"
    elif err.validator == "format":
        yield f"{path}: must be a Go duration such as 10s or 1m30s, got {_shown(value)}"
    else:
        yield f"{path}: {err.message}"
