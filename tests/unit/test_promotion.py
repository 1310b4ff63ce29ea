"""Promotion rules on the in-memory store and the in-memory GitOps fake."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest
import yaml

from core.domain.criteria import Target
from core.domain.errors import PermissionDenied, PhoenixError
from core.domain.experiment import State
from core.domain.views import experiment_to_dict
from core.gitops import InMemoryGitOps
from core.render.k8s_validate import validate_custom_resource
from core.services.promotion import PromotionDenied, target_key
from core.services.requests import Promote
from tests.actors import ADMIN
from tests.usecases import promote, save_version


def _finish(services, verdict: str | None, *, candidate: str = "process-topk-v1", state: State = State.COMPLETED,
            target: Target | None = None) -> str:
    """An experiment driven through the state machine to ``state`` (with ``verdict`` when Completed)."""
    exp = services.experiments.create(ADMIN, name="t", baseline="process-baseline-v1", candidate=candidate, duration_s=30, interval_s=5, target=target)
    with services.uow() as uow:
        e = uow.experiments.get(exp.id)
        if state is not State.PENDING:
            e.start("test")
        if state in (State.RUNNING, State.ANALYZING, State.COMPLETED, State.FAILED):
            e.mark_running("test")
        if state in (State.ANALYZING, State.COMPLETED):
            e.begin_analysis("test")
        if state is State.COMPLETED:
            e.complete({"verdict": verdict, "reasons": []}, "test")
        if state is State.FAILED:
            e.fail("collector died", "test")
        uow.experiments.save(e)
        uow.commit()
    return exp.id


def test_promote_completed_promote_verdict(memory_services) -> None:
    git = InMemoryGitOps()
    eid = _finish(memory_services, "PROMOTE")
    rec = promote(memory_services.uow, git, eid, actor="alice")
    assert (rec.target, rec.pipeline, rec.version, rec.ref, rec.experiment_id) == (
        "local", "process-topk-v1", None, "process-topk-v1", eid)
    assert rec.forced is False and rec.reason is None and rec.actor == "alice" and rec.interval_s == 5.0
    (commit_id, rel_dir, files, info) = git.dir_commits[0]
    assert rec.commit_id == commit_id and rel_dir == "production/local"
    assert {"graph.json", "collector.yaml", "promotion.json"} <= set(files)
    assert any(f.startswith("k8s/") for f in files)
    assert json.loads(files["promotion.json"])["experiment_id"] == eid
    assert info.author == "alice" and eid in info.message
    assert json.loads(files["graph.json"])["name"] == "process-topk-v1"
    assert memory_services.promotion.current(ADMIN) == rec
    assert memory_services.promotion.require(ADMIN).pipeline_object().name == "process-topk-v1"
    assert memory_services.promotion.of(ADMIN, eid).commit_id == commit_id
    entries = [a for a in memory_services.experiments.audit(ADMIN, eid) if a.action == "experiment.promote"]
    assert len(entries) == 1
    assert entries[0].actor == "alice"
    assert entries[0].details["commit_id"] == commit_id and entries[0].details["forced"] is False


def test_promote_again_is_a_noop(memory_services) -> None:
    git = InMemoryGitOps()
    eid = _finish(memory_services, "PROMOTE")
    first = promote(memory_services.uow, git, eid, actor="alice")
    again = promote(memory_services.uow, git, eid, actor="bob")
    assert again == first and len(git.dir_commits) == 1
    entries = [a for a in memory_services.experiments.audit(ADMIN, eid) if a.action == "experiment.promote"]
    # exactly one entry per call: the promotion, then the no-op that found it done
    assert [e.details.get("unchanged", False) for e in reversed(entries)] == [False, True]
    assert [e.actor for e in reversed(entries)] == ["alice", "bob"]


def test_later_promotion_supersedes_and_rollback_recommits(memory_services) -> None:
    git = InMemoryGitOps()
    a = _finish(memory_services, "PROMOTE")
    b = _finish(memory_services, "PROMOTE", candidate="process-baseline-v1")
    promote(memory_services.uow, git, a, actor="alice")
    rec_b = promote(memory_services.uow, git, b, actor="alice")
    assert memory_services.promotion.current(ADMIN).experiment_id == b and rec_b.ref == "process-baseline-v1"
    rec_a = promote(memory_services.uow, git, a, actor="alice")  # a rollback is a new promotion
    assert memory_services.promotion.current(ADMIN).experiment_id == a and len(git.dir_commits) == 3
    (entry,) = [x for x in memory_services.experiments.audit(ADMIN, a) if x.action == "experiment.promote"][:1]
    assert entry.details["replaces_experiment"] == b and rec_a.commit_id == git.dir_commits[-1][0]


@pytest.mark.parametrize("state", [State.PENDING, State.RUNNING, State.ANALYZING, State.FAILED])
def test_not_completed_is_refused_even_forced(memory_services, state: State) -> None:
    git = InMemoryGitOps()
    eid = _finish(memory_services, None, state=state)
    with pytest.raises(PromotionDenied, match=f"is {state.value}.*only a Completed experiment"):
        promote(memory_services.uow, git, eid, actor="root", force=True, reason="urgent", is_admin=True)
    assert git.dir_commits == [] and memory_services.promotion.current(ADMIN) is None


@pytest.mark.parametrize("verdict", ["REJECT", "INCONCLUSIVE"])
def test_other_verdicts_need_an_admin_force_with_reason(memory_services, verdict: str) -> None:
    git = InMemoryGitOps()
    eid = _finish(memory_services, verdict)
    with pytest.raises(PromotionDenied, match=f"verdict {verdict}, not PROMOTE.*--force --reason"):
        promote(memory_services.uow, git, eid, actor="alice")
    with pytest.raises(PermissionDenied, match=r"alice \(operator\) may not experiment.promote"):
        promote(memory_services.uow, git, eid, actor="alice", force=True, reason="trust me", is_admin=False)
    with pytest.raises(PromotionDenied, match="needs a reason"):
        promote(memory_services.uow, git, eid, actor="root", force=True, reason="   ", is_admin=True)
    assert git.dir_commits == [] and memory_services.promotion.current(ADMIN) is None
    rec = promote(memory_services.uow, git, eid, actor="root", force=True, reason="cost freeze", is_admin=True)
    assert rec.forced is True and rec.reason == "cost freeze" and rec.verdict == verdict
    assert "(forced)" in git.dir_commits[0][3].message and "Reason: cost freeze" in git.dir_commits[0][3].message
    (entry,) = [a for a in memory_services.experiments.audit(ADMIN, eid) if a.action == "experiment.force_promote"]
    assert entry.details["forced"] is True and entry.details["reason"] == "cost freeze"


def test_preview_diffs_against_production_and_the_reason_is_kept_everywhere(memory_services) -> None:
    svc = memory_services.promotion
    a = _finish(memory_services, "PROMOTE")
    first = svc.preview(ADMIN, a)
    assert first.production_ref is None and first.candidate_ref == "process-topk-v1" and not first.already_production
    assert "production/local: nothing" in first.diff and "\n-" not in first.diff  # all of it is new
    rec = svc.promote(ADMIN, Promote(experiment_id=a, reason="  keeps 84% fewer series\nno alert lost "))
    assert rec.reason == "keeps 84% fewer series\nno alert lost" and svc.of(ADMIN, a).reason == rec.reason
    (entry,) = [x for x in memory_services.experiments.audit(ADMIN, a) if x.action == "experiment.promote"]
    assert entry.details["reason"] == rec.reason
    b = _finish(memory_services, "PROMOTE", candidate="process-baseline-v1")
    second = svc.preview(ADMIN, b)
    assert (second.production_ref, second.production_experiment) == ("process-topk-v1", a)
    assert "--- production/local: process-topk-v1" in second.diff and "+++ candidate process-baseline-v1" in second.diff
    assert any(line.startswith("-") and not line.startswith("---") for line in second.diff.splitlines())
    assert svc.preview(ADMIN, a).already_production


@pytest.mark.parametrize("reason,match", [("x" * 501, "501 characters; at most 500"),
                                          ("bell\x07", "no other control characters")])
def test_a_bad_reason_is_refused_before_anything_is_committed(memory_services, reason: str, match: str) -> None:
    git = InMemoryGitOps()
    eid = _finish(memory_services, "PROMOTE")
    with pytest.raises(PhoenixError, match=match):
        promote(memory_services.uow, git, eid, actor="alice", reason=reason)
    assert git.dir_commits == [] and memory_services.promotion.current(ADMIN) is None


def test_unknown_experiment_and_missing_production_are_clear_errors(memory_services) -> None:
    with pytest.raises(PhoenixError, match="exp-nope"):
        promote(memory_services.uow, InMemoryGitOps(), "exp-nope", actor="alice")
    with pytest.raises(PhoenixError, match="no pipeline has been promoted to production for target 'local'"):
        memory_services.promotion.require(ADMIN)


def test_saved_candidate_version_is_resolved(memory_services) -> None:
    from core.catalog.templates import get_template

    git = InMemoryGitOps()
    p = get_template("process-topk-v1")
    p.name = "my-topk"
    number, _ = save_version(memory_services.uow, git, p, "first", "alice")
    eid = _finish(memory_services, "PROMOTE", candidate="my-topk")
    rec = promote(memory_services.uow, git, eid, actor="alice")
    assert (rec.pipeline, rec.version, rec.ref) == ("my-topk", number, f"my-topk@{number}")


def test_kubernetes_target_gets_its_own_directory(memory_services) -> None:
    git = InMemoryGitOps()
    target = Target(kind="kubernetes", namespace="obs", node_selector={"pool": "web"})
    assert target_key(target) == "kubernetes-obs-pool-web"
    eid = _finish(memory_services, "PROMOTE", target=target)
    rec = promote(memory_services.uow, git, eid, actor="alice")
    assert rec.target == "kubernetes-obs-pool-web" and git.dir_commits[0][1] == "production/kubernetes-obs-pool-web"
    files = git.dir_commits[0][2]
    # what an Argo CD Application syncing the directory applies: the production resource, nothing else
    assert sorted(k for k in files if k.startswith("k8s/")) == ["k8s/kustomization.yaml",
                                                               "k8s/phoenix-production-pool-web.yaml"]
    assert yaml.safe_load(files["k8s/kustomization.yaml"])["resources"] == ["phoenix-production-pool-web.yaml"]
    cr = yaml.safe_load(files["k8s/phoenix-production-pool-web.yaml"])
    assert (cr["kind"], cr["metadata"]["namespace"]) == ("PhoenixProcessPipeline", "obs")
    assert "experimentId" not in cr["spec"] and "variant" not in cr["spec"]
    assert cr["spec"]["config"] == files["collector.yaml"]
    assert yaml.safe_load(cr["spec"]["config"])["receivers"]["hostmetrics"]["root_path"] == "/hostfs"
    assert cr["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux", "pool": "web"}
    assert cr["metadata"]["annotations"]["phoenix.io/promoted-from"] == eid
    assert validate_custom_resource(cr) == []
    assert memory_services.promotion.current(ADMIN) is None  # the local host's production is untouched


def test_service_method_and_view(memory_services) -> None:
    svc = memory_services.promotion  # wired by bootstrap with the configured GitOps repository
    eid = _finish(memory_services, "PROMOTE")
    assert svc.of(ADMIN, eid) is None
    out = svc.promote(ADMIN, Promote(experiment_id=eid))
    assert out.experiment_id == eid and out.graph
    stored = svc.of(ADMIN, eid)
    assert stored == replace(out, graph={})  # the experiment's view of its promotion has no graph
    view = experiment_to_dict(memory_services.experiments.get(ADMIN, eid), promoted=stored.to_dict(with_graph=False))
    assert view["promoted"]["commit_id"] == out.commit_id
    assert "promoted" not in experiment_to_dict(memory_services.experiments.get(ADMIN, eid))


def test_concurrent_promotion_of_the_same_experiment_records_once(memory_services) -> None:
    eid = _finish(memory_services, "PROMOTE")

    class RacingGit(InMemoryGitOps):
        """The first commit lets a second promote of the same experiment run to the end first."""

        def commit_dir(self, rel_dir: str, files: dict[str, str], message: str, author: str) -> str:
            commit = super().commit_dir(rel_dir, files, message, author)
            if len(self.dir_commits) == 1:  # another request, so another thread (and audit context)
                t = threading.Thread(target=lambda: setattr(self, "winner", promote(memory_services.uow, self, eid,
                                                                                     actor="bob")))
                t.start()
                t.join()
            return commit

    git = RacingGit()
    rec = promote(memory_services.uow, git, eid, actor="alice")
    assert rec == git.winner and rec.actor == "bob" and rec.commit_id == git.dir_commits[1][0]
    assert memory_services.promotion.current(ADMIN) == rec
    entries = [a for a in memory_services.experiments.audit(ADMIN, eid) if a.action == "experiment.promote"]
    # bob's promotion, then alice's call that found it done: one entry each, one real change
    assert [(e.actor, e.details.get("unchanged", False)) for e in reversed(entries)] == [("bob", False),
                                                                                         ("alice", True)]
