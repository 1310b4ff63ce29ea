"""Helpers shared by the node-type modules: parameter checks, RE2 checks, OTTL snippets.

Regex checks live in ``core.domain.user_regex`` (RE2 only) and are re-exported here.

Kept here so every node type phrases the critical guard and its keep-lists the same
way (the YAML rules in docs/pipeline-semantics.md are easy to break one module at a time).
"""

from __future__ import annotations

import re
from typing import Any

from core.catalog.base import Param
from core.domain.durations import duration_or_none
from core.domain.user_regex import MAX_REGEX_LEN, quote_pattern, regex_problem  # noqa: F401 - re-exported
from core.domain.user_text import user_text_problems

# Size limits: a pipeline is edited in a browser form, so anything larger is a mistake
# (or an attack on the regex engine) rather than a real configuration.
MAX_STRING_LEN = 512
MAX_LIST_ITEMS = 200

# The OTTL fragments every reducing node uses. `!= "critical"` is also true when the
# attribute is absent, which is what we want: unclassified processes are not critical.
NOT_CRITICAL = 'resource.attributes["phoenix.priority"] != "critical"'
NOT_KEPT = 'resource.attributes["phoenix.keep"] == nil'
NOT_ROLLUP = 'resource.attributes["phoenix.rollup"] == nil'
GUARD = f"{NOT_CRITICAL} and {NOT_KEPT}"

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def ottl_str(value: str) -> str:
    """An OTTL string literal: double quotes, with backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def attr(key: str) -> str:
    return f"resource.attributes[{ottl_str(key)}]"


def component_id(kind: str, node_id: str, suffix: str = "") -> str:
    """Collector component id for a node: ``type/<node id>[_suffix]`` (unique per graph)."""
    return f"{kind}/{node_id}{'_' + suffix if suffix else ''}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_params(specs: tuple[Param, ...], params: Any) -> list[str]:
    """Type, range and size checks every node type gets from its ``Param`` specs."""
    if not isinstance(params, dict):
        return ["params must be a mapping of parameter name to value"]
    problems: list[str] = []
    known = {p.name for p in specs}
    for name in params:
        if name not in known:
            allowed = ", ".join(sorted(known)) or "none"
            problems.append(f"unknown parameter {name!r} (allowed: {allowed})")
    for p in specs:
        if p.name not in params:
            continue
        problems.extend(f"{p.name}: {msg}" for msg in _check_value(p, params[p.name]))
        problems.extend(f"{p.name}: {msg}" for msg in user_text_problems(params[p.name]))
    return problems


# Header secrets reach the collector only as ${env:NAME}, and only for these names: a config
# can never ship an arbitrary environment variable (AWS keys, tokens) to an arbitrary host.
SECRET_ENV_NAMES: dict[str, re.Pattern[str]] = {
    "otlphttp": re.compile(r"^(NEW_RELIC_LICENSE_KEY|PHOENIX_[A-Z0-9_]+)$"),
    "prometheusremotewrite": re.compile(r"^PHOENIX_[A-Z0-9_]+$"),
}
_LOOPBACK_HOSTS = re.compile(r"^(localhost|127(\.\d{1,3}){3}|\[::1\])$", re.IGNORECASE)
_URL = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?:[^@/?#\s]*@)?(?P<host>\[[^\]/\s]*\]|[^:/?#\s]+)"
                  r"(?::\d{1,5})?(?:[/?#]\S*)?$", re.IGNORECASE)


def secret_env_problem(exporter: str, field_name: str, name: Any) -> str | None:
    allowed = SECRET_ENV_NAMES[exporter]
    if not isinstance(name, str) or not allowed.match(name):
        return (f"{field_name} must name an allowed environment variable for {exporter} secrets "
                f"({allowed.pattern.strip('^$')}), got {name!r}; the value itself is never written into the config")
    return None


def endpoint_problem(url: Any) -> str | None:
    """Remote exporters send to https only; plain http only to this host's loopback."""
    m = _URL.match(url) if isinstance(url, str) else None
    if m is None:
        return f"endpoint must be an https URL, got {url!r}"
    scheme, host = m.group("scheme").lower(), m.group("host")
    if scheme == "https" or (scheme == "http" and _LOOPBACK_HOSTS.match(host)):
        return None
    return f"endpoint must be an https URL (plain http only to localhost/127.0.0.1/[::1]), got {url!r}"


def _check_value(p: Param, v: Any) -> list[str]:
    if p.type in ("int", "bytes"):
        if not _is_int(v):
            return [f"must be an integer, got {v!r}"]
    elif p.type == "float":
        if not (_is_int(v) or isinstance(v, float)) or v != v:
            return [f"must be a number, got {v!r}"]
    elif p.type == "bool":
        if not isinstance(v, bool):
            return [f"must be true or false, got {v!r}"]
    elif p.type in ("str", "enum"):
        if not isinstance(v, str):
            return [f"must be a string, got {v!r}"]
        if len(v) > MAX_STRING_LEN:
            return [f"is longer than {MAX_STRING_LEN} characters"]
        if p.type == "enum" and p.choices and v not in p.choices:
            return [f"must be one of {', '.join(p.choices)}; got {v!r}"]
    elif p.type == "duration":
        secs = duration_or_none(v)
        if secs is None:
            return [f"must be a Go duration such as 10s or 1m30s, got {v!r}"]
        if p.minimum is not None and secs < p.minimum:
            return [f"must be at least {p.minimum:g}s, got {v}"]
        if p.maximum is not None and secs > p.maximum:
            return [f"must be at most {p.maximum:g}s, got {v}"]
        return []
    elif p.type == "list[str]":
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            return ["must be a list of strings"]
        if len(v) > MAX_LIST_ITEMS:
            return [f"has more than {MAX_LIST_ITEMS} items"]
        if any(len(x) > MAX_STRING_LEN for x in v):
            return [f"has an item longer than {MAX_STRING_LEN} characters"]
        if p.choices:
            bad = [x for x in v if x not in p.choices]
            if bad:
                return [f"unknown value(s) {', '.join(map(repr, bad))}; allowed: {', '.join(p.choices)}"]
        return []
    elif p.type == "map":
        if not isinstance(v, dict):
            return ["must be a mapping"]
        if len(v) > MAX_LIST_ITEMS:
            return [f"has more than {MAX_LIST_ITEMS} entries"]
        if any(not isinstance(k, str) or len(k) > MAX_STRING_LEN for k in v):
            return ["keys must be strings of reasonable length"]
        return []
    elif p.type == "rules":
        if not isinstance(v, list):
            return ["must be a list of rules"]
        if len(v) > MAX_LIST_ITEMS:
            return [f"has more than {MAX_LIST_ITEMS} rules"]
        return []
    if p.type in ("int", "float", "bytes"):
        if p.minimum is not None and v < p.minimum:
            return [f"must be at least {p.minimum:g}, got {v}"]
        if p.maximum is not None and v > p.maximum:
            return [f"must be at most {p.maximum:g}, got {v}"]
    return []


def env_ref(name: str) -> str:
    return "${env:" + name + "}"
