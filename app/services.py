"""One bootstrap per app process, cached: migrates the database and starts the scheduler once.

Pages reach core only through ``get_services()`` (or ``app.widgets.backend``), never
through ``core.store``. The cache key is the database URL and runtime, so a test that
points ``PHOENIX_DATABASE_URL`` elsewhere gets its own services.
"""

from __future__ import annotations

import logging

import streamlit as st

from core.bootstrap import Services, bootstrap
from core.settings import Settings

log = logging.getLogger("phoenix.app")
# Every Services this process bootstrapped, so close_all() can stop their schedulers.
_STARTED: list[Services] = []


@st.cache_resource(show_spinner="Starting Phoenix…")
def _services(database_url: str, runtime: str, embedded_scheduler: bool) -> Services:
    settings = Settings.from_env()
    services = bootstrap(settings, migrate=True)
    if embedded_scheduler:
        scheduler = services.start_scheduler()
        log.info("embedded scheduler %s started", scheduler.id)
    _STARTED.append(services)
    return services


def get_services() -> Services:
    s = Settings.from_env()
    return _services(s.database_url, s.runtime, s.embedded_scheduler)


def close_all() -> None:
    """Stop every embedded scheduler, release the databases and forget the cached services."""
    while _STARTED:
        _STARTED.pop().close()
    _services.clear()
