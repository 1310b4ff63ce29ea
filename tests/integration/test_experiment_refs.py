"""Experiments refuse unknown pipelines and versions at creation (issue 9), on both databases.

Before, ``phoenix experiment create --candidate nope`` was stored and failed minutes later
in the scheduler; now the service (which the CLI, the wizard and the API call) refuses it
at once with a message naming the ref, together with every other problem, storing nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.catalog.templates import get_template
from core.cli import main
from core.domain.errors import ValidationError
from core.gitops import InMemoryGitOps
from tests.actors import ADMIN, cli_account
from tests.usecases import save_version


def _save(services: Any, name: str, versions: int) -> None:
    p = get_template("process-topk-v1")
    p.name = name
    git = InMemoryGitOps()
    for i in range(versions):
        save_version(services.uow, git, p, f"cut {i + 1}", "alice")


@pytest.mark.parametrize(
    ("baseline", "candidate", "messages"),
    [
        ("process-baseline-v1", "nope", ["candidate pipeline 'nope' does not exist: it is neither a built-in "
                                         "template (process-baseline-v1"]),
        ("nope@3", "process-topk-v1", ["baseline pipeline 'nope@3' does not exist"]),
        ("process-baseline-v1", "mine@3", ["candidate pipeline 'mine@3' does not exist: mine has versions 1 to 2"]),
        ("process-baseline-v1", "process-topk-v1@1", ["candidate pipeline 'process-topk-v1@1': process-topk-v1 is a "
                                                      "built-in template and has no saved versions; use "
                                                      "process-topk-v1 without @1"]),
        ("ghost", "mine@99999", ["baseline pipeline 'ghost' does not exist",
                                 "candidate pipeline 'mine@99999' does not exist"]),
    ],
)
def test_unknown_refs_are_refused_at_once(services: Any, baseline: str, candidate: str, messages: list[str]) -> None:
    _save(services, "mine", 2)
    with pytest.raises(ValidationError) as err:
        services.experiments.create(ADMIN, name="x", baseline=baseline, candidate=candidate, duration_s=0)
    for m in messages:
        assert any(m in p for p in err.value.problems), (m, err.value.problems)
    assert any("duration must be positive" in p for p in err.value.problems)  # every problem at once
    assert services.experiments.list(ADMIN) == []


def test_known_refs_are_accepted(services: Any) -> None:
    _save(services, "mine", 2)
    for candidate in ("mine", "mine@1", "mine@2", "process-topk-v1"):
        exp = services.experiments.create(ADMIN, name="x", baseline="process-baseline-v1", candidate=candidate)
        assert str(exp.candidate) == candidate
    assert len(services.experiments.list(ADMIN)) == 4


@pytest.mark.parametrize("text", ["bad\x00name", "bad\nname", "bad\ud800name"])
def test_text_a_database_cannot_store_is_refused(services: Any, text: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        services.experiments.create(ADMIN, name=text, baseline="process-baseline-v1", candidate="process-topk-v1")
    with pytest.raises(ValidationError, match="owner"):
        services.experiments.create(ADMIN, name="x", owner=text, baseline="process-baseline-v1",
                                    candidate="process-topk-v1")
    ok = services.experiments.create(ADMIN, name="x", description="two\nlines\tand a tab",
                                     baseline="process-baseline-v1", candidate="process-topk-v1")
    assert services.experiments.get(ADMIN, ok.id).description == "two\nlines\tand a tab"


def test_cli_names_the_ref(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("PHOENIX_DATABASE_URL", db_url)
    cli_account(db_url, monkeypatch)  # the CLI acts as a stored account
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp_path))
    code = main(["experiment", "create", "--name", "x", "--baseline", "process-baseline-v1", "--candidate",
                 "process-topk-v2"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: candidate pipeline 'process-topk-v2' "
                                                                  "does not exist")
    code = main(["experiment", "run", "--baseline", "base@7", "--candidate", "process-topk-v1"])
    err = capsys.readouterr().err
    assert code == 1 and "baseline pipeline 'base@7' does not exist" in err
    assert main(["experiment", "list", "--json"]) == 0 and capsys.readouterr().out.strip() == "[]"
