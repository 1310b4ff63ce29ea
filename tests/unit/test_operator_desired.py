"""The operator's builders: ConfigMap, collector DaemonSet and load Jobs from a custom resource."""

from __future__ import annotations

import hashlib
import json

import pytest

from core.operator import desired as d
from core.render.k8s_validate import validate_manifest
from tests.unit.operator_fixtures import loadsim_cr, pipeline_cr


def test_configmap_holds_the_config_and_is_owned_by_the_resource():
    cr = pipeline_cr()
    cm = d.configmap(cr)
    assert cm["metadata"]["name"] == cr["spec"]["configMap"] and cm["metadata"]["namespace"] == "team-a"
    assert cm["data"] == {"collector.yaml": cr["spec"]["config"]}
    assert cm["metadata"]["ownerReferences"] == [{
        "apiVersion": "phoenix.io/v1alpha1", "kind": "PhoenixProcessPipeline", "name": cr["metadata"]["name"],
        "uid": "uid-1", "controller": True, "blockOwnerDeletion": True}]
    assert validate_manifest(cm) == []


def test_daemonset_runs_the_collector_the_documented_way():
    cr = pipeline_cr(nodeSelector={"pool": "edge"}, metricsPort=9464,
                     tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                     resources={"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
    ds = d.daemonset(cr)
    assert validate_manifest(ds) == []
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == cr["spec"]["collectorImage"]
    assert c["args"] == ["--config=/conf/collector.yaml"]
    assert pod["hostPID"] is True
    assert {"name": "hostfs", "mountPath": "/hostfs", "readOnly": True,
            "mountPropagation": "HostToContainer"} in c["volumeMounts"]
    assert {"name": "config", "mountPath": "/conf", "readOnly": True} in c["volumeMounts"]
    assert {"name": "config", "configMap": {"name": cr["spec"]["configMap"]}} in pod["volumes"]
    env = {e["name"]: e for e in c["env"]}
    assert env["K8S_NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", "pool": "edge"}
    assert pod["tolerations"] == cr["spec"]["tolerations"]
    assert c["resources"] == cr["spec"]["resources"]
    assert c["readinessProbe"]["httpGet"]["port"] == 13133 and c["livenessProbe"]["httpGet"]["port"] == 13133
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 9464, "telemetry": 8888,
                                                                    "health": 13133}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["SYS_PTRACE", "DAC_READ_SEARCH"]}
    assert "serviceAccountName" not in pod and pod["automountServiceAccountToken"] is False
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}


