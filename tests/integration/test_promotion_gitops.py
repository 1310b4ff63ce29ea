"""Promotion against a real git repository and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from core.cli import main
from core.domain.experiment import State
from core.gitops import GitRepo
from core.services.promotion import PromotionDenied
from tests.actors import ADMIN, add_account, admin, cli_account
from tests.usecases import promote


def _completed(services, verdict: str) -> str:
    exp = services.experiments.create(ADMIN, name="t", baseline="process-baseline-v1", candidate="process-topk-v1", duration_s=30, interval_s=5)
    with services.uow() as uow:
        e = uow.experiments.get(exp.id)
        e.start("test")
        e.mark_running("test")
        e.begin_analysis("test")
        e.complete({"verdict": verdict, "reasons": ["series reduction 80%: met"]}, "test")
        uow.experiments.save(e)
        uow.commit()
    return exp.id


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_promote_commits_records_and_audits(services, tmp_path: Path) -> None:
    repo = tmp_path / "gitops"
    git = GitRepo(repo)
    eid = _completed(services, "PROMOTE")
    rec = promote(services.uow, git, eid, actor="Alice <alice@example.com>")

    assert _git(repo, "rev-parse", "HEAD").strip() == rec.commit_id
    assert _git(repo, "log", "-1", "--format=%an <%ae>|%s", rec.commit_id).strip() == (
        f"Alice <alice@example.com>|Promote process-topk-v1 to production/local from experiment {eid}")
    tree = set(_git(repo, "ls-tree", "-r", "--name-only", rec.commit_id, "production/local").split())
    assert {"production/local/collector.yaml", "production/local/graph.json", "production/local/promotion.json",
            "production/local/k8s/daemonset.yaml"} <= tree
    committed = _git(repo, "show", f"{rec.commit_id}:production/local/collector.yaml")
    assert "hostmetrics" in committed and "topk" in committed.lower()
    assert json.loads(_git(repo, "show", f"{rec.commit_id}:production/local/promotion.json"))["experiment_id"] == eid

    stored = services.promotion.current(ADMIN)
    assert stored is not None and stored.experiment_id == eid and stored.commit_id == rec.commit_id
    assert stored.pipeline_object().name == "process-topk-v1"
    assert services.promotion.of(ADMIN, eid).commit_id == rec.commit_id
    (entry,) = [a for a in services.experiments.audit(ADMIN, eid) if a.action == "experiment.promote"]
    assert entry.actor == "Alice <alice@example.com>"
    assert entry.details["commit_id"] == rec.commit_id and entry.details["forced"] is False

    # Idempotent: no new commit, same record back; the call's own entry says nothing changed.
    assert promote(services.uow, git, eid, actor="bob") == stored
    assert _git(repo, "rev-parse", "HEAD").strip() == rec.commit_id
    entries = [a for a in services.experiments.audit(ADMIN, eid) if a.action == "experiment.promote"]
    assert [(a.actor, a.details.get("unchanged", False)) for a in entries] == [("bob", True),
                                                                             ("Alice <alice@example.com>", False)]


def test_refused_promotion_writes_nothing(services, tmp_path: Path) -> None:
    repo = tmp_path / "gitops"
    eid = _completed(services, "REJECT")
    with pytest.raises(PromotionDenied, match="not PROMOTE"):
        promote(services.uow, GitRepo(repo), eid, actor="alice")
    assert not (repo / "production").exists()
    assert services.promotion.current(ADMIN) is None
    assert services.experiments.get(ADMIN, eid).state is State.COMPLETED


def test_promote_cli(services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("PHOENIX_DATABASE_URL", services.settings.database_url)
    cli_account(services.settings.database_url, monkeypatch)  # the CLI acts as a stored account
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHOENIX_GITOPS_REPO", str(tmp_path / "cli-gitops"))
    rejected = _completed(services, "INCONCLUSIVE")
    assert main(["experiment", "promote", rejected]) == 1
    assert "verdict INCONCLUSIVE, not PROMOTE" in capsys.readouterr().err
    assert main(["experiment", "promote", rejected, "--force"]) == 1
    assert "needs a reason" in capsys.readouterr().err
    add_account(services, admin("carol"))
    assert main(["experiment", "promote", rejected, "--force", "--reason", "budget", "--as", "carol",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["forced"] is True and out["reason"] == "budget" and out["actor"] == "carol"
    assert _git(tmp_path / "cli-gitops", "rev-parse", "HEAD").strip() == out["commit_id"]
    assert main(["experiment", "show", rejected, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["promoted"]["commit_id"] == out["commit_id"]
    assert main(["experiment", "promote", "exp-missing"]) == 1
    assert "exp-missing" in capsys.readouterr().err
