"""Where the queries come from: Prometheus rule files, Grafana dashboards, Prometheus' rules API.

Each reader returns ``(queries, problems)``: a problem is one line naming the file (or URL) and
what is wrong with it, and never stops the others. Grafana template variables are replaced by
text Prometheus parses (``grafana_text``; docs/recommend.md, "Dashboard variables").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from core.domain.documents import load_mapping, read_bounded
from core.domain.errors import ValidationError
from core.redact import mask_url, redact

MAX_DASHBOARD_FILES = 1000
MAX_PANEL_DEPTH = 8  # rows hold panels; nothing real nests deeper
#: What Grafana's interval variables become: a range every test window covers.
RANGE_TEXT = "5m"
_BUILTINS = {"__rate_interval": RANGE_TEXT, "__interval": RANGE_TEXT, "__range": RANGE_TEXT,
             "__interval_ms": "300000", "__range_ms": "300000", "__range_s": "300"}
# $name, ${name}, ${name:format}, [[name]], [[name:format]]
_VAR = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
# a label matcher whose quoted value may hold variables: label op "value"
_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


@dataclass(frozen=True)
class Query:
    origin: str  # "rules.yml: group cpu, alert HighCpu", "svc.json: panel CPU (target A)", …
    expr: str  # what is parsed: the text with dashboard variables substituted
    written: str  # the text as written


def grafana_text(expr: str, current: Mapping[str, str] | None = None) -> str:
    """``expr`` with Grafana variables replaced by parseable text.

    In a label matcher's value a variable means "any value": ``=``/``!=`` become ``=~``/``!~``
    and the variable ``.*`` (the rest of the value is escaped as a regex literal). Elsewhere the
    built-in ranges become ``5m`` and other variables their current value when it is one plain
    token, else ``5m`` (they are nearly always ranges there).
    """
    current = current or {}

    def in_matcher(m: re.Match[str]) -> str:
        label, op, value = m.groups()
        if not _VAR.search(value):
            return m.group(0)
        parts, pos = [], 0
        for v in _VAR.finditer(value):
            lit = value[pos:v.start()]
            parts.append(_REGEX_SPECIAL.sub(r"\\\\\1", lit) if op in ("=", "!=") else lit)
            parts.append(".*")
            pos = v.end()
        lit = value[pos:]
        parts.append(_REGEX_SPECIAL.sub(r"\\\\\1", lit) if op in ("=", "!=") else lit)
        new_op = {"=": "=~", "!=": "!~"}.get(op, op)
        return f'{label}{new_op}"{"".join(parts)}"'

    def elsewhere(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in _BUILTINS:
            return _BUILTINS[name]
        value = str(current.get(name, ""))
        return value if re.fullmatch(r"[\w.]+", value) else RANGE_TEXT

    return _VAR.sub(elsewhere, _MATCHER.sub(in_matcher, expr))


# ---- Prometheus rule files ---------------------------------------------------------------------


def rule_text_queries(name: str, raw: bytes | str) -> tuple[list[Query], list[str]]:
    """A Prometheus rule file's content (YAML ``groups: [{name, rules: [{alert|record, expr}]}]``)."""
    try:
        doc = load_mapping(raw, f"rule file {name}")
    except ValidationError as exc:
        return [], [_line(exc, f"rule file {name}")]
    return rule_groups_queries(doc.get("groups"), name)


def rule_groups_queries(groups: Any, where: str, expr_key: str = "expr") -> tuple[list[Query], list[str]]:
    """Queries of a ``groups:`` list (a rule file's, or the rules API's with ``expr_key='query'``)."""
    if not isinstance(groups, list):
        return [], [f"{where}: no 'groups' list (a Prometheus rule file has groups: [{{name, rules}}])"]
    out: list[Query] = []
    problems: list[str] = []
    for gi, group in enumerate(groups):
        gname = group.get("name", f"#{gi + 1}") if isinstance(group, dict) else f"#{gi + 1}"
        rules = group.get("rules") if isinstance(group, dict) else None
        if not isinstance(rules, list):
            problems.append(f"{where}: group {gname} has no 'rules' list")
            continue
        for ri, rule in enumerate(rules):
            if not isinstance(rule, dict):
                problems.append(f"{where}: group {gname}, rule #{ri + 1} is not a mapping")
                continue
            # a file writes alert:/record:; the rules API writes name: with type: alerting|recording
            kind = "alert" if rule.get("alert") or rule.get("type") == "alerting" else "record"
            label = rule.get("alert") or rule.get("record") or rule.get("name") or f"#{ri + 1}"
            expr = rule.get(expr_key)
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{where}: group {gname}, {kind} {label} has no {expr_key}")
                continue
            out.append(Query(f"{where}: group {gname}, {kind} {label}", expr, expr))
    return out, problems


# ---- Grafana dashboards ------------------------------------------------------------------------


