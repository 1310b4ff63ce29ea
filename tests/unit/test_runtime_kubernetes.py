"""The Kubernetes runtime against a recorded fake API (tests/kube_fake.py): what it applies,
that applying twice changes nothing, readiness/health from the pipelines' status, teardown
waiting for the operator's finalizer, and how API errors are classified."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import urllib3
import yaml
from kubernetes.client.exceptions import ApiException

from core.catalog.templates import get_template
from core.domain.criteria import LoadProfile, Target, Timing
from core.domain.errors import PermanentError, TemporaryError, ValidationError
from core.domain.experiment import Experiment
from core.render import k8s_resources as res
from core.render.collector import COLLECTOR_IMAGE
from core.runtime.kube_api import classify
from core.runtime.kubernetes import (
    KubernetesAnalyzer,
    KubernetesDeployer,
    check_image,
    parse_tolerations,
    placement_from,
)
from core.settings import COLLECTOR_IMAGE_DEFAULT, Settings
from tests.kube_fake import FakeKube

NS = "team-a"


def experiment(load: str = "realistic", selector: dict[str, str] | None = None, **kw: Any) -> Experiment:
    return Experiment.create(name="k8s", baseline="process-baseline-v1", candidate="process-topk-v1",
                             target=Target(kind="kubernetes", namespace=NS, node_selector=selector or {}),
                             load=LoadProfile(name=load), timing=Timing(duration_s=60, interval_s=5), **kw)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def deployer(kube: FakeKube, settings: Settings | None = None, **kw: Any) -> KubernetesDeployer:
    settings = settings or Settings(k8s_tolerations="dedicated=observability:NoSchedule")
    clock = Clock()
    return KubernetesDeployer(
        api=kube, load_pipelines=lambda exp: {v: get_template(getattr(exp, v).name) for v in ("baseline", "candidate")},
        placement=lambda exp: placement_from(settings, exp.target.node_selector),
        clock=clock, sleep=clock.sleep, **kw)  # fmt: skip


def test_deploy_creates_the_tap_and_one_pipeline_per_variant_a_load_job_and_a_scrape_config() -> None:
    kube, exp = FakeKube(), experiment(selector={"pool": "batch"})
    info = deployer(kube).deploy(exp)
    pipes = {p["spec"]["variant"]: p for p in kube.of_kind("PhoenixProcessPipeline")}
    assert set(pipes) == {"tap", "baseline", "candidate"}
    configs = {}
    for v, p in pipes.items():
        meta, spec = p["metadata"], p["spec"]
        assert meta["name"] == f"phoenix-{exp.id}-{v}" and meta["namespace"] == NS
        assert meta["labels"]["phoenix.io/experiment-id"] == exp.id and meta["labels"]["phoenix.io/variant"] == v
        assert spec["experimentId"] == exp.id and spec["configMap"] == meta["name"]
        assert spec["pipelineName"] == (getattr(exp, v).name if v != "tap" else
                                        "tap-process-baseline-v1-vs-process-topk-v1")
        assert spec["collectorImage"] == COLLECTOR_IMAGE and not spec["collectorImage"].endswith(":latest")
        assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "pool": "batch"}
        assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "observability",
                                        "effect": "NoSchedule"}]  # fmt: skip
        assert spec["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                     "limits": {"cpu": "500m", "memory": "512Mi"}}  # fmt: skip
        assert (spec["healthPort"], spec["metricsPort"]) == (13133, 8889)
        configs[v] = config = yaml.safe_load(spec["config"])
        assert config["extensions"]["health_check"]["endpoint"].endswith(":13133")
        assert any(str(e.get("endpoint", "")).endswith(":8889") for e in config["exporters"].values())
        # the experiment's identity is on every series the collector exports
        assert exp.id in spec["config"] and v in spec["config"]
    # identical input: the tap is the only collector reading the host, and it sends every
    # batch to each variant's node-local Service (the operator's <name>-otlp)
    assert configs["tap"]["receivers"]["hostmetrics"]["root_path"] == "/hostfs"
    assert "otlpPort" not in pipes["tap"]["spec"] and pipes["tap"]["spec"].get("hostAccess", True) is True
    for v in ("baseline", "candidate"):
        assert list(configs[v]["receivers"]) == ["otlp"]
        assert configs[v]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
        assert (pipes[v]["spec"]["otlpPort"], pipes[v]["spec"]["hostAccess"]) == (4317, False)
        assert configs["tap"]["exporters"][f"otlp/{v}"]["endpoint"] == f"phoenix-{exp.id}-{v}-otlp.{NS}.svc:4317"
    assert configs["tap"]["service"]["pipelines"]["metrics"]["exporters"][:2] == ["otlp/baseline", "otlp/candidate"]
    # the two variants run different pipelines
    assert pipes["baseline"]["spec"]["config"] != pipes["candidate"]["spec"]["config"]
    (job,) = kube.of_kind("LoadSimulationJob")
    assert job["metadata"]["name"] == f"load-{exp.id}"
    assert job["spec"] == {"experimentId": exp.id, "profile": "realistic", "duration": "120s",
                           "processCount": exp.load.max_processes, "nodeSelector": {"pool": "batch"}}  # fmt: skip
    (cm,) = kube.of_kind("ConfigMap")
    scrape = yaml.safe_load(cm["data"]["prometheus-scrape.yaml"])["scrape_configs"][0]
    assert scrape["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [NS]}}]
    keep = [r for r in scrape["relabel_configs"] if r.get("action") == "keep"]
    assert keep[0]["source_labels"] == ["__meta_kubernetes_pod_label_phoenix_io_experiment_id"]
    assert keep[0]["regex"] == exp.id.replace("-", "\\-")
    assert {"source_labels": ["__meta_kubernetes_pod_label_phoenix_io_variant"],
            "target_label": "phoenix_variant"} in scrape["relabel_configs"]  # fmt: skip
    # the exporter and otelcol's self-telemetry, by the port names of the operator's DaemonSet
    assert keep[1] == {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "metrics|telemetry",
                       "action": "keep"}  # fmt: skip
    assert info["namespace"] == NS and info["runtime"] == "kubernetes" and info["dry_run"] is False
    assert info["pipelines"] == {v: f"phoenix-{exp.id}-{v}" for v in ("tap", "baseline", "candidate")}
    assert info["measurement"] == {"kind": "ConfigMap", "name": f"phoenix-{exp.id}-scrape"}
    assert sorted(info["created"]) == sorted([f"PhoenixProcessPipeline/phoenix-{exp.id}-tap",
                                              f"PhoenixProcessPipeline/phoenix-{exp.id}-baseline",
                                              f"PhoenixProcessPipeline/phoenix-{exp.id}-candidate",
                                              f"LoadSimulationJob/load-{exp.id}", f"ConfigMap/phoenix-{exp.id}-scrape"])
    assert "no Prometheus URL" in info["samples"]


def test_deploy_twice_leaves_the_same_objects() -> None:
    kube, exp = FakeKube(), experiment()
    d = deployer(kube)
    first = d.deploy(exp)
    before = json.dumps(list(kube.objects.items()), sort_keys=True, default=str)
    assert d.deploy(exp) == first
    assert json.dumps(list(kube.objects.items()), sort_keys=True, default=str) == before  # no generation bump either
    assert len(kube.objects) == 5


def test_no_load_job_for_load_none_and_a_pod_monitor_with_the_prometheus_operator() -> None:
    kube = FakeKube(served={"phoenixprocesspipelines", "loadsimulationjobs", "podmonitors"})
    exp = experiment(load="none")
    info = deployer(kube).deploy(exp)
    assert kube.of_kind("LoadSimulationJob") == [] and kube.of_kind("ConfigMap") == []
    (pm,) = kube.of_kind("PodMonitor")
    assert pm["spec"]["selector"] == {"matchLabels": {"phoenix.io/experiment-id": exp.id}}
    assert [e["port"] for e in pm["spec"]["podMetricsEndpoints"]] == ["metrics", "telemetry"]
    relabel = pm["spec"]["podMetricsEndpoints"][0]["relabelings"]
    assert {"targetLabel": "phoenix_experiment_id", "replacement": exp.id} in relabel
    assert {"sourceLabels": ["__meta_kubernetes_pod_label_phoenix_io_variant"], "targetLabel": "phoenix_variant"} in relabel
    assert info["load_job"] is None and info["measurement"]["kind"] == "PodMonitor"


def test_the_namespace_defaults_to_the_configured_one_and_a_local_target_is_refused() -> None:
    kube = FakeKube()
    d = deployer(kube, default_namespace="phoenix-exp")
    exp = experiment(load="none")
    exp.target = Target(kind="kubernetes", namespace=None)  # as stored by an older Phoenix
    assert d.deploy(exp)["namespace"] == "phoenix-exp"
    local = Experiment.create(name="l", baseline="process-baseline-v1", candidate="process-topk-v1")
    with pytest.raises(PermanentError, match="runs only kubernetes targets"):
        d.deploy(local)


def test_long_experiment_ids_still_give_valid_names() -> None:
    exp = experiment(id="exp-" + "x" * 70)
    names = [res.pipeline_name(exp.id, "candidate"), res.load_job_name(exp.id), res.scrape_name(exp.id)]
    assert all(len(n) <= 63 and n == n.lower() for n in names) and len(set(names)) == 3
    assert len(res.experiment_label(exp.id)) <= 40


def test_is_ready_needs_the_tap_and_both_variants_running_on_every_node() -> None:
    kube, exp = FakeKube(), experiment()
    d = deployer(kube)
    assert not d.is_ready(exp)  # nothing deployed
    d.deploy(exp)
    t, b, c = (f"phoenix-{exp.id}-{v}" for v in ("tap", "baseline", "candidate"))
    assert not d.is_ready(exp)  # no status yet
    kube.set_status("PhoenixProcessPipeline", b, phase="Running", readyNodes=3, totalNodes=3)
    kube.set_status("PhoenixProcessPipeline", c, phase="Running", readyNodes=2, totalNodes=3)
    assert not d.is_ready(exp)
    kube.set_status("PhoenixProcessPipeline", c, readyNodes=3)
    assert not d.is_ready(exp)  # the variants without their tap have no input
    kube.set_status("PhoenixProcessPipeline", t, phase="Running", readyNodes=3, totalNodes=3)
    assert d.is_ready(exp)
    kube.set_status("PhoenixProcessPipeline", c, readyNodes=0, totalNodes=0)  # no node matches
    assert not d.is_ready(exp)


def test_healthy_until_failed_gone_or_degraded_past_the_grace() -> None:
    kube, exp = FakeKube(), experiment()
    d = deployer(kube, degraded_grace_s=30)
    d.deploy(exp)
    b = f"phoenix-{exp.id}-baseline"
    for v in ("baseline", "candidate"):
        kube.set_status("PhoenixProcessPipeline", f"phoenix-{exp.id}-{v}", phase="Running", readyNodes=1, totalNodes=1)
    assert d.healthy(exp)
    kube.set_status("PhoenixProcessPipeline", b, phase="Degraded",
                    conditions=[{"type": "Ready", "status": "False", "reason": "Unavailable", "message": "1 of 3 ready"}])
    assert d.healthy(exp)  # the grace counts from here, when it was first seen degraded
    d.clock.t += 20  # type: ignore[attr-defined]
    assert d.healthy(exp)
    kube.set_status("PhoenixProcessPipeline", b, phase="Running")  # recovered: the grace starts over
    assert d.healthy(exp)
    kube.set_status("PhoenixProcessPipeline", b, phase="Degraded")
    assert d.healthy(exp)
    d.clock.t += 20  # type: ignore[attr-defined]
    assert d.healthy(exp)
    d.clock.t += 20  # type: ignore[attr-defined]
    with pytest.raises(PermanentError, match="baseline collectors are degraded for over 30s: Ready=False Unavailable"):
        d.healthy(exp)
    kube.set_status("PhoenixProcessPipeline", b, phase="Failed")
    with pytest.raises(PermanentError, match="baseline collectors failed: Ready=False Unavailable 1 of 3 ready"):
        d.healthy(exp)
    kube.set_status("PhoenixProcessPipeline", b, phase="Running")
    assert d.healthy(exp)
    kube.set_status("LoadSimulationJob", f"load-{exp.id}", phase="Failed",
                    conditions=[{"type": "Ready", "status": "False", "reason": "NoMatchingNodes"}])
    with pytest.raises(PermanentError, match=f"load simulation load-{exp.id} failed: Ready=False NoMatchingNodes"):
        d.healthy(exp)
    kube.set_status("LoadSimulationJob", f"load-{exp.id}", phase="Running")
    assert d.healthy(exp)
    kube.set_status("PhoenixProcessPipeline", f"phoenix-{exp.id}-tap", phase="Failed",
                    conditions=[{"type": "Ready", "status": "False", "reason": "InvalidConfig"}])
    with pytest.raises(PermanentError, match="tap collectors failed: Ready=False InvalidConfig"):
        d.healthy(exp)
    kube.set_status("PhoenixProcessPipeline", f"phoenix-{exp.id}-tap", phase="Running")
    assert d.healthy(exp)
    kube.delete(next(iter(r for r in d._all_refs(exp, NS) if r.name == b)))
    with pytest.raises(PermanentError, match="baseline PhoenixProcessPipeline .* was deleted"):
        d.healthy(exp)


def test_the_degraded_grace_counts_from_the_operators_ready_transition_across_restarts() -> None:
    """The operator's own status (core.operator.status) says since when Ready is False: a new
    deployer (a restarted scheduler) carries on counting from there instead of starting over."""
    from datetime import UTC, datetime, timedelta

    from core.operator.status import pipeline_status

    kube, exp = FakeKube(), experiment()
    deployer(kube).deploy(exp)
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    ds = {"metadata": {"generation": 1}, "status": {"desiredNumberScheduled": 3, "updatedNumberScheduled": 3,
                                                    "numberReady": 3, "observedGeneration": 1}}  # fmt: skip
    running = pipeline_status(ds, None, t0)
    ds["status"]["numberReady"] = 2  # one collector stops passing its health check at t0 + 10 min
    degraded = pipeline_status(ds, running, t0 + timedelta(minutes=10))
    assert degraded["phase"] == "Degraded"
    for v in ("baseline", "candidate"):
        kube.set_status("PhoenixProcessPipeline", f"phoenix-{exp.id}-{v}", **running)
    kube.set_status("PhoenixProcessPipeline", f"phoenix-{exp.id}-candidate", **degraded)
    # still degraded when the operator writes its status again later: the transition time stays
    later = pipeline_status(ds, degraded, t0 + timedelta(minutes=11))
    assert later["conditions"] == degraded["conditions"]

    def fresh(at: datetime) -> KubernetesDeployer:  # a scheduler (re)started at ``at``
        return deployer(kube, degraded_grace_s=120, now=lambda: at)

    assert fresh(t0 + timedelta(minutes=11)).healthy(exp)  # 60 s into the grace
    with pytest.raises(PermanentError, match="candidate collectors are degraded for over 120s: Ready=False PodsNotReady"):
        fresh(t0 + timedelta(minutes=12, seconds=1)).healthy(exp)
    # a clock a little behind the operator's is no reason to fail (nor a negative duration)
    assert fresh(t0 + timedelta(minutes=9)).healthy(exp)
    # recovered: Ready turns True again, and a later degradation starts a new grace
    recovered = pipeline_status({**ds, "status": {**ds["status"], "numberReady": 3}}, degraded,
                                t0 + timedelta(minutes=20))
    kube.set_status("PhoenixProcessPipeline", f"phoenix-{exp.id}-candidate", **recovered)
    assert fresh(t0 + timedelta(minutes=30)).healthy(exp)
    again = pipeline_status(ds, recovered, t0 + timedelta(minutes=29))
    kube.set_status("PhoenixProcessPipeline", f"phoenix-{exp.id}-candidate", **again)
    assert fresh(t0 + timedelta(minutes=30)).healthy(exp)


def test_teardown_deletes_everything_and_waits_for_the_finalizer() -> None:
    kube = FakeKube(finalizer="phoenix.io/cleanup")
    exp = experiment()
    d = deployer(kube, teardown_wait_s=2)
    d.deploy(exp)
    with pytest.raises(TemporaryError, match="waiting for the operator to finalize"):
        d.teardown(exp)
    assert d.clock.t >= 1002  # type: ignore[attr-defined]  # it waited, bounded
    assert kube.of_kind("ConfigMap") == []  # no finalizer: gone at once
    assert all(o["metadata"].get("deletionTimestamp") for o in kube.objects.values())
    kube.finalize()
    d.teardown(exp)  # the retry: deleting what is gone is fine
    assert kube.objects == {}
    d.teardown(exp)  # and again


def test_teardown_of_a_never_deployed_experiment_is_a_no_op() -> None:
    kube = FakeKube()
    deployer(kube).teardown(experiment())
    assert {op for op, _ in kube.calls} == {"delete", "get"}


def _api_error(status: int, message: str = "") -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps({"kind": "Status", "message": message})
    return exc


@pytest.mark.parametrize(("exc", "kind", "text"), [
    (urllib3.exceptions.MaxRetryError(None, "/api", "Connection refused"), TemporaryError, "cannot reach"),
    (urllib3.exceptions.ReadTimeoutError(None, "/api", "read timed out"), TemporaryError, "cannot reach"),
    (ConnectionRefusedError(111, "refused"), TemporaryError, "cannot reach"),
    (_api_error(503, "etcdserver: leader changed"), TemporaryError, "503"),
    (_api_error(500), TemporaryError, "500"),
    # what the real API server answered to a PodMonitor field its CRD does not declare
    # (tests/integration/test_k8s_prometheus.py): the same object fails every retry
    (_api_error(500, "failed to create typed patch object (ns/x; monitoring.coreos.com/v1, Kind=PodMonitor): "
                     ".spec.podMetricsEndpoints[0].scrapeEvery: field not declared in schema"),
     PermanentError, "scrapeEvery: field not declared"),
    (_api_error(429, "too many requests"), TemporaryError, "429"),
    (_api_error(401, "Unauthorized"), PermanentError, "credentials"),
    (_api_error(403, 'User "system:serviceaccount:p:phoenix" cannot create resource'), PermanentError, "forbidden"),
    (_api_error(422, "spec.collectorImage: Invalid value"), PermanentError, "spec.collectorImage"),
    (_api_error(404, 'namespaces "nope" not found'), PermanentError, "nope"),
])  # fmt: skip
def test_errors_are_temporary_or_permanent(exc: BaseException, kind: type, text: str) -> None:
    kube, exp = FakeKube(), experiment()
    kube.errors["apply"] = [exc]
    with pytest.raises(kind, match=text) as got:
        deployer(kube).deploy(exp)
    assert type(got.value) is kind
    assert "applying PhoenixProcessPipeline" in str(got.value)


def test_error_messages_never_carry_a_token() -> None:
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6IkJ4c2RmIn0.eyJpc3MiOiJrdWJlcm5ldGVz"
    for status in (401, 403, 422, 500):
        msg = str(classify(_api_error(status, f"bad bearer token {token}"), "x"))
        assert token not in msg and token[:32] not in msg


def test_a_failed_deploy_half_way_is_completed_by_the_retry() -> None:
    kube, exp = FakeKube(), experiment()
    d = deployer(kube)
    kube.errors["apply"] = [None, _api_error(503)]  # the tap applied, the baseline not
    with pytest.raises(TemporaryError):
        d.deploy(exp)
    assert len(kube.objects) == 1
    d.deploy(exp)
    assert len(kube.objects) == 5


def test_an_unrenderable_pipeline_is_a_permanent_error() -> None:
    kube, exp = FakeKube(), experiment()

    def broken(_: Experiment) -> dict[str, Any]:
        raise ValidationError("exporter otlp needs an endpoint")

    d = deployer(kube)
    d.load_pipelines = broken
    with pytest.raises(ValidationError):
        d.deploy(exp)
    assert kube.objects == {}


def test_placement_settings_are_checked() -> None:
    assert COLLECTOR_IMAGE_DEFAULT == COLLECTOR_IMAGE  # the settings default is the render's pinned image
    for bad in ("otel/opentelemetry-collector-contrib:latest", "otel/opentelemetry-collector-contrib",
                "registry:5000/otelcol"):
        with pytest.raises(PermanentError, match="pinned"):
            check_image(bad)
    assert check_image("registry:5000/otelcol:0.159.0") == "registry:5000/otelcol:0.159.0"
    assert parse_tolerations("gpu:NoExecute,spot") == [
        {"key": "gpu", "operator": "Exists", "effect": "NoExecute"}, {"key": "spot", "operator": "Exists"}]
    with pytest.raises(ValidationError, match="effect"):
        parse_tolerations("a=b:Sometimes")
    with pytest.raises(ValidationError, match="PHOENIX_K8S_REQUESTS"):
        placement_from(replace(Settings(), k8s_requests="cpu"))


def test_settings_read_the_kubernetes_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOENIX_KUBECONFIG", "/etc/phoenix/kubeconfig")
    monkeypatch.setenv("PHOENIX_K8S_NAMESPACE", "obs")
    monkeypatch.setenv("PHOENIX_K8S_COLLECTOR_IMAGE", "mirror/otelcol:1.2.3")
    monkeypatch.setenv("PHOENIX_K8S_TEARDOWN_WAIT", "5")
    s = Settings.from_env()
    assert (s.kubeconfig, s.k8s_namespace, s.k8s_collector_image, s.k8s_teardown_wait_s) == (
        "/etc/phoenix/kubeconfig", "obs", "mirror/otelcol:1.2.3", 5.0)


def test_without_prometheus_nothing_is_collected_and_the_verdict_is_inconclusive() -> None:
    kube, exp = FakeKube(), experiment()
    d = deployer(kube)
    assert list(d.collect(exp)) == []
    result = KubernetesAnalyzer(prometheus_url=None).analyze(exp, [])
    assert result["verdict"] == "INCONCLUSIVE" and "no Prometheus URL" in result["reasons"][0]
    with pytest.raises(PermanentError, match="no measurements"):  # with one configured, none is a failure
        KubernetesAnalyzer(prometheus_url="http://prometheus:9090").analyze(exp, [])


def test_every_applied_custom_resource_passes_its_crd_schema() -> None:
    from core.render.k8s_validate import validate_custom_resource

    kube = FakeKube()
    exp = Experiment.create(name="k8s", baseline="process-baseline-v1", candidate="process-topk-v1",
                            target=Target(kind="kubernetes", namespace=NS),
                            load=LoadProfile(name="custom", params={"patterns": [
                                {"name_template": "svc-{i:03d}", "count": 20, "lifetime_s": 30,
                                 "cpu_pattern": "spiky"}]}, max_processes=50))  # fmt: skip
    deployer(kube).deploy(exp)
    crs = kube.of_kind("PhoenixProcessPipeline") + kube.of_kind("LoadSimulationJob")
    assert len(crs) == 4
    for cr in crs:
        assert validate_custom_resource(cr) == []
    (job,) = kube.of_kind("LoadSimulationJob")
    assert job["spec"]["customPatterns"] == [{"nameTemplate": "svc-{i}", "count": 20, "lifetime": "30s",
                                              "cpuPattern": "spiky", "memoryPattern": "steady"}]


def test_the_local_runtime_refuses_a_kubernetes_target(tmp_path) -> None:
    from core.runtime.local import LocalDeployer

    def no_database() -> Any:
        raise AssertionError("refused before touching the database")

    with pytest.raises(PermanentError, match="set PHOENIX_RUNTIME=kubernetes"):
        LocalDeployer(no_database, data_dir=tmp_path).deploy(experiment())


class RecordedPrometheus:
    """``PrometheusConnect.custom_query`` answering with recorded instant vectors."""

    def __init__(self, answers: dict[str, list[dict[str, Any]]]) -> None:
        self.answers, self.queries = answers, []  # type: list[str]

    def custom_query(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.queries.append(query)
        for prefix, result in self.answers.items():
            if query.startswith(prefix):
                return result
        return []


def _vec(**by_variant: float) -> list[dict[str, Any]]:
    return [{"metric": {"phoenix_variant": v}, "value": [0, str(x)]} for v, x in by_variant.items()]


def test_collect_reads_each_variant_from_prometheus_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from core.analysis.prometheus_reader import PrometheusReader

    prom = RecordedPrometheus({"count by": _vec(baseline=1200, candidate=300),
                               "sum by": _vec(baseline=2400, candidate=600),
                               "max by (phoenix_variant) (rate": _vec(baseline=1.5, candidate=0.5),
                               "max by (phoenix_variant) (otelcol_process_memory_rss": _vec(baseline=80, candidate=60)})
    monkeypatch.setattr(PrometheusReader, "_client", lambda self: prom)
    exp = experiment()
    exp.started_at = exp.created_at - timedelta(seconds=30)
    d = deployer(FakeKube(), prometheus_url=lambda: "http://prometheus:9090")
    samples = sorted(d.collect(exp), key=lambda s: s.variant)
    assert [(s.variant, s.series, s.datapoints, s.collector_cpu_pct, s.collector_rss_mb) for s in samples] == [
        ("baseline", 1200, 2400, 1.5, 80.0), ("candidate", 300, 600, 0.5, 60.0)]
    assert all(f'phoenix_experiment_id="{exp.id}"' in q for q in prom.queries)
    assert list(d.collect(exp)) == []  # the same interval is not read twice
    prom.answers = {}
    d._collected_until.clear()
    assert list(d.collect(exp)) == []  # Prometheus has nothing of it (yet): no rows, no error


def test_a_broken_kubeconfig_is_a_permanent_error_without_its_content(tmp_path) -> None:
    from core.runtime.kube_api import KubeClient, Ref, load_api_client

    secret = "c2VjcmV0LXRva2VuLXRoYXQtbXVzdC1uZXZlci1iZS1zaG93bg=="
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\ncurrent-context: nowhere\nusers:\n"
                    f"- name: u\n  user: {{token: {secret}}}\nclusters: []\ncontexts: []\n")
    for kubeconfig in (str(path), str(tmp_path / "missing")):
        api = KubeClient(lambda k=kubeconfig: load_api_client(k))
        with pytest.raises(PermanentError, match="Kubernetes configuration|is not a file") as got:
            api.get(Ref("v1", "ConfigMap", "configmaps", "ns", "x"))
        assert secret not in str(got.value) and secret[:32] not in str(got.value)


def test_a_broken_prometheus_setting_does_not_stop_the_experiment() -> None:
    def broken() -> str:
        raise ValidationError("the saved Prometheus URL must start with http:// or https://")

    kube, exp = FakeKube(), experiment()
    d = deployer(kube, prometheus_url=broken)
    assert "no Prometheus URL" in d.deploy(exp)["samples"]
    assert list(d.collect(exp)) == []
