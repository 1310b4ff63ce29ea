"""The reconcile steps over a fake cluster: idempotence, ownership, cleanup, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.operator import reconcile as r
from core.operator.cluster import ClusterError
from core.operator.desired import InvalidSpec, configmap
from tests.unit.operator_fixtures import FakeCluster, loadsim_cr, pipeline_cr

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
PPP, LSJ = "phoenixprocesspipelines", "loadsimulationjobs"


def kinds(cluster):
    return sorted((k, n) for (k, _, n) in cluster.objects)


def test_applying_a_pipeline_creates_its_children_and_a_status_once():
    cluster = FakeCluster()
    cr = cluster.add_custom(PPP, pipeline_cr())
    status = r.apply_pipeline(cluster, cr, NOW)
    assert kinds(cluster) == [("ConfigMap", "phoenix-exp-7-candidate"), ("DaemonSet", "phoenix-exp-7-candidate")]
    assert status["phase"] == "Deploying" and cluster.customs[(PPP, "team-a", cr["metadata"]["name"])]["status"]
    writes = cluster.status_writes
    r.apply_pipeline(cluster, cluster.get_custom(PPP, "team-a", cr["metadata"]["name"]), NOW)
    assert cluster.status_writes == writes  # nothing changed: no status write
    assert cluster.generations[("DaemonSet", "team-a", "phoenix-exp-7-candidate")] == 1  # nor a new rollout


def test_a_child_status_change_flows_into_the_resource():
    cluster = FakeCluster()
    cr = cluster.add_custom(PPP, pipeline_cr())
    r.apply_pipeline(cluster, cr, NOW)
    ds = cluster.objects[("DaemonSet", "team-a", "phoenix-exp-7-candidate")]
    ds["status"] = {"desiredNumberScheduled": 2, "numberReady": 2, "updatedNumberScheduled": 2,
                    "observedGeneration": 1}
    owner = r.owner_of(ds)
    assert owner is not None and owner["metadata"]["name"] == cr["metadata"]["name"]
    r.refresh_pipeline(cluster, owner, NOW)
    status = cluster.get_custom(PPP, "team-a", cr["metadata"]["name"])["status"]
    assert (status["phase"], status["readyNodes"], status["totalNodes"]) == ("Running", 2, 2)


def test_a_renamed_configmap_replaces_the_old_one():
    cluster = FakeCluster()
    cr = cluster.add_custom(PPP, pipeline_cr())
    r.apply_pipeline(cluster, cr, NOW)
    renamed = cluster.add_custom(PPP, pipeline_cr(configMap="collector-v2", generation=2))
    r.apply_pipeline(cluster, renamed, NOW)
    assert ("ConfigMap", "collector-v2") in kinds(cluster)
    assert ("ConfigMap", "phoenix-exp-7-candidate") not in kinds(cluster)


def test_deleting_a_pipeline_removes_only_what_it_owns():
    cluster = FakeCluster()
    cr = cluster.add_custom(PPP, pipeline_cr())
    r.apply_pipeline(cluster, cr, NOW)
    other = pipeline_cr(name="phoenix-exp-7-candidate", uid="uid-other", configMap="theirs")
    cluster.apply(configmap(other))  # same label, another owner
    r.delete_pipeline(cluster, cr)
    assert kinds(cluster) == [("ConfigMap", "theirs")]


def test_deletion_waits_until_the_children_are_gone():
    class Sticky(FakeCluster):
        def delete(self, kind, namespace, name):  # accepted, but the object lingers (finalizers)
            pass

    cluster = Sticky()
    cr = cluster.add_custom(PPP, pipeline_cr())
    r.apply_pipeline(cluster, cr, NOW)
    with pytest.raises(ClusterError) as err:
        r.delete_pipeline(cluster, cr)
    assert err.value.retryable and "waiting for DaemonSet" in str(err.value)


def test_an_invalid_config_creates_nothing_and_is_recorded():
    cluster = FakeCluster()
    cr = cluster.add_custom(PPP, pipeline_cr(config="::: not yaml"))
    with pytest.raises(InvalidSpec):
        r.apply_pipeline(cluster, cr, NOW)
    assert cluster.objects == {}
    r.record_failure(cluster, PPP, cr, "InvalidConfig", "spec.config is not valid YAML", NOW)
    status = cluster.get_custom(PPP, "team-a", cr["metadata"]["name"])["status"]
    assert status["phase"] == "Failed" and status["observedGeneration"] == 1
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidConfig" and "not valid YAML" in ready["message"]
    # a child event later does not hide the refusal while the spec is unchanged
    assert r.refresh_pipeline(cluster, cr, NOW) is None


def test_api_trouble_surfaces_as_a_retryable_error():
    cluster = FakeCluster()
    cr = cluster.add_custom(PPP, pipeline_cr())
    cluster.fail_next = ClusterError("API server answered 503: etcd unavailable", retryable=True, status=503)
    with pytest.raises(ClusterError) as err:
        r.apply_pipeline(cluster, cr, NOW)
    assert err.value.retryable


# -- LoadSimulationJob ------------------------------------------------------------------------


def nodes():
    return {"n1": {"pool": "load"}, "n2": {"pool": "load"}, "n3": {"pool": "other"}}


def test_one_job_per_selected_node_and_no_duplicates():
    cluster = FakeCluster(nodes())
    cr = cluster.add_custom(LSJ, loadsim_cr(nodeSelector={"pool": "load"}))
    status = r.apply_loadsim(cluster, cr, "phoenix:dev", NOW)
    assert kinds(cluster) == [("Job", "load-exp-7-n1"), ("Job", "load-exp-7-n2")]
    assert status["phase"] == "Pending" and status["nodes"] == 2
    r.apply_loadsim(cluster, cluster.get_custom(LSJ, "team-a", "load-exp-7"), "phoenix:dev", NOW)
    assert len(cluster.objects) == 2


def test_no_matching_node_is_a_permanent_refusal():
    cluster = FakeCluster(nodes())
    cr = cluster.add_custom(LSJ, loadsim_cr(nodeSelector={"pool": "gpu"}))
    with pytest.raises(InvalidSpec) as err:
        r.apply_loadsim(cluster, cr, "phoenix:dev", NOW)
    assert err.value.reason == "NoMatchingNodes" and cluster.objects == {}


def test_job_statuses_flow_into_the_resource_and_a_finished_run_is_never_restarted():
    cluster = FakeCluster(nodes())
    cr = cluster.add_custom(LSJ, loadsim_cr(nodeSelector={"pool": "load"}))
    r.apply_loadsim(cluster, cr, "phoenix:dev", NOW)
    for key in list(cluster.objects):
        cluster.objects[key]["status"] = {"active": 1}
    r.refresh_loadsim(cluster, cr, NOW)
    assert cluster.get_custom(LSJ, "team-a", "load-exp-7")["status"]["phase"] == "Running"
    for key in list(cluster.objects):
        cluster.objects[key]["status"] = {"succeeded": 1}
    r.refresh_loadsim(cluster, cr, NOW)
    assert cluster.get_custom(LSJ, "team-a", "load-exp-7")["status"]["phase"] == "Succeeded"
    cluster.objects.clear()  # the Jobs' TTL
    r.apply_loadsim(cluster, cluster.get_custom(LSJ, "team-a", "load-exp-7"), "phoenix:dev", NOW)
    assert cluster.objects == {}


def test_deleting_a_load_run_deletes_its_jobs():
    cluster = FakeCluster(nodes())
    cr = cluster.add_custom(LSJ, loadsim_cr())
    r.apply_loadsim(cluster, cr, "phoenix:dev", NOW)
    assert len(cluster.objects) == 3  # no selector: every node
    r.delete_loadsim(cluster, cr)
    assert cluster.objects == {}


def test_a_variant_gets_its_otlp_service_pruned_without_the_port_and_deleted_with_it():
    from tests.unit.operator_fixtures import experiment_cr

    cluster = FakeCluster()
    name = "phoenix-exp-7-baseline"
    cr = cluster.add_custom(PPP, experiment_cr("baseline"))
    r.apply_pipeline(cluster, cr, NOW)
    assert kinds(cluster) == [("ConfigMap", name), ("DaemonSet", name), ("Service", f"{name}-otlp")]
    r.apply_pipeline(cluster, cluster.get_custom(PPP, "team-a", name), NOW)
    assert cluster.generations[("Service", "team-a", f"{name}-otlp")] == 1  # applied again: unchanged
    # someone else's Service with the same labels is left alone
    cluster.objects[("Service", "team-a", "other")] = {"kind": "Service", "metadata": {
        "name": "other", "namespace": "team-a", "labels": cluster.objects[("Service", "team-a", f"{name}-otlp")][
            "metadata"]["labels"], "ownerReferences": [{"uid": "someone-else"}]}}
    r.delete_pipeline(cluster, cr)
    assert kinds(cluster) == [("Service", "other")]
    cluster.objects.clear()
    r.apply_pipeline(cluster, cr, NOW)
    spec = dict(cr["spec"])
    spec.pop("otlpPort")  # a variant that stops receiving OTLP (its config keeps the receiver)
    r.apply_pipeline(cluster, {**cr, "spec": spec}, NOW)
    assert ("Service", f"{name}-otlp") not in kinds(cluster)
