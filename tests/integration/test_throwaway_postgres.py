"""The suite's fallback when no PostgreSQL answers: a throwaway server from initdb/pg_ctl."""

from __future__ import annotations

import pytest

from core.domain.experiment import Experiment
from core.store.migrate import upgrade
from core.store.uow import Database
from tests.conftest import PG_PORT, ThrowawayPostgres, pg_answers


@pytest.mark.postgres
@pytest.mark.slow
def test_throwaway_server_starts_serves_and_is_removed() -> None:
    pg = ThrowawayPostgres()
    try:
        server = pg.start()
        assert server.port != PG_PORT and pg_answers(server.host, server.port, server.user)
        name = server.create_database()
        url = server.url(name)
        upgrade(url)
        db = Database(url)
        exp = Experiment.create(name="on a throwaway server", baseline="a", candidate="b")
        with db.uow() as uow:
            uow.experiments.add(exp)
            uow.commit()
        with db.uow() as uow:
            assert uow.experiments.get(exp.id).name == "on a throwaway server"
        db.dispose()
        server.drop_database(name)
    finally:
        pg.stop()
    assert not pg.dir.exists()
    assert not pg_answers("127.0.0.1", pg.port, "postgres")
