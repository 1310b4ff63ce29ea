"""Hostile experiment parameters through the entry points users have (issue 9).

- ``phoenix experiment create`` (``core.cli.main``): the CLI's own parsing (argparse,
  ``parse_duration``, ``--node-selector``), then ``ExperimentService.create``;
- the New Experiment wizard's model (``app.widgets.wizard``: ``all_problems`` then
  ``create_kwargs`` into the same service), as a future API would feed it: any numbers,
  NaN and infinities included, in the numeric fields.

Names, descriptions, owners, durations ("1m30s", "-5s", "9999999h", unicode digits, huge),
intervals, criteria values (NaN, inf, negatives, huge), load profiles (built-in and custom
YAML), targets and pipeline refs (templates, saved versions, unknown ones). Each input is
accepted (stored exactly once) or refused with a clear one-line ``PhoenixError`` (nothing
stored); argparse's own usage error (exit 2) counts as refused. Never another exception.

Services are built per example on the in-memory unit of work (function-scoped fixtures do
not mix with ``@given``), seeded with a saved pipeline ``team-topk`` with two versions.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from typing import Any
from unittest import mock

import yaml
from hypothesis import given
from hypothesis import strategies as st

from app.widgets import wizard
from core.catalog.templates import TEMPLATE_NAMES
from core.cli import build_parser, main
from core.domain.errors import PhoenixError
from core.services.accounts import AccountService
from core.services.experiments import ExperimentService
from core.store.memory import MemoryDatabase, MemoryUnitOfWork
from tests.actors import ADMIN, add_account, admin
from tests.fuzz.profile import FUZZ

EXAMPLE_BUDGET_S = 5.0  # generous on a shared machine; a hang or a blow-up is far beyond it
SAVED = "team-topk"
KNOWN_REFS = {*TEMPLATE_NAMES, SAVED, f"{SAVED}@1", f"{SAVED}@2"}
#: ``phoenix``'s own parser, built once: building it takes ~50 ms, parsing with it is what is under test.
PARSER = build_parser()


class _Services:
    """What ``core.commands.experiment`` needs from bootstrap: ``experiments`` on a fresh memory store."""

    runtime = "memory"  # the dry-run runtime, which accepts both targets

    def __init__(self) -> None:
        self.database = MemoryDatabase()
        with self.database.uow() as uow:
            for _ in range(2):
                uow.pipelines.add_version(SAVED, {"name": SAVED}, "")
            uow.commit()
        self.experiments = ExperimentService(self.database.uow, dry_run=True)
        self.accounts = AccountService(self.database.uow)
        add_account(self, ADMIN)  # the CLI acts as this account: --as alice below

    def uow(self) -> MemoryUnitOfWork:
        return self.database.uow()


# ------------------------------------------------------------------ strategies

ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=30)  # surrogates and controls included
TEXT = st.one_of(
    ANY_TEXT,
    st.sampled_from(["", " ", "demo", "x" * 121, "y" * 2001, "名前", "a\x00b", "line\nbreak", "tab\there",
                     "'; DROP TABLE experiments; --", "{i}", "%s%s%n", "\u202egnp.exe", "\ud800", "\udcff",
                     "émoji 🔥", "\x1b[31mred"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "🔥"]), st.integers(100, 5000)),
)
DURATION = st.one_of(
    st.sampled_from(["60s", "5m", "1h", "1m30s", "-5s", "9999999h", "0", "0s", "0.0001ms", "1e3s", "nan", "inf",
                     "-inf", " 5 m ", "", "٥s", "５s", "²s", "1_000s", "10 s", "7d", "1" * 400 + "s",
                     "9" * 5000, "0x10", "5.", ".5s", "1.5h", "500ms", "3600", "604800", "604801"]),
    st.builds(lambda n, u: f"{n}{u}", st.integers(-10**6, 10**12), st.sampled_from(["", "ms", "s", "m", "h", "x"])),
    st.builds(lambda f, u: f"{f}{u}", st.floats(allow_nan=True, allow_infinity=True),
              st.sampled_from(["", "s", "m"])),
    ANY_TEXT,
)
NUMBER_TEXT = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "-1", "0", "1e309", "-1e309", "50", "100", "100.0001", "abc",
                     "", " 7 ", "1_0", "٣", "0x10"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str),
)
INT_TEXT = st.one_of(st.sampled_from(["2", "5", "0", "-3", "1e3", "nan", "", "٣", "99999999999999999999"]),
                     st.integers(-10**20, 10**20).map(str))
REF = st.one_of(
    st.sampled_from([*TEMPLATE_NAMES, SAVED, f"{SAVED}@1", f"{SAVED}@2", f"{SAVED}@3", f"{SAVED}@0",
                     f"{SAVED}@-1", f"{SAVED}@²", f"{SAVED}@١", f"{SAVED}@{'9' * 5000}", "process-topk-v1@1",
                     "nope", "nope@2", "", "@", "@3", " ", "a@b@c", "x" * 300, "../../etc/passwd", "NAME WITH SPACES"]),
    ANY_TEXT,
)
LOAD = st.one_of(st.sampled_from(["realistic", "high-cardinality", "process-churn", "custom", "none", "chaos", ""]),
                 ANY_TEXT)
SELECTOR = st.one_of(st.sampled_from(["pool=web", "novalue", "=x", "k=", "app.kubernetes.io/name=x", "a=b=c",
                                      "K" * 70 + "=v", "k=" + "v" * 70]), ANY_TEXT)


def _opt(flag: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """``--flag=value`` (the '=' form, so values starting with '-' reach Phoenix's own parsing) or absent."""
    return st.one_of(st.just([]), values.map(lambda v: [f"{flag}={v}"]))


@st.composite
def create_argv(draw: st.DrawFn) -> list[str]:
    argv = ["experiment", "create", f"--name={draw(TEXT)}", f"--baseline={draw(REF)}", f"--candidate={draw(REF)}"]
    for flag, values in (("--duration", DURATION), ("--interval", DURATION), ("--load", LOAD),
                         ("--owner", TEXT), ("--description", TEXT), ("--namespace", TEXT),
                         ("--min-series-reduction", NUMBER_TEXT), ("--min-cost-reduction", NUMBER_TEXT),
                         ("--max-cpu-overhead", NUMBER_TEXT), ("--max-memory-overhead", NUMBER_TEXT),
                         ("--min-samples", INT_TEXT), ("--target", st.sampled_from(["local", "kubernetes", "mars"]))):
        argv += draw(_opt(flag, values))
    for sel in draw(st.lists(SELECTOR, max_size=3)):
        argv.append(f"--node-selector={sel}")
    if draw(st.booleans()):
        argv.append("--json")
    return argv


NUMBER = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, 0, 1, 2, 5, 50.0, 100.0, -1, 1e308, -0.0, 2.5,
                                    True, 10**20]),
                   st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20))
