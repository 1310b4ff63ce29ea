"""Share links (core.services.shares): a valid link opens its one resource; a tampered, expired,
revoked, malformed or re-aimed one gets a clear ShareLinkError; the secret is made once, private."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from core.catalog.templates import get_template
from core.domain.errors import NotFoundError, ShareLinkError, ValidationError
from core.services.experiments import ExperimentService
from core.services.secret import ENV_VAR, server_secret
from core.services.shares import DEFAULT_TTL, MAX_TOKEN, ShareService, parse_ttl
from core.settings import Settings
from core.store.memory import MemoryDatabase
from tests.actors import operator, viewer

SECRET = b"k" * 32
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world() -> tuple[ShareService, Clock, str, str, MemoryDatabase]:
    db = MemoryDatabase()
    experiments = ExperimentService(db.uow, dry_run=True)
    a = experiments.create(operator(), name="a", baseline="process-baseline-v1", candidate="process-topk-v1").id
    b = experiments.create(operator(), name="b", baseline="process-baseline-v1", candidate="process-topk-v1").id
    with db.uow() as uow:
        uow.pipelines.add_version("team-topk", get_template("process-topk-v1").to_dict(), "")
        uow.commit()
    clock = Clock()
    return ShareService(db.uow, lambda: SECRET, lambda: "https://phoenix.example/", clock), clock, a, b, db


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["share"][0]


def test_a_valid_link_opens_its_experiment_and_nothing_else(world) -> None:
    shares, _, a, b, db = world
    link, url = shares.create(operator("alice"), "experiment", a)
    assert url.startswith("https://phoenix.example/experiment?share=")
    scope = shares.open(_token(url))
    assert (scope.kind, scope.ref, scope.link_id) == ("experiment", a, link.id)
    assert scope.allows("experiment", a)
    assert not scope.allows("experiment", b) and not scope.allows("pipeline", a)
    assert link.expires_at - link.created_at == DEFAULT_TTL
    with db.uow() as uow:
        (entry,) = [e for e in uow.audit.list() if e.action == "share.create"]
    assert (entry.actor, entry.subject, entry.after["link"]) == ("alice", f"experiment:{a}", link.id)


def test_a_pipeline_version_link_opens_the_builder(world) -> None:
    shares, *_ = world
    _, url = shares.create(operator("alice"), "pipeline", "team-topk@1", timedelta(hours=1))
    assert urlsplit(url).path == "/builder"
    assert shares.open(_token(url)).allows("pipeline", "team-topk@1")
    with pytest.raises(NotFoundError):
        shares.create(operator("alice"), "pipeline", "team-topk@2")


def test_every_tampered_byte_is_refused(world) -> None:
    shares, _, a, _, _ = world
    token = _token(shares.create(operator("alice"), "experiment", a)[1])
    for i, ch in enumerate(token):
        for other in {"A", "b", "-", "_", "."} - {ch}:
            bad = token[:i] + other + token[i + 1:]
            with pytest.raises(ShareLinkError) as exc:
                shares.open(bad)
            assert token not in str(exc.value)
    last = token[-1]  # the signature's last character carries 2 unused bits: no second spelling
    for other in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
        if other != last:
            with pytest.raises(ShareLinkError):
                shares.open(token[:-1] + other)


def test_a_link_aimed_at_another_experiment_is_refused(world) -> None:
    """Re-signing needs the secret: a payload edited to name experiment B fails the signature."""
    import base64

    shares, _, a, b, _ = world
    body, sig = _token(shares.create(operator("alice"), "experiment", a)[1]).split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().replace(a, b)
    forged = base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode() + "." + sig
    with pytest.raises(ShareLinkError, match="altered"):
        shares.open(forged)
    other = ShareService(shares.uow_factory, lambda: b"x" * 32, lambda: "http://x", shares._now)
    with pytest.raises(ShareLinkError, match="altered"):
        other.open(_token(shares.create(operator("alice"), "experiment", a)[1]))  # signed with another secret


def test_expired_and_revoked_links_say_so(world) -> None:
    shares, clock, a, _, db = world
    link, url = shares.create(operator("alice"), "experiment", a, parse_ttl("24h"))
    clock.now = T0 + timedelta(hours=23, minutes=59)
    shares.open(_token(url))
    clock.now = T0 + timedelta(hours=24)
    with pytest.raises(ShareLinkError, match="expired on 2026-01-06 12:00 UTC"):
        shares.open(_token(url))
    assert shares.status(link) == "expired"
    clock.now = T0 + timedelta(minutes=1)
    link2, url2 = shares.create(operator("alice"), "experiment", a)
    revoked = shares.revoke(operator("bob"), link2.id)
    assert (revoked.revoked_by, shares.status(revoked)) == ("bob", "revoked")
    with pytest.raises(ShareLinkError, match="revoked on 2026-01-05 12:01 UTC"):
        shares.open(_token(url2))
    assert shares.revoke(operator("carol"), link2.id).revoked_by == "bob"  # once
    assert [s.id for s in shares.list_for(viewer(), "experiment", a)] == [link2.id, link.id]  # newest first
    with db.uow() as uow:
        entries = [e for e in uow.audit.list() if e.action == "share.revoke"]  # newest first
    # every call is audited; only bob's changed something (carol's found it revoked already)
    assert [(e.actor, e.after) for e in entries] == [("carol", None), ("bob", {"link": link2.id, "revoked": True})]


def test_a_link_whose_experiment_is_gone_or_unknown(world) -> None:
    shares, _, a, _, db = world
    link, url = shares.create(operator("alice"), "experiment", a)
    db.store.experiments.pop(a)
    with pytest.raises(ShareLinkError, match="shared experiment no longer exists"):
        shares.open(_token(url))
    db.store.share_links.clear()
    with pytest.raises(ShareLinkError, match="not known here"):
        shares.open(_token(url))


@pytest.mark.parametrize("token", ["", " ", "abc", "a.b.c", "!!!.???", "x" * (MAX_TOKEN + 1), "é.é", None, 42,
                                   "AAAA.AAAA", ".", "a."])
def test_malformed_tokens_get_one_sentence(world, token: object) -> None:
    shares, *_ = world
    with pytest.raises(ShareLinkError) as exc:
        shares.open(token)
    assert len(str(exc.value)) < 120


@pytest.mark.parametrize(("kind", "ref", "ttl"), [
    ("report", "exp-1", DEFAULT_TTL), ("experiment", "../etc", DEFAULT_TTL), ("pipeline", "team-topk", DEFAULT_TTL),
    ("experiment", "exp-x", timedelta(seconds=5)), ("experiment", "exp-x", timedelta(days=400)),
])
def test_create_refuses_bad_scopes_and_ttls(world, kind: str, ref: str, ttl: timedelta) -> None:
    shares, *_ = world
    with pytest.raises(ValidationError):
        shares.create(operator("alice"), kind, ref, ttl)


def test_create_refuses_an_unknown_experiment(world) -> None:
    shares, *_ = world
    with pytest.raises(NotFoundError):
        shares.create(operator("alice"), "experiment", "exp-00000000")


@pytest.mark.parametrize(("text", "want"), [("30m", timedelta(minutes=30)), ("24h", timedelta(hours=24)),
                                            ("7d", timedelta(days=7)), ("2W", timedelta(weeks=2)), (None, DEFAULT_TTL)])
def test_parse_ttl(text: str | None, want: timedelta) -> None:
    assert parse_ttl(text) == want


@pytest.mark.parametrize("text", ["0h", "24", "h", "1y", "-1d", "366d", "9999999w", "1.5h"])
def test_parse_ttl_refuses(text: str) -> None:
    with pytest.raises(ValidationError, match="TTL|365 days"):
        parse_ttl(text)


def test_the_secret_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = server_secret(settings, env={})
    path = tmp_path / "data" / "secret_key"
    assert len(first) == 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert server_secret(settings, env={}) == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]  # no temporary left behind
    assert server_secret(settings, env={ENV_VAR: "e" * 40}) == b"e" * 40


def test_secret_errors_never_show_the_secret(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ValidationError, match="too short") as exc:
        server_secret(settings, env={ENV_VAR: "short-s3cret"})
    assert "short-s3cret" not in str(exc.value)
    (tmp_path / "secret_key").write_bytes(b"tiny")
    with pytest.raises(ValidationError, match="shorter than 32 bytes") as exc:
        server_secret(settings, env={})
    assert "tiny" not in str(exc.value)


def test_the_url_never_carries_a_password(world) -> None:
    shares, _, a, _, _ = world
    leaky = ShareService(shares.uow_factory, lambda: SECRET, lambda: "https://bob:hunter2@phoenix.example", shares._now)
    _, url = leaky.create(operator("alice"), "experiment", a)
    assert "hunter2" not in url and urlsplit(url).hostname == "phoenix.example"
