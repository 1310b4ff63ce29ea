"""Status derivation from recorded DaemonSet and Job objects (as the API server returns them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.operator.status import loadsim_status, pipeline_status

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def ds(generation=2, applied="5", **status):
    """A DaemonSet as read back: metadata.generation, the operator's annotation, and a status."""
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "phoenix-exp-7-candidate", "namespace": "team-a", "generation": generation,
                         "annotations": {"phoenix.io/generation": applied}},
            "status": status}


def cond(status, ctype):
    return next(c for c in status["conditions"] if c["type"] == ctype)


def test_all_pods_ready_on_the_current_template_is_running():
    st = pipeline_status(ds(desiredNumberScheduled=3, currentNumberScheduled=3, numberReady=3,
                            updatedNumberScheduled=3, numberAvailable=3, observedGeneration=2), {}, NOW)
    assert (st["phase"], st["readyNodes"], st["totalNodes"], st["observedGeneration"]) == ("Running", 3, 3, 5)
    assert cond(st, "Ready")["status"] == "True" and cond(st, "Ready")["reason"] == "AllReady"
    assert cond(st, "Progressing")["status"] == "False" and cond(st, "Degraded")["status"] == "False"


def test_a_new_daemonset_without_status_is_deploying():
    st = pipeline_status(ds(generation=1), {}, NOW)
    assert st["phase"] == "Deploying" and st["readyNodes"] == 0 and st["totalNodes"] == 0
    assert cond(st, "Progressing")["status"] == "True"
    assert "observedGeneration" not in st  # the controller has not seen it yet


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        # the controller has not observed the latest template yet
        ({"desiredNumberScheduled": 3, "numberReady": 3, "updatedNumberScheduled": 3, "observedGeneration": 1},
         "Rollout"),
        # rolling: one of three nodes on the new config hash
        ({"desiredNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 1, "observedGeneration": 2},
         "Rollout"),
    ],
)
def test_a_rollout_in_progress_is_deploying(status, reason):
    st = pipeline_status(ds(**status), {"phase": "Running", "observedGeneration": 4}, NOW)
    assert st["phase"] == "Deploying" and cond(st, "Progressing")["reason"] == reason
    assert cond(st, "Ready")["status"] == "False"


def test_the_observed_generation_waits_for_the_controller():
    st = pipeline_status(ds(desiredNumberScheduled=3, numberReady=3, updatedNumberScheduled=3,
                            observedGeneration=1), {"observedGeneration": 4}, NOW)
    assert st["observedGeneration"] == 4


def test_pods_failing_their_health_check_after_running_is_degraded():
    status = {"desiredNumberScheduled": 4, "numberReady": 3, "updatedNumberScheduled": 4, "observedGeneration": 2,
              "numberUnavailable": 1}
    st = pipeline_status(ds(**status), {"phase": "Running"}, NOW)
    assert st["phase"] == "Degraded" and (st["readyNodes"], st["totalNodes"]) == (3, 4)
    assert cond(st, "Degraded")["status"] == "True" and cond(st, "Degraded")["reason"] == "PodsNotReady"
    # first start-up: pods not ready yet is not a degradation
    assert pipeline_status(ds(**status), {"phase": "Deploying"}, NOW)["phase"] == "Deploying"


def test_no_matching_node_is_pending():
    st = pipeline_status(ds(desiredNumberScheduled=0, numberReady=0, observedGeneration=2), {}, NOW)
    assert st["phase"] == "Pending" and cond(st, "Ready")["reason"] == "NoNodes"


def test_a_status_writer_without_rollout_fields_counts_as_up_to_date():
    st = pipeline_status(ds(desiredNumberScheduled=2, numberReady=2), {}, NOW)
    assert st["phase"] == "Running"


def test_transition_time_moves_only_when_a_condition_changes():
    running = pipeline_status(ds(desiredNumberScheduled=1, numberReady=1, updatedNumberScheduled=1), {}, NOW)
    later = NOW + timedelta(minutes=5)
    again = pipeline_status(ds(desiredNumberScheduled=1, numberReady=1, updatedNumberScheduled=1), running, later)
    assert again == running
    down = pipeline_status(ds(desiredNumberScheduled=1, numberReady=0, updatedNumberScheduled=1), running, later)
    assert cond(down, "Ready")["lastTransitionTime"] == "2026-12-03T10:05:00Z"
    assert cond(down, "Progressing")["lastTransitionTime"] == cond(running, "Progressing")["lastTransitionTime"]


# -- LoadSimulationJob ------------------------------------------------------------------------

SPEC = {"profile": "realistic", "duration": "30m", "processCount": 100}


def job(name, **status):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {"backoffLimit": 1},
            "status": status}


def test_no_jobs_is_pending_and_created_jobs_not_started_too():
    assert loadsim_status([], SPEC, {}, NOW)["phase"] == "Pending"
    st = loadsim_status([job("a"), job("b")], SPEC, {}, NOW)
    assert st["phase"] == "Pending" and st["nodes"] == 2 and "startTime" not in st


def test_active_jobs_are_running_with_their_processes():
    jobs = [job("a", active=1, startTime="2026-12-03T09:58:00Z"), job("b", active=1, startTime="2026-12-03T09:57:00Z")]
    st = loadsim_status(jobs, SPEC, {}, NOW)
    assert (st["phase"], st["activeProcesses"], st["nodes"]) == ("Running", 200, 2)
    assert st["startTime"] == "2026-12-03T09:57:00Z" and "completionTime" not in st
    # a status writer that records no start time: now
    assert loadsim_status([job("a", active=1)], SPEC, {}, NOW)["startTime"] == "2026-12-03T10:00:00Z"


def test_all_jobs_succeeded_is_succeeded_with_the_last_completion():
    jobs = [job("a", succeeded=1, completionTime="2026-12-03T10:30:00Z"),
            job("b", succeeded=1, completionTime="2026-12-03T10:31:00Z",
                conditions=[{"type": "Complete", "status": "True"}])]
    st = loadsim_status(jobs, SPEC, {"startTime": "2026-12-03T10:00:00Z"}, NOW)
    assert st["phase"] == "Succeeded" and st["activeProcesses"] == 0
    assert st["completionTime"] == "2026-12-03T10:31:00Z" and st["startTime"] == "2026-12-03T10:00:00Z"
    assert cond(st, "Complete")["status"] == "True"


def test_one_half_finished_run_is_still_running():
    st = loadsim_status([job("a", succeeded=1), job("b", active=1)], SPEC, {}, NOW)
    assert st["phase"] == "Running" and st["activeProcesses"] == 100


@pytest.mark.parametrize(
    "failed_job",
    [job("b", failed=2), job("b", failed=1, conditions=[{"type": "Failed", "status": "True",
                                                          "reason": "DeadlineExceeded"}])],
)
def test_a_failed_job_fails_the_run(failed_job):
    st = loadsim_status([job("a", succeeded=1), failed_job], SPEC, {}, NOW)
    assert st["phase"] == "Failed" and cond(st, "Failed")["status"] == "True"


def test_one_failed_pod_within_the_backoff_limit_is_a_retry_not_a_failure():
    assert loadsim_status([job("a", failed=1, active=1)], SPEC, {}, NOW)["phase"] == "Running"


def test_jobs_removed_by_their_ttl_keep_the_outcome():
    done = loadsim_status([job("a", succeeded=1)], SPEC, {}, NOW)
    stored = {**done, "kopf": {"last-handled-configuration": "{}"}}  # kopf's field is not ours to write
    assert loadsim_status([], SPEC, stored, NOW + timedelta(hours=1)) == done