MAYBE_NUMBER = st.one_of(st.none(), NUMBER)
NAME_TEMPLATE = st.one_of(
    st.sampled_from(["worker-{i}", "w-{i:03d}", "{i:>999999999}", "{i.real.imag.x}", "{i[0]}", "{0}", "{}", "{",
                     "}", "{{i}}", "{i!r}", "{i:{i}}", "w/{i}", "", " ", "x" * 65, "{i:99}", "nul\x00{i}"]),
    st.text(st.sampled_from("{}i:0>.!r[]x9/ d"), max_size=20),
    ANY_TEXT,
)
PATTERN = st.fixed_dictionaries({}, optional={
    "name_template": NAME_TEMPLATE, "count": NUMBER, "lifetime_s": NUMBER, "cpu_pct": NUMBER, "memory_mb": NUMBER,
    "churn_rate": NUMBER, "cpu_pattern": st.sampled_from(["steady", "spiky", "growing", "random", "flat", ""]),
    "memory_pattern": st.sampled_from(["steady", "random", "leaky"]), "bogus": st.just(1),
})
CUSTOM_YAML = st.one_of(
    st.sampled_from([
        wizard.CUSTOM_EXAMPLE, "", "patterns: []", "patterns: 5", "- a\n- b", "patterns:\n- {}",
        "patterns:\n- name_template: '{i:>999999999}'\n  count: 3\n",
        "patterns:\n- name_template: '{i.real.imag.x}'\n",
        "patterns:\n- name_template: '{0}{i}'\n", "patterns:\n- name_template: '{i!r:^{i}}'\n",
        "patterns:\n- name_template: 'w/{i}'\n", "patterns:\n- {count: .nan, cpu_pct: .inf, memory_mb: -1}\n",
        "patterns:\n- {count: 99999999999999999999999}\n", "patterns:\n- {lifetime_s: !!binary aGk=}\n",
        "patterns: &a [*a]", "[" * 200 + "]" * 200, "a: &a [*a, *a, *a]\nb: [*a, *a, *a, *a]",
        "patterns:\n- {cpu_pattern: 2024-01-01, memory_pattern: null}\n", "{patterns: [{count: true}]}",
    ]),
    ANY_TEXT,
    st.lists(PATTERN, min_size=1, max_size=3).map(lambda ps: yaml.safe_dump({"patterns": ps}, allow_unicode=True)),
)


