"""Critical policy: ordered regex rules that give each process a priority class.

First match wins; unmatched processes get the policy's default priority. Critical
processes keep all their series in every pipeline (docs/pipeline-semantics.md, "Markers and the critical guard"). Patterns are written
for Go RE2 with *search* semantics (OTTL ``IsMatch``) and evaluated here with RE2 too
(``core.domain.user_regex``): same answers as the collector, linear time on any input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.domain.documents import load_mapping, read_bounded
from core.domain.errors import ValidationError
from core.domain.user_regex import match_values, quote_pattern, regex_problem, search
from core.domain.user_text import text_problem

MatchField = Literal["executable_name", "command_line", "owner"]
Priority = Literal["critical", "high", "medium", "low"]
MATCH_FIELDS: tuple[str, ...] = ("executable_name", "command_line", "owner")
PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
# OTel resource attribute each match field reads.
FIELD_ATTRIBUTE = {
    "executable_name": "process.executable.name",
    "command_line": "process.command_line",
    "owner": "process.owner",
}
MAX_RULES = 200


@dataclass(frozen=True)
class Rule:
    match: str
    pattern: str
    priority: str

    def to_dict(self) -> dict[str, str]:
        return {"match": self.match, "pattern": self.pattern, "priority": self.priority}


@dataclass(frozen=True)
class CriticalPolicy:
    rules: tuple[Rule, ...] = ()
    default_priority: str = "low"
    source: str = "default"
    notes: tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [r.to_dict() for r in self.rules]}

    @property
    def critical_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.priority == "critical")

    def classify(self, executable_name: Any, command_line: Any, owner: Any, default: str | None = None) -> Any:
        return classify(self, executable_name, command_line, owner, default=default)


def _names(*names: str) -> str:
    return "^(?:" + "|".join(names) + ")$"


# Sensible defaults: what an SRE would be paged for if it vanished from dashboards.
# Executable names are matched exactly (anchored); brokers and JVM services are found
# on the command line because their executable is `java` or `beam.smp`.
DEFAULT_RULES: tuple[Rule, ...] = (
    # databases and stores
    Rule("executable_name", _names(
        "postgres", "postmaster", "mysqld", "mariadbd", "mongod", "mongos", "redis-server",
        "memcached", "etcd", "clickhouse-server", "influxd", "cockroach", "sqlservr",
        "oracle", "pgbouncer", "valkey-server", "keydb-server",
    ), "critical"),
    Rule("command_line", r"org\.apache\.cassandra|org\.elasticsearch|org\.opensearch|zookeeper", "critical"),
    # web servers and proxies
    Rule("executable_name", _names(
        "nginx", "httpd", "apache2", "haproxy", "envoy", "traefik", "caddy", "squid", "varnishd",
    ), "critical"),
    # message brokers
    Rule("command_line", r"kafka\.Kafka|rabbitmq|activemq|pulsar", "critical"),
    Rule("executable_name", _names("nats-server", "mosquitto", "beam.smp"), "critical"),
    # kubernetes and container runtimes
    Rule("executable_name", _names(
        "kubelet", "kube-apiserver", "kube-proxy", "kube-scheduler", "kube-controller-manager",
        "containerd", "containerd-shim.*", "dockerd", "crio", "runc", "conmon",
    ), "critical"),
    # remote access and init
    Rule("executable_name", _names("sshd", "systemd", "init"), "critical"),
    # high: application runtimes and the observability agents themselves
    Rule("executable_name", _names(
        "java", "node", "python[0-9.]*", "ruby", "php-fpm.*", "dotnet", "gunicorn", "uwsgi",
        "puma", "unicorn", "beam", "erl", "go", "deno", "bun",
    ), "high"),
    Rule("executable_name", _names(
        "otelcol.*", "prometheus", "node_exporter", "fluent-bit", "fluentd", "vector",
        "datadog-agent", "telegraf", "grafana-agent", "alloy", "promtail",
    ), "high"),
    # medium: system services whose loss is noticed but not urgent
    Rule("executable_name", _names(
        "cron", "crond", "rsyslogd", "systemd-journald", "systemd-logind", "systemd-resolved",
        "systemd-networkd", "dbus-daemon", "chronyd", "ntpd", "auditd",
    ), "medium"),
)

DEFAULT_POLICY = CriticalPolicy(rules=DEFAULT_RULES, default_priority="low", source="default")


def rule_problems(raw: Any, where: str = "rules") -> list[str]:
    """Specific problems with a raw ``rules`` list (empty when valid)."""
    if not isinstance(raw, list):
        return [f"{where} must be a list of {{match, pattern, priority}} mappings"]
    if len(raw) > MAX_RULES:
        return [f"{where} has {len(raw)} rules; at most {MAX_RULES} are allowed"]
    problems: list[str] = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{at} must be a mapping with match, pattern and priority")
            continue
        extra = sorted(set(item) - {"match", "pattern", "priority"})
        if extra:
            problems.append(f"{at} has unknown key(s) {', '.join(extra)}")
        match = item.get("match")
        if match not in MATCH_FIELDS:
            problems.append(f"{at}.match must be one of {', '.join(MATCH_FIELDS)}, got {match!r}")
        prio = item.get("priority")
        if prio not in PRIORITIES:
            problems.append(f"{at}.priority must be one of {', '.join(PRIORITIES)}, got {prio!r}")
        pattern = item.get("pattern")
        why = regex_problem(pattern) or (text_problem(pattern) if isinstance(pattern, str) else None)
        if why:
            shown = f" {quote_pattern(pattern)}" if isinstance(pattern, str) and pattern else ""
            problems.append(f"{at}.pattern{shown} {why}")
    return problems


def policy_from_rules(raw: Any, source: str = "custom", default_priority: str = "low") -> CriticalPolicy:
    problems = rule_problems(raw)
    if problems:
        raise ValidationError(problems)
    rules = tuple(Rule(r["match"], r["pattern"], r["priority"]) for r in raw)
    return CriticalPolicy(rules=rules, default_priority=default_priority, source=source)


def load_policy_text(text: str | bytes, source: str = "critical file") -> CriticalPolicy:
    """Parse the ``--critical-file`` YAML: ``rules: [{match, pattern, priority}]``.

    Through the same bounded reader as pipeline files (size, depth, aliases, duplicate keys).
    """
    try:
        data = load_mapping(text, source)
    except ValidationError as exc:
        if "must be a mapping at the top level" not in str(exc):
            raise
        data = None
    if not isinstance(data, dict) or "rules" not in data:
        raise ValidationError(f"{source} must be a mapping with a 'rules' list")
    extra = sorted(set(data) - {"rules", "default_priority"})
    if extra:
        raise ValidationError(f"{source} has unknown key(s): {', '.join(map(str, extra))}")
    default = data.get("default_priority", "low")
    if default not in PRIORITIES or default == "critical":
        raise ValidationError(f"{source}: default_priority must be high, medium or low, got {default!r}")
    return policy_from_rules(data["rules"], source=source, default_priority=default)


def load_policy_file(path: str | Path) -> CriticalPolicy:
    p = Path(path)
    return load_policy_text(read_bounded(p, what="critical file"), source=str(p))


def classify(policy: CriticalPolicy, executable_name: Any, command_line: Any, owner: Any,
             default: str | None = None) -> Any:
    """Vectorised classification of pandas Series: first matching rule wins.

    Returns a pandas Series of priority strings aligned with ``executable_name``.
    Missing values never match a rule. One RE2 pass per rule over the distinct values
    (``user_regex.match_values``), no per-row loop and no backtracking.
    """
    import numpy as np
    import pandas as pd

    columns = {"executable_name": executable_name, "command_line": command_line, "owner": owner}
    index = executable_name.index
    out = np.full(len(index), None, dtype=object)
    unset = np.ones(len(index), dtype=bool)
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for rule in policy.rules:
        if not unset.any():
            break
        if rule.match not in cache:
            # Match on the distinct values only (cheap at fleet scale). Object arrays, not pandas
            # strings: those are Arrow-backed and refuse undecodable /proc bytes (surrogates).
            codes, uniques = pd.factorize(np.asarray(columns[rule.match], dtype=object))  # NA → -1
            uniques = np.array([u if isinstance(u, str) else str(u) for u in uniques], dtype=object)
            cache[rule.match] = (codes, uniques)
        codes, uniques = cache[rule.match]
        hit_values = match_values(rule.pattern, uniques, where=f"critical rule {rule.match}")
        hit = np.append(hit_values, False)[codes] & unset  # code -1 (missing) → the appended False
        out[hit] = rule.priority
        unset &= ~hit
    out[unset] = default or policy.default_priority
    return pd.Series(out, index=index, dtype="string")


def deciding_rule(policy: CriticalPolicy, executable_name: str | None, command_line: str | None,
                  owner: str | None) -> Rule | None:
    """The first rule that matches one process (what ``classify`` applies), or None."""
    fields = {"executable_name": executable_name, "command_line": command_line, "owner": owner}
    return next((r for r in policy.rules if fields[r.match] and search(r.pattern, fields[r.match])), None)
