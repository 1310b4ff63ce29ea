"""Helpers every ``phoenix`` command group shares (who acts, the ``--critical-file`` rules).

Here rather than in one command module so the command modules never import each other.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

from core.domain.critical import load_policy_file
from core.domain.errors import ValidationError

if TYPE_CHECKING:
    from core.bootstrap import Services


def services() -> Services:
    """The wired services for one command (settings from the environment)."""
    # Imported here, not at the top: wiring pulls in the database and runtime stacks (~1 s),
    # which `phoenix --help` and the commands that need no services should not pay for.
    from core.bootstrap import bootstrap

    return bootstrap()


def actor(explicit: str | None = None) -> str:
    """Who runs the command: ``explicit``, else the login name, else ``anonymous``."""
    if explicit:
        return explicit
    try:
        return getpass.getuser() or "anonymous"
    except (KeyError, OSError):
        return "anonymous"


def critical_rules_from(path: str | None, problems: list[str]) -> list[dict[str, str]] | None:
    """The ``--critical-file`` rules as stored on an experiment; problems are collected, not raised."""
    if not path:
        return None
    try:
        return [r.to_dict() for r in load_policy_file(path).rules]
    except ValidationError as exc:
        problems.extend(exc.problems)
        return None
