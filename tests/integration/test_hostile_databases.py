"""Hostile databases (issue 9): every CLI command gives ONE clear line, never a traceback.

Shapes: a corrupted SQLite file (random bytes, and a real database with scrambled pages),
another application's database (its own tables; its own Alembic revision), a database
whose Phoenix tables are gone although it is stamped, an un-migrated (empty) database for
the commands that do not migrate on their own, and a PostgreSQL that does not answer
(with a password in its URL that must never be shown). No message may carry SQL text,
SQL parameters or a password.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.cli import main
from core.domain.errors import PermanentError, PhoenixError, TemporaryError
from core.store.migrate import current_revision, upgrade
from core.store.uow import Database

SECRET = "s3cret-Pw"
UNREACHABLE = f"postgresql+psycopg://phoenix:{SECRET}@127.0.0.1:9/phoenix?sslpassword={SECRET}x"
FORBIDDEN = ("Traceback", "SELECT", "INSERT", "UPDATE ", "CREATE TABLE", "[SQL", "[parameters", "sqlalche.me",
             "LINE 1", SECRET)
NOT_PHOENIX = "is not a Phoenix database"
CORRUPTED = "is corrupted"
LACKS = "lacks Phoenix tables"
NOT_MIGRATED = "is not migrated: run `phoenix db upgrade`"
UNAVAILABLE = "is unavailable"


# ---------------------------------------------------------------- building the shapes

def _raw(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for s in statements:
                conn.execute(text(s))
    finally:
        engine.dispose()


def random_bytes_file(path: Path) -> str:
    path.write_bytes(random.Random(9).randbytes(64 * 1024))
    return f"sqlite:///{path}"


def scrambled_sqlite(path: Path) -> str:
    """A real, migrated Phoenix database whose pages after the first are overwritten."""
    url = f"sqlite:///{path}"
    upgrade(url)
    data = bytearray(path.read_bytes())
    rnd = random.Random(1)
    for i in range(4096, len(data)):
        data[i] = rnd.randrange(256)
    path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return url


def foreign(url: str) -> str:
    _raw(url, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(40))",
         "INSERT INTO customers (id, name) VALUES (1, 'ada')")
    return url


def foreign_alembic(url: str) -> str:
    """Another application that also uses Alembic: a revision Phoenix does not know."""
    _raw(url, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
         "INSERT INTO alembic_version (version_num) VALUES ('c0ffee42')",
         "CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    return url


def tables_dropped(url: str) -> str:
    """Stamped at the latest revision, Phoenix tables dropped by hand."""
    from core.store.models import Base

    upgrade(url)
    cascade = " CASCADE" if url.startswith("postgresql") else ""
    _raw(url, *[f"DROP TABLE {t.name}{cascade}" for t in reversed(Base.metadata.sorted_tables)])
    return url


# ---------------------------------------------------------------- running the CLI

def _commands(tmp: Path) -> dict[str, list[str]]:
    pipeline_file = tmp / "mine.yaml"
    pipeline_file.write_text(_pipeline_yaml())
    return {
        "experiment list": ["experiment", "list"],
        "experiment show": ["experiment", "show", "exp-00000000"],
        "experiment create": ["experiment", "create", "--name", "x", "--baseline", "process-baseline-v1",
                              "--candidate", "process-topk-v1"],
        "experiment cancel": ["experiment", "cancel", "exp-00000000"],
        "experiment report": ["experiment", "report", "exp-00000000", "--format", "csv", "--out", str(tmp / "r.csv")],
        "experiment run": ["experiment", "run", "--baseline", "process-baseline-v1", "--candidate", "process-topk-v1",
                           "--duration", "4s", "--interval", "1s", "--min-samples", "2"],
        "experiment promote": ["experiment", "promote", "exp-00000000"],
        "scheduler --once": ["scheduler", "--once"],
        "db upgrade": ["db", "upgrade"],
        "db current": ["db", "current"],
        "demo seed": ["demo", "seed", "--experiments", "2", "--versions", "2", "--pipelines", "1"],
        "pipeline export": ["pipeline", "export", "mine"],
        "pipeline render": ["pipeline", "render", "mine@1", "--out", str(tmp / "out")],
        "pipeline diff": ["pipeline", "diff", "mine", "1", "2"],
        "pipeline import": ["pipeline", "import", str(pipeline_file), "-m", "import"],
    }


def _pipeline_yaml() -> str:
    from core.catalog.templates import get_template
    from core.domain.pipeline import Pipeline

    return Pipeline.from_dict({**get_template("process-topk-v1").to_dict(), "name": "mine"}).to_yaml()


#: Commands that migrate an empty database themselves (bootstrap): they succeed on one.
MIGRATING = {"experiment list", "experiment show", "experiment create", "experiment cancel", "experiment report",
             "experiment run", "experiment promote", "scheduler --once", "db upgrade", "demo seed"}


def assert_one_clear_line(code: int, out: str, err: str, phrase: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1, (code, out, err)
    assert len(lines) == 1, err
    assert phrase in lines[0], lines[0]
    assert lines[0].startswith(("error: ", "*: error: ")), lines[0]
    for bad in FORBIDDEN:
        assert bad not in out + err, (bad, out + err)


def run_all(url: str, phrase: str, tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            only: Callable[[str], bool] = lambda _name: True) -> None:
    monkeypatch.setenv("PHOENIX_DATABASE_URL", url)
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp))
    monkeypatch.setenv("PHOENIX_GITOPS_REPO", str(tmp / "gitops"))
    monkeypatch.setenv("PHOENIX_EMBEDDED_SCHEDULER", "false")
    for name, argv in _commands(tmp).items():
        if not only(name):
            continue
        code = main(argv)
        got = capsys.readouterr()
        try:
            assert_one_clear_line(code, got.out, got.err, phrase)
        except AssertionError as exc:
            raise AssertionError(f"phoenix {name}: {exc}") from None
    # `pipeline list` still lists the templates, with the reason as one note.
    assert main(["pipeline", "list"]) == 0
    got = capsys.readouterr()
    (note,) = [ln for ln in got.err.splitlines() if ln.strip()]
    assert note.startswith("note: saved pipelines unavailable") and phrase in note
    assert "process-topk-v1" in got.out
    for bad in FORBIDDEN:
        assert bad not in got.out + got.err


# ---------------------------------------------------------------- SQLite-only shapes

def test_random_bytes_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    url = random_bytes_file(tmp_path / "junk.db")
    with pytest.raises(PermanentError, match=CORRUPTED):
        current_revision(url)
    run_all(url, CORRUPTED, tmp_path, monkeypatch, capsys)


def test_scrambled_sqlite_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    url = scrambled_sqlite(tmp_path / "scrambled.db")
    db = Database(url)
    try:
        with pytest.raises(PermanentError, match=CORRUPTED), db.uow() as uow:
            uow.experiments.list()
    finally:
        db.dispose()
    run_all(url, CORRUPTED, tmp_path, monkeypatch, capsys)


# ---------------------------------------------------------------- both databases

@pytest.mark.parametrize("build", [foreign, foreign_alembic], ids=["own-tables", "own-alembic-revision"])
def test_another_applications_database_is_refused_and_left_alone(
        build, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    url = build(db_url)
    with pytest.raises(PermanentError, match=NOT_PHOENIX):
        upgrade(url)
    run_all(url, NOT_PHOENIX, tmp_path, monkeypatch, capsys)
    engine = create_engine(url)
    try:
        from sqlalchemy import inspect

        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert "experiments" not in tables and "pipelines" not in tables  # nothing of Phoenix was written there


def test_phoenix_tables_gone_although_stamped(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys) -> None:
    url = tables_dropped(db_url)
    with pytest.raises(PermanentError, match=LACKS):
        upgrade(url)
    run_all(url, LACKS, tmp_path, monkeypatch, capsys)


def test_unmigrated_database(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Commands that read without migrating say so; the ones that bootstrap migrate it themselves."""
    db = Database(db_url)
    try:
        with pytest.raises(PermanentError, match=NOT_MIGRATED), db.uow() as uow:
            uow.pipelines.list_versions("mine")
        with pytest.raises(PermanentError, match=NOT_MIGRATED), db.uow() as uow:
            uow.experiments.list()
    finally:
        db.dispose()
    run_all(db_url, NOT_MIGRATED, tmp_path, monkeypatch, capsys,
            only=lambda name: name not in MIGRATING and name not in ("db current", "pipeline import"))
    assert main(["db", "current"]) == 0 and "run: phoenix db upgrade" in capsys.readouterr().out
    assert main(["user", "init"]) == 0  # bootstrap migrated it, then made the first account
    assert "initial admin password:" in capsys.readouterr().out
    assert main(["--as", "admin", "experiment", "list"]) == 0
    assert "no experiments yet" in capsys.readouterr().out


# ---------------------------------------------------------------- PostgreSQL that does not answer

def test_unreachable_postgres_with_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    with pytest.raises(TemporaryError, match=UNAVAILABLE) as err:
        Database(UNREACHABLE).ping()
    assert SECRET not in str(err.value) and "phoenix:***@127.0.0.1:9" in str(err.value)
    run_all(UNREACHABLE, UNAVAILABLE, tmp_path, monkeypatch, capsys)


def test_every_translated_error_is_a_phoenix_error(tmp_path: Path) -> None:
    """The store never lets a driver exception out of a unit of work."""
    url = random_bytes_file(tmp_path / "junk.db")
    db = Database(url)
    try:
        for action in (lambda u: u.experiments.list(), lambda u: u.pipelines.list_pipelines(),
                       lambda u: u.settings.all()):
            with pytest.raises(PhoenixError), db.uow() as uow:
                action(uow)
    finally:
        db.dispose()
