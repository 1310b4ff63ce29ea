"""The experiment pod on Kubernetes: tap + baseline + candidate as three containers of one
DaemonSet pod (core.render.k8s_experiment, docs/real-collector.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from core.catalog.templates import get_template
from core.cli import main
from core.domain.criteria import Target
from core.otelcol.validate import check_experiment_bundle
from core.render.collector import COLLECTOR_IMAGE
from core.render.k8s_experiment import (
    POD_PORTS,
    ExperimentBundle,
    port_problems,
    render_experiment_manifests,
    write_experiment_bundle,
)
from core.render.k8s_validate import validate_manifest, validate_manifests_text
from tests.actors import ADMIN, add_account

GOLDEN = Path(__file__).parent / "testdata" / "golden" / "experiment-baseline-vs-topk"
ROLES = ("tap", "baseline", "candidate")


def pair(baseline: str = "process-baseline-v1", candidate: str = "process-topk-v1") -> ExperimentBundle:
    return render_experiment_manifests("exp-golden", {"baseline": get_template(baseline),
                                                      "candidate": get_template(candidate)})


def pod(bundle: ExperimentBundle) -> dict:
    return yaml.safe_load(bundle.manifests["daemonset.yaml"])["spec"]["template"]["spec"]


def containers(bundle: ExperimentBundle) -> dict[str, dict]:
    return {c["name"]: c for c in pod(bundle)["containers"]}


def test_golden_files():
    """Rendered output equals the reviewed files (PHOENIX_UPDATE_GOLDEN=1 rewrites them)."""
    bundle = pair()
    if os.environ.get("PHOENIX_UPDATE_GOLDEN") == "1":
        write_experiment_bundle(bundle, GOLDEN)
    expected = {p.relative_to(GOLDEN).as_posix(): p.read_text(encoding="utf-8") for p in sorted(GOLDEN.rglob("*.yaml"))}
    assert expected == bundle.files()


@pytest.mark.parametrize(("baseline", "candidate"), [("process-baseline-v1", "process-topk-v1"),
                                                     ("process-minimal-v1", "process-intelligent-v1")])
def test_manifests_validate_strictly_and_configs_pass_the_real_collector(baseline, candidate):
    from core.otelcol.distribution import build

    bundle = pair(baseline, candidate)
    assert validate_manifests_text(bundle.manifests) == []
    build()  # the real collector judges the configs (reused from the cache; make test builds it first)
    from core.otelcol.validate import check_collector_yaml

    for role, text in bundle.configs.items():
        check = check_collector_yaml(text)
        assert check.problems == [], role
        assert "phoenix-otelcol" in check.describe(), role
    assert check_experiment_bundle(bundle) == []


def test_strict_validation_sees_the_three_containers():
    ds = yaml.safe_load(pair().manifests["daemonset.yaml"])
    ds["spec"]["template"]["spec"]["containers"][2]["securityContext"]["runAsNonroot"] = True
    assert "'runAsNonroot' was unexpected" in validate_manifest(ds)[0]


def test_one_pod_three_containers_on_the_pinned_image_each_with_its_config():
    bundle = pair()
    cs = containers(bundle)
    assert list(cs) == list(ROLES)
    cm = yaml.safe_load(bundle.manifests["configmap.yaml"])
    assert cm["data"] == {f"{r}.yaml": bundle.configs[r] for r in ROLES}
    for role, c in cs.items():
        assert c["image"] == COLLECTOR_IMAGE == "otel/opentelemetry-collector-contrib:0.159.0"
        assert c["args"] == [f"--config=/conf/{role}.yaml"]
        assert {"name": "config", "mountPath": "/conf", "readOnly": True} in c["volumeMounts"]
        assert c["resources"]["limits"] and c["resources"]["requests"]
        env = {e["name"]: e for e in c["env"]}
        assert env["K8S_NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert [v["configMap"]["name"] for v in pod(bundle)["volumes"] if "configMap" in v] == [cm["metadata"]["name"]]
    kinds = [yaml.safe_load(t)["kind"] for t in bundle.manifests.values()]
    assert kinds == ["Namespace", "ServiceAccount", "ConfigMap", "DaemonSet", "Service", "Service", "Service"]


def test_only_the_tap_has_host_access():
    bundle = pair()
    spec = pod(bundle)
    assert spec["hostPID"] is True  # a pod-level field
    assert [v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v] == ["/"]
    cs = containers(bundle)
    tap = cs.pop("tap")
    mount = next(m for m in tap["volumeMounts"] if m["name"] == "hostfs")
    assert mount == {"name": "hostfs", "mountPath": "/hostfs", "readOnly": True, "mountPropagation": "HostToContainer"}
    assert tap["securityContext"]["runAsUser"] == 0
    assert tap["securityContext"]["capabilities"]["add"] == ["SYS_PTRACE", "DAC_READ_SEARCH"]
    tap_config = yaml.safe_load(bundle.configs["tap"])
    assert tap_config["receivers"]["hostmetrics"]["root_path"] == "/hostfs"
    for role, c in cs.items():
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0, role
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, role
        assert sc["capabilities"] == {"drop": ["ALL"]}, role
        assert [m["name"] for m in c["volumeMounts"]] == ["config"], role
        assert "hostmetrics" not in yaml.safe_load(bundle.configs[role])["receivers"], role


def test_ports_do_not_collide_and_match_the_configs():
    bundle = pair()
    cs = containers(bundle)
    ports = [(p["name"], p["containerPort"]) for c in cs.values() for p in c["ports"]]
    names, numbers = zip(*ports, strict=True)
    assert len(set(names)) == len(names) and len(set(numbers)) == len(numbers)
    assert all(len(n) <= 15 for n in names)  # IANA service names (Service targetPort)
    assert not {POD_PORTS.baseline_otlp, POD_PORTS.candidate_otlp} & set(numbers)  # loopback only, not exposed
    health = {role: c["livenessProbe"]["httpGet"]["port"] for role, c in cs.items()}
    assert len(set(health.values())) == 3
    for role, c in cs.items():
        config = yaml.safe_load(bundle.configs[role])
        assert c["readinessProbe"]["httpGet"]["port"] == health[role]
        assert config["extensions"]["health_check"]["endpoint"] == f"0.0.0.0:{health[role]}"
        reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
        own = {p["containerPort"] for p in c["ports"]}
        assert reader["host"] == "0.0.0.0" and reader["port"] in own
        for cid, exporter in config["exporters"].items():
            if cid.startswith("prometheus"):
                assert int(exporter["endpoint"].rsplit(":", 1)[1]) in own, (role, cid)
    tap = yaml.safe_load(bundle.configs["tap"])
    for v in ("baseline", "candidate"):  # the fan-out stays on the pod's loopback
        otlp = yaml.safe_load(bundle.configs[v])["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
        assert otlp == f"127.0.0.1:{POD_PORTS.of(v, 'otlp')}" == tap["exporters"][f"otlp/{v}"]["endpoint"]


def test_port_collisions_are_reported():
    assert port_problems({"tap": [{"name": "input", "port": 8889}],
                          "baseline": [{"name": "base-metrics", "port": 8889},
                                       {"name": "base-metrics-1", "port": POD_PORTS.baseline_otlp}]}) == [
        "baseline port base-metrics (8889) collides with tap input",
        f"baseline port base-metrics-1 ({POD_PORTS.baseline_otlp}) collides with baseline otlp (loopback)"]


def test_services_per_role_select_the_pod_and_carry_the_variant():
    bundle = pair()
    pod_labels = yaml.safe_load(bundle.manifests["daemonset.yaml"])["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["phoenix.io/experiment-id"] == "exp-golden" and "phoenix.io/variant" not in pod_labels
    cs = containers(bundle)
    for role in ROLES:
        svc = yaml.safe_load(bundle.manifests[f"service-{role}.yaml"])
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert svc["metadata"]["labels"]["phoenix.io/role"] == role
        assert svc["metadata"]["labels"].get("phoenix.io/variant") == (None if role == "tap" else role)
        assert [p["targetPort"] for p in svc["spec"]["ports"]] == [p["name"] for p in cs[role]["ports"]]
        assert svc["metadata"]["annotations"]["prometheus.io/port"] == str(cs[role]["ports"][0]["containerPort"])
    names = {yaml.safe_load(t)["metadata"]["name"] for t in bundle.manifests.values()}
    assert "phoenix-exp-golden-baseline" not in names  # the single-variant bundle's name stays free


def test_cli_writes_the_experiment_pod(memory_services, monkeypatch, tmp_path, capsys):
    exp = memory_services.experiments.create(ADMIN,
        name="k", baseline="process-baseline-v1", candidate="process-topk-v1",
        target=Target(kind="kubernetes", namespace="team-a", node_selector={"pool": "x"}))
    monkeypatch.setattr("core.commands.common.services", lambda: memory_services)
    monkeypatch.setattr("core.otelcol.validate.check_experiment_bundle",
                        lambda bundle: validate_manifests_text(bundle.manifests))  # the binary runs above
    out = tmp_path / "out"
    add_account(memory_services, ADMIN)
    assert main(["experiment", "render", exp.id, "--out", str(out), "--as", "alice"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert written == ["baseline.yaml", "candidate.yaml", "k8s/configmap.yaml", "k8s/daemonset.yaml",
                       "k8s/namespace.yaml", "k8s/service-baseline.yaml", "k8s/service-candidate.yaml",
                       "k8s/service-tap.yaml", "k8s/serviceaccount.yaml", "tap.yaml"]
    ds = yaml.safe_load((out / "k8s" / "daemonset.yaml").read_text())
    assert ds["metadata"]["namespace"] == "team-a"
    assert ds["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux", "pool": "x"}
    assert str(out / "k8s" / "daemonset.yaml") in capsys.readouterr().out

    (tmp_path / "file").write_text("x")
    assert main(["experiment", "render", exp.id, "--out", str(tmp_path / "file")]) == 1
    assert "exists and is not a directory" in capsys.readouterr().err
