"""``phoenix db upgrade|current``: migrate the database named by PHOENIX_DATABASE_URL."""

from __future__ import annotations

import argparse

from core.commands import common
from core.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("db", help="database migrations")
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    dbsub.required = True
    up = dbsub.add_parser("upgrade", help="create or migrate the schema to the latest version")
    up.add_argument("--revision", default="head", help="target revision (default: head)")
    up.set_defaults(handler=_upgrade)
    cur = dbsub.add_parser("current", help="show the schema revision of the database")
    cur.set_defaults(handler=_current)
    prune = dbsub.add_parser("prune", help="delete measurements of experiments that ended longer ago than the "
                                          "retention (Settings); long-running schedulers do this hourly")
    common.add_identity(prune)
    prune.set_defaults(handler=_prune)


def _upgrade(args: argparse.Namespace) -> int:
    from core.store.db import masked
    from core.store.migrate import upgrade

    settings = Settings.from_env()
    rev = upgrade(settings.database_url, args.revision)
    print(f"database {masked(settings.database_url)} is at revision {rev}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from core.store.migrate import current_revision, head_revision, lacks_tables_error, missing_tables

    settings = Settings.from_env()
    rev = current_revision(settings.database_url)  # refuses a corrupted or foreign database
    head = head_revision()
    if rev == head and (missing := missing_tables(settings.database_url)):
        raise lacks_tables_error(settings.database_url, rev, missing)
    print(f"{rev or 'empty'} (latest: {head}{', up to date' if rev == head else ', run: phoenix db upgrade'})")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from core.bootstrap import bootstrap

    services = bootstrap(Settings.from_env())
    try:
        result = services.system.prune(common.identity(services.accounts, args))
    finally:
        services.close()
    print(f"deleted {result.samples_deleted} samples of experiments that ended before "
          f"{result.cutoff.isoformat(timespec='seconds')} (retention {result.retention_days} days)")
    return 0
