"""Reading user-supplied JSON/YAML documents (pipeline files, critical policies) with hard limits.

Every pipeline file (CLI ``pipeline validate|import|render``, the builder's upload) and every
critical-policy file goes through :func:`load_mapping`. It refuses, with a message naming the
source and the problem, before Python objects are built:

- files over :data:`MAX_FILE_BYTES`, non-UTF-8 bytes, binary junk (NUL bytes), empty files;
- nesting deeper than :data:`MAX_DEPTH` (PyYAML's composer and ``json`` recurse: a deep
  document would otherwise end in ``RecursionError``);
- more than :data:`MAX_VALUES` values *counting every YAML alias expansion* (an alias bomb is
  tiny on disk, shares objects after loading, and explodes later in ``deepcopy``/``json.dumps``);
- strings longer than :data:`MAX_STRING_CHARS`;
- several YAML documents, a top level that is not a mapping;
- duplicate keys (the collector's Go YAML parser refuses them too, so silently keeping the
  last one would make Phoenix and the collector read different configurations);
- non-string keys, non-finite numbers, integers too long to convert, and YAML types JSON has no
  word for (timestamps, binary, sets): what is accepted always round-trips through JSON.

The YAML limits are checked on libyaml's event stream (linear, no recursion), then the
document is loaded with a SafeLoader subclass that checks keys. The result is a fresh tree:
aliased subtrees are copied, so editing one place never changes another.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from core.domain.errors import ValidationError

MAX_FILE_BYTES = 1024 * 1024  # 1 MiB: a real pipeline or policy file is a few KiB
MAX_DEPTH = 32  # nested mappings/lists; a pipeline needs about 6
MAX_VALUES = 50_000  # scalars + collections, alias expansions included
MAX_STRING_CHARS = 16_384  # one scalar (key or value); OTTL statements are well below this

# libyaml's parser when present (fast); the pure-Python one otherwise (same events).
_BASE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Structural JSON tokens for the depth pre-scan. A string token always matches (closing quote
# optional), so an unterminated string is consumed once and the scan stays linear.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_OPEN = (-1, -1)  # an anchored collection still being read: an alias to it would be recursive


def read_bounded(path: str | Path, what: str = "file") -> bytes:
    """The bytes of ``path``, refusing a missing or oversized file before reading it all."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise ValidationError(f"{what} {p} is not a regular file")
        if size > MAX_FILE_BYTES:
            raise ValidationError(_too_big(str(p), size))
        with p.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat()
    except FileNotFoundError:
        raise ValidationError(f"cannot read {what} {p}: no such file") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError(_too_big(str(p), len(data)))
    return data


def load_mapping(raw: bytes | str, source: str) -> dict[str, Any]:
    """A JSON or YAML document whose top level is a mapping; ValidationError names ``source``."""
    data = load_document(raw, source)
    if data is None:
        raise ValidationError(f"{source} is empty")
    if not isinstance(data, dict):
        raise ValidationError(f"{source} must be a mapping at the top level, got {_kind(data)}")
    return data


def load_document(raw: bytes | str, source: str) -> Any:
    """Any JSON or YAML value within the limits (JSON when the text starts with ``{`` or ``[``)."""
    text = _decode(raw, source)
    stripped = text.lstrip()
    if not stripped:
        raise ValidationError(f"{source} is empty")
    if stripped[0] not in "{[":
        return _fresh_tree(_load_yaml(text, source), source)
    try:
        data = _load_json(text, source)
    except _NotJson as json_error:
        # YAML flow style (``{rules: [...]}``) starts the same way; when it is not YAML either,
        # the JSON message is the one that explains a JSON file.
        try:
            data = _load_yaml(text, source)
        except ValidationError as exc:
            if "is not valid YAML" in str(exc):
                raise ValidationError(str(json_error)) from None
            raise
    return _fresh_tree(data, source)


# ---------------------------------------------------------------------------- bytes → text


def _too_big(source: str, size: int) -> str:
    return f"{source} is {size} bytes; files larger than {MAX_FILE_BYTES} bytes (1 MiB) are refused"


