"""The committed dashboards are exactly what dashboards/build.py generates, and every metric
name a panel or template variable uses exists: a Phoenix instrument (with the suffixes
prometheus_client writes), a recording rule, or a checked collector/library name."""

from __future__ import annotations

import json

import pytest

from dashboards import build
from dashboards.queries import (
    HERE,
    external_names,
    known_names,
    panel_queries,
    phoenix_names,
    selected_metrics,
    substitute,
    unknown_names,
    variable_queries,
)

QUERIES = list(panel_queries())


def test_committed_files_are_what_build_generates():
    generated = build.render_all()
    stale = [rel for rel, text in generated.items() if (HERE / rel).read_text(encoding="utf-8") != text]
    assert not stale, f"out of date, run `make dashboards`: {stale}"
    committed = {p.name for p in HERE.glob("*.json")}
    assert committed == {rel for rel in generated if rel.endswith(".json")}, "a dashboard JSON that build.py no longer writes"


def test_check_mode_notices_a_hand_edit(tmp_path):
    assert build.main(["--out", str(tmp_path)]) == 0
    assert build.main(["--check", "--out", str(tmp_path)]) == 0
    victim = tmp_path / "phoenix-system-health.json"
    victim.write_text(victim.read_text().replace("Phoenix processes up", "Phoenix processes UP"))
    assert build.main(["--check", "--out", str(tmp_path)]) == 1


def test_the_five_dashboards_all_on_the_provisioned_datasource():
    titles = {json.loads(p.read_text())["title"] for p in HERE.glob("*.json")}
    assert titles == {"Phoenix / Pipeline Performance", "Phoenix / A/B Experiment Comparison",
                      "Phoenix / Cost Analysis", "Phoenix / System Health", "Phoenix / Cardinality Tracking"}
    assert f"uid: {build.DATASOURCE_UID}" in (HERE / "provisioning" / "datasources.yaml").read_text()
    for path in HERE.glob("*.json"):
        doc = json.loads(path.read_text())
        panels = [p for p in doc["panels"] if p["type"] != "row"]
        assert panels, path.name
        assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"]), f"{path.name}: duplicate panel ids"
        for p in panels:
            assert p["targets"], f"{path.name}: {p['title']} has no query"
            assert p["datasource"]["uid"] == build.DATASOURCE_UID
            assert all(t["datasource"]["uid"] == build.DATASOURCE_UID for t in p["targets"])


@pytest.mark.parametrize("query", QUERIES + list(variable_queries()), ids=lambda q: f"{q.dashboard}/{q.panel}/{q.ref}")
def test_every_query_parses_and_uses_only_known_metric_names(query):
    expr = substitute(query.expr)
    try:
        selected = selected_metrics(expr)
    except ValueError as e:
        pytest.fail(f"{query.where()} does not parse: {e}")
    assert selected, f"{query.where()} selects no metric"
    assert unknown_names(expr, known_names()) == [], query.where()


def test_the_name_check_can_fail():
    known = known_names()
    # the real collector (v0.159.0) writes its counters without _total: the suffixed name is wrong
    assert unknown_names("rate(otelcol_exporter_sent_metric_points_total[5m])", known) == [
        "otelcol_exporter_sent_metric_points_total"]
    assert unknown_names('count({__name__=~"procesz_.*"})', known) == ["~procesz_.*"]
    assert unknown_names("phoenix_api_requests", known) == ["phoenix_api_requests"]  # a counter is *_total
    assert unknown_names("sum(rate(phoenix_api_requests_total[1m])) / phoenix:process_series:count", known) == []
    with pytest.raises(ValueError):
        selected_metrics("sum by (a (b)")


def test_phoenix_names_carry_the_client_suffixes():
    names = phoenix_names()
    assert {"phoenix_api_requests_total", "phoenix_api_request_seconds_bucket", "phoenix_scheduler_lag_seconds",
            "phoenix_database_up"} <= names
    assert "phoenix_api_requests" not in names


def test_every_external_name_says_where_it_comes_from():
    names = external_names()
    assert names and all(source.strip() for source in names.values())
    assert not set(names) & phoenix_names(), "a Phoenix name listed as external"


def test_every_variable_is_substituted():
    for q in QUERIES:
        assert "$" not in substitute(q.expr), q.where()
    with pytest.raises(KeyError):
        substitute("up{job=~\"$nope\"}")