@st.composite
def drafts(draw: st.DrawFn) -> dict[str, Any]:
    d = wizard.new_draft()
    d.update({
        "name": draw(TEXT), "description": draw(TEXT), "owner": draw(TEXT),
        "baseline": draw(REF), "candidate": draw(REF),
        "target_kind": draw(st.sampled_from(["local", "kubernetes", "mars", ""])),
        "namespace": draw(TEXT), "node_selector": draw(st.lists(SELECTOR, max_size=3).map(",".join)),
        "load": draw(st.one_of(st.just("custom"), st.sampled_from([*wizard.LOAD_PROFILES, "none", "chaos"]))),
        "load_scale": draw(NUMBER), "max_processes": draw(NUMBER), "custom_patterns": draw(CUSTOM_YAML),
        "duration": draw(DURATION), "interval": draw(DURATION),
        "policy_mode": draw(st.sampled_from(["default", "custom"])),
        "policy_yaml": draw(st.sampled_from(["", "rules: []", "rules:\n- {match: executable_name, pattern: "
                                                               "'^postgres$', priority: critical}\n", "rules: 5"])),
        "min_series_reduction_pct": draw(NUMBER), "require_full_critical_coverage": draw(st.booleans()),
        "max_cpu_overhead_pct": draw(MAYBE_NUMBER), "max_memory_overhead_mb": draw(MAYBE_NUMBER),
        "min_cost_reduction_pct": draw(MAYBE_NUMBER), "min_samples": draw(NUMBER),
    })
    return d


# ------------------------------------------------------------------ checks

def _clear(exc: PhoenixError) -> None:
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} without a message"
    assert "Traceback" not in message


def _stored(services: _Services) -> int:
    return len(services.experiments.list(ADMIN))


@FUZZ
@given(argv=create_argv())
def test_cli_create_accepts_or_refuses_in_one_line(argv: list[str]) -> None:
    services = _Services()
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with mock.patch("core.commands.common.services", return_value=services), \
            mock.patch("core.cli.build_parser", return_value=PARSER), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--as", ADMIN.name, *argv])
        except SystemExit as exc:  # argparse refused the command line itself (usage + error, exit 2)
            code = exc.code
    assert time.monotonic() - started < EXAMPLE_BUDGET_S
    if code == 0:
        assert _stored(services) == 1 and out.getvalue().strip()
        (exp,) = services.experiments.list(ADMIN)
        assert exp.duration_s > 0 and math.isfinite(exp.duration_s)
        return
    assert _stored(services) == 0, "a refused experiment was stored"
    if code == 2:
        assert "error:" in err.getvalue()
        return
    assert code == 1, (code, err.getvalue())
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > len("error: "), err.getvalue()


@FUZZ
@given(d=drafts(), cluster=st.booleans())
def test_wizard_draft_is_validated_then_created_or_refused(d: dict[str, Any], cluster: bool) -> None:
    services = _Services()
    started = time.monotonic()
    try:
        problems = wizard.all_problems(d, cluster)
    except PhoenixError as exc:  # a clear error instead of a list is still a clear error
        _clear(exc)
        return
    assert isinstance(problems, list) and all(isinstance(p, str) and p.strip() for p in problems)
    if not problems:
        try:
            exp = services.experiments.create(admin("fuzz"), **wizard.create_kwargs(d))
        except PhoenixError as exc:
            _clear(exc)
            assert _stored(services) == 0
            # The wizard offers only known pipelines; with those, it never lets through what creation refuses.
            assert not {d["baseline"], d["candidate"]} <= KNOWN_REFS, exc
        else:
            assert services.experiments.get(ADMIN, exp.id).name == exp.name and _stored(services) == 1
            wizard.review(d)  # the review table renders for every accepted draft
    assert time.monotonic() - started < EXAMPLE_BUDGET_S


@FUZZ
@given(name=TEXT, description=TEXT, owner=TEXT, baseline=REF, candidate=REF,
       duration=st.one_of(NUMBER, DURATION), interval=st.one_of(NUMBER, DURATION))
def test_service_create_with_any_values(name: str, description: str, owner: str, baseline: str, candidate: str,
                                        duration: Any, interval: Any) -> None:
    """What a future API hands the service directly: raw values, durations as numbers or text."""
    from core.domain.durations import parse_duration

    services = _Services()
    try:
        d = parse_duration(duration, "duration")
        i = parse_duration(interval, "interval")
        services.experiments.create(admin("api"), name=name, description=description, owner=owner, baseline=baseline,
                                    candidate=candidate, duration_s=d, interval_s=i)
    except PhoenixError as exc:
        _clear(exc)
        assert _stored(services) == 0
    else:
        assert _stored(services) == 1