def test_daemonset_labels_owner_and_config_hash():
    cr = pipeline_cr(generation=4)
    ds = d.daemonset(cr)
    labels = ds["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "phoenix-collector"
    assert labels["app.kubernetes.io/managed-by"] == "phoenix-operator"
    assert labels["phoenix.io/pipeline"] == cr["metadata"]["name"]
    assert labels["phoenix.io/experiment-id"] == "exp-7" and labels["phoenix.io/variant"] == "candidate"
    selector = ds["spec"]["selector"]["matchLabels"]
    assert selector.items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    assert ds["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert ds["metadata"]["annotations"] == {"phoenix.io/generation": "4"}
    sha = hashlib.sha256(cr["spec"]["config"].encode()).hexdigest()
    assert ds["spec"]["template"]["metadata"]["annotations"] == {"phoenix.io/config-hash": sha}


def test_a_config_change_changes_only_the_hash_and_the_configmap():
    cr = pipeline_cr()
    changed = pipeline_cr(config=cr["spec"]["config"].replace("collection_interval: 10s", "collection_interval: 30s"))
    a, b = d.daemonset(cr), d.daemonset(changed)
    assert a["spec"]["template"]["metadata"]["annotations"] != b["spec"]["template"]["metadata"]["annotations"]
    a["spec"]["template"]["metadata"]["annotations"] = b["spec"]["template"]["metadata"]["annotations"] = {}
    assert a == b
    assert d.configmap(changed)["data"]["collector.yaml"] != d.configmap(cr)["data"]["collector.yaml"]


def test_an_experiment_less_pipeline_has_no_experiment_labels_and_long_names_fit_labels():
    cr = pipeline_cr(name="p-" + "x" * 100)
    del cr["spec"]["experimentId"], cr["spec"]["variant"]
    ds = d.daemonset(cr)
    assert "phoenix.io/experiment-id" not in ds["metadata"]["labels"]
    assert len(ds["metadata"]["labels"]["phoenix.io/pipeline"]) <= 63 and len(ds["metadata"]["name"]) <= 63
    assert validate_manifest(ds) == []


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ("receivers: [unclosed", "not valid YAML at line 1"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("receivers: {}\n", "no service.pipelines"),
        ("service:\n  pipelines: {metrics: {}}\n", "no health_check extension"),
        ("extensions: {health_check: {endpoint: '0.0.0.0:9999'}}\nservice:\n  extensions: [health_check]\n"
         "  pipelines: {metrics: {}}\n", "spec.healthPort is 13133"),
        ("extensions: {health_check: {}}\nservice:\n  pipelines: {metrics: {}}\n", "does not enable health_check"),
    ],
)
def test_an_unusable_config_is_an_invalid_spec_with_a_reason(config, fragment):
    with pytest.raises(d.InvalidSpec) as err:
        d.daemonset(pipeline_cr(config=config))
    assert err.value.reason == "InvalidConfig" and fragment in str(err.value)


def parsed(args):
    from core.cli import build_parser

    return build_parser().parse_args(args)


def test_a_load_job_per_node_runs_the_load_simulator_with_the_spec():
    cr = loadsim_cr(duration="30m", processCount=100, churnRate=0.2, ttlSecondsAfterFinished=120)
    job = d.load_job(cr, "node-a.example", "registry.local/phoenix:1.2.3")
    assert validate_manifest(job) == []
    assert job["metadata"]["name"] == "load-exp-7-node-a-example"
    assert job["metadata"]["annotations"]["phoenix.io/node"] == "node-a.example"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "LoadSimulationJob"
    assert job["metadata"]["labels"]["phoenix.io/loadsim"] == "load-exp-7"
    spec = job["spec"]
    assert spec["ttlSecondsAfterFinished"] == 120 and spec["backoffLimit"] == 1
    assert spec["activeDeadlineSeconds"] == 1800 + 180  # the run plus 10 % (at least two minutes)
    pod = spec["template"]["spec"]
    assert pod["nodeName"] == "node-a.example" and pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (c,) = pod["containers"]
    assert c["image"] == "registry.local/phoenix:1.2.3" and c["command"] == ["phoenix"]
    assert c["securityContext"] == {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}}
    assert c["resources"]["limits"] and c["resources"]["requests"]
    # the arguments are ones `phoenix loadsim run` accepts, with the spec's values
    args = parsed(c["args"])
    assert (args.profile, args.duration, args.max_processes, args.churn_rate) == ("realistic", "1800s", 100, 0.2)
    assert args.scale == 4  # realistic has 25 processes: scaled to 100


def test_custom_patterns_travel_as_the_simulators_patterns():
    cr = loadsim_cr(profile="custom", processCount=50, image="registry.local/phoenix:9.9.9", customPatterns=[
        {"nameTemplate": "worker-{i}", "count": 20, "lifetime": "5m", "cpuPattern": "spiky",
         "memoryPattern": "growing"}])
    job = d.load_job(cr, "n1", "phoenix:dev")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "registry.local/phoenix:9.9.9"
    args = parsed(c["args"])
    assert args.profile == "custom" and args.scale is None
    assert json.loads(args.patterns_json) == [{"name_template": "worker-{i}", "count": 20, "lifetime_s": 300.0,
                                              "cpu_pattern": "spiky", "memory_pattern": "growing"}]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"profile": "custom"}, "needs spec.customPatterns"),
        ({"customPatterns": [{"nameTemplate": "a", "count": 1}]}, "only applies to profile custom"),
        ({"profile": "custom", "processCount": 10, "customPatterns": [{"nameTemplate": "a", "count": 11}]},
         "ask for 11 processes"),
    ],
)
def test_a_load_spec_the_simulator_would_refuse_is_invalid(spec, fragment):
    with pytest.raises(d.InvalidSpec) as err:
        d.load_job(loadsim_cr(**spec), "n1", "phoenix:dev")
    assert err.value.reason == "InvalidLoadSpec" and fragment in str(err.value)


