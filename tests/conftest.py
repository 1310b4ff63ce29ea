"""Shared fixtures: databases on SQLite and PostgreSQL, units of work, wired services.

PostgreSQL: the suite uses the server at 127.0.0.1:5432 (user postgres, trust auth) when
one answers; otherwise it starts a throwaway server with the machine's ``initdb`` /
``pg_ctl`` in a temp dir on a free port (as the ``postgres`` user when run as root).
Every test gets its own database ``phoenix_test_<hex>``, dropped afterwards.

Reusable fixtures:
  db_url          parametrized sqlite | postgres, empty database
  migrated_url    the same, migrated to head
  database        core.store.uow.Database on migrated_url
  uow_factory     database.uow
  pg_url          a migrated PostgreSQL database only (for PostgreSQL-specific tests)
  services        core.bootstrap.Services on ``database`` with the in-memory runtime
  memory_services Services on the in-memory unit of work (no I/O; for unit tests)
  redis_url       a throwaway redis-server started once per session (``ThrowawayRedis``
                  for a private one a test may kill and restart)
  kube_cluster    a real kube-apiserver + etcd for the session, CRDs installed (tests/kube.py)
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_phoenix_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Nothing the suite runs may read or write the developer's ./data (database, GitOps repo,
    runtime files): every PHOENIX_* location defaults to a session temp dir. Tests that need
    their own still set them explicitly; child processes inherit these."""
    home = tmp_path_factory.mktemp("phoenix-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PHOENIX_DATA_DIR", str(home))
        mp.setenv("PHOENIX_DATABASE_URL", f"sqlite:///{home}/phoenix.db")
        mp.setenv("PHOENIX_GITOPS_REPO", str(home / "gitops"))
        yield home


@pytest.fixture(autouse=True)
def _isolated_logging_and_ids() -> Iterator[None]:
    """A test that configures logging or binds a correlation id in this process (an in-process
    ``main()``, a page run) must not change what the next test logs or passes to children."""
    import logging

    from core.observability.context import scope

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with scope():
        yield
    for h in [h for h in root.handlers if h not in handlers and getattr(h, "_phoenix", False)]:
        root.removeHandler(h)
    root.setLevel(level)


PG_HOST = os.environ.get("PHOENIX_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PHOENIX_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("PHOENIX_TEST_PG_USER", "postgres")


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def admin_conninfo(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname=postgres connect_timeout=3"

    def create_database(self) -> str:
        import psycopg

        name = f"phoenix_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_answers(host: str, port: int, user: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(f"host={host} port={port} user={user} dbname=postgres connect_timeout=2"):
            return True
    except Exception:  # noqa: BLE001 - any failure means "no usable server here"
        return False


def free_port() -> int:
    """A loopback port free right now (a server started next binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"no PostgreSQL server answers and {name} is not installed (apt-get install postgresql)")
    return found


class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temp dir: ``initdb`` + ``pg_ctl start``; ``stop()`` removes it."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="phoenix-pg-"))
        self.port = free_port()
        self.user = "postgres"
        # The server refuses to run as root; run its tools as the postgres account.
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, user="postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"

    def _run(self, *cmd: str) -> None:
        res = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {res.stderr.strip() or res.stdout.strip()}")

    def start(self) -> PgServer:
        self._run(_pg_binary("initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(_pg_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
        server = PgServer("127.0.0.1", self.port, self.user)
        deadline = time.monotonic() + 30
        while not pg_answers(server.host, server.port, server.user):
            if time.monotonic() > deadline:
                raise RuntimeError(f"throwaway PostgreSQL did not answer; see {self.log}")
            time.sleep(0.2)
        return server

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(_pg_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if pg_answers(PG_HOST, PG_PORT, PG_USER):
        yield PgServer(PG_HOST, PG_PORT, PG_USER)
        return
    throwaway = ThrowawayPostgres()
    try:
        yield throwaway.start()
    finally:
        throwaway.stop()


class ThrowawayRedis:
    """A private ``redis-server`` on a free loopback port, no persistence, in a temp dir."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="phoenix-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ThrowawayRedis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server is not installed (apt-get install redis-server; make test-deps)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"throwaway redis-server did not answer; see {self.dir / 'redis.log'}")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    server = ThrowawayRedis().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def private_redis() -> Iterator[ThrowawayRedis]:
    """A redis-server of the test's own, for tests that kill and restart it."""
    server = ThrowawayRedis().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_empty_url(pg_server: PgServer) -> Iterator[str]:
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'phoenix.db'}"
        return
    yield request.getfixturevalue("pg_empty_url")


@pytest.fixture
def migrated_url(db_url: str) -> str:
    from core.store.migrate import upgrade

    upgrade(db_url)
    return db_url


@pytest.fixture
def pg_url(pg_empty_url: str) -> str:
    from core.store.migrate import upgrade

    upgrade(pg_empty_url)
    return pg_empty_url


@pytest.fixture
def database(migrated_url: str) -> Iterator[object]:
    from core.store.uow import Database

    db = Database(migrated_url)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def uow_factory(database: object):  # noqa: ANN201 - returns core.store.uow.UnitOfWorkFactory
    return database.uow  # type: ignore[attr-defined]


def _settings(url: str, tmp_path: Path):  # noqa: ANN202
    from core.settings import Settings

    return Settings(data_dir=tmp_path, database_url=url, gitops_repo=tmp_path / "gitops", runtime="memory",
                    embedded_scheduler=False, scheduler_interval_s=0.2, scheduler_lease_s=5.0)


@pytest.fixture
def services(database: object, tmp_path: Path) -> Iterator[object]:
    from core.bootstrap import bootstrap
    from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer

    svc = bootstrap(_settings(database.url, tmp_path), InMemoryDeployer(), InMemoryAnalyzer(),  # type: ignore[attr-defined]
                    database=database)
    try:
        yield svc
    finally:
        if svc.scheduler is not None:
            svc.scheduler.shutdown()


@pytest.fixture
def memory_services(tmp_path: Path) -> object:
    from core.bootstrap import bootstrap
    from core.gitops import InMemoryGitOps
    from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
    from core.store.memory import MemoryDatabase

    return bootstrap(_settings("memory://", tmp_path), InMemoryDeployer(), InMemoryAnalyzer(), database=MemoryDatabase(),
                     gitops=InMemoryGitOps())


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real kube-apiserver + etcd (tests/kube.py), started once per session with the Phoenix
    CRDs installed; no kubelet or controllers run (see tests/kube.py)."""
    from tests.kube import running_cluster

    with running_cluster(tmp_path_factory.mktemp("kube")) as cluster:
        cluster.apply_crds()
        yield cluster


@pytest.fixture(scope="session")
def rendered_manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, object]]]:
    """What `make manifests` renders (scripts/manifests.py, the pinned kustomize, validated), once per
    session: overlay name → its objects."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "scripts"))
    import manifests  # scripts/ is not a package

    out = tmp_path_factory.mktemp("dist") / "k8s"
    done = subprocess.run([sys.executable, str(root / "scripts" / "manifests.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    return {p.stem: docs for p, docs in manifests.load(sorted(out.glob("*.yaml"))).items()}
