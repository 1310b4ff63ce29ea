"""Credentials never reach a screen or a log: one masking helper for every URL Phoenix shows.

``mask_url`` takes any URL Phoenix is configured with — a database URL
(``postgresql+psycopg://user:secret@host/db``, ``sqlite:///path``) or an HTTP one
(``http://user:secret@prometheus:9090``) — and replaces the password and any secret-looking
query parameter (``?password=…``, ``?token=…``) with ``***``. A string that does not parse as
a URL is never echoed. ``redact`` scrubs the secrets of the given URLs out of free text
(driver and HTTP error messages), in case a library repeats them.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode

MASK = "***"
UNPARSEABLE = "<unparseable URL>"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SECRET_KEYS = re.compile(r"pass|pwd|secret|token|key|auth|credential|signature|sig$", re.IGNORECASE)


def _split(text: str) -> tuple[str, str | None, str | None, str, str | None, str]:
    """scheme, user, password, host+path, query, fragment of ``scheme://…``.

    Deliberately simpler than ``urlsplit`` (which drops tabs and newlines and stops the
    authority at an unencoded '/' or '?' in a password): the user information is everything
    between ``://`` and the last '@', so nothing of a password can end up outside it.
    """
    scheme, _, rest = text.partition("://")
    userinfo, at, after = rest.rpartition("@")
    user: str | None = None
    password: str | None = None
    if at:
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
    hostpath, qmark, tail = after.partition("?")
    query, _, fragment = tail.partition("#") if qmark else ("", "", "")
    if not qmark:
        hostpath, _, fragment = hostpath.partition("#")
    return scheme, user, password, hostpath, (query if qmark else None), fragment


def mask_url(url: str | None) -> str:
    """``url`` with its password and secret query values replaced by ``***``, safe to show and log."""
    if url is None:
        return ""
    text = str(url)
    if not text:
        return ""
    if not _SCHEME.match(text) or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return UNPARSEABLE  # not a URL (a DSN string, a typo, control characters): it may hold a secret anywhere
    scheme, user, password, hostpath, query, fragment = _split(text)
    out = f"{scheme}://"
    if user is not None:
        out += f"{user}:{MASK}@" if password is not None else f"{user}@"
    out += hostpath
    if query is not None:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_KEYS.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _SECRET_KEYS.search(k) else v) for k, v in pairs], safe="*/:")
        out += f"?{query}"
    if fragment:
        out += f"#{fragment}"
    return out


def secrets_of(url: str | None) -> list[str]:
    """The secret strings inside ``url`` (password, secret query values), raw and percent-decoded."""
    if not url or not _SCHEME.match(str(url)):
        return []
    _scheme, _user, password, _hostpath, query, _fragment = _split(str(url))
    out = [password] if password else []
    out += [v for k, v in parse_qsl(query or "", keep_blank_values=True) if _SECRET_KEYS.search(k)]
    found: set[str] = set()
    for secret in out:
        if secret:
            found.update({secret, unquote(secret), quote(secret, safe="")})
    return sorted(found, key=len, reverse=True)


def redact(text: str, *urls: str | None) -> str:
    """``text`` with every secret of ``urls`` replaced by ``***`` and every full URL masked."""
    out = str(text)
    for url in urls:
        if url and str(url) in out:
            out = out.replace(str(url), mask_url(url))
    for url in urls:
        for secret in secrets_of(url):
            out = out.replace(secret, MASK)
    return out
