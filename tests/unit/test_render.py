"""Rendering: golden files per template, schema validation of every output, key properties."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline
from core.render.bundle import render_bundle, write_bundle
from core.render.collector import COLLECTOR_IMAGE, RenderOptions, build, render_collector
from core.render.schema_validate import validate_collector_yaml

GOLDEN = Path(__file__).parent / "testdata" / "golden"
OPTS = RenderOptions(experiment_id="exp-golden", variant="candidate")


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_golden_files(name):
    """Rendered output equals the reviewed files (PHOENIX_UPDATE_GOLDEN=1 rewrites them)."""
    files = render_bundle(get_template(name), OPTS).files()
    root = GOLDEN / name
    if os.environ.get("PHOENIX_UPDATE_GOLDEN") == "1":
        write_bundle(render_bundle(get_template(name), OPTS), root)
    expected = {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
                for p in sorted(root.rglob("*.yaml"))}
    assert expected == files


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
@pytest.mark.parametrize("variant", [None, "baseline", "candidate"])
def test_every_template_renders_a_schema_valid_config(name, variant):
    opts = RenderOptions(experiment_id="e-1" if variant else None, variant=variant)
    assert validate_collector_yaml(render_collector(get_template(name), opts)) == []
    assert validate_collector_yaml(render_bundle(get_template(name), opts).collector_yaml) == []


def test_experiment_variant_labels_on_the_prometheus_exporter():
    cfg = build(get_template("process-baseline-v1"), RenderOptions(experiment_id="e9", variant="baseline")).config
    (exporter,) = cfg["exporters"].values()
    assert exporter["const_labels"] == {"phoenix_experiment_id": "e9", "phoenix_variant": "baseline"}
    assert exporter["resource_to_telemetry_conversion"] == {"enabled": True}


def test_self_telemetry_and_health_check():
    cfg = build(get_template("process-baseline-v1")).config
    assert cfg["extensions"] == {"health_check": {"endpoint": "0.0.0.0:13133"}}
    assert cfg["service"]["extensions"] == ["health_check"]
    reader = cfg["service"]["telemetry"]["metrics"]["readers"][0]
    assert reader["pull"]["exporter"]["prometheus"]["port"] == 8888


def test_header_names_the_pinned_release():
    text = render_collector(get_template("process-baseline-v1"))
    assert f"({COLLECTOR_IMAGE})" in text.splitlines()[1]
    assert COLLECTOR_IMAGE == "otel/opentelemetry-collector-contrib:0.159.0"


def test_cleanup_runs_after_markers_and_before_batch():
    procs = build(get_template("process-topk-v1")).config["service"]["pipelines"]["metrics"]["processors"]
    assert procs[-2:] == ["transform/phoenix_cleanup", "batch/batch"]
    assert procs.index("transform/topk") < procs.index("transform/phoenix_cleanup")
    baseline = build(get_template("process-baseline-v1")).config["processors"]
    assert "transform/phoenix_cleanup" not in baseline


def test_default_thresholds_are_marked_in_the_yaml():
    text = render_collector(get_template("process-topk-v1"))
    assert "# NOTE: topk: DEFAULT thresholds" in text
    p = get_template("process-topk-v1")
    p.node("topk").params["computed"] = {"memory_bytes": 99, "source": "s.csv", "computed_at": "t"}
    text = render_collector(p)
    assert "DEFAULT" not in text and "value_int >= 99" in text and "from s.csv at t" in text


def test_receiver_mode_metric_selection_patches_the_receiver():
    cfg = build(get_template("process-minimal-v1")).config
    metrics = cfg["receivers"]["hostmetrics"]["scrapers"]["process"]["metrics"]
    assert {m for m, v in metrics.items() if v["enabled"]} == {"process.cpu.time", "process.memory.usage"}
    assert cfg["receivers"]["hostmetrics"]["collection_interval"] == "60s"


def test_bundle_reads_the_host_through_hostfs():
    bundle = render_bundle(get_template("process-baseline-v1"))
    assert yaml.safe_load(bundle.collector_yaml)["receivers"]["hostmetrics"]["root_path"] == "/hostfs"
    assert "root_path" not in build(get_template("process-baseline-v1")).config["receivers"]["hostmetrics"]


def test_invalid_pipeline_or_options_are_refused_with_messages():
    p = get_template("process-baseline-v1")
    with pytest.raises(ValidationError, match="variant must be baseline or candidate"):
        build(p, RenderOptions(experiment_id="e", variant="control"))
    with pytest.raises(ValidationError, match="experiment id"):
        build(p, RenderOptions(experiment_id="bad id!", variant="baseline"))
    data = p.to_dict()
    data["edges"] = []
    with pytest.raises(ValidationError, match="not reachable"):
        build(Pipeline.from_dict(data))


def test_secrets_are_env_references():
    p = get_template("process-baseline-v1")
    data = p.to_dict()
    data["nodes"].append({"id": "nr", "type": "otlphttp", "params": {}})
    data["nodes"].append({"id": "grafana", "type": "prometheusremotewrite",
                          "params": {"endpoint": "https://prw.example/api/prom/push",
                                     "headers_env": {"Authorization": "PHOENIX_GRAFANA_AUTH"}}})
    data["edges"] += [{"source": "batch", "target": "nr"}, {"source": "batch", "target": "grafana"}]
    text = render_collector(Pipeline.from_dict(data))
    assert "api-key: ${env:NEW_RELIC_LICENSE_KEY}" in text
    assert "Authorization: ${env:PHOENIX_GRAFANA_AUTH}" in text
    assert validate_collector_yaml(text) == []


@pytest.mark.parametrize("name", ["process-topk-v1", "process-adaptive-v1", "process-intelligent-v1"])
def test_engine_tuned_pipelines_render_valid_configs_with_their_values(name):
    """Contract with the engine: what ``tune`` writes into params renders and validates."""
    from core.engine.fleet import generate_fleet
    from core.engine.tuning import tune

    tuned = tune(get_template(name), generate_fleet(nodes=3, procs=120, seed=3, scrapes=3), source="fleet-3x120")
    rendered = build(tuned)
    assert validate_collector_yaml(rendered.text) == []
    assert any("fleet-3x120" in note for note in rendered.notes)
    assert "DEFAULT thresholds" not in rendered.text


def test_local_options_give_each_variant_its_own_loopback_ports():
    from core.render.collector import local_options

    p = get_template("process-topk-v1").to_dict()
    p["nodes"].append({"id": "prom2", "type": "prometheus", "params": {"endpoint": "0.0.0.0:9464"}})
    p["edges"].append({"source": "batch", "target": "prom2"})
    cfg = build(Pipeline.from_dict(p), local_options("e1", "candidate", metrics_port=19101, telemetry_port=19110,
                                                     health_port=19111)).config
    assert [e["endpoint"] for e in cfg["exporters"].values()] == ["127.0.0.1:19101", "127.0.0.1:19102"]
    assert cfg["extensions"]["health_check"]["endpoint"] == "127.0.0.1:19111"
    assert cfg["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"] == {
        "host": "127.0.0.1", "port": 19110}
    assert "root_path" not in cfg["receivers"]["hostmetrics"]
    assert validate_collector_yaml(render_collector(Pipeline.from_dict(p), local_options(
        "e1", "candidate", metrics_port=19101, telemetry_port=19110, health_port=19111))) == []
