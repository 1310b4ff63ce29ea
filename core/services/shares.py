"""Share links: signed, expiring, read-only links to one experiment or one pipeline version.

A token is ``<payload>.<signature>``, both base64url without padding. The payload is
``link id|scope kind|scope ref|expiry (unix seconds)``; the signature is HMAC-SHA256 of the
payload under the server secret (``core.services.secret``), compared in constant time.
The ``share_links`` row lets a link be listed and revoked; the signature means a link
cannot be forged or re-aimed without the secret, even by someone who can read the table.

``open`` answers every bad token (malformed, tampered, expired, revoked, unknown, or whose
resource is gone) with ``ShareLinkError`` and one sentence; it never echoes the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from core.domain.accounts import Actor, Role
from core.domain.errors import NotFoundError, ShareLinkError, ValidationError
from core.domain.ports import UnitOfWork, UnitOfWorkFactory
from core.domain.records import ShareLinkRecord
from core.observability.tracing import traced_service
from core.redact import mask_url
from core.services.authz import internal, mutation, query, record, unauthenticated

EXPERIMENT, PIPELINE = "experiment", "pipeline"
SCOPE_KINDS = (EXPERIMENT, PIPELINE)
#: The page a link of each kind opens (``/experiment?share=…``, ``/builder?share=…``).
SCOPE_PAGES = {EXPERIMENT: "experiment", PIPELINE: "builder"}
DEFAULT_TTL = timedelta(days=7)
MIN_TTL, MAX_TTL = timedelta(minutes=1), timedelta(days=365)
#: Longest token accepted: a real one is under 400 characters (refs are at most 200).
MAX_TOKEN = 512
_B64 = re.compile(r"^[A-Za-z0-9_-]+$")
_EXPERIMENT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,31}$")
_PIPELINE_REF = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}@[1-9][0-9]{0,8}$")
_LINK_ID = re.compile(r"^[0-9a-f]{16}$")
_TTL = re.compile(r"^([1-9][0-9]{0,6})([mhdw])$")
_TTL_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class ShareScope:
    """What one opened link may show: exactly one resource, read-only."""

    link_id: str
    kind: str
    ref: str
    expires_at: datetime

    def allows(self, kind: str, ref: str) -> bool:
        return hmac.compare_digest(f"{kind}|{ref}".encode(), f"{self.kind}|{self.ref}".encode())

    @property
    def actor(self) -> Actor:
        """Who reads through this link: a viewer named after it (the shared page asks the
        services for exactly ``ref`` and nothing else)."""
        return Actor(f"share:{self.link_id}", Role.VIEWER, "share")


def parse_ttl(text: str | None) -> timedelta:
    """``30m``, ``24h``, ``7d``, ``2w`` → a duration from 1 minute to 365 days (None/empty: 7 days)."""
    if text is None or not str(text).strip():
        return DEFAULT_TTL
    m = _TTL.match(str(text).strip().lower())
    if not m:
        raise ValidationError(f"TTL {str(text)[:20]!r} must be a number and a unit: 30m, 24h, 7d or 2w")
    ttl = timedelta(**{_TTL_UNITS[m.group(2)]: int(m.group(1))})
    return _check_ttl(ttl)


def _check_ttl(ttl: timedelta) -> timedelta:
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise ValidationError("a share link must live from 1 minute to 365 days")
    return ttl


def check_scope(kind: str, ref: str) -> None:
    """Refuse a scope no link can have (the resource itself is looked up separately)."""
    if kind not in SCOPE_KINDS:
        raise ValidationError(f"a share link is for an experiment or a pipeline version, not {str(kind)[:20]!r}")
    if kind == EXPERIMENT and not _EXPERIMENT_REF.match(ref):
        raise ValidationError(f"{ref[:40]!r} is not an experiment id (like exp-1a2b3c4d)")
    if kind == PIPELINE and not _PIPELINE_REF.match(ref):
        raise ValidationError(f"{ref[:40]!r} is not a pipeline version: give NAME@N, like team-topk@3")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@traced_service
class ShareService:
    def __init__(self, uow_factory: UnitOfWorkFactory, secret: Callable[[], bytes], public_url: Callable[[], str],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        # The secret and the URL are read when used: a missing secret file is created on the
        # first link, and the public URL follows the Settings page without a restart.
        self.uow_factory = uow_factory
        self._secret = secret
        self._public_url = public_url
        self._now = clock

    # ---- tokens -------------------------------------------------------------------------

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret(), payload, hashlib.sha256).digest()

    def _token(self, link: ShareLinkRecord) -> str:
        payload = f"{link.id}|{link.scope_kind}|{link.scope_ref}|{int(link.expires_at.timestamp())}".encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def _url(self, link: ShareLinkRecord) -> str:
        raw = self._public_url()
        base = (mask_url(raw) if "@" in raw else raw).rstrip("/")  # a link never carries a password
        return f"{base}/{SCOPE_PAGES[link.scope_kind]}?{urlencode({'share': self._token(link)})}"

    def _verify(self, token: object) -> tuple[str, str, str, datetime]:
        """The signed fields of ``token``, or ShareLinkError (malformed or tampered)."""
        malformed = ShareLinkError("This share link is malformed: copy the whole link again.")
        if not isinstance(token, str) or not 0 < len(token.strip()) <= MAX_TOKEN:
            raise malformed
        body, dot, sig = token.strip().partition(".")
        if not dot or not _B64.match(body) or not _B64.match(sig):
            raise malformed
        try:
            payload, signature = _unb64(body), _unb64(sig)
        except (binascii.Error, ValueError):
            raise malformed from None
        if _b64(payload) != body or _b64(signature) != sig:  # unused low bits set: one token, one spelling
            raise malformed
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise ShareLinkError("This share link is not valid: it was altered or was not issued by this server.")
        # Signed by us, so the fields are ours; checked anyway (an old format, a changed rule).
        try:
            link_id, kind, ref, exp = payload.decode("ascii").split("|")
            check_scope(kind, ref)
            if not _LINK_ID.match(link_id) or not exp.isdigit():
                raise ValueError
            expires = _utc(int(exp))
        except (UnicodeDecodeError, ValueError, OverflowError, OSError, ValidationError):
            raise malformed from None
        return link_id, kind, ref, expires

    # ---- use cases ------------------------------------------------------------------------

    @mutation("share.create")
    def create(self, actor: Actor, scope_kind: str, scope_ref: str,
               ttl: timedelta = DEFAULT_TTL) -> tuple[ShareLinkRecord, str]:
        """A new link to one resource that exists; returns the record and the URL to hand out."""
        check_scope(scope_kind, scope_ref)
        _check_ttl(ttl)
        now = self._now().replace(microsecond=0)
        link = ShareLinkRecord(id=secrets.token_hex(8), scope_kind=scope_kind, scope_ref=scope_ref,
                               created_by=actor.name, created_at=now, expires_at=now + ttl)
        with self.uow_factory() as uow:
            self._resource(uow, scope_kind, scope_ref)  # NotFoundError names what is missing
            uow.share_links.add(link)
            record(uow, f"{scope_kind}:{scope_ref}",
                   after={"link": link.id, "expires_at": link.expires_at.isoformat()})
            uow.commit()
        return link, self._url(link)

    @query("share.read")
    def list_for(self, actor: Actor, scope_kind: str, scope_ref: str) -> list[ShareLinkRecord]:
        """Every link ever made to one resource, newest first (revoked and expired included)."""
        check_scope(scope_kind, scope_ref)
        with self.uow_factory() as uow:
            return uow.share_links.list_for(scope_kind, scope_ref)

    @internal("share.read")
    def status(self, link: ShareLinkRecord) -> str:
        """active | expired | revoked, now."""
        return link.status(self._now())

    @mutation("share.revoke")
    def revoke(self, actor: Actor, link_id: str) -> ShareLinkRecord:
        """Revoke a link (it stops opening at once); revoking a revoked link changes nothing."""
        if not isinstance(link_id, str) or not _LINK_ID.match(link_id.strip()):
            raise ValidationError(f"{str(link_id)[:40]!r} is not a share link id (16 hex digits)")
        with self.uow_factory() as uow:
            before = uow.share_links.get(link_id.strip())
            if before.revoked_at is not None:
                return before
            link = uow.share_links.revoke(before.id, actor.name, self._now())
            record(uow, f"{link.scope_kind}:{link.scope_ref}", before={"link": link.id, "revoked": False},
                   after={"link": link.id, "revoked": True})
            uow.commit()
        return link

    @unauthenticated("share.open")
    def open(self, token: object) -> ShareScope:
        """The one resource ``token`` shows, or ShareLinkError saying why it shows nothing.

        No sign-in: the signed token is the credential. Opening is not audited (a link is
        read-only, and a page view per visitor would flood the log)."""
        link_id, kind, ref, expires = self._verify(token)
        now = self._now()
        if now >= expires:
            raise ShareLinkError(f"This share link expired on {expires:%Y-%m-%d %H:%M} UTC; ask for a new one.")
        with self.uow_factory() as uow:
            try:
                link = uow.share_links.get(link_id)
            except NotFoundError:
                raise ShareLinkError("This share link is not known here (the database was reset?).") from None
            if (link.scope_kind, link.scope_ref) != (kind, ref):
                raise ShareLinkError("This share link is not valid: it does not match its record.")
            if link.revoked_at is not None:
                raise ShareLinkError(f"This share link was revoked on {link.revoked_at:%Y-%m-%d %H:%M} UTC.")
            try:
                self._resource(uow, kind, ref)
            except NotFoundError:
                raise ShareLinkError(f"The shared {'experiment' if kind == EXPERIMENT else 'pipeline version'} "
                                     "no longer exists.") from None
        return ShareScope(link_id, kind, ref, expires)

    @staticmethod
    def _resource(uow: UnitOfWork, kind: str, ref: str) -> None:
        if kind == EXPERIMENT:
            uow.experiments.get(ref)
        else:
            name, _, number = ref.partition("@")
            uow.pipelines.get_version(name, int(number))