def read_files(paths: Iterable[str | Path], what: str) -> tuple[list[tuple[str, bytes]], list[str]]:
    """``(name, bytes)`` of each file (bounded reads); a file that cannot be read is a problem line."""
    out, problems = [], []
    for path in paths:
        try:
            out.append((Path(path).name, read_bounded(path, what)))
        except (ValidationError, OSError) as exc:
            problems.append(_line(exc, f"{what} {path}"))
    return out, problems


def read_dashboard_dir(directory: str | Path) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Every ``*.json`` under ``directory`` (recursively); other files are reported and skipped."""
    root = Path(directory)
    if not root.is_dir():
        return [], [f"dashboards: {directory} is not a directory"]
    files = sorted(p for p in root.rglob("*") if p.is_file())
    problems: list[str] = []
    if len(files) > MAX_DASHBOARD_FILES:
        problems.append(f"dashboards: {directory} holds {len(files)} files; read the first {MAX_DASHBOARD_FILES}")
        files = files[:MAX_DASHBOARD_FILES]
    out: list[tuple[str, bytes]] = []
    for path in files:
        rel = str(path.relative_to(root))
        if path.suffix.lower() != ".json":
            problems.append(f"dashboard {rel}: not a .json file, skipped")
            continue
        try:
            out.append((rel, read_bounded(path, "dashboard")))
        except (ValidationError, OSError) as exc:
            problems.append(_line(exc, f"dashboard {rel}"))
    return out, problems


def dashboard_text_queries(name: str, raw: bytes | str) -> tuple[list[Query], list[str]]:
    try:
        doc = load_mapping(raw, f"dashboard {name}")
    except ValidationError as exc:
        return [], [_line(exc, f"dashboard {name}")]
    return dashboard_queries(doc, name)


def dashboard_queries(doc: Mapping[str, Any], where: str) -> tuple[list[Query], list[str]]:
    """``targets[].expr`` of every panel, rows and nested panels included (the API's
    ``{"dashboard": {...}}`` wrapper too)."""
    if isinstance(doc.get("dashboard"), dict):
        doc = doc["dashboard"]
    if not isinstance(doc.get("panels"), list) and not isinstance(doc.get("rows"), list):
        return [], [f"dashboard {where}: no 'panels' (is it a Grafana dashboard?)"]
    current = _current_values(doc)
    out: list[Query] = []
    for panel, title in _panels(doc, 0):
        for ti, target in enumerate(panel.get("targets") or []):
            if not isinstance(target, dict) or not isinstance(target.get("expr"), str) or not target["expr"].strip():
                continue
            ref = target.get("refId") or f"#{ti + 1}"
            out.append(Query(f"dashboard {where}: panel {title} (target {ref})",
                             grafana_text(target["expr"], current), target["expr"]))
    return out, []


def _panels(node: Mapping[str, Any], depth: int) -> Iterator[tuple[dict[str, Any], str]]:
    if depth > MAX_PANEL_DEPTH:
        return
    for key in ("panels", "rows"):
        children = node.get(key)
        if not isinstance(children, list):
            continue
        for i, child in enumerate(children):
            if not isinstance(child, dict):
                continue
            yield child, str(child.get("title") or f"#{i + 1}")
            yield from _panels(child, depth + 1)


def _current_values(doc: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    templating = doc.get("templating")
    for var in (templating.get("list") if isinstance(templating, dict) else None) or []:
        if isinstance(var, dict) and isinstance(var.get("name"), str):
            cur = var.get("current")
            value = cur.get("value") if isinstance(cur, dict) else None
            if isinstance(value, str):
                out[var["name"]] = value
    return out


# ---- Prometheus' rules API ---------------------------------------------------------------------


def prometheus_rule_queries(url: str, timeout_s: float = 10.0) -> tuple[list[Query], list[str]]:
    """``GET {url}/api/v1/rules``: every alerting and recording rule Prometheus evaluates."""
    shown = mask_url(url)
    if not re.match(r"^https?://[^/\s]+", url or ""):
        return [], [f"--prometheus {shown!r} is not an http(s) URL"]
    try:
        response = httpx.get(url.rstrip("/") + "/api/v1/rules", timeout=timeout_s)
        response.raise_for_status()
        body = response.json()
    except httpx.HTTPStatusError as exc:
        return [], [f"Prometheus at {shown}: /api/v1/rules answered HTTP {exc.response.status_code}"]
    except (httpx.HTTPError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [], [f"Prometheus at {shown} did not answer /api/v1/rules: {redact(_first(exc), url)}"]
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return [], [f"Prometheus at {shown}: /api/v1/rules did not return data.groups"]
    return rule_groups_queries(data.get("groups"), f"Prometheus {shown}", expr_key="query")


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _line(exc: BaseException, where: str) -> str:
    text = _first(exc)
    return text if where in text else f"{where}: {text}"
