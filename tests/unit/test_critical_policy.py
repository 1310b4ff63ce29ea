from __future__ import annotations

import pandas as pd
import pytest

from core.domain.critical import (
    DEFAULT_POLICY,
    CriticalPolicy,
    Rule,
    classify,
    load_policy_text,
    policy_from_rules,
    rule_problems,
)
from core.domain.errors import ValidationError


def series(*values: object) -> pd.Series:
    return pd.Series(list(values), dtype="string")


def test_default_policy_marks_databases_proxies_brokers_runtimes_and_sshd_critical():
    names = ["postgres", "nginx", "kubelet", "containerd", "sshd", "redis-server", "bash", "java", "cron"]
    cmd = ["", "", "", "", "", "", "", "java -cp kafka.jar kafka.Kafka server.properties", ""]
    got = classify(DEFAULT_POLICY, series(*names), series(*cmd), series(*["root"] * len(names)))
    assert list(got) == ["critical"] * 6 + ["low", "critical", "medium"]


def test_first_matching_rule_wins_and_unmatched_get_the_default():
    policy = policy_from_rules([
        {"match": "executable_name", "pattern": "^py", "priority": "high"},
        {"match": "executable_name", "pattern": "python", "priority": "critical"},
        {"match": "owner", "pattern": "^postgres$", "priority": "critical"},
    ], default_priority="medium")
    got = classify(policy, series("python3", "worker", "x"), series("", "", ""), series("bob", "postgres", pd.NA))
    assert list(got) == ["high", "critical", "medium"]


def test_missing_values_never_match():
    policy = CriticalPolicy(rules=(Rule("command_line", ".*", "critical"),))
    got = classify(policy, series("a", "b"), series(pd.NA, "run"), series("u", "u"))
    assert list(got) == ["low", "critical"]


def test_classify_uses_search_semantics_like_ottl_ismatch():
    policy = CriticalPolicy(rules=(Rule("command_line", "nginx: master", "critical"),))
    got = classify(policy, series("nginx"), series("/usr/sbin/nginx: master process"), series("root"))
    assert list(got) == ["critical"]


def test_critical_file_format_loads():
    policy = load_policy_text("rules:\n  - {match: executable_name, pattern: '^mydb$', priority: critical}\n")
    assert policy.rules == (Rule("executable_name", "^mydb$", "critical"),)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rules: [{match: pid, pattern: x, priority: critical}]", "match must be one of"),
        ("rules: [{match: owner, pattern: x, priority: urgent}]", "priority must be one of"),
        ("rules: [{match: owner, pattern: '(?=x)', priority: low}]", "lookahead"),
        ("rules: [{match: owner, pattern: '(a)\\1', priority: low}]", "backreferences"),
        ("rules: [{match: owner, pattern: '[', priority: low}]", "does not compile"),
        ("rules: [{match: owner, pattern: x, priority: low, extra: 1}]", "unknown key"),
        ("rules: 3", "must be a list"),
        ("just: text", "'rules' list"),
        ("rules: [", "not valid YAML"),
    ],
)
def test_bad_critical_files_get_specific_messages(text, fragment):
    with pytest.raises(ValidationError) as err:
        load_policy_text(text)
    assert fragment in str(err.value)


def test_rule_count_is_limited():
    assert "at most" in rule_problems([{"match": "owner", "pattern": "x", "priority": "low"}] * 201)[0]