def test_process_count_above_the_simulators_cap_is_capped():
    args = parsed(d.loadsim_args(loadsim_cr(profile="high-cardinality", processCount=10000)["spec"]))
    assert args.max_processes == 2000 and args.scale == 10


def test_churn_rate_adds_replacements_per_minute():
    from core.runtime.loadsim import ProcessPattern, with_churn

    (p,) = with_churn([ProcessPattern(name_template="a", count=30, churn_rate=0.5)], 0.2)
    assert p.churn_rate == pytest.approx(0.5 + 30 * 0.2 / 60)


def test_node_selector_string():
    assert d.node_selector_string({"zone": "b", "pool": "a"}) == "pool=a,zone=b"
    assert d.node_selector_string(None) == ""


def test_an_experiment_variant_runs_unprivileged_behind_a_node_local_otlp_service():
    from tests.unit.operator_fixtures import experiment_cr

    cr = experiment_cr("baseline")
    ds, svc = d.daemonset(cr), d.otlp_service(cr)
    assert validate_manifest(ds) == [] and svc is not None and validate_manifest(svc) == []
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert "hostPID" not in pod and [v["name"] for v in pod["volumes"]] == ["config"]
    assert [m["name"] for m in c["volumeMounts"]] == ["config"]
    assert c["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "otlp", "containerPort": 4317, "protocol": "TCP"} in c["ports"]
    # the tap on node N reaches only the variant pod on node N
    assert svc["metadata"]["name"] == "phoenix-exp-7-baseline-otlp"
    assert svc["spec"]["internalTrafficPolicy"] == "Local"
    assert svc["spec"]["selector"] == ds["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["selector"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    assert svc["spec"]["ports"][0]["port"] == 4317 and svc["spec"]["ports"][0]["targetPort"] == "otlp"
    assert svc["metadata"]["ownerReferences"][0]["uid"] == "uid-baseline"
    # the tap's config sends to exactly that Service
    assert "phoenix-exp-7-baseline-otlp.team-a.svc:4317" in experiment_cr("tap")["spec"]["config"]


def test_the_tap_is_the_only_experiment_pod_with_host_access():
    from tests.unit.operator_fixtures import experiment_cr

    privileged = {}
    for role in ("tap", "baseline", "candidate"):
        pod = d.daemonset(experiment_cr(role))["spec"]["template"]["spec"]
        privileged[role] = bool(pod.get("hostPID")) or any("hostPath" in v for v in pod["volumes"]) or any(
            (c["securityContext"].get("capabilities") or {}).get("add") for c in pod["containers"])
    assert privileged == {"tap": True, "baseline": False, "candidate": False}
    assert d.otlp_service(experiment_cr("tap")) is None


@pytest.mark.parametrize(("role", "spec", "problem"), [
    ("tap", {"hostAccess": False}, "spec.hostAccess is false but spec.config reads the host"),
    ("baseline", {"otlpPort": 4318}, "spec.otlpPort is 4318 but no otlp receiver"),
    ("baseline", {"otlpPort": 13133}, "spec.otlpPort 13133 is also the health or metrics port"),
])
def test_host_access_and_otlp_port_must_match_the_config(role, spec, problem):
    from tests.unit.operator_fixtures import experiment_cr

    with pytest.raises(d.InvalidSpec) as err:
        d.daemonset(experiment_cr(role, **spec))
    assert err.value.reason == "InvalidConfig" and any(problem in p for p in err.value.problems)
