"""A share link (``phoenix share create``) opened in a fresh browser context: the experiment,
read-only, without a sign-in and without navigation.

The CLI runs as the e2e operator (``PHOENIX_USER``) against the server's own database. The
same token on another page's path still shows only the shared view; a tampered one shows why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, USERS, no_exceptions

pytestmark = pytest.mark.e2e


def _phoenix(server, *args: str) -> str:
    installed = os.environ.get("PHOENIX_E2E_PHOENIX")
    cmd = [installed] if installed else [sys.executable, "-c", "from core.cli import main; raise SystemExit(main())"]
    env = {**server.env, "PHOENIX_USER": USERS["operator"]}
    done = subprocess.run([*cmd, *args], cwd=server.data_dir if installed else ROOT, env=env, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_share_link_shows_the_experiment_without_sign_in(browser, server) -> None:
    created = json.loads(_phoenix(server, "experiment", "run", "--baseline", "process-baseline-v1",
                                  "--candidate", "process-topk-v1", "--name", "e2e shared trial",
                                  "--duration", "4s", "--interval", "1s", "--min-samples", "3",
                                  "--json"))
    url = _phoenix(server, "share", "create", created["id"], "--ttl", "24h").splitlines()[0].strip()
    assert url.startswith(server.url) and "share=" in url, url
    fresh = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        p = fresh.new_page()
        p.goto(url)
        p.get_by_role("heading", name="e2e shared trial").wait_for()
        expect(p.get_by_text("Shared read-only view")).to_be_visible()
        expect(p.get_by_role("heading", name="Sign in to Phoenix")).to_have_count(0)
        for action in ("Promote", "Cancel", "Re-run"):
            expect(p.get_by_role("button", name=action, exact=True)).to_have_count(0)
        expect(p.locator("[data-testid='stSidebarNav']")).to_have_count(0)
        no_exceptions(p)
        p.goto(url.replace("/experiment?", "/settings?"))  # the token on another page: still only the view
        p.get_by_role("heading", name="e2e shared trial").wait_for()
        expect(p.get_by_role("heading", name="Settings")).to_have_count(0)
        p.goto(url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB"))  # tampered: a message, no view
        expect(p.get_by_text("This share link")).to_be_visible()
        expect(p.get_by_role("heading", name="e2e shared trial")).to_have_count(0)
    finally:
        fresh.close()
