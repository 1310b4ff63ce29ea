"""``phoenix recommend``'s promise, checked in a real Prometheus: every query it says it keeps
returns the same result on the candidate's output as on baseline's.

The engine evaluates baseline and the recommended pipeline over the test snapshot
(tests/data/recommend: two hosts, four scrapes 15 s apart); every scrape's exported series are
written as OpenMetrics with their timestamps, turned into TSDB blocks by ``promtool tsdb
create-blocks-from openmetrics``, and served by two real Prometheus servers. Each query (and,
for an alert ``x > n``, its left side ``x``, so the comparison is never of two empty results)
is evaluated through the query API at the last scrape on both and compared series by series.
The candidate's kept series carry Phoenix's ``phoenix_priority`` label; it is left out of the
comparison (docs/recommend.md).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from core.catalog.templates import get_template
from core.domain.pipeline import Pipeline
from core.domain.user_regex import search
from core.engine.encoding import render_prometheus_text
from core.engine.estimate import estimate
from core.engine.exposition_parse import parse_exposition
from core.engine.snapshot import load_snapshot
from core.services.requests import Recommend, UsageFile
from core.usage.sources import read_dashboard_dir
from tests.actors import admin, viewer
from tests.integration.prometheus_harness import RealPrometheus

DATA = Path(__file__).resolve().parents[1] / "data" / "recommend"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
IGNORED_LABELS = {"phoenix_priority"}
pytestmark = pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool is installed by make test")


def _openmetrics(pipeline: Pipeline, snapshot: pd.DataFrame, start_s: int) -> str:
    """Every scrape's exported series, grouped per metric family as OpenMetrics requires."""
    result = estimate(pipeline, snapshot, with_cost=False)
    by_name: dict[str, list[str]] = {}
    for scrape in range(result.evaluation.input.n_scrapes):
        series = result.evaluation.output_series(scrape)
        ts = start_s + 15 * scrape
        for s in parse_exposition(render_prometheus_text(series)):
            labels = ",".join(f'{k}="{_esc(v)}"' for k, v in sorted(s.labels.items()) if v != "")
            by_name.setdefault(s.name, []).append(f"{s.name}{{{labels}}} {s.value!r} {ts}")
    return "".join(line + "\n" for lines in by_name.values() for line in lines) + "# EOF\n"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _serve(text: str, tmp: Path, rules: Path | None = None) -> RealPrometheus:
    prom = RealPrometheus([], rule_files=[rules] if rules else None)
    src = tmp / f"{prom.port}.om"
    src.write_text(text)
    r = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(src), str(prom.dir / "data")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return prom.start()


def _query(prom: RealPrometheus, expr: str, at: int) -> dict[frozenset[tuple[str, str]], float]:
    url = f"{prom.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": at})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            data = json.loads(r.read())["data"]
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{expr}: {exc.read().decode()}") from None
    if data["resultType"] == "scalar":
        return {frozenset(): float(data["result"][1])}
    return {frozenset((k, v) for k, v in item["metric"].items() if k not in IGNORED_LABELS): float(item["value"][1])
            for item in data["result"]}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-12) for k in a)


_THRESHOLD = re.compile(r"^(.*\S)\s*(?:>=|<=|==|!=|>|<)\s*(?:bool\s+)?[0-9.e+\-*/^ ]+$", re.S)


def _sides(expr: str) -> list[str]:
    """The query, and for a comparison with a number (an alert's threshold) its left side too.
    (Cut from the text: promql-parser prints string literals without re-escaping them.)"""
    m = _THRESHOLD.match(expr.strip())
    return [expr, m.group(1)] if m else [expr]


def test_every_kept_query_answers_the_same_on_candidate_as_on_baseline(memory_services, tmp_path):
    snapshot = load_snapshot(DATA / "snapshot.csv")
    dashboards, problems = read_dashboard_dir(DATA / "dashboards")
    request = Recommend.of(
        rule_files=[UsageFile(name="rules.yml", text=(DATA / "rules.yml").read_text())],
        dashboards=[UsageFile(name=n, text=raw.decode()) for n, raw in dashboards], problems=problems)
    report = memory_services.recommendations.recommend(viewer(), request, snapshot)
    statuses = {q["origin"].rsplit(", ", 1)[-1] if "rules.yml" in q["origin"] else q["origin"]: q["status"]
                for q in report["queries"]}
    # what the recommender decided, and why the test data holds each case
    assert statuses["alert UserProcessesMemory"] == "not kept"  # owner!="root" also matches rollups
    assert statuses["alert TopMemory"] == "not kept"  # topk over every process
    assert statuses["alert ExporterDown"] == "ignored"
    assert any(s == "error" for s in statuses.values())  # the dashboard's unclosed parenthesis
    assert report["estimate"]["series_out"] < report["estimate"]["series_in"]
    # the users' shells were referenced only by the demoted owner!="root" query: they are rolled up
    for rule in report["processes"]["keep_rules"]:
        assert not search(rule["pattern"], "bash" if rule["match"] == "executable_name" else "-bash"), rule

    start = int(time.time()) - 1800
    at = start + 15 * 3
    candidate = Pipeline.from_dict(report["pipeline"])
    with _serve(_openmetrics(get_template("process-baseline-v1"), snapshot, start), tmp_path) as base, \
         _serve(_openmetrics(candidate, snapshot, start), tmp_path, rules=DATA / "rules.yml") as cand:
        kept = [q for q in report["queries"] if q["status"] == "kept"]
        assert len(kept) >= 8
        for q in kept:
            for expr in _sides(q["evaluated"]):
                b, c = _query(base, expr, at), _query(cand, expr, at)
                assert _same(b, c), f"{q['origin']}: {expr}\nbaseline  {b}\ncandidate {c}"
            assert _query(base, _sides(q["evaluated"])[-1], at), f"{q['origin']}: empty on baseline (vacuous)"
        # the check is not vacuous: a query reported as not kept really differs on the candidate
        lost = next(q for q in report["queries"] if q["origin"].endswith("alert UserProcessesMemory"))
        inner = _sides(lost["evaluated"])[-1]
        assert not _same(_query(base, inner, at), _query(cand, inner, at))

        # --prometheus: the same rules, read from the rules API of the candidate's Prometheus; a
        # server's caller may only name the Prometheus configured in Settings
        rule_status = {k: v for k, v in statuses.items() if k.startswith(("alert ", "record "))}
        over_api = memory_services.recommendations.recommend(
            viewer(), Recommend.of(prometheus_url=cand.url), snapshot)
        assert over_api["problems"] == []
        assert {q["origin"].rsplit(", ", 1)[-1]: q["status"] for q in over_api["queries"]} == rule_status
        memory_services.configuration.set_prometheus_url(cand.url, admin())
        from_settings = memory_services.recommendations.recommend(
            viewer(source="api"), Recommend.of(settings_prometheus=True), snapshot)
        assert {q["origin"].rsplit(", ", 1)[-1]: q["status"] for q in from_settings["queries"]} == rule_status
