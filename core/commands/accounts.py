"""``phoenix user …`` and ``phoenix token …``: local accounts and API tokens.

Passwords come on standard input (``--password-stdin``), never as an argument a process
list or shell history would show. A token's secret is printed once, when it is created.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.commands import common
from core.domain.durations import parse_duration
from core.domain.errors import ValidationError

ROLES = ("viewer", "operator", "admin")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    u = sub.add_parser("user", help="local accounts: add, list, set-role, disable, reset-password, init")
    usub = u.add_subparsers(dest="user_command", metavar="ACTION")
    usub.required = True
    add = usub.add_parser("add", help="add an account (admin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true", required=True,
                     help="read the password from the first line of standard input")
    add.set_defaults(handler=_add)
    ls = usub.add_parser("list", help="list accounts (admin)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_list)
    sr = usub.add_parser("set-role", help="change an account's role (admin)")
    sr.add_argument("name")
    sr.add_argument("role", choices=ROLES)
    sr.set_defaults(handler=_set_role)
    dis = usub.add_parser("disable", help="disable an account: it can no longer sign in or use its tokens (admin)")
    dis.add_argument("name")
    dis.set_defaults(handler=_disable)
    rp = usub.add_parser("reset-password", help="set a new password, lifting a lockout (admin)")
    rp.add_argument("name")
    rp.add_argument("--password-stdin", action="store_true", required=True,
                    help="read the password from the first line of standard input")
    rp.set_defaults(handler=_reset_password)
    init = usub.add_parser("init", help="first run: create 'admin' with a random password when no account exists")
    init.set_defaults(handler=_init)
    for p in (add, ls, sr, dis, rp):
        common.add_identity(p)

    t = sub.add_parser("token", help="API tokens: create, list, revoke")
    tsub = t.add_subparsers(dest="token_command", metavar="ACTION")
    tsub.required = True
    tc = tsub.add_parser("create", help="a new token for yourself; prints its secret once")
    tc.add_argument("name", help="what the token is for (e.g. ci)")
    tc.add_argument("--ttl", required=True, help="lifetime, like 1h or 720h (at most 366 days)")
    tc.add_argument("--role", choices=ROLES, default=None, help="at most your own role (default: yours)")
    tc.set_defaults(handler=_token_create)
    tl = tsub.add_parser("list", help="your tokens (--all: everyone's, admin)")
    tl.add_argument("--all", action="store_true")
    tl.add_argument("--json", action="store_true")
    tl.set_defaults(handler=_token_list)
    tr = tsub.add_parser("revoke", help="revoke a token by id")
    tr.add_argument("id")
    tr.set_defaults(handler=_token_revoke)
    for p in (tc, tl, tr):
        common.add_identity(p)


def _password_from_stdin() -> str:
    if sys.stdin is None or sys.stdin.isatty():
        raise ValidationError("--password-stdin: pipe the password in, e.g. printf '%s' \"$PW\" | phoenix user add …")
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise ValidationError("--password-stdin: standard input was empty")
    return password


def _add(args: argparse.Namespace) -> int:
    password = _password_from_stdin()
    with common.acting(args) as (services, actor):
        rec = services.accounts.add_user(actor, args.name, args.role, password)
    print(f"added {rec.name} ({rec.role.label})")
    return 0


def _list(args: argparse.Namespace) -> int:
    with common.acting(args) as (services, actor):
        users = services.accounts.list_users(actor)
    if args.json:
        print(json.dumps([{"name": u.name, "role": u.role.label, "disabled": u.disabled,
                           "locked_until": u.locked_until.isoformat() if u.locked_until else None,
                           "created_at": u.created_at.isoformat()} for u in users], indent=2))
        return 0
    print(f"{'NAME':<24} {'ROLE':<9} STATUS")
    for u in users:
        print(f"{u.name:<24} {u.role.label:<9} {'disabled' if u.disabled else 'active'}")
    return 0


def _set_role(args: argparse.Namespace) -> int:
    with common.acting(args) as (services, actor):
        rec = services.accounts.set_role(actor, args.name, args.role)
    print(f"{rec.name} is now {rec.role.label}")
    return 0


def _disable(args: argparse.Namespace) -> int:
    with common.acting(args) as (services, actor):
        rec = services.accounts.disable(actor, args.name)
    print(f"{rec.name} is disabled")
    return 0


def _reset_password(args: argparse.Namespace) -> int:
    password = _password_from_stdin()
    with common.acting(args) as (services, actor):
        rec = services.accounts.reset_password(actor, args.name, password)
    print(f"password of {rec.name} reset")
    return 0


def _init(args: argparse.Namespace) -> int:
    services = common.services()
    try:
        data_dir = services.settings.data_dir
        password = services.accounts.ensure_initial_admin(data_dir)
    finally:
        services.close()
    if password is not None:
        # printed once, here; the file is for whoever missed the console
        print(f"initial admin password: {password}, also in {data_dir}/initial_admin_password (0600)")
    return 0


def _token_create(args: argparse.Namespace) -> int:
    ttl = parse_duration(args.ttl, "--ttl")
    with common.acting(args) as (services, actor):
        rec, secret = services.accounts.create_token(actor, args.name, ttl,
                                                     role=args.role)
    print(secret)
    print(f"token {rec.id} ({rec.name}, {rec.role.label}) expires {rec.expires_at:%Y-%m-%d %H:%M} UTC; "
          "the secret above is shown only now: use it as PHOENIX_TOKEN", file=sys.stderr)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    with common.acting(args) as (services, actor):
        tokens = services.accounts.list_tokens(actor, everyone=args.all)
    if args.json:
        print(json.dumps([{"id": t.id, "owner": t.owner, "name": t.name, "role": t.role.label,
                           "expires_at": t.expires_at.isoformat(),
                           "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                           "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None}
                          for t in tokens], indent=2))
        return 0
    print(f"{'ID':<13} {'OWNER':<16} {'NAME':<16} {'ROLE':<9} {'EXPIRES (UTC)':<17} STATUS")
    for t in tokens:
        status = "revoked" if t.revoked_at else "active"
        print(f"{t.id:<13} {t.owner:<16} {t.name[:16]:<16} {t.role.label:<9} {t.expires_at:%Y-%m-%d %H:%M}  {status}")
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    with common.acting(args) as (services, actor):
        rec = services.accounts.revoke_token(actor, args.id)
    print(f"token {rec.id} ({rec.name}) revoked")
    return 0
