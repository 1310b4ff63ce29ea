"""A real Phoenix server for client tests: ``phoenix api`` (uvicorn) on a free loopback port over a
temp SQLite database, the memory runtime, an operator ``ops`` with a password and an API token,
and optionally a standing ``phoenix scheduler`` so experiments reach their verdict.

``phoenix(...)`` runs the CLI in a subprocess the way a user does: against this database
(``local``) or against the server (``remote``). ``cli(...)`` runs the same command in this
process (``core.cli.main`` under the same environment, its output captured): the server is just
as real, without a 1-2 s interpreter start and import of the whole app per command.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from core.bootstrap import bootstrap
from core.domain.accounts import Actor, Role
from core.settings import Settings
from tests.actors import ADMIN, add_account
from tests.conftest import free_port

PASSWORD = "operator password 1"
OPERATOR = Actor("ops", Role.OPERATOR, "cli")
ROOT = Path(__file__).parents[1]


@dataclass(frozen=True)
class LiveServer:
    url: str
    env: dict[str, str]  # the server's database and runtime: a local CLI run uses the same
    token: str  # ops's API token (phx_…)
    log: Path

    def _command(self, argv: tuple[str, ...], remote: bool,
                 extra_env: dict[str, str] | None) -> tuple[list[str], dict[str, str]]:
        """remote = ``--server URL`` with the token; local = ``PHOENIX_USER=ops``."""
        env = {k: v for k, v in self.env.items()
               if k not in ("PHOENIX_TOKEN", "PHOENIX_USER", "PHOENIX_SERVER", "PHOENIX_PASSWORD")}
        if remote:
            env["PHOENIX_TOKEN"] = self.token
            argv = ("--server", self.url, *argv)
        else:
            env["PHOENIX_USER"] = OPERATOR.name
        env.update(extra_env or {})
        return list(argv), env

    def phoenix(self, *argv: str, remote: bool = True, extra_env: dict[str, str] | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``python -m core ARGV`` in a subprocess, as a user runs it."""
        args, env = self._command(argv, remote, extra_env)
        return subprocess.run([sys.executable, "-m", "core", *args], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def cli(self, *argv: str, remote: bool = True,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The same command through ``core.cli.main`` in this process, under exactly the environment
        ``phoenix`` gives the subprocess (restored afterwards); stdout, stderr and the exit code as
        a CompletedProcess. An exception escaping ``main`` propagates: it fails the test, as a
        traceback on the subprocess's stderr would."""
        from core.cli import main

        args, env = self._command(argv, remote, extra_env)
        out, err = io.StringIO(), io.StringIO()
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(args)
                except SystemExit as exc:  # argparse's usage errors exit, as in the subprocess
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return subprocess.CompletedProcess(["phoenix", *args], code, out.getvalue(), err.getvalue())


def wait_answering(url: str, proc: subprocess.Popen[str], what: Callable[[], str], probe: str = "/readyz") -> None:
    """Until ``url + probe`` answers 200; RuntimeError with ``what()`` (the server's output) when
    the process ends or 90 s pass first (a deadline, not a wait: on 2 shared cores with the suite's
    other servers and builds, a cold start of the API has taken over 30 s)."""
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}{probe}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"phoenix api did not answer {probe}:\n{what()}")
        time.sleep(0.2)


def stop_process(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def live_server(tmp_path: Path, *, scheduler: bool = False) -> Iterator[LiveServer]:
    url_db = f"sqlite:///{tmp_path / 'phoenix.db'}"
    env = {**os.environ, "PHOENIX_DATA_DIR": str(tmp_path), "PHOENIX_DATABASE_URL": url_db,
           "PHOENIX_GITOPS_REPO": str(tmp_path / "gitops"), "PHOENIX_RUNTIME": "memory",
           "PHOENIX_EMBEDDED_SCHEDULER": "0", "PHOENIX_SCHEDULER_INTERVAL": "0.5",
           "PYTHONPATH": str(ROOT)}
    svc = bootstrap(Settings(data_dir=tmp_path, database_url=url_db, gitops_repo=tmp_path / "gitops",
                             runtime="memory", embedded_scheduler=False))
    try:
        add_account(svc, ADMIN)
        svc.accounts.add_user(ADMIN, OPERATOR.name, OPERATOR.role, PASSWORD)
        _, token = svc.accounts.create_token(OPERATOR, "client tests", "1h")
    finally:
        svc.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "api.log"
    procs: list[subprocess.Popen[str]] = []
    with open(log, "w") as out:
        try:
            # --grpc-port 0: never race another server for gRPC's fixed default port (test_grpc.py covers it)
            api = subprocess.Popen([sys.executable, "-m", "core", "api", "--port", str(port), "--grpc-port", "0"],
                                   env=env, cwd=ROOT,
                                   stdout=out, stderr=subprocess.STDOUT, text=True)
            procs.append(api)
            wait_answering(url, api, log.read_text)
            if scheduler:
                procs.append(subprocess.Popen([sys.executable, "-m", "core", "scheduler"], env=env, cwd=ROOT,
                                              stdout=out, stderr=subprocess.STDOUT, text=True))
            yield LiveServer(url, env, token, log)
        finally:
            for proc in reversed(procs):
                stop_process(proc)
