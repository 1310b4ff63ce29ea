"""``phoenix user …``, ``phoenix token …``, CLI identity and a role matrix through the CLI (SQLite)."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from core.cli import main

EXP = ["experiment", "create", "--name", "x", "--baseline", "process-baseline-v1", "--candidate", "process-topk-v1"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PHOENIX_DATABASE_URL", f"sqlite:///{tmp_path}/phoenix.db")
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PHOENIX_GITOPS_REPO", str(tmp_path / "gitops"))
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    for var in ("PHOENIX_USER", "PHOENIX_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "nobody-here")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str,
        stdin: str | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _first_admin(capsys, monkeypatch) -> str:  # noqa: ANN001
    code, out, _ = run(capsys, monkeypatch, "user", "init")
    assert code == 0 and out.startswith("initial admin password: ")
    return out.split(": ", 1)[1].split(",", 1)[0]


def test_first_run_prints_the_password_once_and_keeps_it_0600(env: Path, capsys, monkeypatch) -> None:
    password = _first_admin(capsys, monkeypatch)
    path = env / "data" / "initial_admin_password"
    assert path.read_text().strip() == password and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert run(capsys, monkeypatch, "user", "init") == (0, "", "")  # users exist: nothing printed


def test_no_identity_is_a_clear_error(env: Path, capsys, monkeypatch) -> None:
    _first_admin(capsys, monkeypatch)
    code, _, err = run(capsys, monkeypatch, *EXP)
    assert code == 1 and "who is acting?" in err and "--as NAME" in err and "PHOENIX_TOKEN" in err
    code, _, err = run(capsys, monkeypatch, "--as", "ghost", *EXP)
    assert code == 1 and "no account named 'ghost'" in err
    assert "Traceback" not in err


def test_users_tokens_and_a_role_matrix(env: Path, capsys, monkeypatch) -> None:
    _first_admin(capsys, monkeypatch)
    for name, role in (("vic", "viewer"), ("olga", "operator"), ("ada", "admin")):
        code, out, err = run(capsys, monkeypatch, "--as", "admin", "user", "add", name, "--role", role,
                             "--password-stdin", stdin=f"{name}-password-1\n")
        assert (code, out.strip()) == (0, f"added {name} ({role})"), err
    code, out, _ = run(capsys, monkeypatch, "user", "list", "--as", "ada")
    assert code == 0 and all(n in out for n in ("admin", "vic", "olga", "ada"))

    # role x command: (command, lowest role that may run it)
    matrix = [(["experiment", "list"], "viewer"), (EXP, "operator"), (["user", "list"], "admin"),
              (["user", "set-role", "vic", "viewer"], "admin")]
    for argv, lowest in matrix:
        for name, role in (("vic", "viewer"), ("olga", "operator"), ("ada", "admin")):
            code, _, err = run(capsys, monkeypatch, "--as", name, *argv)
            may = ["viewer", "operator", "admin"].index(role) >= ["viewer", "operator", "admin"].index(lowest)
            assert code == (0 if may else 1), (argv, name, err)
            if not may:
                assert f"{name} ({role}) may not" in err and f"needs the {lowest} role" in err

    # tokens: the secret is printed once; a token acts as its owner, capped at its role
    code, out, err = run(capsys, monkeypatch, "--as", "olga", "token", "create", "ci", "--ttl", "1h", "--role", "viewer")
    secret = out.strip()
    assert code == 0 and secret.startswith("phx_") and "shown only now" in err
    monkeypatch.setenv("PHOENIX_TOKEN", secret)
    assert run(capsys, monkeypatch, "experiment", "list")[0] == 0
    code, _, err = run(capsys, monkeypatch, *EXP)
    assert code == 1 and "olga (viewer) may not experiment.create" in err
    code, out, _ = run(capsys, monkeypatch, "token", "list")
    token_id = out.splitlines()[1].split()[0]
    assert code == 0 and secret not in out
    assert run(capsys, monkeypatch, "token", "revoke", token_id)[0] == 0
    code, _, err = run(capsys, monkeypatch, "experiment", "list")
    assert code == 1 and "was revoked" in err
    monkeypatch.delenv("PHOENIX_TOKEN")

    # disable and reset: a disabled account cannot act; a reset password is never echoed
    assert run(capsys, monkeypatch, "--as", "ada", "user", "disable", "olga")[0] == 0
    code, _, err = run(capsys, monkeypatch, "--as", "olga", "experiment", "list")
    assert code == 1 and "disabled" in err
    code, out, err = run(capsys, monkeypatch, "--as", "ada", "user", "reset-password", "vic", "--password-stdin",
                         stdin="vic-new-password\n")
    assert code == 0 and "vic-new-password" not in out + err
    code, _, err = run(capsys, monkeypatch, "--as", "ada", "user", "add", "zed", "--role", "viewer",
                       "--password-stdin", stdin="short\n")
    assert code == 1 and "at least 8" in err and "short" not in err
