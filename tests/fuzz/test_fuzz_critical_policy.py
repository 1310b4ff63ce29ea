"""Hostile critical policies and regexes through the entry points users have.

- the CLI's ``--critical-file`` reader (``experiment create|run``: ``critical_rules_from``;
  ``estimate``: ``load_policy_file``);
- the Settings page: ``load_policy_text`` on the edited policy, then the process tester
  (``settings_tools.test_process``);
- the runtime measurement (``scrape_measure.critical_pids``) on the accepted policies.

Accepted or refused with a non-empty ``PhoenixError`` message, never another exception, each
example within a time budget (RE2: no catastrophic backtracking), and the vectorised
classifier and the tester agree on every accepted pattern.
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from app.widgets import settings_tools
from core.commands.common import critical_rules_from
from core.domain.critical import MATCH_FIELDS, PRIORITIES, load_policy_file
from core.domain.errors import PhoenixError
from core.domain.user_regex import MAX_REGEX_LEN
from core.runtime.scrape_measure import critical_pids
from tests.fuzz.profile import FUZZ

EXAMPLE_BUDGET_S = 3.0
ROOT = Path(tempfile.mkdtemp(prefix="phoenix-fuzz-critical-"))
atexit.register(shutil.rmtree, ROOT, True)
_counter = itertools.count()

# ------------------------------------------------------------------ regexes

CATASTROPHIC = st.sampled_from([
    "(a+)+$", "(a|aa)+$", "(a*)*b", "(.*a){12}", "^(\\w+\\s?)*$", "(x+x+)+y", "^(a|a?)+$", "(.*){1,32000}[bc]",
    "((a{1,100}){1,100}){1,100}", "(?:a|b|ab)*c", "^([a-zA-Z0-9])(([\\-.]|[_]+)?([a-zA-Z0-9]+))*(@)$",
])
NOT_RE2 = st.sampled_from(["(a)\\1", "(?=x)", "(?!x)", "(?<=x)y", "(?<!x)y", "(?>a)", "a++", "x\\Z", "\\C",
                           "(?P=n)", "(?(1)a|b)", "[", "(", "a{1001}", "*", "(?P<n>a)(?P<n>b)", "\\"])
ATOMS = st.sampled_from(["a", "b", ".", "\\w", "\\d", "\\s", "[a-z]", "[^x]", "\\pL", "[[:alpha:]]", "^", "$",
                         "\\b", "\\z", "\\.", "é", "-", " ", "\\x{41}", "(?i)", "(?s)"])
QUANTIFIERS = st.sampled_from(["*", "+", "?", "{2}", "{2,}", "{1,5}", "*?", "+?", "{1000}"])
GRAMMAR = st.recursive(
    ATOMS | st.text(max_size=4),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map("".join),
        st.tuples(inner, inner).map("|".join),
        inner.map(lambda r: f"({r})"),
        inner.map(lambda r: f"(?:{r})"),
        st.tuples(inner, QUANTIFIERS).map("".join),
    ),
    max_leaves=10,
)
HUGE = st.integers(MAX_REGEX_LEN - 3, MAX_REGEX_LEN + 3).flatmap(
    lambda n: st.sampled_from(["a", "(a|b)", "\\w"]).map(lambda unit: (unit * n)[:n]))
# Weighted towards patterns RE2 accepts, so most policies get as far as matching.
PATTERNS = st.one_of(CATASTROPHIC, CATASTROPHIC, GRAMMAR, GRAMMAR, GRAMMAR, NOT_RE2, HUGE, st.text(max_size=30))

SUBJECTS = st.one_of(
    st.integers(1, 3000).map(lambda n: "a" * n + "!"),
    st.integers(1, 200).map(lambda n: "ab" * n + "c"),
    st.text(max_size=60),
    st.sampled_from(["", "nginx", "postgres", "java -jar kafka.Kafka", "caf\udce9", "x" * 3000, "é\u202e"]),
)

RULES = st.lists(st.fixed_dictionaries({
    "match": st.sampled_from([*MATCH_FIELDS * 3, "pid"]),
    "pattern": PATTERNS,
    "priority": st.sampled_from([*PRIORITIES * 3, "urgent"]),
}), min_size=1, max_size=3)


# ------------------------------------------------------------------ policy files


def _dump(data: Any) -> bytes:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, allow_unicode=True).encode("utf-8", "surrogatepass")


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
    max_leaves=10,
)
POLICY_FILES = st.one_of(
    st.builds(lambda rules, default: _dump({"rules": rules, "default_priority": default}),
              RULES, st.sampled_from(["low", "medium", "high", "critical", "bogus"])),
    RULES.map(lambda rules: _dump({"rules": rules})),
    VALUES.map(lambda v: _dump({"rules": v})),
    VALUES.map(_dump),
    st.binary(max_size=300),
    st.sampled_from([
        b"rules: &r [{match: owner, pattern: x, priority: low}]\nagain: *r\n",
        b"rules:\n- {match: owner, pattern: x, priority: low}\nrules: []\n",
        b"rules: [" + b"[" * 100 + b"]" * 100 + b"]\n",
        b"rules: &a [1, *a]\n",
        b"rules: []\n---\nrules: []\n",
        b"\xef\xbb\xbfrules: []\n",
        b"rules: [{match: owner, pattern: '" + b"x" * 20_000 + b"', priority: low}]\n",
    ]),
    st.builds(lambda levels, width: ("rules:\n" + "".join(
        f"- &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * width) + "]\n" for i in range(levels))).encode(),
        st.integers(2, 10), st.integers(2, 12)),
)


def _timed(started: float, what: str) -> None:
    elapsed = time.perf_counter() - started
    assert elapsed < EXAMPLE_BUDGET_S, f"{elapsed:.1f}s for {what}"


@FUZZ
@given(raw=POLICY_FILES)
def test_hostile_critical_files_are_read_or_refused_by_the_cli_reader(raw: bytes) -> None:
    started = time.perf_counter()
    path = ROOT / f"critical{next(_counter)}.yaml"
    path.write_bytes(raw)
    try:
        problems: list[str] = []
        rules = critical_rules_from(str(path), problems)  # phoenix experiment create|run --critical-file
        event("refused" if rules is None else "accepted")
        if rules is None:
            assert problems and all(isinstance(p, str) and p.strip() for p in problems)
        else:
            assert not problems and all(set(r) == {"match", "pattern", "priority"} for r in rules)
        try:
            policy = load_policy_file(path)  # phoenix estimate --critical-file
        except PhoenixError as exc:
            assert str(exc).strip() and rules is None
        else:
            assert rules == [r.to_dict() for r in policy.rules]
    finally:
        path.unlink(missing_ok=True)
    _timed(started, f"{len(raw)} bytes")


# ------------------------------------------------------------------ regexes in the tester


@FUZZ
@given(rules=RULES, subjects=st.tuples(SUBJECTS, SUBJECTS, SUBJECTS))
def test_hostile_regexes_are_refused_or_run_in_linear_time(rules: list[dict[str, str]],
                                                           subjects: tuple[str, str, str]) -> None:
    started = time.perf_counter()
    text = _dump({"rules": rules}).decode("utf-8", "surrogatepass")
    try:
        policy = settings_tools.load_policy_text(text, source="edited policy")  # the Settings page's check
    except PhoenixError as exc:
        assert str(exc).strip()
        event("policy refused")
        _timed(started, "a refused policy")
        return
    event("policy accepted")
    name, cmd, owner = subjects
    result = settings_tools.test_process(policy, name, cmd, owner)  # the Settings page's process tester
    assert result["priority"] in PRIORITIES
    # The vectorised classifier (Arrow's RE2) and the tester's rule lookup (google-re2) agree.
    expected = result["rule"]["priority"] if result["rule"] else policy.default_priority
    assert result["priority"] == expected, (result, subjects)
    # Empty means "no value" in the tester, as in a scrape without the attribute.
    columns = {"executable_name": [name or None, "init"], "command_line": [cmd or None, None],
               "owner": [owner or None, "root"]}
    # object dtype: pandas' default Arrow strings refuse surrogates (undecodable /proc bytes)
    text = {k: pd.Series(v, dtype=object) for k, v in columns.items()}
    snapshot = pd.DataFrame({"scrape": [1, 1], "pid": [1, 2], **text})
    pids = critical_pids(snapshot, policy)  # the runtime measurement
    assert (1 in pids.tolist()) == (result["priority"] == "critical")
    _timed(started, f"rules {rules!r:.200}")
