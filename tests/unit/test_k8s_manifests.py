"""Kubernetes manifests (kubernetes-validate, strict) and custom resources against their CRDs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.render.bundle import render_bundle
from core.render.collector import RenderOptions
from core.render.k8s import dns_name
from core.render.k8s_validate import validate_manifest, validate_manifests_text

CRDS = Path(__file__).resolve().parents[2] / "k8s" / "crds"
OPTS = RenderOptions(experiment_id="exp-7", variant="baseline")


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_templates_manifests_validate_strictly(name):
    assert validate_manifests_text(render_bundle(get_template(name), OPTS).manifests) == []


def test_crds_are_valid_apiextensions_objects():
    for path in CRDS.glob("*.phoenix.io.yaml"):
        assert validate_manifest(yaml.safe_load(path.read_text())) == [], path


def test_strict_validation_catches_a_misspelled_field():
    ds = yaml.safe_load(render_bundle(get_template("process-baseline-v1"), OPTS).manifests["daemonset.yaml"])
    ds["spec"]["template"]["spec"]["hostPid"] = True
    assert "'hostPid' was unexpected" in validate_manifest(ds)[0]


def test_daemonset_reads_host_processes_the_documented_way():
    ds = yaml.safe_load(render_bundle(get_template("process-baseline-v1"), OPTS).manifests["daemonset.yaml"])
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    (c,) = pod["containers"]
    assert c["image"] == "otel/opentelemetry-collector-contrib:0.159.0"
    mount = next(m for m in c["volumeMounts"] if m["name"] == "hostfs")
    assert mount == {"name": "hostfs", "mountPath": "/hostfs", "readOnly": True, "mountPropagation": "HostToContainer"}
    assert next(v for v in pod["volumes"] if v["name"] == "hostfs")["hostPath"]["path"] == "/"
    env = {e["name"]: e for e in c["env"]}
    assert env["K8S_NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert c["livenessProbe"]["httpGet"]["port"] == 13133 and c["readinessProbe"]["httpGet"]["port"] == 13133
    assert c["resources"]["limits"] and c["resources"]["requests"]
    assert ds["metadata"]["namespace"] == "phoenix-experiments"


def test_configmap_carries_exactly_the_rendered_collector_yaml():
    bundle = render_bundle(get_template("process-topk-v1"), OPTS)
    cm = yaml.safe_load(bundle.manifests["configmap.yaml"])
    assert cm["data"]["collector.yaml"] == bundle.collector_yaml


def test_secret_env_vars_come_from_a_secret():
    p = get_template("process-baseline-v1").to_dict()
    p["nodes"].append({"id": "nr", "type": "otlphttp", "params": {}})
    p["edges"].append({"source": "batch", "target": "nr"})
    from core.domain.pipeline import Pipeline

    ds = yaml.safe_load(render_bundle(Pipeline.from_dict(p), OPTS).manifests["daemonset.yaml"])
    env = {e["name"]: e for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["NEW_RELIC_LICENSE_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "NEW_RELIC_LICENSE_KEY"


def test_service_exposes_exporter_and_telemetry_ports():
    svc = yaml.safe_load(render_bundle(get_template("process-baseline-v1"), OPTS).manifests["service.yaml"])
    assert {p["port"] for p in svc["spec"]["ports"]} == {8889, 8888, 13133}


def pipeline_cr():
    return yaml.safe_load(render_bundle(get_template("process-topk-v1"), OPTS).manifests["pipeline-cr.yaml"])


def test_pipeline_cr_instance_matches_its_crd():
    cr = pipeline_cr()
    assert cr["spec"]["experimentId"] == "exp-7" and cr["spec"]["variant"] == "baseline"
    assert validate_manifest(cr) == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda s: s.update(variant="control"), "is not one of"),
        (lambda s: s.update(experimentId="Exp_7"), "does not match"),
        (lambda s: s.pop("configMap"), "'configMap' is a required property"),
        (lambda s: s.update(nodeSelector={"zone": 1}), "is not of type 'string'"),
        (lambda s: s.update(replicas=3), "Additional properties"),
    ],
)
def test_bad_pipeline_cr_is_refused(change, fragment):
    cr = pipeline_cr()
    change(cr["spec"])
    assert any(fragment in p for p in validate_manifest(cr))


def load_job(**spec):
    base = {"experimentId": "exp-7", "profile": "realistic", "duration": "30m", "processCount": 200}
    base.update(spec)
    return {"apiVersion": "phoenix.io/v1alpha1", "kind": "LoadSimulationJob",
            "metadata": {"name": "load-exp-7", "namespace": "phoenix-experiments"}, "spec": base}


def test_load_simulation_job_instances():
    custom = [{"nameTemplate": "worker-{i}", "count": 20, "lifetime": "5m", "cpuPattern": "spiky",
               "memoryPattern": "growing"}]
    assert validate_manifest(load_job(profile="custom", customPatterns=custom, churnRate=0.2)) == []
    assert any("less than the minimum" in p for p in validate_manifest(load_job(processCount=5)))
    assert any("greater than the maximum" in p for p in validate_manifest(load_job(processCount=10001)))
    assert any("does not match" in p for p in validate_manifest(load_job(duration="30 minutes")))
    assert any("is not one of" in p for p in validate_manifest(load_job(profile="chaos")))


def test_unknown_custom_resource_kind_is_reported():
    doc = copy.deepcopy(pipeline_cr())
    doc["kind"] = "Pipeline"
    assert "no CRD" in validate_manifest(doc)[0]


def test_dns_names_are_sanitised_and_bounded():
    assert dns_name("phoenix", "My_Pipeline.v2") == "phoenix-my-pipeline-v2"
    long = dns_name("phoenix", "x" * 100)
    assert len(long) <= 63 and long[-1] != "-"


def test_rendered_load_simulation_job_matches_its_crd():
    from core.render.k8s import render_load_job

    doc = yaml.safe_load(render_load_job("exp-7", "custom", "30m", 300, churn_rate=0.1, custom_patterns=[
        {"nameTemplate": "nginx", "count": 10, "cpuPattern": "steady"}], node_selector={"pool": "a"}))
    assert doc["metadata"]["name"] == "load-exp-7" and doc["spec"]["processCount"] == 300
    assert validate_manifest(doc) == []
    bad = yaml.safe_load(render_load_job("exp-7", "realistic", "forever", 3))
    assert len(validate_manifest(bad)) == 2
