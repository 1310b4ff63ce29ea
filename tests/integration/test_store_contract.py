"""The store contract: what services and the scheduler rely on from any unit of work.

One suite, three stores: SQLite and PostgreSQL (``core.store.uow``, migrated from empty) and
the in-memory fake (``core.store.memory``) the unit tests use, so the fake cannot drift from
the real thing. PostgreSQL comes from the throwaway server in ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.domain.accounts import Role, TokenRecord
from core.domain.errors import ConcurrencyError, NotFoundError, ValidationError
from core.domain.experiment import State
from core.domain.ports import Database, TableQuery
from core.domain.records import SnapshotRecord
from core.domain.samples import MeasurementSample
from core.store.memory import MemoryDatabase
from core.store.migrate import upgrade
from core.store.uow import Database as SqlDatabase
from tests.integration.test_store import T0, new_experiment


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "memory":
        yield MemoryDatabase()
        return
    url = f"sqlite:///{tmp_path / 'contract.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_empty_url")
    upgrade(url)
    db = SqlDatabase(url)
    try:
        yield db
    finally:
        db.dispose()


def test_experiment_round_trip(store: Database) -> None:
    exp = new_experiment()
    with store.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    assert exp.version == 1
    with store.uow() as uow:
        got = uow.experiments.get(exp.id)
    for f in ("id", "name", "description", "owner", "state", "baseline", "candidate", "target", "load", "timing",
              "criteria", "critical_rules", "dry_run", "created_at", "version"):
        assert getattr(got, f) == getattr(exp, f), f
    assert got.created_at.tzinfo is not None


def test_transitions_write_the_event_log_in_order(store: Database) -> None:
    exp = new_experiment()
    with store.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    steps = [("start", ()), ("mark_running", ()), ("begin_analysis", ())]
    for i, (name, _) in enumerate(steps):
        with store.uow() as uow:
            e = uow.experiments.get(exp.id)
            getattr(e, name)("scheduler:t", T0 + timedelta(seconds=i + 1))
            e.runtime_info = {"pids": [100 + i], "ports": {"baseline": 19000}}
            uow.experiments.save(e)
            uow.commit()
    with store.uow() as uow:
        e = uow.experiments.get(exp.id)
        e.complete({"verdict": "REJECT", "reasons": ["only 12% fewer series"]}, "scheduler:t", T0 + timedelta(seconds=9))
        uow.experiments.save(e)
        uow.commit()
    with store.uow() as uow:
        got = uow.experiments.get(exp.id)
    assert got.state is State.COMPLETED and got.version == 5
    assert got.result == {"verdict": "REJECT", "reasons": ["only 12% fewer series"]}
    assert got.runtime_info == {"pids": [102], "ports": {"baseline": 19000}}
    assert got.started_at == T0 + timedelta(seconds=2) and got.finished_at == T0 + timedelta(seconds=9)
    assert [(ev.from_state, ev.to_state, ev.at) for ev in got.events] == [
        ("Pending", "Initializing", T0 + timedelta(seconds=1)),
        ("Initializing", "Running", T0 + timedelta(seconds=2)),
        ("Running", "Analyzing", T0 + timedelta(seconds=3)),
        ("Analyzing", "Completed", T0 + timedelta(seconds=9)),
    ]


def test_optimistic_lock_conflict(store: Database) -> None:
    exp = new_experiment()
    with store.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    with store.uow() as u1, store.uow() as u2:
        a = u1.experiments.get(exp.id)
        b = u2.experiments.get(exp.id)
        a.start("scheduler:a")
        u1.experiments.save(a)
        u1.commit()
        b.cancel("alice")
        with pytest.raises(ConcurrencyError, match=f"experiment {exp.id} was changed by someone else"):
            u2.experiments.save(b)
    with store.uow() as uow:
        got = uow.experiments.get(exp.id)
    assert got.state is State.INITIALIZING  # the stale write did not overwrite
    assert [e.to_state for e in got.events] == ["Initializing"]


def test_stale_object_from_an_earlier_unit_is_rejected(store: Database) -> None:
    exp = new_experiment()
    with store.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    stale = new_experiment(id=exp.id)
    stale.version = 1
    with store.uow() as uow:
        e = uow.experiments.get(exp.id)
        e.start("s")
        uow.experiments.save(e)
        uow.commit()
    stale.cancel("bob")
    with store.uow() as uow, pytest.raises(ConcurrencyError):
        uow.experiments.save(stale)


def test_list_and_counts(store: Database) -> None:
    ids = []
    for i in range(3):
        e = new_experiment(name=f"e{i}", now=T0 + timedelta(minutes=i))
        with store.uow() as uow:
            uow.experiments.add(e)
            uow.commit()
        ids.append(e.id)
    with store.uow() as uow:
        e = uow.experiments.get(ids[0])
        e.cancel("alice")
        uow.experiments.save(e)
        uow.commit()
    with store.uow() as uow:
        assert [e.id for e in uow.experiments.list()] == list(reversed(ids))  # newest first
        assert [e.id for e in uow.experiments.list(states=["Cancelled"])] == [ids[0]]
        assert uow.experiments.counts_by_state() == {"Pending": 2, "Cancelled": 1}
        with pytest.raises(NotFoundError):
            uow.experiments.get("exp-missing")


def test_keyset_pages_walk_newest_first_without_gaps_or_repeats(store: Database) -> None:
    # pairs share a created_at, so the id breaks ties; owners and pipelines vary for the filters
    made = []
    for i in range(7):
        e = new_experiment(name=f"k{i}", now=T0 + timedelta(minutes=i // 2), owner="bob" if i % 3 == 0 else "alice",
                           candidate="process-topk-v1" if i % 2 else "process-attrs-v1")
        with store.uow() as uow:
            uow.experiments.add(e)
            uow.commit()
        made.append(e)
    with store.uow() as uow:
        done = uow.experiments.get(made[4].id)
        done.start("t"), done.mark_running("t"), done.begin_analysis("t")
        done.complete({"verdict": "PROMOTE", "reasons": ["a big body the listing never reads"] * 50}, "t")
        uow.experiments.save(done)
        uow.commit()
    newest_first = [e.id for e in sorted(made, key=lambda e: (e.created_at, e.id), reverse=True)]

    def walk(limit: int, **filters: object) -> list[str]:
        seen: list[str] = []
        after = None
        while True:
            with store.uow() as uow:
                page = uow.experiments.page(after=after, limit=limit, **filters)  # type: ignore[arg-type]
            assert len(page) <= limit
            seen += [r.id for r in page]
            if len(page) < limit:
                return seen
            after = page[-1].key

    assert walk(3) == newest_first
    assert walk(1) == newest_first
    assert walk(50) == newest_first
    assert walk(2, owner="bob") == [i for i in newest_first if i in {made[0].id, made[3].id, made[6].id}]
    assert walk(2, pipeline="process-attrs-v1") == [i for i in newest_first
                                                    if i in {made[n].id for n in (0, 2, 4, 6)}]
    assert walk(2, pipeline="process-baseline-v1") == newest_first  # the baseline side matches too
    assert walk(2, states=[State.COMPLETED]) == [made[4].id]
    with store.uow() as uow:
        row = uow.experiments.page(states=[State.COMPLETED], limit=1)[0]
    assert (row.verdict, row.state, row.owner, row.candidate) == ("PROMOTE", "Completed", "alice", "process-attrs-v1")
    assert row.created_at == made[4].created_at and row.created_at.tzinfo is not None
    assert row.finished_at is not None


def test_the_table_filters_sorts_and_pages_in_the_store(store: Database) -> None:
    reductions = [None, 40.0, 75.5, None, 12.0, 75.5]  # ties and experiments never analysed
    made = []
    for i, red in enumerate(reductions):
        e = new_experiment(name=f"t{(i * 5) % 6}", now=T0 + timedelta(minutes=i), owner="bob" if i % 2 else "al",
                           candidate="process-topk-v1" if i % 3 else "process-attrs-v1")
        if red is not None:
            e.start("t"), e.mark_running("t"), e.begin_analysis("t")
            e.complete({"verdict": "PROMOTE" if red > 50 else "REJECT", "series_reduction_pct": red}, "t")
        with store.uow() as uow:
            uow.experiments.add(e)
            uow.commit()
        made.append(e)

    def ids(**q: object) -> list[str]:
        with store.uow() as uow:
            return [r.id for r in uow.experiments.table(TableQuery(**q))]  # type: ignore[arg-type]

    by_id = {e.id: e for e in made}
    analysed = [e for e in made if e.result]
    never = sorted((e.id for e in made if not e.result), reverse=True)
    want = [e.id for e in sorted(analysed, key=lambda e: (e.result["series_reduction_pct"], e.id), reverse=True)]
    assert ids(sort="reduction", limit=50) == want + never  # no value: last, whatever the direction
    asc = [e.id for e in sorted(analysed, key=lambda e: (e.result["series_reduction_pct"], e.id))]
    assert ids(sort="reduction", descending=False, limit=50) == asc + sorted(never)
    assert ids(sort="name", descending=False, limit=50) == [e.id for e in sorted(made, key=lambda e: (e.name, e.id))]
    newest = [e.id for e in sorted(made, key=lambda e: (e.created_at, e.id), reverse=True)]
    assert ids(limit=50) == newest
    walked = [i for off in range(0, 6, 4) for i in ids(sort="reduction", offset=off, limit=4)]
    assert walked == want + never  # pages neither overlap nor skip
    assert ids(owner="bob", limit=50) == [i for i in newest if by_id[i].owner == "bob"]
    assert ids(pipeline="process-attrs-v1", limit=50) == [i for i in newest if by_id[i].candidate.name == "process-attrs-v1"]
    assert ids(verdict="PROMOTE", limit=50) == [i for i in newest if (by_id[i].result or {}).get("verdict") == "PROMOTE"]
    assert ids(states=(State.PENDING,), limit=50) == [i for i in newest if by_id[i].state is State.PENDING]
    with store.uow() as uow:
        top = uow.experiments.table(TableQuery(sort="reduction", limit=1))[0]
    assert (top.reduction_pct, top.verdict, top.state) == (75.5, "PROMOTE", "Completed")
    with pytest.raises(ValidationError), store.uow() as uow:
        uow.experiments.table(TableQuery(sort="nonsense"))


def test_audit_pages_by_id_newest_first_with_filters(store: Database) -> None:
    with store.uow() as uow:
        for i in range(7):
            uow.audit.add("alice" if i % 2 else "bob", "experiment.create", f"exp-{i % 3}", {"i": i}, source="api")
        uow.commit()

    def walk(limit: int, **filters: str) -> list[int]:
        seen: list[int] = []
        before = None
        while True:
            with store.uow() as uow:
                page = uow.audit.page(before=before, limit=limit, **filters)
            seen += [e.details["i"] for _, e in page]
            if len(page) < limit:
                return seen
            before = page[-1][0]

    assert walk(3) == [6, 5, 4, 3, 2, 1, 0] == walk(1) == walk(10)
    assert walk(2, actor="alice") == [5, 3, 1]
    assert walk(2, subject="exp-0") == [6, 3, 0]
    assert walk(2, subject="exp-0", actor="bob") == [6, 0]
    with store.uow() as uow:
        (row_id, entry), = uow.audit.page(actor="alice", limit=1)
    assert (entry.actor, entry.source, entry.subject) == ("alice", "api", "exp-2") and isinstance(row_id, int)


def test_uncommitted_unit_rolls_back(store: Database) -> None:
    with store.uow() as uow:
        uow.experiments.add(new_experiment())
    with store.uow() as uow:
        assert uow.experiments.list() == []


def test_claims_are_exclusive_and_expire(store: Database) -> None:
    e1, e2 = new_experiment(now=T0), new_experiment(now=T0 + timedelta(seconds=1))
    with store.uow() as uow:
        uow.experiments.add(e1)
        uow.experiments.add(e2)
        uow.commit()
    with store.uow() as uow:
        assert uow.experiments.claim("a", T0, 30, limit=1) == [e1.id]
        uow.commit()
    with store.uow() as uow:
        assert uow.experiments.claim("b", T0, 30) == [e2.id]
        uow.commit()
    with store.uow() as uow:
        assert uow.experiments.holds_claim(e1.id, "a", T0 + timedelta(seconds=5))
        assert not uow.experiments.holds_claim(e1.id, "b", T0)
        assert uow.experiments.claim("c", T0 + timedelta(seconds=10), 30) == []
        assert sorted(uow.experiments.claim("c", T0 + timedelta(seconds=31), 30)) == sorted([e1.id, e2.id])
        uow.commit()
    with store.uow() as uow:
        uow.experiments.release_all("c")
        uow.commit()
    with store.uow() as uow:
        assert uow.experiments.claims() == {e1.id: None, e2.id: None}
        # claims never bump the optimistic version
        assert uow.experiments.get(e1.id).version == 1


def test_terminal_experiments_are_claimed_only_for_teardown(store: Database) -> None:
    done, pending_teardown = new_experiment(), new_experiment()
    with store.uow() as uow:
        uow.experiments.add(done)
        uow.experiments.add(pending_teardown)
        uow.commit()
    for exp, deployed in ((done, False), (pending_teardown, True)):
        with store.uow() as uow:
            e = uow.experiments.get(exp.id)
            e.start("s")
            if deployed:
                e.runtime_info = {"pids": [1]}
            e.cancel("alice")
            uow.experiments.save(e)
            uow.commit()
    with store.uow() as uow:
        assert uow.experiments.claim("s", T0 + timedelta(days=1), 30) == [pending_teardown.id]


def test_pipeline_versions_are_numbered_and_immutable(store: Database) -> None:
    with store.uow() as uow:
        v1 = uow.pipelines.add_version("my-pipe", {"nodes": [1]}, "receivers: {}\n", message="first", author="alice",
                                       commit_id="abc123", computed={"series": 10})
        v2 = uow.pipelines.add_version("my-pipe", {"nodes": [1, 2]}, "receivers: {}\n", message="second")
        uow.pipelines.add_version("other", {"nodes": []})
        uow.commit()
    assert (v1.number, v2.number, v2.ref) == (1, 2, "my-pipe@2")
    with store.uow() as uow:
        assert uow.pipelines.get_version("my-pipe").graph == {"nodes": [1, 2]}
        first = uow.pipelines.get_version("my-pipe", 1)
        assert (first.message, first.author, first.commit_id, first.computed) == ("first", "alice", "abc123", {"series": 10})
        assert [v.number for v in uow.pipelines.list_versions("my-pipe")] == [1, 2]
        assert [(p.name, p.latest_version) for p in uow.pipelines.list_pipelines()] == [("my-pipe", 2), ("other", 1)]
        with pytest.raises(NotFoundError, match="has no version 7"):
            uow.pipelines.get_version("my-pipe", 7)
        with pytest.raises(NotFoundError, match="no saved pipeline named 'nope'"):
            uow.pipelines.list_versions("nope")
        with pytest.raises(ValidationError):
            uow.pipelines.ensure_pipeline(" ")
        repository = type(uow.pipelines)
    assert not [m for m in dir(repository) if m.startswith(("update", "edit", "set"))]


def test_samples_audit_processes_settings(store: Database) -> None:
    exp = new_experiment()
    with store.uow() as uow:
        uow.experiments.add(exp)
        uow.samples.add_many([
            MeasurementSample(exp.id, v, T0 + timedelta(seconds=10 * i), 1000 - 600 * (v == "candidate"), 1000, 80_000,
                              collector_cpu_pct=1.5, collector_rss_mb=60.0, critical_coverage_pct=100.0,
                              processes_seen=250, series_created=3, series_removed=1)
            for i in range(3) for v in ("baseline", "candidate")
        ])
        uow.audit.add("alice", "experiment.create", exp.id, {"name": exp.name})
        pid_row = uow.processes.add(exp.id, "baseline", 4242, 19000)
        uow.settings.set("price_cards", {"grafana": 6.5}, by="alice")
        uow.commit()
    with store.uow() as uow:
        samples = uow.samples.list(exp.id)
        assert len(samples) == 6 and uow.samples.count(exp.id) == 6
        assert [s.series for s in uow.samples.list(exp.id, variant="candidate")] == [400, 400, 400]
        assert len(uow.samples.list(exp.id, since=T0 + timedelta(seconds=5))) == 4
        assert samples[0].t == T0 and samples[0].critical_coverage_pct == 100.0
        with pytest.raises(ValidationError, match="variant must be one of baseline, candidate"):
            uow.samples.add(MeasurementSample(exp.id, "third", T0, 1, 1, 1))
    with store.uow() as uow:
        (entry,) = uow.audit.list(subject=exp.id)
        assert (entry.actor, entry.action, entry.details) == ("alice", "experiment.create", {"name": "store test"})
        (proc,) = uow.processes.list(owner_ref=exp.id)
        assert (proc.pid, proc.port, proc.status) == (4242, 19000, "running")
        uow.processes.set_status(pid_row, "stopped")
        uow.settings.set("price_cards", {"grafana": 7.0})
        uow.commit()
    with store.uow() as uow:
        assert uow.processes.list(status="running") == []
        assert uow.settings.get("price_cards") == {"grafana": 7.0}
        assert uow.settings.get("missing", "dflt") == "dflt"
        assert uow.settings.all() == {"price_cards": {"grafana": 7.0}}


def test_retention_prunes_only_samples_of_experiments_that_ended_before_the_cutoff(store: Database) -> None:
    old_done, recent_done, running = new_experiment(), new_experiment(), new_experiment()
    with store.uow() as uow:
        for exp in (old_done, recent_done, running):
            uow.experiments.add(exp)
        uow.commit()
    with store.uow() as uow:
        for exp, ended in ((old_done, T0 + timedelta(days=1)), (recent_done, T0 + timedelta(days=20))):
            exp = uow.experiments.get(exp.id)
            exp.cancel("alice", now=ended)
            uow.experiments.save(exp)
        exp = uow.experiments.get(running.id)
        exp.start("scheduler", now=T0)  # active: never pruned, however old
        uow.experiments.save(exp)
        for exp in (old_done, recent_done, running):
            uow.samples.add_many(MeasurementSample(exp.id, v, T0 + timedelta(seconds=i), 10, 10, 100)
                                 for i in range(3) for v in ("baseline", "candidate"))
        uow.commit()
    with store.uow() as uow:
        assert uow.samples.prune_finished_before(T0 + timedelta(days=10)) == 6
        uow.commit()
    with store.uow() as uow:
        assert uow.samples.count(old_done.id) == 0
        assert uow.samples.count(recent_done.id) == 6
        assert uow.samples.count(running.id) == 6
        assert uow.experiments.get(old_done.id).state == State.CANCELLED  # the experiment itself stays
        assert uow.samples.prune_finished_before(T0 + timedelta(days=10)) == 0  # idempotent


def test_share_links_are_added_listed_and_revoked(store: Database) -> None:
    from core.domain.records import ShareLinkRecord

    a = ShareLinkRecord("0123456789abcdef", "experiment", "exp-1", "alice", T0, T0 + timedelta(days=7))
    b = ShareLinkRecord("fedcba9876543210", "experiment", "exp-1", "bob", T0 + timedelta(hours=1), T0 + timedelta(days=1))
    other = ShareLinkRecord("00000000000000aa", "pipeline", "team-topk@2", "alice", T0, T0 + timedelta(days=1))
    with store.uow() as uow:
        for link in (a, b, other):
            uow.share_links.add(link)
        uow.commit()
    with store.uow() as uow:
        assert uow.share_links.get(a.id) == a
        assert [s.id for s in uow.share_links.list_for("experiment", "exp-1")] == [b.id, a.id]  # newest first
        assert uow.share_links.list_for("pipeline", "team-topk@2") == [other]
        assert uow.share_links.list_for("experiment", "exp-2") == []
        with pytest.raises(NotFoundError):
            uow.share_links.get("ffffffffffffffff")
        revoked = uow.share_links.revoke(a.id, "carol", T0 + timedelta(hours=2))
        uow.commit()
    assert (revoked.revoked_by, revoked.revoked_at) == ("carol", T0 + timedelta(hours=2))
    with store.uow() as uow:
        again = uow.share_links.revoke(a.id, "dave", T0 + timedelta(hours=3))  # the first revocation stays
        uow.commit()
    assert again == revoked
    with store.uow() as uow:
        assert uow.share_links.get(a.id) == revoked and uow.share_links.get(b.id).revoked_at is None
        with pytest.raises(NotFoundError):
            uow.share_links.revoke("ffffffffffffffff", "carol", T0)


def test_users_and_tokens_round_trip(store: Database) -> None:
    now = T0
    with store.uow() as uow:
        assert uow.users.count() == 0 and uow.users.find("alice") is None
        uow.users.add("alice", Role.OPERATOR, "argon2-hash-a")
        uow.users.add("bob", Role.VIEWER, "argon2-hash-b")
        with pytest.raises(ValidationError, match="already exists"):
            uow.users.add("alice", Role.ADMIN, "x")
        uow.commit()
    with store.uow() as uow:
        assert [u.name for u in uow.users.list()] == ["alice", "bob"] and uow.users.count() == 2
        alice = uow.users.get("alice")
        assert (alice.role, alice.disabled, alice.failed_logins, alice.locked_until) == (Role.OPERATOR, False, 0, None)
        assert uow.users.password_hash("alice") == "argon2-hash-a" and uow.users.password_hash("zed") is None
        with pytest.raises(NotFoundError):
            uow.users.get("zed")
        uow.users.update("alice", role=Role.ADMIN, failed_logins=3, locked_until=now + timedelta(minutes=15))
        uow.users.update("bob", disabled=True, password_hash="new-hash")
        token = TokenRecord("t1", "alice", "ci", Role.OPERATOR, now, now + timedelta(hours=1))
        uow.tokens.add(token, "sha-of-secret")
        uow.commit()
    with store.uow() as uow:
        alice = uow.users.get("alice")
        assert (alice.role, alice.failed_logins, alice.locked_until) == (Role.ADMIN, 3, now + timedelta(minutes=15))
        assert uow.users.get("bob").disabled and uow.users.password_hash("bob") == "new-hash"
        assert uow.tokens.by_hash("sha-of-secret") == token and uow.tokens.by_hash("other") is None
        assert uow.tokens.list("alice") == [token] and uow.tokens.list("bob") == []
        uow.tokens.update("t1", revoked_at=now + timedelta(minutes=1))
        uow.commit()
    with store.uow() as uow:
        assert uow.tokens.get("t1").revoked_at == now + timedelta(minutes=1)
        with pytest.raises(NotFoundError):
            uow.tokens.get("t2")


def test_audit_keeps_source_before_after_and_has_no_update_or_delete(store: Database) -> None:
    with store.uow() as uow:
        uow.audit.add("alice", "user.manage", "bob", {"x": 1}, source="cli",
                      before={"role": "viewer"}, after={"role": "operator"})
        uow.commit()
    with store.uow() as uow:
        (entry,) = uow.audit.list(subject="bob")
        assert (entry.source, entry.before, entry.after) == ("cli", {"role": "viewer"}, {"role": "operator"})
        repository = type(uow.audit)
    public = {m for m in dir(repository) if not m.startswith("_")}
    assert public == {"add", "list", "page"}, "the audit repository is append and read only"


def test_the_event_log_and_samples_read_after_a_cursor(store: Database) -> None:
    a, b = new_experiment(), new_experiment()
    with store.uow() as uow:
        assert uow.experiments.last_event_id() == 0
        uow.experiments.add(a)
        uow.experiments.add(b)
        uow.commit()
    for exp, when in ((a, 1), (b, 2), (a, 3)):
        with store.uow() as uow:
            e = uow.experiments.get(exp.id)
            (e.start if e.state is State.PENDING else e.mark_running)("scheduler:t", T0 + timedelta(seconds=when))
            uow.experiments.save(e)
            uow.samples.add_many([MeasurementSample(exp.id, "baseline", T0 + timedelta(seconds=when), when, 1, 1)])
            uow.commit()
    with store.uow() as uow:
        feed = uow.experiments.events_after(0)
        assert [(ev.experiment_id, ev.to_state) for _, ev in feed] == [
            (a.id, "Initializing"), (b.id, "Initializing"), (a.id, "Running")]
        ids = [i for i, _ in feed]
        assert ids == sorted(ids) and len(set(ids)) == 3 and uow.experiments.last_event_id() == ids[-1]
        assert [ev.to_state for _, ev in uow.experiments.events_after(ids[0])] == ["Initializing", "Running"]
        assert len(uow.experiments.events_after(0, limit=2)) == 2
        mine = uow.samples.after(a.id, 0)
        assert [s.series for _, s in mine] == [1, 3]  # only a's, in the order stored
        assert [s.series for _, s in uow.samples.after(a.id, mine[0][0])] == [3]
        assert uow.samples.after(a.id, mine[-1][0]) == []
        assert len(uow.samples.after(a.id, 0, limit=1)) == 1


def test_scheduler_heartbeats_keep_one_row_per_scheduler(store: Database) -> None:
    from core.domain.ports import SchedulerBeat

    with store.uow() as uow:
        assert uow.heartbeats.newest() is None
        uow.heartbeats.beat(SchedulerBeat("host:1:aa", "host", 1, T0, T0 + timedelta(seconds=1)))
        uow.heartbeats.beat(SchedulerBeat("host:2:bb", "host", 2, T0, T0 + timedelta(seconds=5)))
        uow.commit()
    with store.uow() as uow:
        assert uow.heartbeats.newest() == SchedulerBeat("host:2:bb", "host", 2, T0, T0 + timedelta(seconds=5))
        uow.heartbeats.beat(SchedulerBeat("host:1:aa", "host", 1, T0, T0 + timedelta(seconds=9)))  # overwrite
        uow.commit()
    with store.uow() as uow:
        newest = uow.heartbeats.newest()
        assert newest is not None and (newest.scheduler_id, newest.beat_at) == ("host:1:aa", T0 + timedelta(seconds=9))
        uow.heartbeats.beat(SchedulerBeat("host:3:cc", "host", 3, T0, T0 + timedelta(seconds=99)))
        # leaving without commit: rolled back
    with store.uow() as uow:
        assert uow.heartbeats.newest().scheduler_id == "host:1:aa"  # type: ignore[union-attr]


def _snap(scope: str, sha: str, minutes: int) -> SnapshotRecord:
    return SnapshotRecord(0, scope, T0 + timedelta(minutes=minutes), T0, "alice", "snap.csv", 2, 10, 3, sha, 4)


def test_snapshots_are_stored_listed_newest_first_read_and_pruned(store: Database) -> None:
    with store.uow() as uow:
        a = uow.snapshots.add(_snap("fleet", "a" * 64, 1), b"AAAA")
        b = uow.snapshots.add(_snap("fleet", "b" * 64, 5), b"BBBB")
        uow.snapshots.add(_snap("other", "a" * 64, 9), b"CCCC")  # same content, another scope
        uow.commit()
    assert a.id != b.id
    with store.uow() as uow:
        assert [r.sha256[0] for r in uow.snapshots.list("fleet")] == ["b", "a"]
        assert len(uow.snapshots.list()) == 3 and uow.snapshots.list("fleet", limit=1)[0].id == b.id
        got = uow.snapshots.list("fleet")[1]
        assert (got.scope, got.taken_at, got.added_by, got.rows, got.size_bytes) == ("fleet", T0 + timedelta(minutes=1),
                                                                                    "alice", 10, 4)
        assert uow.snapshots.data(a.id) == b"AAAA"
        with pytest.raises(NotFoundError):
            uow.snapshots.data(10_000)
        with pytest.raises(ValidationError, match="already stored"):
            uow.snapshots.add(_snap("fleet", "a" * 64, 7), b"AAAA")
    with store.uow() as uow:
        uow.snapshots.add(_snap("fleet", "c" * 64, 3), b"CC")
        # leaving without commit: rolled back
    with store.uow() as uow:
        assert len(uow.snapshots.list("fleet")) == 2
        assert uow.snapshots.prune("fleet", keep=1) == 1
        uow.commit()
    with store.uow() as uow:
        assert [r.id for r in uow.snapshots.list("fleet")] == [b.id]
        assert len(uow.snapshots.list("other")) == 1
