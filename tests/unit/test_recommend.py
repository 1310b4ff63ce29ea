"""The recommender's parts: PromQL usage, Prometheus matcher semantics, Grafana variables, rules."""

from __future__ import annotations

import numpy as np
import pytest

from core.domain.critical import policy_from_rules
from core.domain.user_regex import search
from core.usage.matching import rows_matching, value_matches
from core.usage.promql import Matcher, usage
from core.usage.recommend import ERROR, IGNORED, KEPT, NOT_KEPT, analyse, keep_rules, literal
from core.usage.sources import Query, dashboard_queries, grafana_text, rule_text_queries
from tests.unit.engine_data import proc, snapshot


def test_usage_finds_process_selectors_matchers_and_grouping():
    u = usage('sum by (host_name) (rate(process_cpu_time_seconds_total{process_owner!="root", state="user"}[5m]))'
              ' / on (host_name) group_left (os_type) up{job="node"}')
    assert len(u.selectors) == 1  # up is not a process metric
    sel = u.selectors[0]
    assert sel.metrics == ("process_cpu_time_seconds_total",)
    assert sel.matchers == (Matcher("process_owner", "!=", "root"), Matcher("state", "=", "user"))
    assert [m.label for m in sel.process_matchers] == ["process_owner"]
    assert sel.summed_per_host
    assert u.grouping == {"host_name", "os_type"}


@pytest.mark.parametrize(("expr", "summed"), [
    ("sum(process_memory_usage_bytes)", True),
    ("sum by (host_name, state) (irate(process_cpu_time_seconds_total[1m]))", True),
    ("sum by (process_owner) (process_memory_usage_bytes)", False),  # a process label: rollups lose it
    ("sum without (process_pid) (process_memory_usage_bytes)", False),
    ("max by (host_name) (process_memory_usage_bytes)", False),
    ("topk(3, process_memory_usage_bytes)", False),
    ("sum(max_over_time(process_memory_usage_bytes[5m]))", False),  # not linear
])
def test_only_linear_sums_per_host_count_as_kept_by_a_rollup(expr, summed):
    assert usage(expr).selectors[0].summed_per_host is summed


def test_name_matchers_and_or_alternatives_select_metrics():
    u = usage('{__name__=~"process_memory_.*", process_owner="app"}')
    assert u.selectors[0].metrics == ("process_memory_usage_bytes", "process_memory_utilization_ratio",
                                      "process_memory_virtual_bytes")
    assert usage('{__name__=~"process_memory"}').selectors == []  # anchored: no metric is named that
    with pytest.raises(ValueError, match="regex"):
        usage('{__name__=~"(process"}')


def test_unparseable_promql_is_one_line():
    with pytest.raises(ValueError) as exc:
        usage("sum(rate(process_cpu_time_seconds_total[5m])")
    assert "\n" not in str(exc.value) and str(exc.value)


def test_matchers_are_anchored_re2_and_missing_labels_are_empty():
    assert value_matches("=~", "ngin.", "nginx")
    assert not value_matches("=~", "ngin", "nginx")  # Prometheus anchors both ends
    assert value_matches("!~", "ngin", "nginx")
    assert value_matches("!=", "root", "")  # a missing label is "" and != root
    assert value_matches("=~", "a|b", "b") and not value_matches("=~", "a|b", "ab")


def _snap():
    return snapshot([
        proc("h1", 10, "nginx", cmdline="nginx: worker process", owner="www-data"),
        proc("h1", 11, "nginx", cmdline="nginx: master process", owner="root"),
        proc("h1", 20, "python3", cmdline="celery -A tasks worker", owner="app"),
        proc("h1", 21, "python3", cmdline="python3 report.py ${HOME} $$", owner="app"),
        proc("h2", 10, "nginx", cmdline="nginx: worker process", owner="www-data"),
    ])


