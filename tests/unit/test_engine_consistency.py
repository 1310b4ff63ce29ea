"""The engine computes what the rendered collector YAML says.

Each template is tuned on a small simulated fleet, rendered, and run through an
independent literal interpreter of the emitted config (``otelcol_reference``); both must
export the same series with the same values. Direct checks then tie the numbers in the
YAML (thresholds, learned names, kept metrics, deleted keys, filter guards) to the
engine's own.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from core.catalog.frame import from_snapshot
from core.catalog.rollup import IDENTITY_KEYS as ROLLUP_DELETES
from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.engine.evaluate import evaluate
from core.engine.fleet import generate_fleet
from core.engine.tuning import tune
from core.render.collector import build
from tests.unit import otelcol_reference

DATAPOINT_KEYS = ("state", "direction", "type")


@pytest.fixture(scope="module")
def fleet() -> pd.DataFrame:
    return generate_fleet(4, 40, seed=11, scrapes=2)


@pytest.fixture(scope="module")
def frame(fleet):
    return from_snapshot(fleet)


def engine_series(result) -> list[tuple]:
    series = result.output_series(-1)
    attr_cols = [c for c in series.columns if c not in ("scrape", "host_name", "metric", "value")]
    out = []
    for rec in series.to_dict("records"):
        attrs = []
        for k in attr_cols:
            v = rec[k]
            if v is None or v is pd.NA or (isinstance(v, float) and v != v):
                continue
            attrs.append((k, str(int(v)) if k.endswith("pid") else str(v)))
        out.append((str(rec["host_name"]), str(rec["metric"]), tuple(sorted(attrs)), float(rec["value"])))
    return sorted(out, key=lambda t: t[:3])


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_engine_exports_exactly_what_the_rendered_yaml_exports(name, fleet, frame):
    pipeline = tune(get_template(name), frame)
    config = build(pipeline).config
    expected = otelcol_reference.run(config, fleet, scrape_index=1)
    got = engine_series(evaluate(pipeline, frame))
    assert [t[:3] for t in got] == [t[:3] for t in expected]
    assert [t[3] for t in got] == pytest.approx([t[3] for t in expected], rel=1e-9)
    assert len(got) > 0


def _statements(config, component):
    return [s for g in config["processors"][component]["metric_statements"] for s in g["statements"]]


@pytest.mark.parametrize("name", ["process-topk-v1", "process-adaptive-v1"])
def test_thresholds_in_yaml_are_the_ones_the_engine_applies(name, frame):
    pipeline = tune(get_template(name), frame)
    node = next(n for n in pipeline.chain() if n.type in ("topk", "adaptive"))
    computed = node.params["computed"]
    text = " ".join(_statements(build(pipeline).config, f"transform/{node.id}"))
    report = next(r for r in evaluate(pipeline, frame).nodes if r.node_id == node.id).details["thresholds"]
    by = node.params["by"]
    hosts = computed.get("hosts") or {}
    if node.type == "adaptive":
        # one statement per host (host.name ==), then the fleet's for the others, last
        stmts = _statements(build(pipeline).config, f"transform/{node.id}")
        assert len(stmts) == len(hosts) + 1 and len(hosts) == frame.df["host_name"].nunique()
        for h, v in hosts.items():
            (stmt,) = [x for x in stmts if f'resource.attributes["host.name"] == "{h}" and' in x]
            assert float(re.search(r"value_double >= ([0-9.eE+-]+)", stmt)[1]) == v["cpu_utilization"]
        text = stmts[-1]
        assert text.startswith('set(resource.attributes["phoenix.keep"], "true") where not IsMatch(')
    if by in ("memory", "combined"):
        assert f"value_int >= {computed['memory_bytes']}" in text
        assert report["memory_bytes"] == computed["memory_bytes"]
    if by in ("cpu", "combined"):
        emitted = float(re.search(r"value_double >= ([0-9.eE+-]+)", text)[1])
        assert emitted == computed["cpu_utilization"] == report["cpu_utilization"]


def test_learned_names_in_yaml_are_the_ones_the_engine_keeps(frame):
    pipeline = tune(get_template("process-intelligent-v1"), frame)
    node = next(n for n in pipeline.chain() if n.type == "intelligent")
    node.params["learned"]["names"] = ["bash", "java"]  # a non-empty set to compare
    config = build(pipeline).config
    (stmt,) = _statements(config, f"transform/{node.id}")
    pattern = re.search(r'IsMatch\(resource\.attributes\["process\.executable\.name"\], "(.*)"\)', stmt)[1]
    assert pattern == "^(?:bash|java)$"
    result = evaluate(pipeline, frame)
    out = result.output.df
    kept_names = set(out[(out["phoenix.keep"] == "true")]["process.executable.name"].astype(str))
    assert kept_names == {"bash", "java"} & set(frame.df["process.executable.name"].astype(str))


def test_rollup_deletes_the_keys_the_engine_deletes(frame):
    pipeline = get_template("process-aggregated-v1")
    config = build(pipeline).config
    roll = next(n for n in pipeline.chain() if n.type == "rollup")
    deleted = {re.search(r'delete_key\(resource\.attributes, "([^"]+)"\) where', s)[1]
               for s in _statements(config, f"transform/{roll.id}_group") if s.startswith("delete_key") and " where " in s}
    assert deleted == set(ROLLUP_DELETES)
    out = evaluate(pipeline, frame).output.df
    rolled = out[out["phoenix.rollup"] == "true"]
    assert len(rolled) > 0
    for key in ROLLUP_DELETES:
        assert rolled[key].isna().all()


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_kept_metrics_and_filter_guards_match(name, frame):
    pipeline = tune(get_template(name), frame)
    config = build(pipeline).config
    process = config["receivers"]["hostmetrics"]["scrapers"]["process"]
    enabled = set(otelcol_reference.DEFAULT_METRICS)
    for m, cfg in (process.get("metrics") or {}).items():
        (enabled.add if cfg["enabled"] else enabled.discard)(m)
    result = evaluate(pipeline, frame)
    for cid, cfg in config["processors"].items():
        if cid.startswith("filter/") and cid.endswith("_ranking"):
            # adaptive's ranking metric, dropped for every process after ranking (never exported)
            (cond,) = cfg["metrics"]["metric"]
            enabled.discard(re.fullmatch(r'name == "([^"]+)"', cond)[1])
    assert result.enabled_metrics == enabled
    for cid, cfg in config["processors"].items():
        if cid.startswith("filter/") and not cid.endswith("_ranking"):
            for cond in cfg["metrics"]["metric"]:
                assert 'resource.attributes["phoenix.priority"] != "critical"' in cond
