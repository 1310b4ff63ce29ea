"""Helpers every ``phoenix`` command group shares (who acts, the ``--critical-file`` rules).

Who acts (``identity``): ``--as NAME`` or ``PHOENIX_USER`` naming an account, else
``PHOENIX_TOKEN`` (an API token), else the OS login name when an account of that name
exists. The CLI trusts the local OS user the way ``psql`` trusts a peer: whoever can run
it against the database is who they say; a remote caller uses a token.

Here rather than in one command module so the command modules never import each other.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from core.domain.accounts import Actor
from core.domain.criteria import Target
from core.domain.critical import load_policy_file
from core.domain.errors import AuthenticationError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from core.bootstrap import Services
    from core.services.accounts import AccountService


def services() -> Services:
    """The wired services for one command (settings from the environment)."""
    # Imported here, not at the top: wiring pulls in the database and runtime stacks (~1 s),
    # which `phoenix --help` and the commands that need no services should not pay for.
    from core.bootstrap import bootstrap

    return bootstrap()


HOW_TO_IDENTIFY = ("pass --as NAME or set PHOENIX_USER to an account name (an admin adds one with "
                   "'phoenix user add'), or set PHOENIX_TOKEN to an API token ('phoenix token create')")


def add_identity(parser: argparse.ArgumentParser) -> None:
    """``--as NAME`` on a command (also accepted before the command: ``phoenix --as NAME …``)."""
    parser.add_argument("--as", dest="as_user", metavar="NAME", default=argparse.SUPPRESS,
                        help="act as this account (default: $PHOENIX_USER, $PHOENIX_TOKEN, then your login name)")


def _os_user() -> str | None:
    try:
        return getpass.getuser() or None
    except (KeyError, OSError):
        return None


def identity(accounts: AccountService, args: argparse.Namespace | None = None) -> Actor:
    """The acting account of this command (see the module doc); a clear error when there is none."""
    explicit = (getattr(args, "as_user", None) or os.environ.get("PHOENIX_USER", "")).strip()
    if explicit:
        try:
            return accounts.actor_for_name(explicit, "cli")
        except NotFoundError:
            raise AuthenticationError(f"no account named {explicit!r} (from --as or PHOENIX_USER); "
                                      f"{HOW_TO_IDENTIFY}") from None
    token = os.environ.get("PHOENIX_TOKEN", "").strip()
    if token:
        return accounts.actor_for_token(token, "cli")
    login = _os_user()
    if login:
        try:
            return accounts.actor_for_name(login, "cli")
        except NotFoundError:
            pass
    raise AuthenticationError(f"who is acting? your login name {login!r} is not a Phoenix account; {HOW_TO_IDENTIFY}")


@contextmanager
def acting(args: argparse.Namespace) -> Iterator[tuple[Services, Actor]]:
    """The wired services and this command's actor, closed afterwards (one command, one use)."""
    svc = services()
    try:
        yield svc, identity(svc.accounts, args)
    finally:
        svc.close()


def critical_rules_from(path: str | None, problems: list[str]) -> list[dict[str, str]] | None:
    """The ``--critical-file`` rules as stored on an experiment; problems are collected, not raised."""
    if not path:
        return None
    try:
        return [r.to_dict() for r in load_policy_file(path).rules]
    except ValidationError as exc:
        problems.extend(exc.problems)
        return None


def add_target(parser: argparse.ArgumentParser) -> None:
    """``--target``, ``--namespace``, ``--node-selector``: where both variants run."""
    parser.add_argument("--target", default="local", choices=["local", "kubernetes"],
                        help="local: this host; kubernetes: a namespace of the cluster (PHOENIX_RUNTIME=kubernetes)")
    parser.add_argument("--namespace", default=None, help="kubernetes namespace (target kubernetes)")
    parser.add_argument("--node-selector", action="append", default=[], metavar="KEY=VALUE",
                        help="run the collectors only on nodes with this label (target kubernetes; repeatable)")


def node_selector(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"--node-selector must be KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def target_from(args: argparse.Namespace) -> Target:
    return Target(kind=args.target, namespace=args.namespace, node_selector=node_selector(args.node_selector))
