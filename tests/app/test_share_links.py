"""Signed share links in the app: ``?share=<token>`` shows its one experiment read-only with no
navigation and no actions; a bad token shows its sentence; the experiment page lists, creates
and revokes links."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from app import guard
from tests.actors import operator
from tests.app.conftest import ROOT, page


def _seed() -> tuple[str, str, str]:
    from core.bootstrap import bootstrap
    from core.settings import Settings

    svc = bootstrap(Settings.from_env())
    try:
        a = svc.experiments.create(operator(), name="shared-a", baseline="process-baseline-v1", candidate="process-topk-v1").id
        b = svc.experiments.create(operator(), name="secret-b", baseline="process-baseline-v1", candidate="process-topk-v1").id
        _, url = svc.shares.create(operator("alice"), "experiment", a)
    finally:
        svc.close()
    return a, b, parse_qs(urlsplit(url).query)["share"][0]


def _open(script: str, params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(script, default_timeout=60)
    at.query_params.update(params)
    return at.run()


def _text(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("title", "caption", "markdown", "text") for e in getattr(at, kind))


def test_a_share_link_shows_its_experiment_read_only(app_env: Path) -> None:
    a, b, token = _seed()
    at = _open(page("shared.py"), {"share": token, "id": b})  # ?id= is ignored: the token decides
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.title[0].value == "shared-a" and a in _text(at)
    assert "secret-b" not in _text(at) and b not in _text(at)
    assert len(at.button) == 0 and len(at.selectbox) == 0  # no actions, no picker


@pytest.mark.parametrize(("mutate", "says"), [
    (lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), "altered"),
    (lambda t: "not-a-token", "malformed"),
    (lambda t: "x" * 100_000, "malformed"),
])
def test_a_bad_token_shows_its_sentence_and_nothing_else(app_env: Path, mutate, says: str) -> None:
    _, _, token = _seed()
    at = _open(page("shared.py"), {"share": mutate(token)})
    assert not at.exception
    (err,) = at.error
    assert says in err.value and len(err.value) < 200
    assert at.title[0].value == "Shared link" and len(at.button) == 0 and not at.dataframe


def test_the_router_shows_only_the_shared_view(app_env: Path) -> None:
    _, _, token = _seed()
    at = _open(str(ROOT / "app" / "main.py"), {"share": token})
    assert not at.exception and not at.error
    assert at.title[0].value == "shared-a" and len(at.button) == 0


def test_the_experiment_page_creates_lists_and_revokes_links(app_env: Path) -> None:
    a, _, _ = _seed()
    at = _open(page("experiment.py"), {"id": a})
    assert not at.exception
    assert any("by **alice**" in m.value for m in at.markdown)
    at.button(key="share.create." + a).click().run()
    (code,) = [c for c in at.code if "share=" in c.value]
    assert urlsplit(code.value).path == "/experiment"
    revoke = [b for b in at.button if b.key and b.key.startswith("share.revoke.")]
    assert len(revoke) == 2
    token = parse_qs(urlsplit(code.value).query)["share"][0]
    assert not _open(page("shared.py"), {"share": token}).error  # the new link opens
    for _ in range(2):
        next(b for b in at.button if b.key and b.key.startswith("share.revoke.")).click().run()
        assert not at.exception
    assert sum(f"revoked (by {guard.DEV_ACTOR.name})" in m.value for m in at.markdown) == 2
    assert not [b for b in at.button if b.key and b.key.startswith("share.revoke.")]
    (err,) = _open(page("shared.py"), {"share": token}).error
    assert "revoked" in err.value


def test_the_builder_shares_a_saved_version(app_env: Path) -> None:
    from core.bootstrap import bootstrap
    from core.catalog.templates import get_template
    from core.gitops import InMemoryGitOps
    from core.settings import Settings
    from tests.usecases import save_version

    svc = bootstrap(Settings.from_env())
    p = get_template("process-topk-v1")
    p.name = "team-topk"
    save_version(svc.uow, InMemoryGitOps(), p, "first", "ann")
    svc.close()
    at = _open(page("builder.py"), {"pipeline": "team-topk", "version": "1"})
    assert not at.exception
    at.button(key="share.create.team-topk@1").click().run()
    assert not at.exception
    (code,) = [c for c in at.code if "share=" in c.value]
    assert urlsplit(code.value).path == "/builder"
    shared = _open(page("shared.py"), {"share": parse_qs(urlsplit(code.value).query)["share"][0]})
    assert not shared.exception and not shared.error
    assert shared.title[0].value == "team-topk@1" and len(shared.button) == 0
