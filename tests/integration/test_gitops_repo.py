"""GitOps against a real git repository and a real SQLite database, and the CLI end to end."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from core.catalog.templates import get_template
from core.cli import main
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline
from core.gitops import GitRepo
from core.services.pipelines import PipelineService
from tests.actors import ADMIN, cli_account
from tests.usecases import save_version


def pipeline(k: int) -> Pipeline:
    data = get_template("process-topk-v1").to_dict()
    data["name"] = "web-topk"
    next(n for n in data["nodes"] if n["id"] == "topk")["params"]["k"] = k
    return Pipeline.from_dict(data)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_repository_is_initialised_on_first_use_and_commits_each_version(tmp_path):
    repo = GitRepo(tmp_path / "gitops")
    c1 = repo.commit_pipeline("web-topk", {"graph.json": "{}\n", "k8s/a.yaml": "a: 1\n"}, "v1: first", "Ann <ann@x.io>")
    c2 = repo.commit_pipeline("web-topk", {"graph.json": "{\"k\": 2}\n"}, "v2: second", "bob")
    assert git(tmp_path / "gitops", "rev-parse", "HEAD").strip() == c2
    log = git(tmp_path / "gitops", "log", "--format=%an <%ae>|%s").splitlines()
    assert log[:2] == ["bob <bob@phoenix.local>|v2: second", "Ann <ann@x.io>|v1: first"]
    assert not (tmp_path / "gitops" / "pipelines" / "web-topk" / "k8s" / "a.yaml").exists()  # stale file removed
    assert [h.commit_id for h in repo.history("web-topk")] == [c2, c1]
    assert '+{"k": 2}' in repo.diff(c1, c2, "web-topk")
    assert repo.show(c1, "web-topk", "k8s/a.yaml") == "a: 1\n"


def test_user_text_is_never_interpreted(tmp_path):
    repo = GitRepo(tmp_path / "gitops")
    msg = "$(touch pwned); `rm -rf /` && echo 'x'"
    cid = repo.commit_pipeline("web-topk", {"graph.json": "{}"}, msg, "; touch pwned2")
    assert repo.history("web-topk")[0].message == msg and repo.history()[0].commit_id == cid
    assert not any(tmp_path.rglob("pwned*")) and not Path("pwned").exists()
    with pytest.raises(ValidationError):
        repo.commit_pipeline("../escape", {"graph.json": "{}"}, "m", "a")
    with pytest.raises(ValidationError):
        repo.commit_pipeline("web-topk", {"../../x": "{}"}, "m", "a")
    with pytest.raises(ValidationError):
        repo.diff("--output=/tmp/x", cid)


@pytest.fixture
def database(tmp_path):
    from core.store.migrate import upgrade
    from core.store.uow import Database

    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


def test_save_version_stores_commit_id_and_history(database, tmp_path):
    repo = GitRepo(tmp_path / "gitops")
    n1, c1 = save_version(database.uow, repo, pipeline(10), "first cut", "Ann <ann@x.io>")
    n2, c2 = save_version(database.uow, repo, pipeline(25), "keep more", "Ann <ann@x.io>")
    assert (n1, n2) == (1, 2)
    with database.uow() as uow:
        versions = uow.pipelines.list_versions("web-topk")
    assert [(v.number, v.commit_id) for v in versions] == [(1, c1), (2, c2)]
    files = git(tmp_path / "gitops", "ls-tree", "-r", "--name-only", c2).split()
    assert {"pipelines/web-topk/graph.json", "pipelines/web-topk/collector.yaml",
            "pipelines/web-topk/k8s/daemonset.yaml", "pipelines/web-topk/k8s/pipeline-cr.yaml"} <= set(files)
    assert '"k": 25' in PipelineService(database.uow, repo).diff(ADMIN, "web-topk", 1, 2)


def test_cli_import_export_render_validate(database, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PHOENIX_DATABASE_URL", database.url)
    cli_account(database.url, monkeypatch)  # the CLI acts as a stored account
    monkeypatch.setenv("PHOENIX_GITOPS_REPO", str(tmp_path / "gitops"))
    src = tmp_path / "web.yaml"
    src.write_text(pipeline(12).to_yaml())
    assert main(["pipeline", "import", str(src), "-m", "from cli"]) == 0
    assert "saved web-topk v1" in capsys.readouterr().out
    assert main(["pipeline", "list"]) == 0
    assert "web-topk" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["pipeline", "render", "web-topk", "--out", str(out), "--experiment-id", "e1",
                 "--variant", "candidate"]) == 0
    capsys.readouterr()
    cfg = yaml.safe_load((out / "collector.yaml").read_text())
    assert cfg["exporters"]["prometheus/prometheus"]["const_labels"]["phoenix_variant"] == "candidate"
    assert sorted(p.name for p in (out / "k8s").iterdir()) == sorted(
        ["namespace.yaml", "serviceaccount.yaml", "configmap.yaml", "daemonset.yaml", "service.yaml",
         "pipeline-cr.yaml"])
    assert main(["pipeline", "validate", str(out / "collector.yaml")]) == 0
    exported = tmp_path / "exp.json"
    assert main(["pipeline", "export", "web-topk@1", "--out", str(exported)]) == 0
    assert Pipeline.from_text(exported.read_text()).node("topk").params["k"] == 12
    assert main(["pipeline", "history", "web-topk"]) == 0
    assert "web-topk v1: from cli" in capsys.readouterr().out


def test_cli_validate_reports_one_problem_per_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("receivers:\n  hostmetrics: {colection_interval: 1s}\nexporters:\n  debug: {}\n"
                   "service:\n  pipelines:\n    metrics: {receivers: [hostmetrics], exporters: [debug]}\n")
    assert main(["pipeline", "validate", str(bad)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "receivers.hostmetrics: unknown key 'colection_interval' (did you mean 'collection_interval'?)"
    assert lines[1:] == ["validated by: schemas v0.159.0"]  # the schema pass refused it: the binary never ran
    assert main(["pipeline", "validate", str(tmp_path / "missing.json")]) == 1
    assert main(["pipeline", "render", "no-such-thing.json", "--out", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_render_can_compute_thresholds_from_a_snapshot(tmp_path, capsys):
    from core.engine.fleet import generate_fleet

    snap = tmp_path / "fleet.csv"
    generate_fleet(nodes=2, procs=80, seed=5).to_csv(snap, index=False)
    out = tmp_path / "out"
    assert main(["pipeline", "render", "process-topk-v1", "--out", str(out), "--snapshot", str(snap)]) == 0
    text = (out / "collector.yaml").read_text()
    assert "thresholds computed by Phoenix from fleet.csv" in text and "DEFAULT" not in text
    assert main(["pipeline", "validate", str(out / "collector.yaml")]) == 0
