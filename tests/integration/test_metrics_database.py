"""The scrape-time collectors of ``core.services.metrics`` over a real SQLite database.

Each test reads a fresh ``CollectorRegistry`` (not the process one) through the text
exposition, parsed with ``prometheus_client.parser``, so nothing depends on other tests.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.analysis.analyzer import ExperimentAnalyzer, default_prices
from core.domain.criteria import SuccessCriteria, Timing
from core.domain.experiment import Experiment, State
from core.domain.samples import MeasurementSample
from core.observability.metrics import SCRAPE_TIME_METRICS
from core.services.metrics import DatabaseMetrics, install
from core.store.migrate import upgrade
from core.store.uow import Database

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RESULT_METRICS = ("phoenix_experiment_series_reduction_ratio", "phoenix_experiment_projected_monthly_savings_dollars",
                  "phoenix_experiment_critical_coverage_ratio")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'data' / 'phoenix.db'}"
    upgrade(url)
    d = Database(url)
    yield d
    d.dispose()


def scrape(collector: DatabaseMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name → [(labels, value)] of one scrape, as Prometheus would read the text format."""
    registry = CollectorRegistry()
    registry.register(collector)
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def one(families: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    (value,) = [v for lab, v in families.get(name, []) if lab == labels]
    return value


def add(db: Database, exp: Experiment) -> None:
    with db.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()


def new(name: str = "e") -> Experiment:
    return Experiment.create(name=name, baseline="process-baseline-v1", candidate="process-topk-v1",
                             timing=Timing(60, 5), criteria=SuccessCriteria(min_samples=3), now=T0)


def analysed(db: Database) -> Experiment:
    """An experiment measured and analysed for real (``ExperimentAnalyzer``, default price cards)."""
    exp = new("analysed")
    add(db, exp)
    rnd = random.Random(7)
    samples = []
    for i in range(12):
        t = T0 + timedelta(seconds=5 * i)
        samples.append(MeasurementSample(exp.id, "baseline", t, 1000 + rnd.randint(-20, 20), 4000, 400_000,
                                         critical_coverage_pct=100.0))
        samples.append(MeasurementSample(exp.id, "candidate", t, 300 + rnd.randint(-10, 10), 1200, 120_000,
                                         critical_coverage_pct=100.0 if i else 90.0))
    with db.uow() as uow:
        e = uow.experiments.get(exp.id)
        e.start("test")
        e.mark_running("test")
        uow.samples.add_many(samples)
        e.begin_analysis("test")
        e.complete(ExperimentAnalyzer(prices=default_prices).analyze(e, samples), "test")
        uow.experiments.save(e)
        uow.commit()
    return exp


def test_every_state_and_the_result_gauges_of_an_analysed_experiment(db: Database) -> None:
    exp = analysed(db)
    add(db, new("waiting"))
    families = scrape(DatabaseMetrics(lambda: db, cache_s=0))
    assert one(families, "phoenix_database_up") == 1
    assert {lab["state"]: v for lab, v in families["phoenix_experiments"]} == {
        s.value: (1.0 if s in (State.COMPLETED, State.PENDING) else 0.0) for s in State}

    with db.uow() as uow:
        result = uow.experiments.get(exp.id).result
    assert result is not None
    first_card = next(iter(result["cost"].values()))
    expected = {
        ("phoenix_experiment_series_reduction_ratio", "candidate"): result["series_reduction_pct"] / 100,
        ("phoenix_experiment_projected_monthly_savings_dollars", "candidate"):
            first_card["baseline_usd"] - first_card["candidate_usd"],
        ("phoenix_experiment_critical_coverage_ratio", "candidate"): result["critical_coverage_pct"] / 100,
        ("phoenix_experiment_critical_coverage_ratio", "baseline"): result["baseline_critical_coverage_pct"] / 100,
    }
    got = {(name, lab["phoenix_variant"]): v for name in RESULT_METRICS for lab, v in families.get(name, [])
           if lab["phoenix_experiment_id"] == exp.id}
    assert got == pytest.approx(expected)
    assert 0.5 < got[("phoenix_experiment_series_reduction_ratio", "candidate")] < 0.9  # the samples' ~70 %
    assert got[("phoenix_experiment_critical_coverage_ratio", "candidate")] == pytest.approx(0.9)  # its lowest
    # every name the collector exports is one the dashboards and rules may use
    assert {n for n in families if not n.endswith(("_created",))} <= set(SCRAPE_TIME_METRICS)


def test_an_experiment_without_figures_exports_no_result_gauges(db: Database) -> None:
    exp = new("dry")
    add(db, exp)
    with db.uow() as uow:
        e = uow.experiments.get(exp.id)
        for step in (e.start, e.mark_running, e.begin_analysis):
            step("test")
        e.complete({"verdict": "INCONCLUSIVE", "reasons": ["dry run"], "dry_run": True}, "test")
        uow.experiments.save(e)
        uow.commit()
    families = scrape(DatabaseMetrics(lambda: db, cache_s=0))
    assert one(families, "phoenix_experiments", state="Completed") == 1
    assert not any(families.get(name) for name in RESULT_METRICS)


def test_only_the_newest_analysed_experiments_are_exported(db: Database) -> None:
    ids = [analysed(db).id for _ in range(3)]
    families = scrape(DatabaseMetrics(lambda: db, cache_s=0, result_experiments=2))
    exported = {lab["phoenix_experiment_id"] for lab, _ in families["phoenix_experiment_series_reduction_ratio"]}
    assert len(exported) == 2 and exported <= set(ids)


def test_the_pool_is_reported_as_the_engine_exposes_it(db: Database) -> None:
    with db.uow() as uow:  # one connection in use while the scrape runs
        uow.experiments.counts_by_state()
        families = scrape(DatabaseMetrics(lambda: db, cache_s=0))
    pool = db.engine.pool
    assert one(families, "phoenix_db_pool_size") == pool.size()  # type: ignore[attr-defined]
    states = {lab["state"]: v for lab, v in families["phoenix_db_pool_connections"]}
    assert set(states) == {"checked_out", "idle", "overflow"}
    assert states["checked_out"] >= 1


def test_database_gone_reports_up_0_and_the_scrape_still_answers(db: Database, tmp_path: Path) -> None:
    add(db, new())
    collector = DatabaseMetrics(lambda: db, cache_s=0, ping_timeout_s=5)
    assert one(scrape(collector), "phoenix_database_up") == 1
    for f in (tmp_path / "data").iterdir():  # the file (and its WAL) deleted under the running process
        f.unlink()
    families = scrape(collector)
    assert one(families, "phoenix_database_up") == 0
    assert "phoenix_experiments" not in families and not any(families.get(n) for n in RESULT_METRICS)
    assert "phoenix_db_pool_size" in families  # the pool is this process's own: still reported


def test_an_unreachable_server_reports_up_0(tmp_path: Path) -> None:
    from tests.conftest import free_port

    # nothing listens there: connection refused at once
    dead = Database(f"postgresql+psycopg://phoenix@127.0.0.1:{free_port()}/phoenix")
    try:
        families = scrape(DatabaseMetrics(lambda: dead, cache_s=0, ping_timeout_s=10))
    finally:
        dead.dispose()
    assert one(families, "phoenix_database_up") == 0
    assert "phoenix_experiments" not in families


def test_the_answer_is_cached_for_a_few_seconds(db: Database) -> None:
    now = [100.0]
    collector = DatabaseMetrics(lambda: db, cache_s=5, timer=lambda: now[0])
    assert one(scrape(collector), "phoenix_experiments", state="Pending") == 0
    add(db, new())
    now[0] += 4  # within the cache: the database is not read again
    assert one(scrape(collector), "phoenix_experiments", state="Pending") == 0
    now[0] += 2
    assert one(scrape(collector), "phoenix_experiments", state="Pending") == 1


def test_install_registers_once_and_follows_the_newest_database(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    dbs = []
    for name, experiments in (("one", 1), ("two", 2)):
        url = f"sqlite:///{tmp_path / name}.db"
        upgrade(url)
        d = Database(url)
        dbs.append(d)
        for _ in range(experiments):
            add(d, new())
    try:
        first = install(dbs[0], registry)
        assert install(dbs[1], registry) is first  # a second bootstrap: no duplicate registration
        first.cache_s = 0
        text = generate_latest(registry).decode()
        pending = [s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "phoenix_experiments" and s.labels == {"state": "Pending"}]
        assert pending == [2.0]  # the newest wiring, once
    finally:
        for d in dbs:
            d.dispose()
