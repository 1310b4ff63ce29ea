"""``phoenix share create|list|revoke``: signed, expiring, read-only links.

``create EXPERIMENT_ID`` or ``create --pipeline NAME@N`` prints the URL (``--ttl 24h``,
default 7 days). ``list`` takes an experiment id or ``--pipeline NAME@N``; ``revoke`` a link id.
"""

from __future__ import annotations

import argparse
import json

from core.commands import common
from core.domain.errors import ValidationError
from core.services.shares import EXPERIMENT, PIPELINE, parse_ttl


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("share", help="create, list and revoke read-only share links")
    ssub = p.add_subparsers(dest="share_command", metavar="ACTION")
    ssub.required = True

    c = ssub.add_parser("create", help="a signed read-only link to one experiment or pipeline version")
    c.add_argument("id", nargs="?", help="experiment id")
    c.add_argument("--pipeline", default=None, metavar="NAME@N", help="share a pipeline version instead")
    c.add_argument("--ttl", default="7d", help="how long the link opens: 30m, 24h, 7d, 2w (default 7d)")
    common.add_identity(c)
    c.set_defaults(handler=_create)

    ls = ssub.add_parser("list", help="the links made to one experiment or pipeline version")
    ls.add_argument("id", nargs="?", help="experiment id")
    ls.add_argument("--pipeline", default=None, metavar="NAME@N")
    ls.add_argument("--json", action="store_true")
    common.add_identity(ls)
    ls.set_defaults(handler=_list)

    r = ssub.add_parser("revoke", help="stop a link from opening")
    r.add_argument("link_id")
    common.add_identity(r)
    r.set_defaults(handler=_revoke)


def _scope(args: argparse.Namespace) -> tuple[str, str]:
    if bool(args.id) == bool(args.pipeline):
        raise ValidationError("give an experiment id or --pipeline NAME@N (one of them)")
    return (EXPERIMENT, args.id.strip()) if args.id else (PIPELINE, args.pipeline.strip())


def _create(args: argparse.Namespace) -> int:
    kind, ref = _scope(args)
    ttl = parse_ttl(args.ttl)
    with common.acting(args) as (services, actor):
        link, url = services.shares.create(actor, kind, ref, ttl)
    print(url)
    print(f"link {link.id} to {kind} {ref}, expires {link.expires_at:%Y-%m-%d %H:%M} UTC", flush=True)
    return 0


def _list(args: argparse.Namespace) -> int:
    kind, ref = _scope(args)
    with common.acting(args) as (services, actor):
        links = services.shares.list_for(actor, kind, ref)
        rows = [{"id": s.id, "created_by": s.created_by, "created_at": s.created_at.isoformat(),
                 "expires_at": s.expires_at.isoformat(), "status": services.shares.status(s),
                 "revoked_by": s.revoked_by} for s in links]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no share links to {kind} {ref}")
    else:
        for row in rows:
            print(f"{row['id']}  {row['status']:<8} by {row['created_by']}  expires {row['expires_at'][:16]}"
                  + (f"  revoked by {row['revoked_by']}" if row["revoked_by"] else ""))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with common.acting(args) as (services, actor):
        link = services.shares.revoke(actor, args.link_id)
    print(f"revoked link {link.id} to {link.scope_kind} {link.scope_ref} (by {link.revoked_by})")
    return 0
