"""``phoenix share create|list|revoke`` end to end against a real database, and the link it
prints opened through the service (valid, then revoked)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from core.cli import main
from core.domain.errors import ShareLinkError
from tests.actors import cli_account


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("PHOENIX_DATABASE_URL", db_url)
    cli_account(db_url, monkeypatch)  # the CLI acts as a stored account
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHOENIX_PUBLIC_URL", "https://phoenix.example:8501")
    monkeypatch.delenv("PHOENIX_SECRET_KEY", raising=False)
    return db_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_create_list_revoke(env: str, capsys, tmp_path: Path) -> None:
    from core.bootstrap import bootstrap

    assert run(capsys, "db", "upgrade")[0] == 0
    code, out, _ = run(capsys, "experiment", "create", "--name", "demo", "--baseline", "process-baseline-v1",
                       "--candidate", "process-topk-v1", "--json")
    eid = json.loads(out)["id"]
    code, out, err = run(capsys, "share", "create", eid, "--ttl", "24h")
    assert code == 0, err
    url, info = out.splitlines()
    assert url.startswith("https://phoenix.example:8501/experiment?share=")
    link_id = info.split()[1]
    assert (tmp_path / "secret_key").is_file()  # made on first use, in the data directory
    svc = bootstrap()
    try:
        assert svc.shares.open(parse_qs(urlsplit(url).query)["share"][0]).allows("experiment", eid)
    finally:
        svc.close()

    code, out, _ = run(capsys, "share", "list", eid, "--json")
    (row,) = json.loads(out)
    assert (row["id"], row["status"]) == (link_id, "active")
    assert run(capsys, "share", "revoke", link_id)[0] == 0
    code, out, _ = run(capsys, "share", "list", eid)
    assert "revoked" in out and link_id in out
    svc = bootstrap()
    try:
        with pytest.raises(ShareLinkError, match="revoked"):
            svc.shares.open(parse_qs(urlsplit(url).query)["share"][0])
    finally:
        svc.close()


@pytest.mark.parametrize(("argv", "says"), [
    (["share", "create"], "give an experiment id or --pipeline"),
    (["share", "create", "exp-1", "--pipeline", "x@1"], "one of them"),
    (["share", "create", "exp-00000000"], "exp-00000000"),
    (["share", "create", "exp-1", "--ttl", "forever"], "TTL"),
    (["share", "create", "--pipeline", "nobody@1"], "nobody"),
    (["share", "create", "--pipeline", "nobody"], "NAME@N"),
    (["share", "revoke", "nope"], "not a share link id"),
    (["share", "revoke", "0123456789abcdef"], "no share link"),
])
def test_bad_input_is_one_line(env: str, capsys, argv: list[str], says: str) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    code, out, err = run(capsys, *argv)
    assert code == 1 and says in err and "Traceback" not in err and len(err.splitlines()) == 1, err
