"""End-to-end harness: the real app under ``streamlit run`` and Debian's headless Chromium.

One server per test session on a free port with its own data directory (SQLite file,
GitOps repo); Playwright drives ``/usr/bin/chromium`` (never ``playwright install``).
Screenshots land in ``test-artifacts/screenshots/`` (ignored by git); set
``PHOENIX_SCREENSHOTS_DIR=docs/screenshots`` to refresh the README's pictures.

Every page needs a sign-in: the accounts of ``USERS`` exist before the server starts (made
here through AccountService, or by ``scripts/smoke.sh`` with ``phoenix user add`` in the data
directory it passes as ``PHOENIX_E2E_DATA_DIR``); ``login`` signs a page in. A page load
(``goto``) starts a new Streamlit session, so it signs out: tests log in after each one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / os.environ.get("PHOENIX_SCREENSHOTS_DIR", "test-artifacts/screenshots")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.e2e

#: role → account name; every e2e account has PASSWORD (a test-only value).
USERS = {"admin": "e2e-admin", "operator": "e2e-operator", "viewer": "e2e-viewer"}
PASSWORD = "e2e-password-not-a-secret"
_SEED = """
import sys
from core.bootstrap import bootstrap
from core.domain.accounts import Actor, Role
from core.settings import Settings
s = bootstrap(Settings.from_env())
setup = Actor("e2e-setup", Role.ADMIN, "cli")
for pair in sys.argv[2:]:
    role, name = pair.split("=")
    s.accounts.add_user(setup, name, role, sys.argv[1])
s.close()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]  # the server's environment: a CLI call with it sees the same database


def server_env(data: Path, port: int) -> dict[str, str]:
    env = {**os.environ, "PHOENIX_DATA_DIR": str(data), "PHOENIX_DATABASE_URL": f"sqlite:///{data}/phoenix.db",
           "PHOENIX_GITOPS_REPO": str(data / "gitops"), "PHOENIX_SCHEDULER_INTERVAL": "0.5",
           "PHOENIX_COLLECTOR_PORT_BASE": str(_free_port()), "PHOENIX_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    env.pop("PHOENIX_KUBE_CONTEXT", None)
    env.pop("PHOENIX_AUTH", None)  # the e2e run signs in like everyone else
    return env


def start_server(data: Path, port: int, env: dict[str, str], secrets_file: Path | None = None) -> Server:
    """Serve the app on ``port`` with ``env``. With ``secrets_file`` (Streamlit's secrets.toml)
    the app is started as an operator does, ``phoenix ui`` with ``PHOENIX_SECRETS_FILE``."""
    log = data / "streamlit.log"
    installed = os.environ.get("PHOENIX_E2E_PHOENIX")
    if secrets_file is not None:
        env = {**env, "PHOENIX_SECRETS_FILE": str(secrets_file)}
    if installed:  # `make smoke`: the non-editable install serves the app, from outside the checkout
        cmd, cwd = [installed, "ui", "--host", "127.0.0.1", "--port", str(port)], data
    elif secrets_file is not None:  # this checkout's `phoenix ui`
        cmd, cwd = [sys.executable, "-m", "core", "ui", "--host", "127.0.0.1", "--port", str(port)], ROOT
    else:
        cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
        cwd = ROOT
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("streamlit did not become healthy:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.3)
    return Server(url, data, proc, log, env)


def stop_server(srv: Server) -> None:
    srv.proc.terminate()
    try:
        srv.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
    _stop_leftover_collectors(srv.data_dir)


def _stop_leftover_collectors(data_dir: Path) -> None:
    """Collectors of an experiment still running when the server stops outlive it by design (a
    standing scheduler adopts them after a restart); the test's data directory is gone after
    this session, so nothing would: stop every process whose command line names it."""
    import psutil

    mine = [p for p in psutil.process_iter(["pid", "cmdline"])
            if p.info["pid"] != os.getpid() and any(str(data_dir) in a for a in p.info["cmdline"] or ())]
    for p in mine:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(mine, timeout=10)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    given = os.environ.get("PHOENIX_E2E_DATA_DIR")  # `make smoke` made the accounts there
    data = Path(given) if given else tmp_path_factory.mktemp("phoenix-e2e")
    port = _free_port()
    env = server_env(data, port)
    if not given:
        subprocess.run([sys.executable, "-c", _SEED, PASSWORD, *(f"{r}={n}" for r, n in USERS.items())],
                       cwd=ROOT, env=env, check=True, timeout=120)
    srv = start_server(data, port, env)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import expect, sync_playwright

    # The build machine is shared: give retrying assertions room on a loaded CPU.
    expect.set_options(timeout=20_000)

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: object, server: Server) -> Iterator[object]:
    ctx = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True)  # type: ignore[attr-defined]
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()


def wait_idle(page: object, timeout_s: float = 30) -> None:
    """Wait until Streamlit finished the script run (no 'Running…' status widget)."""
    page.wait_for_timeout(300)  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_s * 1000)
    page.wait_for_timeout(200)  # type: ignore[attr-defined]


def no_exceptions(page: object) -> None:
    assert page.locator("[data-testid='stException']").count() == 0  # type: ignore[attr-defined]


def shot(page: object, name: str, top: object | None = None) -> None:
    """Screenshot of the viewport, scrolled so ``top`` (a locator) is visible."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if top is not None:
        top.scroll_into_view_if_needed()  # type: ignore[attr-defined]
        page.wait_for_timeout(300)  # type: ignore[attr-defined]
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)  # type: ignore[attr-defined]


def login(page: object, server: Server, role: str = "admin", path: str = "") -> None:
    """Open ``path`` and sign in there as the e2e account of ``role``; the page stays at ``path``."""
    from playwright.sync_api import expect

    page.goto(f"{server.url}/{path}")  # type: ignore[attr-defined]
    form = page.get_by_role("heading", name="Sign in to Phoenix")  # type: ignore[attr-defined]
    form.wait_for()
    page.get_by_label("Name", exact=True).fill(USERS[role])  # type: ignore[attr-defined]
    page.get_by_label("Password", exact=True).fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in", exact=True).click()  # type: ignore[attr-defined]
    expect(form).to_have_count(0)
    wait_idle(page)