def test_referenced_processes_and_verdicts():
    snap = _snap()
    queries = [Query("a", q, q) for q in (
        'process_memory_usage_bytes{process_executable_name="nginx", process_owner="www-data", host_name="h1"}',
        "topk(1, process_memory_usage_bytes)",
        "up == 0",
        "sum(",
        'process_memory_usage_bytes{process_owner=~"(a"}',
    )]
    a = analyse(snap, queries)
    assert [v.status for v in a.verdicts] == [KEPT, NOT_KEPT, IGNORED, ERROR, ERROR]
    assert "regex" in a.verdicts[4].reason
    picked = snap[a.referenced][["host_name", "pid"]].astype(str).values.tolist()
    assert picked == [["h1", "10"]]


def test_keep_rules_match_exactly_the_referenced_processes_and_never_expand_text():
    snap = _snap()
    referenced = snap["pid"].isin([21, 10]).to_numpy() & (snap["host_name"] == "h1").to_numpy()
    rules = keep_rules(snap, referenced)
    policy_from_rules(rules)  # valid critical-policy rules
    for r in rules:
        assert "${" not in r["pattern"] and "$$" not in r["pattern"]
    hits = np.zeros(len(snap), dtype=bool)
    for i, row in enumerate(snap.itertuples()):
        hits[i] = any(search(r["pattern"], getattr(row, r["match"])) for r in rules)
    # the report.py process by its exact command line; nginx worker by command line too (the master is not referenced)
    assert hits[referenced].all()
    assert not hits[(snap["pid"] == 11).to_numpy()].any()
    assert search(literal("a.b[c]"), "a.b[c]") and not search("^" + literal("a.b") + "$", "axb")


def test_rows_matching_on_labels_nobody_has():
    snap = _snap()
    from core.usage.recommend import _snapshot_labels

    labels = _snapshot_labels(snap)
    assert rows_matching(labels, len(snap), [Matcher("process_cgroup", "=", "")]).all()
    assert not rows_matching(labels, len(snap), [Matcher("process_cgroup", "=~", ".+")]).any()


def test_empty_snapshot_is_refused_in_one_line():
    snap = _snap().iloc[0:0]
    with pytest.raises(Exception, match="no processes"):
        analyse(snap, [])


def test_grafana_variables_become_parseable_text():
    assert grafana_text('rate(x{host_name="$host", process_owner=~"${owner:regex}"}[$__rate_interval])') == \
        'rate(x{host_name=~".*", process_owner=~".*"}[5m])'
    assert grafana_text('x{process_command_line="a.b $v"}') == 'x{process_command_line=~"a\\\\.b .*"}'
    assert grafana_text("rate(x[[[interval]]])", {"interval": "1m"}) == "rate(x[1m])"
    assert grafana_text("topk($n, x)", {"n": "5"}) == "topk(5, x)"


def test_dashboard_panels_nested_in_rows_and_bad_documents():
    doc = {"panels": [{"title": "r", "type": "row", "panels": [{"title": "p", "targets": [{"refId": "A", "expr": "x"}]}]},
                      {"title": "q", "targets": [{"expr": ""}, "junk"]}],
           "rows": [{"panels": [{"title": "old", "targets": [{"expr": "y"}]}]}]}
    found, problems = dashboard_queries(doc, "d.json")
    assert [q.expr for q in found] == ["x", "y"] and problems == []
    assert dashboard_queries({"title": "no panels"}, "e.json")[1] == ["dashboard e.json: no 'panels' (is it a Grafana dashboard?)"]
    _, problems = rule_text_queries("r.yml", "groups: [ {name: a, rules: [{alert: x}]} ]")
    assert problems == ["r.yml: group a, alert x has no expr"]
    _, problems = rule_text_queries("bad.yml", "groups: [unclosed")
    assert len(problems) == 1 and problems[0].startswith("rule file bad.yml") and "\n" not in problems[0]


def test_hostile_expressions_are_refused_or_walked_without_recursion():
    with pytest.raises(ValueError, match="longer than 4,096"):
        usage("-" * 16_000 + "process_memory_usage_bytes")  # would overflow the Rust parser's stack
    chain = "a^" * 1200 + "process_memory_usage_bytes"  # ^ is right-associative: the selector is 1,200 deep
    assert [s.metrics for s in usage(chain).selectors] == [("process_memory_usage_bytes",)]
