"""Errors users can cause. Each carries a message fit to show as-is (CLI line, st.error).

Following kopf's split, ``TemporaryError`` means "retry later" (a database that went
away, a port still in use) and ``PermanentError`` means "fail with this reason".
"""

from __future__ import annotations


class PhoenixError(Exception):
    """Base for every error whose message is meant for the user."""


class ValidationError(PhoenixError):
    """Bad input: one or more specific problems, each a readable sentence."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class NotFoundError(PhoenixError):
    pass


class InvalidTransitionError(PhoenixError):
    pass


class ConcurrencyError(PhoenixError):
    """A stale write: someone else changed the row first (optimistic locking)."""


class TemporaryError(PhoenixError):
    """Retry later; nothing was lost."""


class PermanentError(PhoenixError):
    """Will not succeed on retry; fail with this reason."""


class ShareLinkError(PhoenixError):
    """A share link that opens nothing: malformed, tampered, expired, revoked or aimed elsewhere.

    The message is shown to whoever holds the link, so it never echoes the token or a secret.
    """
