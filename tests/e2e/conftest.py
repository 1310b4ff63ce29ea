"""End-to-end harness: the real app under ``streamlit run`` and Debian's headless Chromium.

One server per test session on a free port with its own data directory (SQLite file,
GitOps repo); Playwright drives ``/usr/bin/chromium`` (never ``playwright install``).
Screenshots land in ``test-artifacts/screenshots/`` (ignored by git); set
``PHOENIX_SCREENSHOTS_DIR=docs/screenshots`` to refresh the README's pictures.
"""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    data = tmp_path_factory.mktemp("phoenix-e2e")
    port = _free_port()
    env = {**os.environ, "PHOENIX_DATA_DIR": str(data), "PHOENIX_DATABASE_URL": f"sqlite:///{data}/phoenix.db",
           "PHOENIX_GITOPS_REPO": str(data / "gitops"), "PHOENIX_SCHEDULER_INTERVAL": "0.5",
           "PHOENIX_COLLECTOR_PORT_BASE": str(_free_port()), "PHOENIX_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "PHOENIX_AUTH": "off"}  # until the login page lands: every visitor is guard.DEV_ACTOR
    env.pop("PHOENIX_KUBE_CONTEXT", None)
    log = data / "streamlit.log"
    installed = os.environ.get("PHOENIX_E2E_PHOENIX")
    if installed:  # `make smoke`: the non-editable install serves the app, from outside the checkout
        cmd, cwd = [installed, "ui", "--host", "127.0.0.1", "--port", str(port)], data
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
    yield Server(url, data, proc, log)
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


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
