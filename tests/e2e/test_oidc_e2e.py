"""Single sign-on end to end: Streamlit's ``st.login`` against a real (test) OpenID Connect
provider, over HTTP, in Chromium.

The app is started as an operator would (``phoenix ui`` with ``PHOENIX_SECRETS_FILE`` naming
a secrets.toml with the ``[auth]`` section, and ``PHOENIX_OIDC_ROLE_MAP``). A user of the
``sre`` group signs in with SSO and lands as an operator (an OIDC account without a password,
the sign-in audited); an identity the map does not know is refused with the service's words.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    ROOT,
    Server,
    _free_port,
    no_exceptions,
    server_env,
    start_server,
    stop_server,
    wait_idle,
)
from tests.e2e.oidc_provider import IdpUser, OidcProvider

pytestmark = pytest.mark.e2e

OPERATOR = IdpUser("u-1001", "Sam.Ops@corp.example", ["staff", "sre"])
STRANGER = IdpUser("u-2002", "visitor@elsewhere.example", ["guests"])
ROLE_MAP = "group:sre=operator,boss@corp.example=admin"
CLIENT_SECRET = "e2e-client-secret-" + secrets.token_hex(8)
COOKIE_SECRET = secrets.token_hex(32)

_PROBE = """
import json
from core.bootstrap import bootstrap
from core.settings import Settings
s = bootstrap(Settings.from_env())
with s.uow() as uow:
    users = {u.name: {"role": u.role.label, "password": uow.users.password_hash(u.name)} for u in uow.users.list()}
    audit = [{"actor": e.actor, "action": e.action, "details": e.details, "source": e.source}
             for e in uow.audit.list(limit=1000)]
print(json.dumps({"users": users, "audit": audit}))
s.close()
"""


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    provider = OidcProvider("phoenix-e2e", CLIENT_SECRET, OPERATOR).start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def sso_server(idp: OidcProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("phoenix-sso")
    port = _free_port()
    secrets_file = data / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{COOKIE_SECRET}"\n'
        'client_id = "phoenix-e2e"\n'
        f'client_secret = "{CLIENT_SECRET}"\n'
        f'server_metadata_url = "{idp.metadata_url}"\n', encoding="utf-8")
    secrets_file.chmod(0o600)
    env = {**server_env(data, port), "PHOENIX_OIDC_ROLE_MAP": ROLE_MAP}
    srv = start_server(data, port, env, secrets_file=secrets_file)
    yield srv
    stop_server(srv)
    log = srv.log.read_text(errors="replace")
    assert CLIENT_SECRET not in log and COOKIE_SECRET not in log  # secrets never reach the log


def _database(server: Server) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=server.env, check=True, timeout=120,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _sso(page, server: Server) -> None:
    page.goto(server.url)
    page.get_by_role("heading", name="Sign in to Phoenix").wait_for()
    page.get_by_role("button", name="Sign in with SSO").click()


def test_sso_sign_in_as_mapped_operator(browser, idp: OidcProvider, sso_server: Server) -> None:
    idp.user = OPERATOR
    ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        _sso(page, sso_server)
        # the provider's redirect lands on Streamlit's callback, which sets the identity cookie
        expect(page.get_by_text("Signed in as sam.ops@corp.example (operator)")).to_be_visible()
        assert [c["email"] for c in idp.issued] == [OPERATOR.email]
        assert idp.issued[0]["nonce"]  # Authlib sent one and checked it came back
        wait_idle(page)
        no_exceptions(page)
        # an operator: New Experiment can create; no admin pages in the navigation
        nav = page.get_by_test_id("stSidebarNav")
        expect(nav.get_by_role("link", name="Users")).to_have_count(0)
        expect(nav.get_by_role("link", name="Audit")).to_have_count(0)
        nav.get_by_role("link", name="New Experiment").click()
        wait_idle(page)
        expect(page.get_by_role("button", name="Next →")).to_be_visible()
        expect(page.get_by_text("Creating an experiment needs the operator role.")).to_have_count(0)
        no_exceptions(page)
        # Streamlit's identity cookie outlives the page: a reload signs the same identity in again
        page.reload()
        expect(page.get_by_text("Signed in as sam.ops@corp.example (operator)")).to_be_visible()
        # Log out ends the Phoenix session and the identity cookie: a reload stays signed out
        page.get_by_role("button", name="Log out").click()
        page.get_by_role("button", name="Sign in with SSO").wait_for()
        page.reload()
        page.get_by_role("button", name="Sign in with SSO").wait_for()
        expect(page.get_by_text("Signed in as")).to_have_count(0)
    finally:
        ctx.close()

    db = _database(sso_server)
    assert db["users"]["sam.ops@corp.example"] == {"role": "operator", "password": "!oidc"}  # no password
    logins = [e for e in db["audit"] if e["action"] == "auth.login" and e["actor"] == "sam.ops@corp.example"]
    assert len(logins) == 2 and all(e["details"] == {"via": "oidc"} and e["source"] == "ui" for e in logins)


def test_sso_identity_without_a_role_is_refused(browser, idp: OidcProvider, sso_server: Server) -> None:
    idp.user = STRANGER
    ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        _sso(page, sso_server)
        expect(page.get_by_text("visitor@elsewhere.example has no role in Phoenix; ask an admin to map it "
                                "(PHOENIX_OIDC_ROLE_MAP)")).to_be_visible()
        expect(page.get_by_role("heading", name="Sign in to Phoenix")).to_be_visible()
        expect(page.get_by_text("Signed in as")).to_have_count(0)
        no_exceptions(page)
        assert idp.issued[-1]["email"] == STRANGER.email
        # signing out of the refused identity offers SSO again (and local sign-in stays)
        page.get_by_role("button", name="Sign out of SSO").click()
        expect(page.get_by_role("button", name="Sign in with SSO")).to_be_visible()
        expect(page.get_by_text("has no role in Phoenix")).to_have_count(0)
        page.reload()  # the identity cookie is gone: no second refusal
        page.get_by_role("button", name="Sign in with SSO").wait_for()
        expect(page.get_by_text("has no role in Phoenix")).to_have_count(0)
    finally:
        ctx.close()

    db = _database(sso_server)
    assert "visitor@elsewhere.example" not in db["users"]
    refused = [e for e in db["audit"] if e["action"] == "auth.login_failed" and e["actor"] == "visitor@elsewhere.example"]
    assert len(refused) == 1 and refused[0]["details"] == {"reason": "no role mapped", "via": "oidc"}
