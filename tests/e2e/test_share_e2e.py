"""A signed share link opened in a fresh browser context: the one experiment, read-only, no
navigation; the same token cannot reach another page, and a tampered one shows why."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.actors import operator
from tests.e2e.conftest import no_exceptions, wait_idle

pytestmark = pytest.mark.e2e


def _share(server) -> tuple[str, str]:
    from core.bootstrap import bootstrap
    from core.settings import Settings

    settings = Settings(data_dir=server.data_dir, database_url=f"sqlite:///{server.data_dir}/phoenix.db",
                        gitops_repo=server.data_dir / "gitops", runtime="memory")
    svc = bootstrap(settings)  # the server's database and secret file
    try:
        exp = svc.experiments.create(operator(), name="shared e2e", baseline="process-baseline-v1", candidate="process-topk-v1")
        _, url = svc.shares.create(operator("alice"), "experiment", exp.id)
    finally:
        svc.close()
    return exp.id, parse_qs(urlsplit(url).query)["share"][0]


def test_share_link_in_a_fresh_context(browser, server) -> None:
    exp_id, token = _share(server)
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        p = ctx.new_page()
        p.goto(f"{server.url}/experiment?share={token}")
        p.get_by_role("heading", name="shared e2e").wait_for()
        wait_idle(p)
        no_exceptions(p)
        expect(p.get_by_text("Shared read-only view")).to_be_visible()
        expect(p.locator("[data-testid='stSidebarNav']")).to_have_count(0)
        expect(p.locator("[data-testid='stButton'], [data-testid='stPageLink']")).to_have_count(0)  # no actions, no links
        p.goto(f"{server.url}/settings?share={token}")  # another page with the token: still only the shared view
        p.get_by_role("heading", name="shared e2e").wait_for()
        expect(p.get_by_role("heading", name="Settings")).to_have_count(0)
        p.goto(f"{server.url}/experiment?share={token[:-3]}AAA")
        expect(p.get_by_text("This share link")).to_be_visible()
        expect(p.get_by_role("heading", name="shared e2e")).to_have_count(0)
    finally:
        ctx.close()
