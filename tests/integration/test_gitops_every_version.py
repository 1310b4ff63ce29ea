"""Every saved pipeline version is its own commit in the pipeline's git history (issue 9).

Saving an unchanged pipeline used to leave no trace in ``git log -- pipelines/<name>``
(an empty commit touches no path); ``version.json`` now changes on every save. Blank
version messages are refused in the service, so the builder and the CLI get the same error.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.catalog.templates import get_template
from core.cli import main
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline
from core.gitops import GitRepo, InMemoryGitOps
from core.services.pipelines import VERSION_FILE
from core.store.memory import MemoryDatabase
from tests.actors import cli_account
from tests.usecases import save_version


def _pipeline(name: str = "web-topk") -> Pipeline:
    return Pipeline.from_dict({**get_template("process-topk-v1").to_dict(), "name": name})


def test_unchanged_saves_are_each_a_commit_in_history(database: Any, tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "gitops")
    saved = [save_version(database.uow, repo, _pipeline(), f"save {i}", "Ann <ann@x.io>") for i in range(1, 4)]
    assert [n for n, _ in saved] == [1, 2, 3]
    commits = [c for _, c in saved]
    assert len(set(commits)) == 3
    history = repo.history("web-topk")
    assert [h.commit_id for h in history] == list(reversed(commits))  # newest first, every version there
    assert [h.message for h in history] == ["web-topk v3: save 3", "web-topk v2: save 2", "web-topk v1: save 1"]
    for number, commit in saved:
        assert json.loads(repo.show(commit, "web-topk", VERSION_FILE)) == {"pipeline": "web-topk", "version": number}
    diff = repo.diff(commits[0], commits[1], "web-topk")
    changed = [ln for ln in diff.splitlines() if ln.startswith("+++ ")]
    assert changed == [f"+++ b/pipelines/web-topk/{VERSION_FILE}"]  # nothing else changed
    log = subprocess.run(["git", "-C", str(repo.path), "log", "--format=%H", "--", "pipelines/web-topk"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert log == list(reversed(commits))
    with database.uow() as uow:
        assert [v.commit_id for v in uow.pipelines.list_versions("web-topk")] == commits


@pytest.mark.parametrize("message", ["", "   ", "\n\t  \r\n", None])
def test_blank_messages_are_refused_before_anything_is_written(database: Any, tmp_path: Path, message: Any) -> None:
    repo = GitRepo(tmp_path / "gitops")
    with pytest.raises(ValidationError, match="a version message is required"):
        save_version(database.uow, repo, _pipeline(), message, "ann")
    assert not (tmp_path / "gitops").exists()
    with database.uow() as uow:
        assert uow.pipelines.list_pipelines() == []


@pytest.mark.parametrize(("message", "error"), [
    ("nul\x00inside", "must not contain NUL"),
    ("x" * 10_001, "at most 10,000 characters"),
    ("lone \ud800 surrogate", "not valid text"),
])
def test_unstorable_messages_are_refused(message: str, error: str) -> None:
    git = InMemoryGitOps()
    with pytest.raises(ValidationError, match=error):
        save_version(MemoryDatabase().uow, git, _pipeline(), message, "ann")
    assert git.commits == []


def test_message_is_stored_trimmed() -> None:
    db, git = MemoryDatabase(), InMemoryGitOps()
    save_version(db.uow, git, _pipeline(), "  tighter top-K \n", "ann")
    with db.uow() as uow:
        assert uow.pipelines.get_version("web-topk").message == "tighter top-K"
    assert git.commits[0][3].message == "web-topk v1: tighter top-K"


@pytest.mark.parametrize("author", ["nul\x00author", "tab\tauthor", "bad \udcff bytes"])
def test_unstorable_authors_are_refused(author: str) -> None:
    git = InMemoryGitOps()
    with pytest.raises(ValidationError, match="author"):
        save_version(MemoryDatabase().uow, git, _pipeline(), "m", author)


def test_cli_import_refuses_a_blank_message(migrated_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            capsys) -> None:
    monkeypatch.setenv("PHOENIX_DATABASE_URL", migrated_url)
    cli_account(migrated_url, monkeypatch)  # the CLI acts as a stored account
    monkeypatch.setenv("PHOENIX_GITOPS_REPO", str(tmp_path / "gitops"))
    f = tmp_path / "web-topk.yaml"
    f.write_text(_pipeline().to_yaml())
    assert main(["pipeline", "import", str(f), "-m", "   "]) == 1
    err = capsys.readouterr().err
    assert err == "error: a version message is required: say what changed and why\n"
    for _ in range(2):  # the same file twice: two versions, two commits in its history
        assert main(["pipeline", "import", str(f), "-m", "same file"]) == 0
    capsys.readouterr()
    assert main(["pipeline", "history", "web-topk"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "web-topk v2: same file" in lines[0] and "web-topk v1: same file" in lines[1]