def _decode(raw: bytes | str, source: str) -> str:
    if isinstance(raw, str):
        # Text handed in by a caller (a text area): the limit is on its UTF-8 size all the same.
        try:
            size = len(raw.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValidationError(f"{source} is not UTF-8 text (unpaired surrogate at offset {exc.start})") from None
        if size > MAX_FILE_BYTES:
            raise ValidationError(_too_big(source, size))
        text = raw[1:] if raw.startswith("\ufeff") else raw
    else:
        if len(raw) > MAX_FILE_BYTES:
            raise ValidationError(_too_big(source, len(raw)))
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError(f"{source} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                                  f"{exc.start})") from None
    if "\x00" in text:
        raise ValidationError(f"{source} looks binary (it contains NUL bytes), not JSON or YAML text")
    return text


# ---------------------------------------------------------------------------- JSON


class _NotJson(ValidationError):
    """Text starting with ``{`` or ``[`` that JSON cannot parse (it may still be YAML)."""


def _load_json(text: str, source: str) -> Any:
    depth = 0
    for m in _JSON_TOKEN.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ValidationError(f"{source} line {text.count(chr(10), 0, m.start()) + 1}: "
                                      f"nesting deeper than {MAX_DEPTH} levels")
        elif c in "]}":
            depth -= 1

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise ValidationError(f"{source}: duplicate key {_short(k)} in one JSON object")
            out[k] = v
        return out

    def constant(name: str) -> Any:
        raise ValidationError(f"{source}: numbers must be finite, got {name}")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise _NotJson(f"{source} is not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer with more than 4300 digits
        raise ValidationError(f"{source} is not valid JSON: {_first_line(exc)}") from None


# ---------------------------------------------------------------------------- YAML


def _load_yaml(text: str, source: str) -> Any:
    _check_events(text, source)
    loader = _Loader(text)
    loader.source = source
    try:
        return loader.get_single_data()
    except ValidationError:
        raise
    except yaml.YAMLError as exc:
        raise ValidationError(f"{source} is not valid YAML: {_yaml_reason(exc)}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # odd scalars PyYAML converts
        raise ValidationError(f"{source} is not valid YAML: {_first_line(exc)}") from None
    finally:
        loader.dispose()


def _check_events(text: str, source: str) -> None:
    """Depth, value count (alias expansions included) and string length, from the event stream."""
    # Per open collection: [anchor, values counted when it opened, tallest child height].
    stack: list[list[Any]] = []
    anchors: dict[str, tuple[int, int]] = {}  # anchor → (values it expands to, nesting height)
    count = 0
    documents = 0

    def line(event: Any) -> int:
        return event.start_mark.line + 1 if event.start_mark else 0

    def child(height: int) -> None:
        if stack:
            stack[-1][2] = max(stack[-1][2], height)

    try:
        for event in yaml.parse(text, Loader=_BASE_LOADER):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise ValidationError(f"{source} line {line(event)}: holds several YAML documents; "
                                          "expected one")
            elif isinstance(event, yaml.ScalarEvent):
                count += 1
                if len(event.value) > MAX_STRING_CHARS:
                    raise ValidationError(f"{source} line {line(event)}: a string of {len(event.value)} "
                                          f"characters is longer than the limit of {MAX_STRING_CHARS}")
                if event.anchor is not None:
                    anchors[event.anchor] = (1, 0)
                child(0)
            elif isinstance(event, yaml.CollectionStartEvent):
                count += 1
                if len(stack) + 1 > MAX_DEPTH:
                    raise ValidationError(f"{source} line {line(event)}: nesting deeper than {MAX_DEPTH} levels")
                if event.anchor is not None:
                    anchors[event.anchor] = _OPEN
                stack.append([event.anchor, count, 0])
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, start, tallest = stack.pop()
                height = tallest + 1
                if anchor is not None:
                    anchors[anchor] = (count - start + 1, height)
                child(height)
            elif isinstance(event, yaml.AliasEvent):
                size, height = anchors.get(event.anchor, (0, 0))  # unknown: the loader says so
                if (size, height) == _OPEN:
                    raise ValidationError(f"{source} line {line(event)}: alias *{event.anchor} refers to a "
                                          "collection that contains it (a recursive structure)")
                count += size
                if count > MAX_VALUES:
                    raise ValidationError(f"{source} line {line(event)}: alias *{event.anchor} expands the "
                                          f"document beyond {MAX_VALUES} values (a YAML alias bomb?)")
                if len(stack) + height > MAX_DEPTH:
                    raise ValidationError(f"{source} line {line(event)}: alias *{event.anchor} nests deeper "
                                          f"than {MAX_DEPTH} levels")
                child(height)
            if count > MAX_VALUES:
                raise ValidationError(f"{source} line {line(event)}: more than {MAX_VALUES} values")
    except yaml.YAMLError as exc:
        raise ValidationError(f"{source} is not valid YAML: {_yaml_reason(exc)}") from None
    if documents == 0:
        raise ValidationError(f"{source} is empty")


class _Loader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """SafeLoader that refuses duplicate and non-string keys (Go's YAML refuses duplicates)."""

    source = "document"

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue  # `<<: *base` merges; explicit keys may override merged ones
                key = self.construct_object(key_node, deep=True)
                at = key_node.start_mark.line + 1
                if not isinstance(key, str):
                    raise ValidationError(f"{self.source} line {at}: mapping keys must be strings, got "
                                          f"{_short(key)} ({_kind(key)}); quote it")
                if key in seen:
                    raise ValidationError(f"{self.source} line {at}: duplicate key {_short(key)} (first at "
                                          f"line {seen[key]})")
                seen[key] = at
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: Any) -> str:
        # A date is text to the collector and to JSON: keep what was written.
        return str(self.construct_scalar(node))

    def refuse(self, node: Any) -> Any:
        raise ValidationError(f"{self.source} line {node.start_mark.line + 1}: YAML type {node.tag} is not "
                              "supported (use strings, numbers, booleans, lists and mappings)")


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
for _tag in ("binary", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _Loader.refuse)


# ---------------------------------------------------------------------------- shared checks


def _fresh_tree(data: Any, source: str) -> Any:
    """A copy with no shared subtrees; refuses what JSON cannot hold. Depth is already bounded."""
    count = 0

    def walk(v: Any, path: str) -> Any:
        nonlocal count
        count += 1
        if count > MAX_VALUES:
            raise ValidationError(f"{source}: more than {MAX_VALUES} values")
        if isinstance(v, dict):
            out = {}
            for k, item in v.items():
                if not isinstance(k, str):
                    raise ValidationError(f"{source}: {path or 'top level'}: mapping keys must be strings, "
                                          f"got {_short(k)}")
                out[k] = walk(item, f"{path}.{k}" if path else k)
            return out
        if isinstance(v, list):
            return [walk(item, f"{path}[{i}]") for i, item in enumerate(v)]
        if isinstance(v, str):
            if len(v) > MAX_STRING_CHARS:
                raise ValidationError(f"{source}: {path or 'top level'}: a string of {len(v)} characters is "
                                      f"longer than the limit of {MAX_STRING_CHARS}")
            return v
        if isinstance(v, float) and not math.isfinite(v):
            raise ValidationError(f"{source}: {path or 'top level'}: numbers must be finite, got {v}")
        if v is None or isinstance(v, bool | int | float):
            return v
        raise ValidationError(f"{source}: {path or 'top level'}: values of type {type(v).__name__} are not "
                              "supported (use strings, numbers, booleans, lists and mappings)")

    return walk(data, "")


def _kind(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(v), f"a {type(v).__name__}")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _yaml_reason(exc: yaml.YAMLError) -> str:
    # PyYAML names the stream "<unicode string>"; the caller's message already names the file.
    return " ".join(str(exc).replace(' in "<unicode string>",', " at").split())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
