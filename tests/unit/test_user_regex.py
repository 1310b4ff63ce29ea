"""User regexes are RE2: refused when RE2 cannot compile them, linear time when it can."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from core.domain.critical import load_policy_text, policy_from_rules
from core.domain.errors import ValidationError
from core.domain.user_regex import MAX_REGEX_LEN, match_values, regex_problem, search

CATASTROPHIC = "(a+)+$"  # exponential in Python's backtracking re on "aaa…a!"
HOSTILE = "a" * 49 + "!"  # 50 characters


def test_catastrophic_pattern_is_linear_in_the_runtime_measurement():
    """``scrape_measure.critical_pids`` is what the local runtime judges critical coverage with."""
    from core.runtime.scrape_measure import critical_pids

    policy = policy_from_rules([{"match": "command_line", "pattern": CATASTROPHIC, "priority": "critical"}])
    snapshot = pd.DataFrame({
        "scrape": [1, 1, 1], "pid": [10, 11, 12],
        "executable_name": ["sh", "sh", "sh"], "owner": ["u", "u", "u"],
        "command_line": [HOSTILE, "aaaa", HOSTILE + "a"],
    })
    started = time.perf_counter()
    assert critical_pids(snapshot, policy).tolist() == [11, 12]
    assert time.perf_counter() - started < 1.0


def test_catastrophic_pattern_is_linear_in_the_engine_and_the_settings_tester():
    from app.widgets.settings_tools import test_process
    from core.catalog.kernel_ops import regex_hits

    started = time.perf_counter()
    column = pd.Series(pd.Categorical([HOSTILE, "xa", None]))
    assert regex_hits(column, CATASTROPHIC).tolist() == [False, True, False]
    policy = load_policy_text(f"rules: [{{match: command_line, pattern: '{CATASTROPHIC}', priority: critical}}]")
    assert test_process(policy, "sh", HOSTILE) == {"priority": "low", "rule": None}
    assert test_process(policy, "sh", "aa")["priority"] == "critical"
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(a)\\1", "backreferences (\\1 …) are not supported by RE2"),
        ("(?=x)", "lookahead (?= / (?! is not supported by RE2"),
        ("(?<!x)y", "lookbehind (?<= / (?<! is not supported by RE2"),
        ("a++", "possessive quantifiers are not supported by RE2"),
        ("x\\Z", "\\Z is not RE2; use \\z or $"),
        ("\\C", "\\C (any byte) is not supported by the collector's Go RE2"),
        ("[", "does not compile: missing ]: ["),
        ("a{1001}", "does not compile: invalid repetition size: {1001}"),
        ("x" * (MAX_REGEX_LEN + 1), "is longer than 1024 characters"),
        ("", "must be a non-empty regular expression"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_a_reason(pattern, why):
    assert regex_problem(pattern) == why


def test_re2_syntax_python_re_lacks_is_accepted():
    for pattern in ("\\pL+", "[[:alpha:]]+", "\\z", "(?P<name>x)", "(?i)NGINX"):
        assert regex_problem(pattern) is None, pattern
    assert search("^\\pL+$", "nginx") and search("(?i)^NGINX$", "nginx")


def test_critical_file_refusal_names_the_rule_and_pattern():
    with pytest.raises(ValidationError) as err:
        load_policy_text("rules:\n- {match: owner, pattern: '^root$', priority: high}\n"
                         "- {match: command_line, pattern: '(\\w+) \\1', priority: critical}\n", "crit.yaml")
    assert str(err.value) == "rules[1].pattern '(\\\\w+) \\\\1' backreferences (\\1 …) are not supported by RE2"


def test_undecodable_process_bytes_are_matched_as_raw_bytes():
    values = np.array(["ok", "caf\udce9", None], dtype=object)  # psutil's surrogateescape for b"caf\xe9"
    assert match_values("^caf", values).tolist() == [False, True, False]
    assert search("^caf", "caf\udce9") is True
