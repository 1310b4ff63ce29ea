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
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

MASK = "***"
UNPARSEABLE = "<unparseable URL>"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SECRET_KEYS = re.compile(r"pass|pwd|secret|token|key|auth|credential|signature|sig$", re.IGNORECASE)


def _secret_query(query: str) -> bool:
    return any(_SECRET_KEYS.search(k) for k, _ in parse_qsl(query, keep_blank_values=True))


def mask_url(url: str | None) -> str:
    """``url`` with its password and secret query values replaced by ``***``, safe to show and log."""
    if url is None:
        return ""
    text = str(url)
    if not text:
        return ""
    if not _SCHEME.match(text) or any(c in text for c in "\r\n\x00"):
        return UNPARSEABLE  # not a URL (a DSN string, a typo): it may hold a secret anywhere
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an invalid IPv6 literal
        return UNPARSEABLE
    # Rebuild by substitution, not urlunsplit: that would turn sqlite:///x into sqlite:/x.
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        masked = f"{user}:{MASK}@{hostport}" if colon else f"{user}@{hostport}"
        text = text.replace(f"//{parts.netloc}", f"//{masked}", 1)
    if parts.query and _secret_query(parts.query):
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode([(k, MASK if _SECRET_KEYS.search(k) else v) for k, v in pairs], safe="*/:")
        head, _, tail = text.rpartition(f"?{parts.query}")
        text = f"{head}?{query}{tail}"
    return text


def secrets_of(url: str | None) -> list[str]:
    """The secret strings inside ``url`` (password, secret query values), raw and percent-decoded."""
    if not url or not _SCHEME.match(str(url)):
        return []
    out: list[str] = []
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return []
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        out.append(userinfo.partition(":")[2])
    out += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if _SECRET_KEYS.search(k)]
    found = set()
    for s in out:
        if s:
            found.update({s, unquote(s), quote(s, safe="")})
    return sorted((s for s in found if len(s) >= 1), key=len, reverse=True)


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
